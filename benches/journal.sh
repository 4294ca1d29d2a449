#!/usr/bin/env bash
# Journal replay benchmark (issue 14): snapshots of running machines.
#
#   sudo bash benches/journal.sh [LOG_MIB] [RUNS]     (defaults: 256, 3)
#   FS=ext4 sudo -E bash benches/journal.sh            (one filesystem only)
#   CHURN=30000                                         (XFS: files created, renamed, removed)
#
# Builds, with the kernel on loop mounts, a 4 GiB ext4 disk with a 128 MiB
# journal and a 4 GiB XFS disk with a 64 MiB log, each holding LOG_MIB of
# logs under /var/log written and frozen home (a clean baseline). Then it
# fills the journal/log with committed transactions the way a busy machine
# does in its last seconds: ext4 mounted data=journal (so the appended log
# lines themselves go through the journal) and XFS with many small
# fsync'ed appends and new files, then (XFS logs metadata only) a churn of
# fsync'ed file creations, renames and removals that runs round the log;
# shuts the filesystem down with its log flushed (xfs_io shutdown -f) and
# copies the image before unmounting. The clean twin is a copy the kernel
# mounted (replaying it) and unmounted.
#
# The appends go to 8 of the 200 logs, which the extraction of the dirty
# image therefore also writes as they lie on disk (`_before-journal/`).
#
# Measured, best of RUNS, interleaved, release build:
# - replay setup: `snapsift inspect` of the dirty image minus the same with
#   --no-replay (opening the filesystem and replaying its log), and the peak
#   RSS of the replaying run (GNU time);
# - extraction: `snapsift extract` of the dirty image against the same
#   extraction of the clean twin (ratio; goal <= 1.1; each after a sync, in
#   turns), and `mount -o ro` of a fresh dirty copy (the kernel's own
#   replay) as a reference.
# Needs root, e2fsprogs, xfsprogs, GNU time.
set -euo pipefail
logmib=${1:-256}
runs=${2:-3}
cd "$(dirname "$0")/.."
cargo build --release -q
bin=$PWD/target/release/snapsift
work=$(mktemp -d /var/tmp/snapsift-journal.XXXXXX)
mnt=$work/mnt
mkdir -p "$mnt"
cleanup() { umount "$mnt" 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"; }
trap cleanup EXIT

populate() { # write LOG_MIB of logs in 200 files, then make them home
  python3 - "$mnt" "$logmib" <<'PY'
import os, random, sys
root, mib = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
def w(p, data):
    p = os.path.join(root, p.lstrip("/"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
w("/etc/hostname", b"bench01\n")
w("/etc/os-release", b'PRETTY_NAME="Bench Linux"\n')
words = [b"sshd", b"Failed", b"password", b"for", b"root", b"from", b"203.0.113.7", b"GET", b"200", b"kernel:"]
per = (mib << 20) // 200
for i in range(200):
    line = b" ".join(rnd.choice(words) for _ in range(10)) + b"\n"
    w("/var/log/svc%d/app%d.log" % (i % 20, i), line * (per // len(line)))
w("/root/.bash_history", b"ls\n" * 100)
PY
  sync; fsfreeze -f "$mnt"; fsfreeze -u "$mnt"
}

busy() { # the last seconds: appends and new files, each fsync'ed
  python3 - "$mnt" "$1" <<'PY'
import os, sys
root, mib = sys.argv[1], int(sys.argv[2])
line = b"May  1 00:00:00 bench01 sshd[1]: Accepted publickey for root from 198.51.100.9\n" * 64
done, i = 0, 0
while done < mib << 20:
    # A machine's last seconds touch a few hot logs (syslog, auth.log, an
    # app's log), not every file: 8 of the 200 take all the appends.
    p = os.path.join(root, "var/log/svc%d/app%d.log" % (i % 8, i % 8))
    with open(p, "ab") as f:
        f.write(line); f.flush(); os.fsync(f.fileno())
    if i % 16 == 0:
        q = os.path.join(root, "var/log/new/n%d.log" % i)
        os.makedirs(os.path.dirname(q), exist_ok=True)
        with open(q, "wb") as f:
            f.write(line); os.fsync(f.fileno())
    done += len(line); i += 1
PY
}

churn() { # XFS logs metadata only: fill the log with new, renamed and removed files, each fsync'ed
  python3 - "$mnt" "$1" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "var/spool/churn%d" % (i % 64))
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, "f%d" % i)
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o640)
    os.write(fd, b"x" * (i % 900)); os.fsync(fd); os.close(fd)
    if i % 3 == 0:
        os.rename(p, p + ".done")
    if i % 5 == 0 and i >= 5:
        try: os.unlink(os.path.join(d, "f%d" % (i - 5)))
        except FileNotFoundError: pass
PY
}

make_disk() { # fs → $work/$fs.dirty.img and $work/$fs.clean.img
  local fs=$1 img=$work/$1.img
  truncate -s 4G "$img"
  if [ "$fs" = ext4 ]; then
    mkfs.ext4 -q -F -J size=128 -E lazy_itable_init=0,lazy_journal_init=0 "$img"
    mount -o loop "$img" "$mnt"; populate; umount "$mnt"
    # data=journal: file data goes through the journal too, as on a busy machine the log fills.
    mount -o loop,data=journal "$img" "$mnt"; busy 96
  else
    mkfs.xfs -q -f -l size=64m "$img"
    mount -o loop "$img" "$mnt"; populate; busy 24; churn "${CHURN:-30000}"
  fi
  xfs_io -x -c 'shutdown -f' "$mnt"
  cp --sparse=always "$img" "$work/$fs.dirty.img"
  umount "$mnt"
  cp --sparse=always "$work/$fs.dirty.img" "$work/$fs.clean.img"
  mount -o loop "$work/$fs.clean.img" "$mnt"; umount "$mnt"
  rm -f "$img"
}

best() { sort -n | head -1; }
timed() { # prints "seconds maxrss_kib" of one command (GNU time's %e has 10 ms steps)
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/t" "$@" >/dev/null 2>&1 || true
  t1=$(date +%s.%N)
  printf '%.3f %s\n' "$(echo "$t1 - $t0" | bc -l)" "$(cat "$work/t")"
}

printf '%-5s %-28s %10s %10s\n' fs measure value unit
for fs in ${FS:-ext4 xfs}; do
  make_disk "$fs"
  "$bin" inspect "$work/$fs.dirty.img" | grep -E "replayed|not replayed" | sed "s/^ */  $fs: /" || true
  ins=(); insno=(); rss=(); dirty=(); clean=(); kernel=()
  for r in $(seq "$runs"); do
    t=$(timed "$bin" inspect "$work/$fs.dirty.img"); ins+=("${t% *}"); rss+=("${t#* }")
    t=$(timed "$bin" inspect --no-replay "$work/$fs.dirty.img"); insno+=("${t% *}")
    # Each extraction starts with nothing left to write back (the previous
    # one's case folder, the kernel's copy), and the two take turns going
    # first, so neither inherits the other's writeback.
    one() { rm -rf "$work/case"; sync; timed "$bin" extract --quiet "$work/$fs.$1.img" -o "$work/case"; }
    if [ $((r % 2)) = 1 ]; then
      t=$(one dirty); dirty+=("${t% *}"); t=$(one clean); clean+=("${t% *}")
    else
      t=$(one clean); clean+=("${t% *}"); t=$(one dirty); dirty+=("${t% *}")
    fi
    # The kernel replays only on a writable device: a read-write loop, mounted ro.
    cp --sparse=always "$work/$fs.dirty.img" "$work/k.img"
    dev=$(losetup -f --show "$work/k.img")
    t=$(timed mount -o ro "$dev" "$mnt"); kernel+=("${t% *}")
    umount "$mnt"; losetup -d "$dev"; rm -f "$work/k.img"; sync
  done
  i=$(printf '%s\n' "${ins[@]}" | best); n=$(printf '%s\n' "${insno[@]}" | best)
  d=$(printf '%s\n' "${dirty[@]}" | best); c=$(printf '%s\n' "${clean[@]}" | best)
  k=$(printf '%s\n' "${kernel[@]}" | best); m=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
  printf '%-5s %-28s %10s %10s\n' "$fs" "inspect (replaying)" "$i" s
  printf '%-5s %-28s %10s %10s\n' "$fs" "inspect --no-replay" "$n" s
  printf '%-5s %-28s %10s %10s\n' "$fs" "replay setup" "$(echo "$i - $n" | bc -l | sed 's/^\./0./;s/^-\./-0./')" s
  printf '%-5s %-28s %10s %10s\n' "$fs" "peak RSS replaying" "$((m / 1024))" MiB
  printf '%-5s %-28s %10s %10s\n' "$fs" "mount -o ro (kernel replay)" "$k" s
  printf '%-5s %-28s %10s %10s\n' "$fs" "extract dirty" "$d" s
  printf '%-5s %-28s %10s %10s\n' "$fs" "extract clean twin" "$c" s
  printf '%-5s %-28s %10s %10s\n' "$fs" "dirty / clean" "$(echo "scale=2; $d / $c" | bc -l | sed 's/^\./0./')" ratio
  # The point of it all: what the dirty image gives is what the kernel's own
  # replay (the clean twin) holds, file for file.
  sums() { # case → "sha256  path" of every file in the host's tree, not _before-journal
    (cd "$1/Host-Based Logs" && find . -path '*/_before-journal' -prune -o -type f -print0 | sort -z | xargs -0 sha256sum)
  }
  rm -rf "$work/c1" "$work/c2"
  "$bin" extract --quiet "$work/$fs.dirty.img" -o "$work/c1" >/dev/null 2>&1 || true
  "$bin" extract --quiet "$work/$fs.clean.img" -o "$work/c2" >/dev/null 2>&1 || true
  same=$(comm -12 <(sums "$work/c1") <(sums "$work/c2") | wc -l)
  differ=$(( $(sums "$work/c2" | wc -l) - same ))
  printf '%-5s %-28s %10s %10s\n' "$fs" "files as the kernel replayed" "$same" files
  printf '%-5s %-28s %10s %10s\n' "$fs" "files that differ or miss" "$differ" files
  rm -rf "$work/c1" "$work/c2"
  [ -n "${KEEP:-}" ] || rm -f "$work/$fs.dirty.img" "$work/$fs.clean.img"
done
