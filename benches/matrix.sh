#!/usr/bin/env bash
# Extraction matrix (issue #8): snapsift extract on a Linux ext4 disk, the
# same tree on XFS and on Btrfs (written by the kernel with compress=zstd, as
# Fedora Cloud does), and a Windows NTFS disk, each as raw, VMDK
# (monolithicSparse, streamOptimized), VHD, VHDX and QCOW2, against
# references timed in the same run, best of RUNS:
#   cat IMAGE > /dev/null                 reading the image file
#   qemu-img convert -O raw               container decode (non-raw formats)
#   cp -a of the files snapsift extracted write floor (same disk)
#   openssl dgst -sha256 of those files   what hashing them costs alone: with
#                                         cp -a's CPU spread over every core,
#                                         the floor of an extraction that
#                                         hashes what it writes
#   fls -r -p + icat of the same files    sleuthkit, where it opens the image
#   mount -o ro + cp -a var/log home      the kernel's own reader (Btrfs only:
#                                         sleuthkit cannot read Btrfs)
#   evtx_dump -t 1 / -t 2 over the .evtx  the established EVTX -> JSONL converter
#     files snapsift extracted            (Windows, raw, when the disk's logs are
#                                         real EVTX: ../shared/samples/evtx chunks;
#                                         snapsift is then timed with its default
#                                         conversion too)
#   acquire -p none --var --home (Linux), dissect's acquire, where installed
#     --eventlogs --powershell (Windows)  (DISSECT_ACQUIRE, default
#                                         /opt/dissect/bin/acquire: a venv
#                                         with acquire dissect.target dissect.xfs
#                                         dissect.extfs dissect.fat)
# plus the ext4 disk grown (sparse) to 100 GiB, raw and QCOW2: peak RSS must
# not grow with the image. Goal per row: wall <= max(0.5 x fastest reference
# extractor, 1.25 x cp -a) and peak RSS <= 64 MiB.
#
#   sudo bash benches/matrix.sh          full: ~4 GiB disks, 250k/150k files (here 6 + 43 min)
#   sudo SMALL=1 bash benches/matrix.sh  10x fewer files and bytes (here 2 + 4 min)
#
# Env: MATRIX_DIR work dir (default: a new /tmp/snapsift-matrix.XXXXXX; must
# not exist or be empty), KEEP=1 keep it and its raw images, REUSE=1 time
# the raw images a KEEP=1 run left in MATRIX_DIR again (and keep it), RUNS (default 3), FORMATS,
# IMAGES (default: linux-ext4 linux-ext4-100G linux-xfs linux-btrfs windows-ntfs), MD=1
# markdown tables, SLOW (default 10: a reference whose first run takes over
# SLOW x snapsift's is timed once). Needs root (loop mounts, ntfs-3g), e2fsprogs, gdisk,
# xfsprogs, btrfs-progs, ntfs-3g, qemu-utils, sleuthkit, GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "matrix.sh: needs root (loop mounts, ntfs-3g)" >&2; exit 2; }
for t in mke2fs sgdisk mkfs.xfs mkntfs ntfs-3g qemu-img fls icat openssl /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "matrix.sh: $t missing" >&2; exit 2; }
done
runs=${RUNS:-3}
formats=${FORMATS:-raw vmdk-sparse vmdk-stream vhd vhdx qcow2}
images=" ${IMAGES:-linux-ext4 linux-ext4-100G linux-xfs linux-btrfs windows-ntfs} "
acquire=${DISSECT_ACQUIRE:-/opt/dissect/bin/acquire}
[ -x "$acquire" ] || { echo "matrix.sh: no dissect acquire at $acquire: that reference is left out"; acquire=; }
if [ "${SMALL:-0}" = 1 ]; then
  scale=0.1 lin_mib=512 win_mib=512 inodes=40000 variant=small
else
  scale=1 lin_mib=4096 win_mib=3072 inodes=400000 variant=full
fi
if [ -n "${MATRIX_DIR:-}" ]; then
  work=$MATRIX_DIR
  mkdir -p "$work"
  [ "${REUSE:-0}" = 1 ] || [ -z "$(ls -A "$work")" ] || { echo "matrix.sh: $work is not empty" >&2; exit 2; }
else
  work=$(mktemp -d /tmp/snapsift-matrix.XXXXXX)
