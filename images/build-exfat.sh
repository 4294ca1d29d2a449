#!/usr/bin/env bash
# images/exfat.img.gz: a bare 2 MiB exFAT volume (mkfs.exfat, 512-byte
# clusters so that directories span clusters and entry sets cross cluster
# boundaries), label `SNAPSIFT-ÉX`, serial 5EED-0E0F, populated through
# fuse-exfat (mount.exfat-fuse; the kernel here has no exfat driver) running
# at UTC+2 (TZ=XYZ-2), so that every timestamp is local time with a valid
# UTC offset field (+2 h). Files: small ones, a file of many clusters, long
# and non-ASCII names, a nested directory, a directory of 24 files over
# several clusters (a FAT chain: files were written between its clusters),
# and a fragmented file (appended to alternately with another file, which is
# then deleted, and appended to again): FAT chains beside contiguous
# (NoFatChain) files. Checked with fsck.exfat -n; the test compares every
# file with what was put in (tests/it/exfat.rs makes the same content).
# Not byte-deterministic (creation times are the build's own).
# fuse-exfat always asks for allow_other and, as root, a block device: run
# as root it mounts a loop device; as a user it needs user_allow_other in
# /etc/fuse.conf. Needs: exfatprogs (mkfs.exfat, tune.exfat, fsck.exfat),
# exfat-fuse, FUSE, util-linux (losetup, as root), gzip.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
mnt=$work/mnt
loop=
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && fusermount -u "$mnt"
  [ -n "$loop" ] && losetup -d "$loop"
  rm -rf "$work"
}
trap cleanup EXIT
img=$work/exfat.img
truncate -s 2M "$img"
mkfs.exfat -c 512 -b 4K -L 'SNAPSIFT-ÉX' "$img" >/dev/null
tune.exfat -I 0x5eed0e0f "$img" >/dev/null
mkdir "$mnt"
dev=$img
if [ "$(id -u)" = 0 ]; then
  loop=$(losetup -f --show "$img")
  dev=$loop
fi
TZ=XYZ-2 mount.exfat-fuse "$dev" "$mnt" 2>/dev/null

echo 'hello from exFAT' > "$mnt/hello.txt"
: > "$mnt/empty.txt"
mkdir -p "$mnt/logs/app"
printf 'May  1 00:00:00 app[1]: started\nMay  1 00:00:01 app[1]: listening on :8080\n' > "$mnt/logs/app/app.log"
seq 1 3000 | sed 's/^/line /' > "$mnt/logs/app/big.log"   # 28,893 bytes: 57 contiguous clusters
echo 'ünïcödé in the name and in the text' > "$mnt/logs/Ünïcode log.txt"
echo 'four name entries' > "$mnt/logs/a file name long enough to need four name entries.log"
# Fragmented: two files grow a cluster at a time, alternately; one goes,
# the other grows on into the gaps it left.
for i in 1 2 3 4 5 6; do
  printf '%-511s\n' "frag.log part $i" >> "$mnt/logs/frag.log"
  printf '%-511s\n' "tmp.bin part $i" >> "$mnt/logs/tmp.bin"
done
rm "$mnt/logs/tmp.bin"
for i in 7 8 9 10 11 12 13 14; do
  printf '%-511s\n' "frag.log part $i" >> "$mnt/logs/frag.log"
done
# 24 files (72 directory entries, 5 clusters), each file written between
# the directory's clusters.
mkdir "$mnt/many"
for i in $(seq -w 1 24); do
  echo "file $i of many" > "$mnt/many/f$i.log"
done
touch -d '2024-05-01 12:34:57 UTC' "$mnt/hello.txt" "$mnt/empty.txt"   # odd seconds: the 10 ms field
touch -d '2024-05-01 00:00:01 UTC' "$mnt/logs/app/app.log"
touch -d '2024-05-02 08:00:00 UTC' "$mnt/logs/app/big.log" "$mnt/logs/frag.log"
touch -d '2023-12-31 23:59:58 UTC' "$mnt/logs/Ünïcode log.txt" "$mnt/logs/a file name long enough to need four name entries.log"
for i in $(seq -w 1 24); do touch -d "2024-06-$i 10:00:00 UTC" "$mnt/many/f$i.log"; done
touch -d '2024-06-30 00:00:00 UTC' "$mnt/logs/app" "$mnt/logs" "$mnt/many"
fusermount -u "$mnt"
sleep 1   # fuse-exfat writes its FAT and bitmap back as it exits
if [ -n "$loop" ]; then losetup -d "$loop"; loop=; fi
fsck.exfat -n "$img" | tail -1   # exits non-zero on any inconsistency
gzip -9n < "$img" > exfat.img.gz
echo "wrote images/exfat.img.gz"
