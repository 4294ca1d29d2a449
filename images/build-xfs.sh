#!/usr/bin/env bash
# Rebuild the XFS test images and their expected listings (run as root).
#   images/build-xfs.sh        writes images/xfs-v5.img.gz, images/xfs-v4.img.gz,
#                              images/expected/xfs-v5.tsv, xfs-v4.tsv and their
#                              rows in images/expected/volumes-xfs.tsv
# Needs: root (loop devices, mount), python3, xfsprogs 6.x (mkfs.xfs, xfs_db,
# xfs_io, xfs_bmap, xfs_repair), a kernel with XFS (v5; v4 is never mounted).
#
# xfs-v5: populated through a read-write loop mount; the listing comes from the
# kernel's XFS driver through a second, read-only `ro,norecovery` loop mount.
# xfs-v4: current kernels refuse v4, so it is populated by `mkfs.xfs -p
# protofile` from a staging tree; the listing comes from the staging tree,
# inode numbers from `xfs_db ls`, and mtimes are written with `xfs_db -x`
# (mkfs stamps everything "now") and read back with `xfs_db print`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export TZ=UTC LC_ALL=C
PATH="$PATH:/usr/sbin:/sbin"
[ "$(id -u)" = 0 ] || { echo "build-xfs.sh: run as root (loop mounts)" >&2; exit 2; }
for t in python3 mkfs.xfs xfs_db xfs_io xfs_bmap xfs_repair mount umount losetup; do
  command -v "$t" >/dev/null || { echo "build-xfs.sh: missing tool: $t (apt-get install -y xfsprogs)" >&2; exit 2; }
done
exec python3 - "$here" <<'PY'
import hashlib, os, random, re, shutil, subprocess, sys, tempfile, time

here = sys.argv[1]
sys.path.insert(0, here)
import build as B  # pct(), expect(), is_hist(), gzip_to(), pattern_file()

MiB = 1 << 20
# mkfs.xfs >= 5.19 refuses filesystems under 300 MB unless it thinks it runs
# under fstests; these variables are its documented escape hatch.
SMALL = dict(os.environ, TEST_DIR="1", TEST_DEV="1", QA_CHECK_FS="1")


