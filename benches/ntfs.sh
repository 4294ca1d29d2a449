#!/usr/bin/env bash
# NTFS sweep planning: the one-pass $MFT listing vs reading each directory's
# index, on one volume in the same run, as raw and as a compressed QCOW2
# (where scattered reads cost more).
#
#   sudo bash benches/ntfs.sh [FILES]     (default 50000)
#
# Builds (seeded) a 1 GiB NTFS volume with mkntfs and fills it through an
# ntfs-3g mount: FILES small files in 500 directories two levels deep, one
# in ten named *.log. Then runs benches/ntfs_listing.rs (best of 5 each).
# Needs root (FUSE), ntfs-3g, and qemu-img for the QCOW2 row.
set -euo pipefail
files=${1:-50000}
cd "$(dirname "$0")/.."
cargo build --release --bench ntfs_listing -q
bench=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/ntfs_listing-* | grep -v '\.d$' | head -1)
work=$(mktemp -d /var/tmp/snapsift-ntfs-bench.XXXXXX)
trap 'mountpoint -q "$work/mnt" && umount "$work/mnt"; rm -rf "$work"' EXIT
truncate -s 1G "$work/vol.img"
# (mkntfs warns that a file has no disk geometry; that only matters for booting.)
mkntfs -F -Q -q -c 4096 -L Bench "$work/vol.img" 2>/dev/null
mkdir "$work/mnt"
ntfs-3g "$work/vol.img" "$work/mnt"
python3 - "$work/mnt" "$files" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
for i in range(n):
    d = os.path.join(root, "d%03d" % (i % 100), "s%d" % (i // 100 % 5))
    os.makedirs(d, exist_ok=True)
    name = "f%06d.%s" % (i, "log" if i % 10 == 0 else "dat")
    with open(os.path.join(d, name), "wb") as f:
        f.write(rnd.randbytes(rnd.randrange(100, 3000)))
PY
umount "$work/mnt"
images="$work/vol.img"
if command -v qemu-img >/dev/null; then
  qemu-img convert -c -O qcow2 "$work/vol.img" "$work/vol.qcow2"
  images="$images $work/vol.qcow2"
fi
echo "volume: 1 GiB NTFS, $files files in 500 directories"
printf '%-10s %8s %12s %14s %8s\n' image items "one-pass s" "by-directory s" ratio
for img in $images; do
  read -r _ items fast slow < <("$bench" "$img")
  printf '%-10s %8d %12.3f %14.3f %8.2f\n' "${img##*.}" "$items" "$fast" "$slow" "$(python3 -c "print($slow / $fast)")"
done
echo "ratio = by-directory time / one-pass time (higher is better)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
