#!/usr/bin/env python3
"""Build images/hostile-ext4.img.gz: names and links aimed at the responder;
and images/sparse-ext4.img.gz: a log of 100 GiB that is almost all holes.

    python3 images/build-hostile.py        (no root; mke2fs -d, then a byte patch)

A small ext4 Linux root whose /var/log holds files that mke2fs creates with
harmless placeholder names of the same length, then renamed in place in
their directory blocks (linear directories, so no hash index to fix) to:
`../../../etc/evil`, `/tmp/x.log`, names with `\\`, a newline, a tab,
invalid UTF-8, `..`-prefixed names; plus symlinks to /etc/passwd, to
../../../../etc/shadow, to themselves and to each other. What snapsift must
do with each is asserted in tests/hostile.rs (not a listing: the expected
treatment is the documented output-name escaping).
"""
import os
import shutil
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import build as B  # noqa: E402

RENAMES = [  # placeholder (what mke2fs writes) -> hostile name (same length)
    (b"PLACEHOLDER-0000A", b"../../../etc/evil"),
    (b"PLACEHOLDER", b"/tmp/x.log\xff"),
    (b"PLACE-1.log", b"a\\b\\c\\d.log"),
    (b"PLACE-2.log", b"new\nline.lo"),
    (b"PLACE-3.log", b"\xff\xfe\xfd-bad.log"),
    (b"PLACE-4.log", b"..%2F..%2Fx"),
]


def main():
    work = tempfile.mkdtemp(prefix="snapsift-hostile-")
    try:
        t = B.Tree(701)
        t.file("/etc/hostname", "hostile01\n")
        t.file("/etc/os-release", 'PRETTY_NAME="Hostile Linux"\n')
        for placeholder, _ in RENAMES:
            t.file(b"/var/log/" + placeholder, b"content of " + placeholder + b"\n")
        t.file("/var/log/syslog", "an ordinary log\n")
        t.symlink("/var/log/passwd.log", "/etc/passwd")
        t.symlink("/var/log/shadow.log", "../../../../etc/shadow")
        t.symlink("/var/log/self.log", "self.log")
        t.symlink("/var/log/ping.log", "pong.log")
        t.symlink("/var/log/pong.log", "ping.log")
        t.symlink("/root/.bash_history", "/etc/shadow")
        fsimg, _ = B.make_fs(work, "hostile", t, 4 * B.MiB, "ext4", "hostile",
                             "5eed000b-0000-4000-8000-000000000000", 1024)
        data = bytearray(open(fsimg, "rb").read())
        for old, new in RENAMES:
            assert len(old) == len(new), (old, new)
            # In a directory entry the name follows inode(4) rec_len(2)
            # name_len(1) file_type(1); match on name_len to be exact.
            needle = bytes([len(old)]) + b"\x01" + old
            i = data.find(needle)
            assert i > 0 and data.find(needle, i + 1) < 0, old
            data[i + 2:i + 2 + len(old)] = new
        open(fsimg, "wb").write(bytes(data))
        B.gzip_to(fsimg, os.path.join(here, "hostile-ext4.img.gz"))
        print("wrote images/hostile-ext4.img.gz")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sparse():
    """A lastlog-like file (lastlog is indexed by UID: one login record of a
    UID in the billions puts it hundreds of GiB out) of 100 GiB apparent
    size holding three 4 KiB records; mke2fs -d keeps the holes (12 KiB
    allocated). tests/robustness.rs checks that the copy stays sparse."""
    work = tempfile.mkdtemp(prefix="snapsift-sparse-")
    try:
        t = B.Tree(702)
        t.file("/etc/hostname", "sparse01\n")
        t.file("/var/log/syslog", "an ordinary log\n")
        rec = lambda off: (b"record at byte %016d\n" % off) * 128  # 4096 bytes
        size = 100 << 30
        t.sparse("/var/log/lastlog", size, [(off, rec(off)) for off in (0, 1 << 30, size - 4096)])
        fsimg, _ = B.make_fs(work, "sparse", t, 8 * B.MiB, "ext4", "sparse",
                             "5eed000c-0000-4000-8000-000000000000", 4096)
        B.gzip_to(fsimg, os.path.join(here, "sparse-ext4.img.gz"))
        print("wrote images/sparse-ext4.img.gz")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
    sparse()
