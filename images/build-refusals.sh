#!/usr/bin/env bash
# images/refusals.img.gz: a GPT disk whose volumes snapsift recognises but
# does not read, each made by its own tool: p1 an ext4 root (mke2fs -d;
# hostname refusals01), p2 APFS (mkapfs, whose smallest container is
# 128 MiB), p3 ISO 9660 (genisoimage), p4 squashfs (mksquashfs). And
# images/qcow1.qcow.gz: a QCOW version 1 image (qemu-img create -f qcow).
# The test checks each skipped volume is named, with what it holds, in the
# summary (even with --quiet), run.json and the manifest.
# Needs: e2fsprogs, gdisk (sgdisk), apfsprogs (mkapfs), genisoimage,
# squashfs-tools, qemu-utils, gzip.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/etc" "$work/root/var/log" "$work/media/logs"
echo refusals01 > "$work/root/etc/hostname"
echo 'May  1 00:00:00 refusals01 kernel: booted' > "$work/root/var/log/syslog"
echo 'on the CD' > "$work/media/logs/cd.log"
mke2fs -q -F -t ext4 -E root_owner=0:0 -d "$work/root" "$work/p1" 4M
truncate -s 128M "$work/p2" && mkapfs "$work/p2" >/dev/null
genisoimage -quiet -V MEDIA -o "$work/p3" "$work/media"
mksquashfs "$work/media" "$work/p4" -quiet -noappend >/dev/null
disk=$work/refusals.img
truncate -s 140M "$disk"
sgdisk -n 1:2048:+4M -t 1:8300 -c 1:root \
          -n 2:0:+128M -t 2:af0a -c 2:apfs \
          -n 3:0:+1M -t 3:8300 -c 3:iso \
          -n 4:0:+1M -t 4:8300 -c 4:squash "$disk" >/dev/null
for i in 1 2 3 4; do
  start=$(sgdisk -i "$i" "$disk" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
  dd if="$work/p$i" of="$disk" bs=512 seek="$start" conv=notrunc,sparse status=none
done
gzip -9n < "$disk" > refusals.img.gz
qemu-img create -q -f qcow "$work/q1.qcow" 1M
gzip -9n < "$work/q1.qcow" > qcow1.qcow.gz
echo "wrote images/refusals.img.gz images/qcow1.qcow.gz"
