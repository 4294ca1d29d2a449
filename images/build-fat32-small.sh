#!/usr/bin/env bash
# images/fat32-small.img.gz: a FAT32 volume with fewer than 65,525 clusters,
# as `mkfs.fat -F 32` makes on a small disk (it warns, and makes it). The
# kernel and fsck.fat take it for FAT32 (the BPB's 16-bit FAT size is 0 and
# its FAT32 fields are set), not by its cluster count, which alone says FAT12.
# Files put in through fusefat (libfat's FUSE driver; mtools goes by the
# cluster count too and refuses the volume), checked with fsck.fat; the test
# compares them with what was put in. Needs dosfstools (mkfs.fat, fsck.fat),
# fusefat and FUSE, gzip.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
img=$work/fat32-small.img
truncate -s 4M "$img"
mkfs.fat -F 32 -s 1 -S 512 -n SMALLFAT -i 5EED0032 "$img" >/dev/null 2>&1
printf 'May  1 00:00:00 app[1]: started\nMay  1 00:00:01 app[1]: listening on :8080\n' > "$work/app.log"
seq 1 3000 | sed 's/^/line /' > "$work/big.log"   # several clusters, a FAT chain
mkdir "$work/mnt"
fusefat -o rw+ "$img" "$work/mnt" >/dev/null 2>&1
mkdir "$work/mnt/logs"
cp "$work/app.log" "$work/big.log" "$work/mnt/logs/"
fusermount -u "$work/mnt"
sleep 1   # fusefat writes its FAT back as it exits
fsck.fat -n "$img" 2>/dev/null | tail -1   # exits non-zero on any inconsistency
gzip -9n < "$img" > fat32-small.img.gz
echo "wrote images/fat32-small.img.gz"