fi
loop= ntfs_pid=
cleanup() {
  set +e
  mountpoint -q "$work/mnt" && umount "$work/mnt"
  [ -n "$ntfs_pid" ] && wait "$ntfs_pid"
  [ -n "$loop" ] && losetup -d "$loop"
  if [ "${KEEP:-0}" = 1 ] || [ "${REUSE:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
cargo build --release -q
if [[ $images == *" windows-ntfs "* ]] && [ -e ../shared/samples/evtx/security.evtx ] && ! command -v evtx_dump >/dev/null; then
  echo "matrix.sh: installing evtx_dump (cargo install evtx --version 0.15.1, the crate snapsift converts with)"
  cargo install -q evtx --version 0.15.1
fi
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/snapsift")
helper=$(realpath benches/matrix.py)
res=$work/results.tsv
: > "$res"
export E2FSPROGS_FAKE_TIME=1717243200 TZ=UTC LC_ALL=C
machine="$(nproc) cores $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM"
echo "matrix ($variant, best of $runs): $machine; load at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# GPT disk of SIZE MiB with one partition from 1 MiB to 1 MiB before the end
# (sgdisk -q would not write the table).
gpt() { # file size_mib type name
  truncate -s "$2M" "$1"
  sgdisk -o -U 5eed0008-0000-4000-8000-000000000001 -n "1:2048:+$(($2 - 2))M" -t "1:$3" -c "1:$4" \
    -u 1:5eed0008-0000-4000-8000-000000000011 "$1" >/dev/null
}
attach() { loop=$(losetup -f --show -o 1048576 --sizelimit $((($2 - 2) << 20)) "$1"); }
detach() { losetup -d "$loop"; loop=; }

raws=$images
if [ "${REUSE:-0}" = 1 ] && (cd "$work" && ls $(printf '%s.raw ' $raws) >/dev/null 2>&1); then
  echo "reusing the images in $work"
else
echo "$(date +%T) building images in $work"
mkdir -p "$work/mnt"
python3 "$helper" linux "$work/stage" "$scale"
# mke2fs zeroes the start of the file: the table comes after it.
truncate -s "${lin_mib}M" "$work/linux-ext4.raw"
mke2fs -q -F -t ext4 -b 4096 -L root -U 5eed0008-0000-4000-8000-0000000000e4 \
  -E offset=1048576,hash_seed=5eed0008-0000-4000-8000-0000000000a5 -N "$inodes" -d "$work/stage" \
  "$work/linux-ext4.raw" $((($lin_mib - 2) * 256))
gpt "$work/linux-ext4.raw" "$lin_mib" 8300 root
gpt "$work/linux-xfs.raw" "$lin_mib" 8300 root
attach "$work/linux-xfs.raw" "$lin_mib"
mkfs.xfs -q -f -L root -m uuid=5eed0008-0000-4000-8000-0000000000f5 "$loop"
mount "$loop" "$work/mnt"
cp -a "$work/stage/." "$work/mnt/"
umount "$work/mnt"
detach
if [[ $images == *" linux-btrfs "* ]]; then
gpt "$work/linux-btrfs.raw" "$lin_mib" 8300 root
attach "$work/linux-btrfs.raw" "$lin_mib"
mkfs.btrfs -q -f -L root -U 5eed0008-0000-4000-8000-0000000000b7 "$loop"
mount -o compress=zstd:1 "$loop" "$work/mnt"
cp -a "$work/stage/." "$work/mnt/"
umount "$work/mnt"
detach
fi
rm -rf "$work/stage"
if [[ $images == *" windows-ntfs "* ]]; then
gpt "$work/windows-ntfs.raw" "$win_mib" 0700 "Basic data partition"
attach "$work/windows-ntfs.raw" "$win_mib"
mkntfs -F -Q -q -L Windows -c 4096 -p 2048 -H 255 -S 63 "$loop" 2>/dev/null
ntfs-3g -o no_detach,big_writes "$loop" "$work/mnt" >>"$work/stderr.log" 2>&1 & ntfs_pid=$!
for _ in $(seq 50); do mountpoint -q "$work/mnt" && break; sleep 0.2; done
python3 "$helper" windows "$work/mnt" "$scale"
umount "$work/mnt"
wait "$ntfs_pid"; ntfs_pid=
detach
fi
# The ext4 disk grown to 100 GiB: holes, the backup GPT moved to the end.
cp --sparse=always "$work/linux-ext4.raw" "$work/linux-ext4-100G.raw"
truncate -s 100G "$work/linux-ext4-100G.raw"
sgdisk -e "$work/linux-ext4-100G.raw" >/dev/null
fi

# One measurement: IMAGE FORMAT TOOL CMD... → a results row (wall, user, sys, max RSS KiB, exit).
timeit() {
  local rc=0
  /usr/bin/time -v -o "$work/time.txt" "${@:4}" >/dev/null 2>>"$work/stderr.log" || rc=$?
  awk -F': ' -v pre="$(printf '%s\t%s\t%s' "$1" "$2" "$3")" -v rc=$rc '
    /Elapsed/ { n = split($2, a, ":"); w = n == 3 ? a[1] * 3600 + a[2] * 60 + a[3] : a[1] * 60 + a[2] }
    /User time/ { u = $2 } /System time/ { s = $2 } /Maximum resident/ { m = $2 }
    END { printf "%s\t%.2f\t%s\t%s\t%s\t%s\n", pre, w, u, s, m, rc }' "$work/time.txt" >> "$res"
}
note() { printf 'note\t%s\t%s\n' "$1" "$2" >> "$res"; }
convert() { # raw format → image path
  local out
  case $2 in
    raw) echo "$1"; return ;;
    vmdk-sparse) out=${1%.raw}.vmdk; qemu-img convert -O vmdk -o subformat=monolithicSparse "$1" "$out" ;;
    vmdk-stream) out=${1%.raw}.stream.vmdk; qemu-img convert -O vmdk -o subformat=streamOptimized "$1" "$out" ;;
    vhd) out=${1%.raw}.vhd; qemu-img convert -O vpc -o subformat=dynamic "$1" "$out" ;;
    vhdx) out=${1%.raw}.vhdx; qemu-img convert -O vhdx "$1" "$out" ;;
    qcow2) out=${1%.raw}.qcow2; qemu-img convert -O qcow2 "$1" "$out" ;;
  esac
  echo "$out"
}
tsk_type() { case $1 in raw) echo raw ;; vmdk-*) echo vmdk ;; vhd | vhdx) echo vhd ;; esac; }

