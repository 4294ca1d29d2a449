#!/usr/bin/env bash
# Shadow copies: what reading the stores costs, in the same run, against
#  - reading the live volume through snapsift (a store adds block lookups
#    and reads from wherever each block's old copy is), and
#  - libvshadow's vshadowmount (FUSE) reading the same stores (`cat`), the
#    reference reader;
# and extraction with and without the stores (every file of the volume but
# the stores' own diff-area files in System Volume Information), as ratios.
#   bash benches/vss.sh [IMAGE]      (default ../shared/samples/vss/vsstest.qcow2)
# Needs qemu-img and libvshadow-utils (vshadowmount) for the reference; root for FUSE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
image=${1:-$repo/../shared/samples/vss/vsstest.qcow2}
work=$(mktemp -d)
trap 'fusermount -u "$work/mnt" 2>/dev/null || umount "$work/mnt" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$repo"
cargo build --release -q
echo "== snapsift: live volume and each store read whole (best of 3)"
cargo bench -q --bench vss -- "$image" | tee "$work/ours.tsv"
live=$(awk '$1=="live"{print $3}' "$work/ours.tsv")
if command -v vshadowmount >/dev/null && command -v qemu-img >/dev/null; then
  qemu-img convert -O raw "$image" "$work/raw"
  mkdir "$work/mnt"
  if vshadowmount "$work/raw" "$work/mnt" >/dev/null 2>&1; then
    echo "== vshadowmount: each store read whole (best of 3)"
    for f in "$work"/mnt/vss*; do
      best=999
      for _ in 1 2 3; do
        s=$(date +%s.%N); cat "$f" > /dev/null; e=$(date +%s.%N)
        best=$(echo "$e - $s" | bc -l | awk -v b="$best" '{print ($1 < b) ? $1 : b}')
      done
      n=$(basename "$f")
      ours=$(awk -v n="$n" '$1==n{print $3}' "$work/ours.tsv")
      printf '%s\tvshadowmount %.3f s\tsnapsift %.3f s\tratio %.2f\tstore/live %.2f\n' "$n" "$best" "$ours" \
        "$(echo "$ours / $best" | bc -l)" "$(echo "$ours / $live" | bc -l)"
    done
  else
    echo "vshadowmount cannot mount here (FUSE?): no reference"
  fi
fi
echo "== extract, every file but System Volume Information, with and without the stores (best of 3)"
printf '[[target]]\nname = "all"\ndescription = "every file"\nos = "any"\nscope = "any"\npaths = ["**"]\nexclude = ["System Volume Information/**"]\n' > "$work/all.toml"
for mode in --no-vss ""; do
  best=999
  for _ in 1 2 3; do
    rm -rf "$work/case"
    s=$(date +%s.%N)
    ./target/release/snapsift extract "$image" -o "$work/case" -q --targets-file "$work/all.toml" --target all $mode || true
    e=$(date +%s.%N)
    best=$(echo "$e - $s" | bc -l | awk -v b="$best" '{print ($1 < b) ? $1 : b}')
  done
  bytes=$(du -sb "$work/case/Host-Based Logs" | cut -f1)
  printf 'extract %-9s %.3f s, %s bytes written\n' "${mode:-(stores)}" "$best" "$bytes"
done