def run(*cmd, env=None, ok=(0,)):
    p = subprocess.run([os.fsdecode(c) if isinstance(c, bytes) else str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if p.returncode not in ok:
        sys.exit("command failed (%d): %s\n%s%s" % (p.returncode, " ".join(map(str, cmd)),
                                                    p.stdout.decode(errors="replace")[-3000:],
                                                    p.stderr.decode(errors="replace")[-3000:]))
    return p.stdout.decode(errors="replace")


def text(rng, n, words=("sshd", "kernel:", "systemd[1]:", "Accepted", "publickey", "for", "ec2-user",
                         "from", "203.0.113.7", "port", "22", "Started", "session", "audit:", "type=USER_LOGIN")):
    lines = []
    for i in range(n):
        lines.append("2024-05-%02dT%02d:%02d:%02dZ xfs01 %s" % (
            1 + i % 28, i % 24, i % 60, (i * 7) % 60, " ".join(rng.choice(words) for _ in range(9))))
    return ("\n".join(lines) + "\n").encode()


def ns_of(y, mo, d, h=0, mi=0, s=0, ns=0):
    sec, _ = B.ts(y, mo, d, h, mi, s)
    return sec * 10**9 + ns


def write(root, rel, data, mtime_ns):
    p = os.path.join(os.fsencode(root), rel.lstrip(b"/"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
        os.fsync(f.fileno())
    os.utime(p, ns=(mtime_ns, mtime_ns))
    return p


def symlink(root, rel, target, mtime_ns):
    p = os.path.join(os.fsencode(root), rel.lstrip(b"/"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    os.symlink(target, p)
    os.utime(p, ns=(mtime_ns, mtime_ns), follow_symlinks=False)


OS_RELEASE = b'NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nID_LIKE="fedora"\nVERSION_ID="2023"\n' \
             b'PLATFORM_ID="platform:al2023"\nPRETTY_NAME="Amazon Linux 2023.4.20240528"\nANSI_COLOR="0;33"\n'
PASSWD = b"root:x:0:0:root:/root:/bin/bash\nbin:x:1:1:bin:/bin:/sbin/nologin\n" \
         b"sshd:x:74:74:Privilege-separated SSH:/usr/share/empty.sshd:/sbin/nologin\n" \
         b"ec2-user:x:1000:1000:EC2 Default User:/home/ec2-user:/bin/bash\n"
HIST = b"sudo -i\ntail -f /var/log/messages\ncurl -s http://169.254.169.254/latest/meta-data/\nexit\n"
LONG_TARGET = b"/" + b"/".join(b"remote-symlink-component-%02d" % i for i in range(22)) + b"/end"


def populate_v5(m):
    """The v5 tree, written through the kernel. Directories are created in an
    order that makes XFS's rotor spread them (and the files in them) over all
    four allocation groups."""
    rng = random.Random(5)
    t = ns_of(2024, 5, 1, 12, 0, 0, 123456789)
    for d in ["etc", "var", "root", "home", "usr", "var/log", "var/log/audit", "home/ec2-user",
              "var/log/dirs", "var/log/dirs/short", "var/log/dirs/block", "var/log/dirs/leaf",
              "var/log/many", "var/log/sa", "var/log/app", "usr/bin", "srv"]:
        os.mkdir(os.path.join(m, d))
    write(m, b"/etc/hostname", b"xfs01\n", t + 1)
    write(m, b"/etc/os-release", OS_RELEASE, t + 2)
    write(m, b"/etc/passwd", PASSWD, t + 3)
    symlink(m, b"/etc/localtime", b"../usr/share/zoneinfo/UTC", t + 4)
    write(m, b"/var/log/messages", text(rng, 20000), t + 5)       # ~1.5 MB, multi-block extents
    os.setxattr(os.path.join(m, "var/log/messages"), "user.note", b"x" * 100)  # attr fork: di_forkoff
    write(m, b"/var/log/secure", text(rng, 300), t + 6)
    write(m, b"/var/log/audit/audit.log", text(rng, 3000), t + 7)
    write(m, b"/var/log/sa/sa01", text(rng, 500), t + 8)
    write(m, b"/var/log/app/app.log", text(rng, 800), t + 9)
    write(m, b"/root/.bash_history", HIST, t + 10)
    write(m, b"/home/ec2-user/.bash_history", HIST * 3, t + 11)
    write(m, b"/home/ec2-user/notes.txt", b"not a log\n", t + 12)
    write(m, b"/usr/bin/true", bytes(range(256)) * 40, t + 13)
    write(m, b"/srv/data.bin", text(rng, 100), t + 14)
    write(m, b"/var/log/empty.log", b"", t + 15)
    write(m, b"/var/log/future.log", b"from the future\n", ns_of(2040, 1, 2, 3, 4, 5, 600000007))
    write(m, b"/var/log/old.log", b"from the past\n", ns_of(1965, 3, 4, 5, 6, 7, 987654321))
    write(m, b"/var/log/bad-\xff\xfe-name.log", b"non-UTF-8 name\n", t + 16)
    write(m, b"/var/log/caf\xc3\xa9.log", b"UTF-8 name\n", t + 17)
    symlink(m, b"/var/log/current", b"messages", t + 18)                 # inline (local) symlink
    symlink(m, b"/var/log/remote-symlink", LONG_TARGET, t + 19)         # remote: XSLM block
    os.link(os.path.join(m, "var/log/secure"), os.path.join(m, "root/secure-hardlink"))

    # Fragmented file: 4 KiB every 8 KiB, written backwards with a sync after
    # each write, so no speculative preallocation fills the holes and every
    # write is its own extent -> more extents than fit in the inode -> bmbt.
    p = os.path.join(m, "var/log/fragmented.log")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    for i in reversed(range(300)):
        os.pwrite(fd, (b"fragment %05d " % i) * 273 + b"\n" * 4, i * 8192)  # 4096 bytes
        os.fdatasync(fd)
    os.close(fd)
    os.setxattr(p, "user.big", b"y" * 200)
    os.utime(p, ns=(t + 20, t + 20))

    # Unwritten extent inside i_size: data, fallocate (the blocks keep the
    # stale pattern on disk), data.
    p = os.path.join(m, "var/log/prealloc.log")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    os.pwrite(fd, b"A" * 65536, 0)
    os.fsync(fd)
    os.posix_fallocate(fd, 65536, 65536)
    os.pwrite(fd, b"C" * 65536, 131072)
    os.fsync(fd)
    os.close(fd)
    os.utime(p, ns=(t + 21, t + 21))

    # Sparse: a hole at the start, data at 1 MiB and 20 MiB, a hole to 40 MiB.
    p = os.path.join(m, "var/log/sparse.log")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    os.pwrite(fd, b"one MiB in\n", MiB)
    os.pwrite(fd, b"twenty MiB in\n", 20 * MiB)
    os.ftruncate(fd, 40 * MiB)
    os.fsync(fd)
    os.close(fd)
    os.utime(p, ns=(t + 22, t + 22))

    # Directory formats: short form, block, leaf; many/ is node, and the pad
    # files interleaved with its growth fragment it into a btree-format dir.
    for i in range(5):
        write(m, b"/var/log/dirs/short/s%d.log" % i, b"short %d\n" % i, t + 100 + i)
    for i in range(40):
        write(m, b"/var/log/dirs/block/b%02d.log" % i, b"block %d\n" % i, t + 200 + i)
    for i in range(300):
        write(m, b"/var/log/dirs/leaf/entry-with-a-longer-name-%04d.log" % i, b"leaf %d\n" % i, t + 1000 + i)
    many = os.path.join(m, "var/log/many")
    for i in range(20000):
        fd = os.open(os.path.join(many, "f%05d.log" % i), os.O_CREAT | os.O_WRONLY, 0o644)
        os.close(fd)
        if i % 100 == 99:
            write(m, b"/var/log/many/pad%05d.log" % i, (b"pad %05d\n" % i) * 455 + b"\n" * 6, t + 5000 + i)
            os.sync()
    for i in range(20000):
        os.utime(os.path.join(many, "f%05d.log" % i), ns=(t + 30000 + i, t + 30000 + i))


def listing(m, os_root):
    """Rows for every regular file and symlink, as the kernel shows them."""
    root = os.fsencode(m)
    staging = {}
    rows = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in list(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, n)
            rel = full[len(root):]
            st = os.lstat(full)
            if os.path.islink(full):
                typ, sha, target = "l", "", os.readlink(full)
            else:
                typ, target = "r", b""
                h = hashlib.sha256()
                with open(full, "rb") as f:
                    for chunk in iter(lambda: f.read(MiB), b""):
                        h.update(chunk)
                sha = h.hexdigest()
            staging[rel] = st
            rows.append(dict(path=rel, type=typ, inode=st.st_ino, size=st.st_size, sha256=sha,
                             mtime=divmod(st.st_mtime_ns, 10**9), target=target))
    homes = {b"/root", b"/home/ec2-user"}
    for r in rows:
        r["expect"] = B.expect(r["path"], r["type"], os_root, homes)
    return rows


def ag_report(img, m, rows, agblklog, inopblog):
    """Which allocation groups hold the listed files' inodes and data."""
    data_ags, ino_ags = set(), set()
    for r in rows:
        ino_ags.add(r["inode"] >> (agblklog + inopblog))
        if r["type"] == "r" and r["size"] > 0:
            out = run("xfs_bmap", "-v", os.path.join(os.fsencode(m), r["path"].lstrip(b"/")))
            for line in out.splitlines()[2:]:
                f = line.split()
                if len(f) >= 4 and f[2] != "hole" and f[3].isdigit():
                    data_ags.add(int(f[3]))
    print("  inodes in AGs %s, file data in AGs %s" % (sorted(ino_ags), sorted(data_ags)))
    if not {1, 2, 3} <= data_ags:
        sys.exit("file data does not reach every AG: %s" % sorted(data_ags))


def sb_field(img, field):
    out = run("xfs_db", "-r", "-c", "sb 0", "-c", "print " + field, img)
    return int(out.split("=")[1].split()[0])


def inode_format(img, path):
    out = run("xfs_db", "-r", "-c", "path " + path, "-c", "print core.format core.nextents core.naextents", img)
    return " ".join(l.strip() for l in out.splitlines())


def write_listing(path, rows):
    with open(path, "w", newline="\n") as f:
        f.write("offset\tpath\ttype\tinode\tsize\tsha256\tmtime\ttarget\texpect\n")
        for r in sorted(rows, key=lambda r: r["path"]):
            sec, ns = r["mtime"]
            f.write("0\t%s\t%s\t%d\t%d\t%s\t%d.%09d\t%s\t%s\n" % (
                B.pct(r["path"]), r["type"], r["inode"], r["size"], r["sha256"], sec, ns,
                B.pct(r["target"]), r["expect"]))


def set_volume_rows(new):
    # Each image builder owns one volumes-*.tsv; tests read them all.
    path = os.path.join(here, "expected", "volumes-xfs.tsv")
    header = "image\toffset\tsize\tfstype\tlabel\tos_root\thostname\tptable\tsector_size"
    open(path, "w").write("\n".join([header] + new) + "\n")


def build_v5(work):
    img = os.path.join(work, "xfs-v5.img")
    B.pattern_file(img, 300 * MiB)
    run("mkfs.xfs", "-q", "-f", "-K", "-L", "xfsroot", "-m", "crc=1,bigtime=1,uuid=5eed0005-0000-4000-8000-00000000c0de",
        "-i", "nrext64=1", "-d", "agcount=4", img)
    m = os.path.join(work, "mnt")
    os.makedirs(m, exist_ok=True)
    run("mount", "-t", "xfs", "-o", "loop", img, m)
    try:
        populate_v5(m)
        os.sync()
    finally:
        run("umount", m)
    # The clean log still holds ~5 MB of incompressible transactions from
    # populating; reformat it (xfs_repair -L on a cleanly unmounted
    # filesystem loses nothing), then check the result.
    run("xfs_repair", "-L", img)
    run("xfs_repair", "-n", img)
    run("mount", "-t", "xfs", "-o", "ro,norecovery,loop", img, m)
    try:
        rows = listing(m, True)
        agblklog, inopblog = sb_field(img, "agblklog"), sb_field(img, "inopblog")
        ag_report(img, m, rows, agblklog, inopblog)
    finally:
        run("umount", m)
    for p in ["/var/log/fragmented.log", "/var/log/many", "/var/log/dirs/leaf", "/var/log/dirs/block",
              "/var/log/dirs/short", "/var/log/remote-symlink", "/var/log/prealloc.log"]:
        print("  %-26s %s" % (p, inode_format(img, p)))
    print("  prealloc.log:", run("xfs_db", "-r", "-c", "path /var/log/prealloc.log", "-c", "bmap", img).strip().replace("\n", "; "))
    write_listing(os.path.join(here, "expected", "xfs-v5.tsv"), rows)
    B.gzip_to(img, os.path.join(here, "xfs-v5.img.gz"))
    return "xfs-v5\t0\t%d\txfs\txfsroot\tyes\txfs01\tnone\t512" % (300 * MiB)


def build_v4(work):
    """v4 (no CRCs, v2 inodes, no ftype) from a protofile; never mounted."""
    stage = os.path.join(work, "stage4")
    shutil.rmtree(stage, ignore_errors=True)
    rng = random.Random(4)
    t = ns_of(2023, 11, 5, 8, 30, 0, 0)
    files = {  # path -> (content, mtime_ns) ; symlinks: (None, target, mtime)
        b"/etc/hostname": (b"oldxfs\n", t + 11),
        b"/etc/passwd": (PASSWD, t + 12),
        b"/etc/os-release": (b'NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\nPRETTY_NAME="CentOS Linux 7 (Core)"\n', t + 13),
        b"/var/log/messages": (text(rng, 6000), t + 14),
        b"/var/log/secure": (text(rng, 200), t + 15),
        b"/var/log/cron": (text(rng, 50), t + 16),
        b"/var/log/audit/audit.log": (text(rng, 900), t + 17),
        b"/var/log/old.log": (b"1969\n", ns_of(1969, 7, 20, 20, 17, 40, 0)),
        b"/var/log/bad-\xff-name.log": (b"latin-1 name\n", t + 18),
        b"/root/.bash_history": (HIST, t + 19),
        b"/home/ec2-user/.bash_history": (HIST * 2, t + 20),
        b"/usr/bin/true": (bytes(range(256)) * 9, t + 21),
    }
    for i in range(150):
        files[b"/var/log/leafdir/some-longer-file-name-%03d.log" % i] = (b"%d\n" % i, t + 100 + i)
    for i in range(1500):
        files[b"/var/log/many/m%04d.log" % i] = (b"", t + 1000 + i)
    links = {b"/var/log/current": (b"messages", t + 30), b"/var/log/remote-symlink": (LONG_TARGET[:300], t + 31)}
    for p, (data, _) in files.items():
        q = os.path.join(os.fsencode(stage), p.lstrip(b"/"))
        os.makedirs(os.path.dirname(q), exist_ok=True)
        open(q, "wb").write(data)

    # Protofile: a tree of "name mode uid gid [source|target]" lines, "$" closes a directory.
    tree = {}
    for p in list(files) + list(links):
        node = tree
        parts = p.strip(b"/").split(b"/")
        for d in parts[:-1]:
            node = node.setdefault(d, {})
        node[parts[-1]] = p
    out = [b"/dev/null", b"0 0", b"d--755 0 0"]

    def emit(node, depth):
        for name in sorted(node):
            v = node[name]
            if isinstance(v, dict):
                out.append(b" " * depth + name + b" d--755 0 0")
                emit(v, depth + 1)
                out.append(b" " * depth + b"$")
            elif v in links:
                out.append(b" " * depth + name + b" l--777 0 0 " + links[v][0])
            else:
                out.append(b" " * depth + name + b" ---644 0 0 " + os.path.join(os.fsencode(stage), v.lstrip(b"/")))
    emit(tree, 1)
    out.append(b"$")
    proto = os.path.join(work, "proto4")
    open(proto, "wb").write(b"\n".join(out) + b"\n")

    img = os.path.join(work, "xfs-v4.img")
    B.pattern_file(img, 72 * MiB)
    run("mkfs.xfs", "-q", "-f", "-K", "-L", "xfsv4", "-m", "crc=0,uuid=5eed0004-0000-4000-8000-00000000c0de",
        "-n", "ftype=0", "-b", "size=1024", "-d", "agcount=4", "-p", proto, img, env=SMALL)
    rows = []
    agblklog, inopblog = sb_field(img, "agblklog"), sb_field(img, "inopblog")
    ino_of = {}
    for p in list(files) + list(links):
        d, n = p.rsplit(b"/", 1)
        # "ls DIR" lines: dir offset, inode, type, hash, name length, name, "(good)"
        out = subprocess.run(["xfs_db", "-r", "-c", "ls " + os.fsdecode(d or b"/"), img],
                             stdout=subprocess.PIPE, check=True).stdout
        for line in out.splitlines():
            mm = re.match(rb"^\s*\d+\s+(\d+)\s+\S+\s+0x[0-9a-f]+\s+(\d+) (.*)$", line)
            if mm and mm.group(3)[:int(mm.group(2))] == n:
                ino_of[p] = int(mm.group(1))
        if p not in ino_of:
            sys.exit("xfs_db ls: no inode for %r" % p)
    # mkfs stamped every inode with the current time, and xfs_db 6.1 cannot
    # write timestamp seconds: patch di_mtime (big-endian s32 seconds, u32
    # nanoseconds at inode offset 40) directly; v4 has no CRCs to update.
    # The result is read back through xfs_db below.
    g = {f: sb_field(img, f) for f in ("blocksize", "agblocks", "agblklog", "inopblog", "inodesize")}
    with open(img, "r+b") as f:
        for p, ino in ino_of.items():
            ns = (files.get(p) or links.get(p))[1]
            sec, nsec = divmod(ns, 10**9)
            agno = ino >> (g["agblklog"] + g["inopblog"])
            agbno = (ino >> g["inopblog"]) & ((1 << g["agblklog"]) - 1)
            slot = ino & ((1 << g["inopblog"]) - 1)
            off = (agno * g["agblocks"] + agbno) * g["blocksize"] + slot * g["inodesize"]
            f.seek(off)
            assert f.read(2) == b"IN", (p, ino)
            f.seek(off + 40)
            f.write(sec.to_bytes(4, "big", signed=True) + nsec.to_bytes(4, "big"))
    items = list(ino_of.items())
    for i in range(0, len(items), 300):
        part = items[i:i + 300]
        cmds = []
        for p, ino in part:
            cmds += ["-c", "inode %d" % ino, "-c", "print core.mtime.sec core.mtime.nsec"]
        lines = [l for l in run("xfs_db", "-r", *cmds, img).splitlines() if l.strip()]
        for (p, ino), sec_line, nsec_line in zip(part, lines[0::2], lines[1::2]):
            sec, nsec = divmod((files.get(p) or links.get(p))[1], 10**9)
            want = " ".join(time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(sec)).split())
            if " ".join(sec_line.split()) != "core.mtime.sec = " + want or nsec_line.strip() != "core.mtime.nsec = %d" % nsec:
                sys.exit("xfs_db reads %r %r for %r, wanted %s.%09d" % (sec_line, nsec_line, p, want, nsec))
    run("xfs_repair", "-n", img)
    for p, ino in ino_of.items():
        if p in links:
            target, ns = links[p]
            row = dict(type="l", size=len(target), sha256="", target=target)
        else:
            data, ns = files[p]
            row = dict(type="r", size=len(data), sha256=hashlib.sha256(data).hexdigest(), target=b"")
        row.update(path=p, inode=ino, mtime=divmod(ns, 10**9))
        row["expect"] = B.expect(p, row["type"], True, {b"/root", b"/home/ec2-user"})
        rows.append(row)
    # Read a few mtimes back the way xfs_db decodes them.
    for p in [b"/var/log/old.log", b"/var/log/messages"]:
        out = run("xfs_db", "-r", "-c", "inode %d" % ino_of[p], "-c", "print core.mtime.sec core.mtime.nsec", img)
        print("  %s: %s" % (p.decode(), " ".join(out.split())))
    print("  v4 inodes in AGs", sorted({ino >> (agblklog + inopblog) for ino in ino_of.values()}))
    for p in ["/var/log/many", "/var/log/leafdir", "/var/log/messages", "/var/log/remote-symlink"]:
        print("  %-26s %s" % (p, inode_format(img, p)))
    write_listing(os.path.join(here, "expected", "xfs-v4.tsv"), rows)
    B.gzip_to(img, os.path.join(here, "xfs-v4.img.gz"))
    return "xfs-v4\t0\t%d\txfs\txfsv4\tyes\toldxfs\tnone\t512" % (72 * MiB)


work = tempfile.mkdtemp(prefix="snapsift-xfs-")
try:
    vol = []
    print("xfs-v5:")
    vol.append(build_v5(work))
    print("xfs-v4:")
    vol.append(build_v4(work))
    set_volume_rows(vol)
finally:
    subprocess.run(["umount", os.path.join(work, "mnt")], stderr=subprocess.DEVNULL)
    shutil.rmtree(work, ignore_errors=True)
for n in ["xfs-v5.img.gz", "xfs-v4.img.gz"]:
    print("%-16s %8d bytes" % (n, os.path.getsize(os.path.join(here, n))))
PY
