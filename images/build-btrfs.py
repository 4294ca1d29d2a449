#!/usr/bin/env python3
"""Btrfs test images and their expected listings (run as root: loop mounts).

    python3 images/build-btrfs.py           rebuild images/btrfs-*.img.gz and
                                            images/expected/btrfs-*.tsv, volumes-btrfs.tsv
    python3 images/build-btrfs.py --check   no rebuild: the kernel reads the COMMITTED
                                            images again (read-only loop mounts) and
                                            must still list what the TSVs say

Needs: root, loop devices, a kernel with Btrfs (zstd, zlib and lzo), btrfs-progs
(mkfs.btrfs, btrfs), coreutils `stat` (birth times). --check needs only root, loop
devices and the kernel's Btrfs.

btrfs-rootdir: `mkfs.btrfs --rootdir` from a staging tree (mkfs writes every block:
no kernel involved), default profiles (SINGLE data, DUP metadata): plain logs, an
empty file, a sparse file, a symlink, a deep path, a 255-byte name, a non-UTF-8
name, a 2 MiB log, inline and regular extents, an xattr.

btrfs-subvol: written through the kernel: `mkfs.btrfs -m dup -d single`, a
subvolume `@` made the default (as SUSE does), subvolumes `var`, `home` and
`var/lib/machines` nested in it, a subvolume `@other` beside it (not reachable from
the default: never listed), logs written under `-o compress=zstd`, then remounted
`compress=zlib` and `compress=lzo`, so their extents (and small files' inline
items) are compressed with each; a preallocated range, a hole, a partial overwrite
of a compressed extent (items that use part of it), a hard link, xattrs.

The listings are never snapsift's: each image is mounted read-only by the kernel
(`mount -o ro,loop`, the default subvolume) and every directory, regular file and
symlink is listed as the kernel shows it: inode number, size, mode, owner, link
count, SHA-256, the four times (birth time by `stat -c %W/%w`), symlink target,
xattrs. Both images start as a file full of a stale pattern (mkfs -K: no discard),
so a reader that returns unwritten blocks shows it.
"""
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import build as B  # noqa: E402  pct(), expect(), gzip_to(), pattern_file(), ts()

MiB = 1 << 20
HOST = b"sles15-btrfs"
NAMES = ["btrfs-rootdir", "btrfs-subvol"]
SIZE = 128 * MiB
COLUMNS = ["offset", "path", "type", "inode", "size", "sha256", "mtime", "target", "expect",
           "mode", "uid", "gid", "nlink", "atime", "ctime", "btime", "xattrs"]
OS_RELEASE = b'NAME="SLES"\nVERSION="15-SP5"\nVERSION_ID="15.5"\nPRETTY_NAME="SUSE Linux Enterprise Server 15 SP5"\n' \
             b'ID="sles"\nID_LIKE="suse"\nCPE_NAME="cpe:/o:suse:sles:15:sp5"\n'
PASSWD = b"root:x:0:0:root:/root:/bin/bash\nsapadm:x:1001:100:SAP admin:/home/sapadm:/bin/bash\n"
HIST = b"zypper patch\ntail -f /var/log/messages\nsnapper list\nbtrfs filesystem usage /\nexit\n"