last_wall() { tail -1 "$res" | cut -f4; }
# Repeat a reference unless its first run took over SLOW x snapsift's (it
# cannot decide the goal then; the report marks it as timed once).
again() { [ "$r" = 1 ] || awk -v a="$1" -v b="$s1" -v k="${SLOW:-10}" 'BEGIN { exit !(a <= k * b) }'; }

measure() { # name raw formats...
  local name=$1 raw=$2 fmt img t tsk_fs=1 r s1= q1= t1= d1= mods
  shift 2
  [[ $images == *" $name "* ]] || return 0
  case $name in windows-*) mods="--eventlogs --powershell" ;; *) mods="--var --home" ;; esac
  if ! fls -o 2048 "$raw" >/dev/null 2>&1; then
    tsk_fs=
    note "$name" "sleuthkit $(fls -V | awk '{print $NF}') cannot read this filesystem (XFS needs 4.12): no sleuthkit reference"
  fi
  for fmt in "$@"; do
    img=$(convert "$raw" "$fmt")
    echo "  $(date +%T) $name $fmt ($(du -h --apparent-size "$img" | cut -f1) apparent, $(du -h "$img" | cut -f1) allocated)"
    t=$(tsk_type "$fmt")
    if [ -z "$tsk_fs" ]; then
      t=
    elif [ -z "$t" ]; then
      note "$name" "$fmt: sleuthkit $(fls -V | awk '{print $NF}') cannot open it; qemu-img+TSK only"
    elif ! fls -i "$t" -o 2048 "$img" >/dev/null 2>&1; then
      note "$name" "$fmt: sleuthkit cannot open it as -i $t; qemu-img+TSK only"
      t=
    fi
    for r in $(seq "$runs"); do
      rm -rf "$work/case" "$work/cp"
      timeit "$name" "$fmt" snapsift "$bin" extract "$img" -o "$work/case" --quiet --no-evtx-json
      [ -d "$work/case/Host-Based Logs" ] || { echo "matrix.sh: snapsift extracted nothing from $img" >&2; exit 1; }
      [ "$r" = 1 ] && s1=$(last_wall)
      if [[ $name == windows-* ]] && [ -e "$work/windows-evtx-real" ]; then
        # With the default EVTX -> JSONL conversion, against extracting and
        # then converting with evtx_dump (the same conversion whatever the
        # container: timed on raw only).
        rm -rf "$work/case-jsonl"
        timeit "$name" "$fmt" snapsift-jsonl "$bin" extract "$img" -o "$work/case-jsonl" --quiet
        rm -rf "$work/case-jsonl"
        if [ "$fmt" = raw ]; then
          for th in 1 2; do
            rm -rf "$work/dump" && mkdir "$work/dump"
            timeit "$name" "$fmt" "evtx-dump-t$th" bash -c 'rc=0 i=0
              while IFS= read -r -d "" f; do i=$((i + 1))
                evtx_dump -t "$3" -o jsonl --recover-records "$f" > "$2/dump/$i.jsonl" || rc=1
              done < <(find "$1" -name "*.evtx" -print0); exit $rc' - "$work/case/Host-Based Logs" "$work" "$th"
          done
          rm -rf "$work/dump"
        fi
      fi
      timeit "$name" "$fmt" cp-a cp -a "$work/case/Host-Based Logs" "$work/cp"
      # What hashing those bytes costs by itself (OpenSSL's SHA-256, SHA-NI
      # where the CPU has it, as fast as snapsift's): with cp -a's CPU, the
      # floor of any extraction that hashes what it writes (issue #16).
      timeit "$name" "$fmt" sha256 bash -c 'find "$1" -type f -print0 | xargs -0 -r openssl dgst -sha256 >/dev/null' - "$work/cp"
      [ "$name" = linux-ext4-100G ] || timeit "$name" "$fmt" cat cat "$img"
      if [ "$fmt" != raw ] && again "$q1"; then
        timeit "$name" "$fmt" qemu-img qemu-img convert -O raw "$img" "$work/out.raw"
        [ "$r" = 1 ] && q1=$(last_wall)
        rm -f "$work/out.raw"
      fi
      if [ -n "$acquire" ] && again "$d1"; then
        rm -rf "$work/acq" && mkdir "$work/acq"
        timeit "$name" "$fmt" dissect "$acquire" "$img" -p none $mods -ot dir -o "$work/acq"
        if [ "$r" = 1 ]; then
          d1=$(last_wall)
          note "$name" "$fmt: dissect acquire $mods wrote $(find "$work/acq" -type f | wc -l) files, $(du -sm "$work/acq" | cut -f1) MiB"
          printf 'wrote\t%s\t%s\tdissect\t%s\n' "$name" "$fmt" "$(du -sm "$work/acq" | cut -f1)" >> "$res"
        fi
      fi
      if [ "$name" = linux-btrfs ] && [ "$fmt" = raw ]; then
        rm -rf "$work/kcp" && mkdir "$work/kcp"
        timeit "$name" "$fmt" kernel-cp bash -c 'mount -o ro,loop,offset=1048576 "$1" "$2/mnt" &&
          cp -a "$2/mnt/var/log" "$2/mnt/home" "$2/kcp/"; rc=$?; umount "$2/mnt"; exit $rc' - "$img" "$work"
      fi
      if [ -n "$t" ] && again "$t1"; then
        [ "$r" = 1 ] && python3 "$helper" icat-list "$work"/case/snapsift/run-*/manifest.csv > "$work/icat.list"
        rm -rf "$work/tsk" && mkdir "$work/tsk"
        timeit "$name" "$fmt" tsk bash -c 'fls -r -p -i "$1" -o 2048 "$2" > "$3/fls.txt" &&
          while read -r inode n; do icat -i "$1" -o 2048 "$2" "$inode" > "$3/tsk/$n"; done < "$3/icat.list"' \
          - "$t" "$img" "$work"
        if [ "$r" = 1 ]; then
          t1=$(last_wall)
          read -r good bad < <(python3 "$helper" verify "$work"/case/snapsift/run-*/manifest.csv "$work/tsk")
          [ "$bad" = 0 ] || note "$name" "$fmt: $bad of $((good + bad)) icat outputs differ from snapsift's SHA-256"
        fi
      fi
    done
    if [ "$fmt" = raw ]; then
      note "$name" "snapsift extracted $(grep -c ',ok,' "$work"/case/snapsift/run-*/manifest.csv) files, $(du -sm "$work/case/Host-Based Logs" | cut -f1) MiB, into $(ls "$work/case/Host-Based Logs")"
      printf 'wrote\t%s\traw\tsnapsift\t%s\n' "$name" "$(du -sm "$work/case/Host-Based Logs" | cut -f1)" >> "$res"
    fi
    [ "$fmt" = raw ] || rm -f "$img"
  done
  rm -rf "$work/case" "$work/cp" "$work/tsk" "$work/acq" "$work/kcp"
}

echo "$(date +%T) measuring"
measure linux-ext4 "$work/linux-ext4.raw" $formats
measure linux-ext4-100G "$work/linux-ext4-100G.raw" raw qcow2
note linux-ext4-100G "the ext4 disk above truncated to 100 GiB (sgdisk -e); cat not timed (100 GiB of holes)"
drop() { [ "${KEEP:-0}" = 1 ] || [ "${REUSE:-0}" = 1 ] || rm -f "$@"; }
drop "$work/linux-ext4.raw" "$work/linux-ext4-100G.raw"
measure linux-xfs "$work/linux-xfs.raw" $formats
drop "$work/linux-xfs.raw"
measure linux-btrfs "$work/linux-btrfs.raw" $formats
drop "$work/linux-btrfs.raw"
measure windows-ntfs "$work/windows-ntfs.raw" $formats
drop "$work/windows-ntfs.raw"

python3 "$helper" report "$res" ${MD:+--md}
echo
echo "machine: $machine; load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "times in seconds, best of $runs; RSS: peak over runs; ÷extractor = snapsift / fastest of TSK, qemu-img+TSK(raw) and dissect"
