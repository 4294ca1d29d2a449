#!/usr/bin/env bash
# images/ext4-bigalloc.img.gz: ext4 with bigalloc (16 KiB clusters of 1 KiB
# blocks), made by mke2fs -d from a tree put together here. With 1 KiB
# blocks, bigalloc makes the first data block 0 while the superblock stays
# at byte 1024 (the group descriptors at block 2), a group spans 8192
# clusters of 16 blocks, and an external attribute block takes a whole
# cluster (128-byte inodes leave no room for attributes in the inode). The
# test compares the files with what was put in; debugfs checks them here.
# Needs: mke2fs/debugfs (e2fsprogs >= 1.43), attr (setfattr), gzip.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/var/log/app" "$root/etc"
echo bigalloc01 > "$root/etc/hostname"
printf 'May  1 00:00:00 bigalloc01 sshd[1]: Accepted publickey for root\n' > "$root/var/log/auth.log"
seq 1 20000 | sed 's/^/GET \/index.html 200 /' > "$root/var/log/app/access.log"   # ~500 KiB: many clusters
ln -s auth.log "$root/var/log/auth.link"
setfattr -h -n trusted.snapsift -v bigalloc-test "$root/var/log/auth.link"
img=$work/ext4-bigalloc.img
mke2fs -q -F -t ext4 -b 1024 -I 128 -O bigalloc,^resize_inode -C 16384 -L bigalloc -U 5eed0001-b16a-4000-8000-000000000001 \
  -E root_owner=0:0 -d "$root" "$img" 8M 2>/dev/null
e2fsck -fn "$img" >/dev/null
for f in etc/hostname var/log/auth.log var/log/app/access.log; do
  cmp <(debugfs -R "cat /$f" "$img" 2>/dev/null) "$root/$f"
done
debugfs -R "stat /var/log/auth.link" "$img" 2>/dev/null | grep -q 'Fast link dest: "auth.log"'
[ "$(debugfs -R "stat /var/log/auth.link" "$img" 2>/dev/null | sed -n 's/.*File ACL: \([0-9]*\).*/\1/p')" != 0 ]
gzip -9n < "$img" > ext4-bigalloc.img.gz
echo "wrote images/ext4-bigalloc.img.gz"
