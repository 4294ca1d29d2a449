#!/usr/bin/env python3
"""Build images/al2023-gpt.img.gz: the Amazon Linux 2023 EC2 disk layout.

    python3 images/build-al2023.py           # image + expected listings
    python3 images/build-al2023.py --check   # rebuild the listings, diff them

GPT with partitions 1 (XFS root), 127 (BIOS boot) and 128 (EFI system,
FAT16), as Amazon Linux 2023 AMIs have. Partition 1 holds the XFS v5
filesystem of images/xfs-v5.img.gz unchanged (its listing, taken from the
kernel's XFS driver by build-xfs.sh, carries over at the new offset); the
EFI partition is made with mkfs.vfat and mcopy, and listed by sleuthkit
(fls/icat/istat, TZ=UTC). No root needed.
Needs: sgdisk, mkfs.vfat (dosfstools), mcopy (mtools), sleuthkit, python3.
"""
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import build as B  # noqa: E402

MiB = B.MiB
ENV = dict(os.environ, TZ="UTC", LC_ALL="C", MTOOLS_SKIP_CHECK="1")
EFI_FILES = [  # path, content, mtime (FAT keeps even seconds)
    ("/EFI/BOOT/BOOTX64.EFI", b"MZ" + bytes(range(256)) * 40, 1714564800),
    ("/EFI/amzn/grub.cfg", b"search --no-floppy --fs-uuid --set=dev 5eed\nconfigfile $prefix/grub.cfg\n", 1714568400),
    ("/logs/boot.log", b"[  OK  ] Reached target Basic System.\n" * 20, 1714572000),
    ("/logs/Firmware Update Record With A Long Name.log", b"fw 1.2.3 -> 1.2.4 ok\n", 1714575602),
    ("/logs/old/BOOT.LOG", b"old boot log\n", 1714579204),
]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, env=ENV, stdout=subprocess.PIPE, **kw).stdout


