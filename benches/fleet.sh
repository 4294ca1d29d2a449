#!/usr/bin/env bash
# Many jobs into one case (issue #19): COPIES (16) copies of a small image,
# one job each, extracted by WORKERS (2) processes at a time with
# `--jobs-file`, against one process at a time running the same list; both
# cases must hold the same files with the same hashes. Prints the wall
# times and their ratio.
#
#   bash benches/fleet.sh [IMAGE.gz] [COPIES] [WORKERS]
#
# Needs a release build (cargo build --release); works in a new temporary
# folder (BENCH_DIR to choose), deleted at the end unless KEEP=1.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
image=${1:-$here/images/linux-gpt.img.gz}
copies=${2:-16}
workers=${3:-2}
bin=${SNAPSIFT:-$here/target/release/snapsift}
[ -x "$bin" ] || { echo "build it first: cargo build --release (or set SNAPSIFT)" >&2; exit 2; }
work=${BENCH_DIR:-$(mktemp -d /tmp/snapsift-fleet.XXXXXX)}
mkdir -p "$work/evidence"
trap '[ "${KEEP:-0}" = 1 ] || rm -rf "$work"' EXIT
zcat -f "$image" > "$work/evidence/disk-0.img"
: > "$work/jobs.txt"
for i in $(seq 0 $((copies - 1))); do
  [ "$i" = 0 ] || cp --reflink=auto "$work/evidence/disk-0.img" "$work/evidence/disk-$i.img"
  echo "evidence/disk-$i.img host=machine-$i" >> "$work/jobs.txt"
done
cat "$work"/evidence/*.img > /dev/null   # into the page cache: both runs read it from there

t0=$(date +%s.%N)
for i in $(seq 0 $((copies - 1))); do
  "$bin" extract --jobs-file "$work/jobs.txt" --index "$i" -o "$work/one" --quiet
done
t1=$(date +%s.%N)
seq 0 $((copies - 1)) | xargs -P "$workers" -I{} "$bin" extract --jobs-file "$work/jobs.txt" --index {} -o "$work/many" --quiet
t2=$(date +%s.%N)

listing() { (cd "$1/Host-Based Logs" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
if ! diff <(listing "$work/one") <(listing "$work/many") > "$work/diff.txt"; then
  echo "the two cases differ:" >&2; head -20 "$work/diff.txt" >&2; exit 1
fi
"$bin" report "$work/many" --verify 2>&1 | tail -1
files=$(listing "$work/many" | wc -l)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$copies" -v w="$workers" -v f="$files" 'BEGIN {
  one = b - a; many = c - b
  printf "%d jobs (%d files): one process at a time %.2f s, %d workers %.2f s: %.2fx the time (%.2fx faster)\n", n, f, one, w, many, many / one, one / many
}'