def run(*cmd, ok=(0,)):
    p = subprocess.run([os.fsdecode(c) if isinstance(c, bytes) else str(c) for c in cmd],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode not in ok:
        sys.exit("command failed (%d): %s\n%s%s" % (p.returncode, " ".join(map(str, cmd)),
                                                    p.stdout.decode(errors="replace")[-3000:],
                                                    p.stderr.decode(errors="replace")[-3000:]))
    return p.stdout.decode(errors="replace")


def ns_of(y, mo, d, h=0, mi=0, s=0, ns=0):
    return B.ts(y, mo, d, h, mi, s)[0] * 10**9 + ns


def syslog(rng, n, tag):
    progs = ["sshd[812]", "systemd[1]", "kernel", "sapstartsrv[2231]", "snapperd[77]", "wicked[900]"]
    msgs = ["Accepted publickey for sapadm from 203.0.113.%d port %d ssh2", "Started Session %d of user root %d.",
            "BTRFS info (device nvme0n1p3): scrub: finished on devid %d with status: %d",
            "Starting instance %d of SAP system HA%d", "Created snapshot %d (pre %d)", "eth0: link up %d %d"]
    out = []
    for i in range(n):
        m = rng.choice(msgs) % (rng.randrange(1, 255), rng.randrange(1024, 65535))
        out.append("2024-05-%02dT%02d:%02d:%02d.%06d+00:00 %s %s %s: %s\n" % (
            1 + i // 20000, i // 800 % 24, i // 14 % 60, i % 60, (i * 7919) % 1000000, HOST.decode(), tag,
            rng.choice(progs), m))
    return "".join(out).encode()


def write(root, rel, data, mtime_ns):
    p = os.path.join(os.fsencode(root), rel.lstrip(b"/"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    os.utime(p, ns=(mtime_ns, mtime_ns))
    return p


def symlink(root, rel, target, mtime_ns):
    p = os.path.join(os.fsencode(root), rel.lstrip(b"/"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    os.symlink(target, p)
    os.utime(p, ns=(mtime_ns, mtime_ns), follow_symlinks=False)


def common_tree(m, t, rng):
    write(m, b"/etc/hostname", HOST + b"\n", t + 1)
    write(m, b"/etc/os-release", OS_RELEASE, t + 2)
    write(m, b"/etc/passwd", PASSWD, t + 3)
    symlink(m, b"/etc/localtime", b"/usr/share/zoneinfo/UTC", t + 4)
    write(m, b"/root/.bash_history", HIST, t + 5)


# --- btrfs-rootdir: mkfs.btrfs --rootdir --------------------------------------------------

def stage_rootdir(stage):
    rng = random.Random(20)
    t = ns_of(2024, 5, 2, 9, 0, 0, 111111111)
    common_tree(stage, t, rng)
    write(stage, b"/var/log/messages", syslog(rng, 16000, "rootdir"), t + 10)   # ~2 MiB: regular extents
    write(stage, b"/var/log/warn", syslog(rng, 10, "warn"), t + 11)            # < 2 KiB: inline
    write(stage, b"/var/log/empty.log", b"", t + 12)
    p = write(stage, b"/var/log/zypper.log", syslog(rng, 300, "zypper"), t + 13)
    os.setxattr(p, "user.snapsift", b"xattr on a btrfs file")
    # Sparse: a hole, 5 bytes at 1 MiB, a hole to 3 MiB.
    p = os.path.join(os.fsencode(stage), b"var/log/sparse.log")
    with open(p, "wb") as f:
        f.seek(MiB)
        f.write(b"data\n")
        f.truncate(3 * MiB)
    os.utime(p, ns=(t + 14, t + 14))
    symlink(stage, b"/var/log/current", b"messages", t + 15)
    write(stage, b"/var/log/a/b/c/d/e/f/g/h/i/j/deep.log", b"deep\n", t + 16)
    write(stage, b"/var/log/" + b"L" * 251 + b".log", b"a 255-byte name\n", t + 17)
    write(stage, b"/var/log/caf\xc3\xa9-\xff.log", b"non-UTF-8 name\n", t + 18)
    write(stage, b"/var/log/old.log", b"from 1969\n", ns_of(1969, 7, 20, 20, 17, 40, 5))
    write(stage, b"/home/sapadm/.bash_history", HIST * 2, t + 19)
    write(stage, b"/usr/bin/true", bytes(range(256)) * 20, t + 20)


def build_rootdir(work):
    stage = os.path.join(work, "stage")
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    stage_rootdir(stage)
    img = os.path.join(work, "btrfs-rootdir.img")
    B.pattern_file(img, SIZE)
    run("mkfs.btrfs", "-q", "-f", "-K", "-L", "rootdir", "-U", "5eedb7f5-0000-4000-8000-000000000001",
        "--rootdir", stage, img)
    return img


# --- btrfs-subvol: the kernel writes, with compression ------------------------------------

def populate_subvol(m, rng):
    t = ns_of(2024, 5, 3, 10, 0, 0, 222222222)
    common_tree(m, t, rng)
    # As SUSE's fstab names subvolumes: the one beside @ is not followed yet (a warning).
    write(m, b"/etc/fstab", b"UUID=5eedb7f5-0000-4000-8000-000000000002 / btrfs defaults 0 0\n"
          b"UUID=5eedb7f5-0000-4000-8000-000000000002 /srv btrfs subvol=/@other 0 0\n", t + 8)
    run("btrfs", "subvolume", "create", os.path.join(m, "var"))
    run("btrfs", "subvolume", "create", os.path.join(m, "home"))
    os.makedirs(os.path.join(m, "var/lib"))
    run("btrfs", "subvolume", "create", os.path.join(m, "var/lib/machines"))
    write(m, b"/var/lib/machines/container/var/log/messages", syslog(rng, 200, "machine"), t + 6)
    write(m, b"/home/sapadm/.bash_history", HIST * 3, t + 7)
    # zstd (the mount option): a 1 MiB log (8 compressed extents of 128 KiB), a
    # small one (a compressed inline item).
    write(m, b"/var/log/messages", syslog(rng, 8000, "zstd"), t + 10)
    write(m, b"/var/log/zstd/small.log", syslog(rng, 12, "zstd-inline"), t + 11)
    # A partial overwrite inside a compressed extent: the file's items then use
    # parts of the old extent (offset > 0) around the new one.
    p = write(m, b"/var/log/zstd/overwritten.log", syslog(rng, 1500, "zstd-ow"), t + 12)
    os.sync()
    fd = os.open(p, os.O_WRONLY)
    os.pwrite(fd, b"OVERWRITTEN\n" * 341 + b"END!", 40000)
    os.fsync(fd)
    os.close(fd)
    os.utime(p, ns=(t + 13, t + 13))
    # Preallocated (unwritten) range between two written ones, and a hole.
    p = os.path.join(m, "var/log/prealloc.log")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o640)
    os.pwrite(fd, b"A" * 65536, 0)
    os.fsync(fd)
    os.posix_fallocate(fd, 65536, 131072)
    os.pwrite(fd, b"C" * 4096, 196608)
    os.fsync(fd)
    os.close(fd)
    os.utime(p, ns=(t + 14, t + 14))
    p = os.path.join(m, "var/log/sparse.log")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    os.pwrite(fd, b"after a 2 MiB hole\n", 2 * MiB)
    os.ftruncate(fd, 4 * MiB)
    os.close(fd)
    os.utime(p, ns=(t + 15, t + 15))
    os.link(os.path.join(m, "var/log/messages"), os.path.join(m, "var/log/messages.hardlink"))
    symlink(m, b"/var/log/current", b"messages", t + 16)
    os.setxattr(os.path.join(m, "var/log/messages"), "user.origin", b"zstd")
    os.setxattr(os.path.join(m, "var/log/messages"), "user.second", b"x" * 300)
    os.sync()
    return t


def build_subvol(work):
    img = os.path.join(work, "btrfs-subvol.img")
    B.pattern_file(img, SIZE)
    run("mkfs.btrfs", "-q", "-f", "-K", "-m", "dup", "-d", "single", "-L", "sapbtrfs",
        "-U", "5eedb7f5-0000-4000-8000-000000000002", img)
    m = os.path.join(work, "mnt")
    os.makedirs(m, exist_ok=True)
    rng = random.Random(21)
    run("mount", "-o", "loop", img, m)
    try:
        run("btrfs", "subvolume", "create", os.path.join(m, "@"))
        run("btrfs", "subvolume", "create", os.path.join(m, "@other"))
        write(m, b"/@other/var/log/hidden.log", b"not in the default subvolume\n", ns_of(2024, 5, 3))
        sid = run("btrfs", "subvolume", "show", os.path.join(m, "@"))
        sid = next(l.split(":")[1].strip() for l in sid.splitlines() if l.strip().startswith("Subvolume ID"))
        run("btrfs", "subvolume", "set-default", sid, m)
    finally:
        run("umount", m)
    run("mount", "-o", "loop,compress=zstd", img, m)
    try:
        t = populate_subvol(m, rng)
        run("mount", "-o", "remount,compress=zlib", m)
        write(m, b"/var/log/zlib/app.log", syslog(rng, 3000, "zlib"), t + 20)
        write(m, b"/var/log/zlib/small.log", syslog(rng, 12, "zlib-inline"), t + 21)
        run("mount", "-o", "remount,compress=lzo", m)
        write(m, b"/var/log/lzo/app.log", syslog(rng, 3000, "lzo"), t + 22)
        write(m, b"/var/log/lzo/small.log", syslog(rng, 12, "lzo-inline"), t + 23)
        os.sync()
    finally:
        run("umount", m)
    return img


# --- listings ------------------------------------------------------------------------------

def birth(path):
    """(secs, ns) of the birth time through statx (coreutils stat)."""
    out = subprocess.run(["stat", "-c", "%W\t%w", "--", path], stdout=subprocess.PIPE, check=True).stdout.decode()
    secs, human = out.rstrip("\n").split("\t")
    if human == "-":
        return int(secs), 0
    frac = human.split(" ")[1].split(".")[1] if "." in human else "0"
    return int(secs), int(frac.ljust(9, "0"))


def stamp(secs_ns):
    s, ns = divmod(secs_ns, 10**9)
    return "%d.%09d" % (s, ns)


def listing(m):
    root = os.fsencode(m)
    rows = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in sorted(filenames) + sorted(dirnames):
            full = os.path.join(dirpath, n)
            rel = full[len(root):]
            st = os.lstat(full)
            sha, target = "", b""
            if os.path.islink(full):
                typ, target = "l", os.readlink(full)
            elif os.path.isdir(full):
                typ = "d"
            else:
                typ = "r"
                h = hashlib.sha256()
                with open(full, "rb") as f:
                    for chunk in iter(lambda: f.read(MiB), b""):
                        h.update(chunk)
                sha = h.hexdigest()
            xattrs = []
            if typ != "l":
                for x in sorted(os.listxattr(full)):
                    xattrs.append("%s=%s" % (x, os.getxattr(full, x).hex()))
            bs, bns = birth(full)
            rows.append(dict(
                offset="0", path=B.pct(rel), type=typ, inode=str(st.st_ino), size=str(st.st_size), sha256=sha,
                mtime=stamp(st.st_mtime_ns), target=B.pct(target),
                expect=B.expect(rel, typ, True, {b"/root", b"/home/sapadm"}),
                mode="%o" % st.st_mode, uid=str(st.st_uid), gid=str(st.st_gid), nlink=str(st.st_nlink),
                atime=stamp(st.st_atime_ns), ctime=stamp(st.st_ctime_ns), btime="%d.%09d" % (bs, bns),
                xattrs=";".join(xattrs)))
    rows.sort(key=lambda r: r["path"])
    return "\t".join(COLUMNS) + "\n" + "".join("\t".join(r[c] for c in COLUMNS) + "\n" for r in rows)


def kernel_listing(img, m):
    run("mount", "-t", "btrfs", "-o", "ro,loop", img, m)
    try:
        return listing(m)
    finally:
        run("umount", m)


def volume_row(name, label):
    return "%s\t0\t%d\tbtrfs\t%s\tyes\t%s\tnone\t512" % (name, SIZE, label, HOST.decode())


def main():
    check = "--check" in sys.argv[1:]
    if os.geteuid() != 0:
        print("build-btrfs.py: skipped: needs root (loop mounts)")
        sys.exit(0 if check else 2)
    if "btrfs" not in open("/proc/filesystems").read():
        subprocess.run(["modprobe", "btrfs"], stderr=subprocess.DEVNULL)
    tools = ["mount", "umount", "losetup", "stat"] + ([] if check else ["mkfs.btrfs", "btrfs"])
    missing = [t for t in tools if not shutil.which(t)]
    if missing or "btrfs" not in open("/proc/filesystems").read():
        print("build-btrfs.py: skipped: missing %s" % (", ".join(missing) or "kernel Btrfs"))
        sys.exit(0 if check else 2)
    os.environ["TZ"] = "UTC"
    work = tempfile.mkdtemp(prefix="snapsift-btrfs-", dir="/var/tmp")
    m = os.path.join(work, "mnt")
    os.makedirs(m)
    bad = 0
    try:
        for name in NAMES:
            tsv = os.path.join(here, "expected", name + ".tsv")
            if check:
                img = os.path.join(work, name + ".img")
                with open(img, "wb") as out:
                    out.write(subprocess.run(["gzip", "-dc", os.path.join(here, name + ".img.gz")],
                                             stdout=subprocess.PIPE, check=True).stdout)
                got = kernel_listing(img, m)
                if got != open(tsv).read():
                    bad += 1
                    print("%s: the kernel's listing differs from expected/%s.tsv" % (name, name))
                    with open(os.path.join(work, name + ".tsv"), "w") as f:
                        f.write(got)
                    subprocess.run(["diff", tsv, os.path.join(work, name + ".tsv")])
                else:
                    print("%s: the kernel lists what expected/%s.tsv says" % (name, name))
                os.unlink(img)
                continue
            img = build_rootdir(work) if name == "btrfs-rootdir" else build_subvol(work)
            with open(tsv, "w") as f:
                f.write(kernel_listing(img, m))
            B.gzip_to(img, os.path.join(here, name + ".img.gz"))
            print("%-22s %8d bytes" % (name + ".img.gz", os.path.getsize(os.path.join(here, name + ".img.gz"))))
        if not check:
            header = "image\toffset\tsize\tfstype\tlabel\tos_root\thostname\tptable\tsector_size"
            with open(os.path.join(here, "expected", "volumes-btrfs.tsv"), "w") as f:
                f.write("\n".join([header, volume_row("btrfs-rootdir", "rootdir"), volume_row("btrfs-subvol", "sapbtrfs")]) + "\n")
    finally:
        subprocess.run(["umount", m], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if bad else 0)


main()
