#!/usr/bin/env bash
# Opt-in check of the XFS log replay against the kernel's own (issue 14):
# makes dirty XFS snapshots with the kernel on loop mounts (a workload of
# appends with fsync, renames, deletes, a 500-entry directory, fragmented
# files, xattrs, open-but-deleted files, symlinks; then `xfs_io shutdown -f`
# and the image copied before unmount), and lists what the kernel shows
# after replaying a copy. Cases: 256 KiB log records (extended headers),
# a minimal log that wraps (cycle 1 → 2/3), and both combined.
#
#   sudo bash images/check-xfs-log.sh /var/tmp/xlc
#   XFS_LOG_CASES=/var/tmp/xlc cargo test --test it -- --ignored kernel_replays_agree
#
# Needs root, loop devices, the kernel's XFS driver, xfsprogs, python3.
# v4 (crc=0) is not covered: kernels without CONFIG_XFS_SUPPORT_V4 cannot
# make or replay one.
set -euo pipefail
out=${1:-/var/tmp/xlc}
mkdir -p "$out"
mnt=$(mktemp -d)
export TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=1
listing() { # dir → tsv
  python3 - "$1" <<'PY'
import hashlib, os, sys
root = sys.argv[1]
for d, dirs, files in os.walk(root):
    for n in sorted(dirs + files):
        p = os.path.join(d, n); rel = "/" + os.path.relpath(p, root)
        if os.path.islink(p):
            print(f"{rel}\tl\t0\t\t{os.readlink(p)}")
        elif os.path.isdir(p):
            print(f"{rel}\td\t0\t\t")
        elif os.path.isfile(p):
            h = hashlib.sha256(open(p, 'rb').read()).hexdigest()
            print(f"{rel}\tr\t{os.path.getsize(p)}\t{h}\t")
PY
}
workload() { # mountpoint
  local m=$1
  mkdir -p $m/var/log $m/d1 $m/big $m/tmp
  for i in $(seq 1 40); do seq 1 $((i*50)) > $m/var/log/f$i.log; done
  sync; xfs_io -x -c 'freeze' -c 'thaw' $m 2>/dev/null || true
  # fragmented files: interleaved fsync'ed appends → many extents (btree fork)
  for i in $(seq 1 300); do
    head -c 4096 /dev/urandom >> $m/big/a; head -c 4096 /dev/urandom >> $m/big/b
    [ $((i % 25)) -eq 0 ] && xfs_io -c fsync $m/big/a && xfs_io -c fsync $m/big/b
  done
  xfs_io -c fsync $m/big/a
  for i in $(seq 1 200); do echo "line $i $(date +%N)" >> $m/var/log/f1.log; xfs_io -c fsync $m/var/log/f1.log; done
  for i in $(seq 1 500); do echo x > $m/d1/name-with-a-long-suffix-to-grow-the-directory-$i; done
  mv $m/var/log/f2.log $m/var/log/f2.log.1; echo new > $m/var/log/f2.log
  rm -f $m/var/log/f3.log $m/d1/name-with-a-long-suffix-to-grow-the-directory-1*
  ln -s /etc/shadow $m/var/log/link; ln -s "$(printf 'L%.0s' $(seq 1 300))" $m/var/log/longlink
  : > $m/var/log/f4.log
    python3 -c "import os,sys; os.setxattr(sys.argv[1], b'user.k', b'v' * 100)" $m/var/log/f5.log
  for i in $(seq 1 150); do echo t > $m/tmp/t$i; done; rm -rf $m/tmp
  truncate -s 1M $m/var/log/f6.log
  xfs_io -c fsync $m/d1 2>/dev/null || true
  for i in $(seq 1 ${EXTRA:-0}); do echo "more $i" >> $m/var/log/f7.log; xfs_io -c fsync $m/var/log/f7.log; [ $((i % 100)) -eq 0 ] && touch $m/d1/extra-$i; done
  if [ -n "${MIXED:-}" ]; then
    for i in $(seq 1 1500); do
      head -c 4096 /dev/urandom >> $m/big/c; head -c 4096 /dev/urandom >> $m/big/e
      [ $((i % 10)) -eq 0 ] && xfs_io -c fsync $m/big/c && xfs_io -c fsync $m/big/e
    done
    rm -f $m/big/e
    python3 -c "import os,sys; [os.setxattr(sys.argv[1], ('user.attr%d' % i).encode(), b'a' * 200) for i in range(64)]" $m/var/log/f8.log
    for i in $(seq 1 70); do exec {fd}>$m/var/log/held$i; echo data >&$fd; rm $m/var/log/held$i; HELD+=($fd); done
    xfs_io -c fsync $m/big/c
  fi
  sync -f $m/var/log/f1.log
}
make_case() { # name mkfs-args mount-opts
  local name=$1 mk=$2 mo=$3 img=$out/$1.img
  rm -f $img; truncate -s 512M $img
  mkfs.xfs -q -f -K $mk $img
  mount -o loop${mo:+,$mo} $img $mnt
  workload $mnt
  xfs_io -x -c 'shutdown -f' $mnt
  for fd in "${HELD[@]}"; do exec {fd}>&-; done; HELD=()
  cp --sparse=always $img $out/$name.dirty.img
  umount $mnt
  mv $out/$name.dirty.img $img
  cp --sparse=always $img $out/$name.kernel.img
  mount -o loop $out/$name.kernel.img $mnt
  listing $mnt > $out/$name.kernel.tsv
  umount $mnt; rm -f $out/$name.kernel.img
  xfs_logprint -t $img 2>/dev/null | grep -c TRANS: | sed "s/^/$name transactions (logprint): /" || true
}
HELD=()
MIXED=1 make_case v5-mixed "" ""
MIXED=1 make_case v5-dir8k "-n size=8k -b size=1024" ""
make_case v5-256k "" logbsize=256k
MIXED=1 EXTRA=3000 make_case v5-mixed-small "-l size=1368b" logbsize=256k
EXTRA=6000 make_case v5-smalllog "-l size=1368b" ""
rmdir $mnt