def build(out, want_image):
    work = tempfile.mkdtemp(prefix="snapsift-al2023-")
    try:
        xfs = os.path.join(work, "root.xfs")
        with gzip.open(os.path.join(here, "xfs-v5.img.gz"), "rb") as f, open(xfs, "wb") as o:
            shutil.copyfileobj(f, o, MiB)
        xfs_size = os.path.getsize(xfs)
        disk = os.path.join(work, "al2023.img")
        B.pattern_file(disk, xfs_size + 16 * MiB)
        p1_start = 24576  # 12 MiB in, after 127 and 128, as on the AMIs
        run(["sgdisk", "-o", "-U", "5eed0009-0000-4000-8000-000000000000",
             "-n", "127:2048:+1M", "-t", "127:EF02", "-c", "127:BIOS Boot Partition",
             "-n", "128:4096:+10M", "-t", "128:EF00", "-c", "128:EFI System Partition",
             "-n", "1:%d:+%dK" % (p1_start, xfs_size // 1024), "-t", "1:8300", "-c", "1:Linux",
             "-u", "1:5eed0009-0000-4000-8000-0000000000a1", disk])
        pt = B.sfdisk_layout(disk)
        parts = {int(re.search(r"(\d+)$", p["node"]).group(1)): p for p in pt["partitions"]}
        B.embed(disk, xfs, parts[1]["start"] * 512)
        # EFI system partition: FAT16, files copied with their mtimes.
        efi = os.path.join(work, "efi.fat")
        B.pattern_file(efi, parts[128]["size"] * 512)
        run(["mkfs.vfat", "-F", "16", "-n", "EFI", "-i", "5EED0128", efi])
        stage = os.path.join(work, "efi")
        for path, data, t in EFI_FILES:
            p = stage + path
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
            os.utime(p, (t, t))
        for d in sorted({os.path.dirname(p) for p, _, _ in EFI_FILES}):
            parts_ = d.strip("/").split("/")
            for i in range(1, len(parts_) + 1):
                sub = "/" + "/".join(parts_[:i])
                subprocess.run(["mmd", "-i", efi, "::" + sub], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for path, _, _ in EFI_FILES:
            run(["mcopy", "-m", "-i", efi, stage + path, "::" + path])
        B.embed(disk, efi, parts[128]["start"] * 512)
        # The oracle for the EFI partition: sleuthkit.
        off = parts[128]["start"]
        fls = run(["fls", "-r", "-p", "-o", str(off), disk]).decode()
        rows = []
        for line in fls.splitlines():
            m = re.match(r"^r/r (\d+):\t(.*)$", line)
            if not m or m.group(2).startswith("$") or "(Volume Label Entry)" in m.group(2):
                continue
            ino, path = int(m.group(1)), "/" + m.group(2)
            data = run(["icat", "-o", str(off), disk, str(ino)])
            ist = run(["istat", "-o", str(off), disk, str(ino)]).decode()
            w = re.search(r"Written:\s+(\d+-\d+-\d+ \d+:\d+:\d+)", ist).group(1)
            sec = int(run(["date", "-u", "-d", w, "+%s"]).strip())
            truth = {p: (d, t) for p, d, t in EFI_FILES}[path]
            assert data == truth[0] and sec == truth[1], (path, sec, truth[1])
            name = path.rsplit("/", 1)[1].lower()
            dirs = [x.lower() for x in path.split("/")[1:-1]]
            extract = re.match(r".*\.log(\.\d+)?(\.gz)?$", name) or any(x in ("log", "logs", "logfiles") for x in dirs)
            rows.append("%d\t%s\tr\t%d\t%d\t%s\t%d.000000000\t\t%s" % (
                off * 512, path.replace("%", "%25"), ino, len(data), hashlib.sha256(data).hexdigest(), sec,
                "extract" if extract else "skip"))
        # The XFS root's listing (kernel's view), at partition 1's offset.
        xrows = []
        with open(os.path.join(here, "expected", "xfs-v5.tsv")) as f:
            next(f)
            for line in f:
                xrows.append("%d\t%s" % (parts[1]["start"] * 512, line.rstrip("\n").split("\t", 1)[1]))
        with open(os.path.join(here, "expected", "volumes-xfs.tsv")) as f:
            v5 = [l.split("\t") for l in f.read().splitlines() if l.startswith("xfs-v5\t")][0]
        os.makedirs(os.path.join(out, "expected"), exist_ok=True)
        with open(os.path.join(out, "expected", "al2023-gpt.tsv"), "w") as f:
            f.write("offset\tpath\ttype\tinode\tsize\tsha256\tmtime\ttarget\texpect\n")
            f.write("\n".join(xrows + sorted(rows)) + "\n")
        with open(os.path.join(out, "expected", "volumes-al2023.tsv"), "w") as f:
            f.write("image\toffset\tsize\tfstype\tlabel\tos_root\thostname\tptable\tsector_size\n")
            f.write("al2023-gpt\t%d\t%d\txfs\t%s\tyes\t%s\tgpt\t512\n" % (parts[1]["start"] * 512, xfs_size, v5[4], v5[6]))
            f.write("al2023-gpt\t%d\t%d\tfat16\tEFI\tno\t\tgpt\t512\n" % (off * 512, parts[128]["size"] * 512))
        if want_image:
            B.gzip_to(disk, os.path.join(out, "al2023-gpt.img.gz"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if "--check" in sys.argv:
        tmp = tempfile.mkdtemp()
        build(tmp, False)
        rc = 0
        for n in ("al2023-gpt.tsv", "volumes-al2023.tsv"):
            rc |= subprocess.run(["diff", "-u", os.path.join(here, "expected", n), os.path.join(tmp, "expected", n)]).returncode
        shutil.rmtree(tmp)
        sys.exit(1 if rc else 0)
    build(here, True)
    print("wrote images/al2023-gpt.img.gz, expected/al2023-gpt.tsv, expected/volumes-al2023.tsv")
