#!/usr/bin/env bash
# Rebuild the snapsift test images and expected listings (no root needed).
#   images/build.sh           rebuild images/*.gz and images/expected/* in place
#   images/build.sh --check   rebuild into a temp dir and diff the listings
#                             against the committed images/expected/ (exit 1 on mismatch)
# Needs: python3 (>= 3.8), e2fsprogs 1.47 (mke2fs, debugfs, e2fsck, dumpe2fs),
#        gdisk (sgdisk), util-linux (sfdisk, fdisk), sleuthkit 4.11 (fls, icat, istat, mmls).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export TZ=UTC LC_ALL=C SOURCE_DATE_EPOCH=1717243200 E2FSPROGS_FAKE_TIME=1717243200 E2FSCK_TIME=1717243200
PATH="$PATH:/usr/sbin:/sbin"
for t in python3 mke2fs debugfs e2fsck dumpe2fs sgdisk sfdisk fdisk fls icat istat mmls; do
  command -v "$t" >/dev/null || { echo "build.sh: missing tool: $t" >&2; exit 2; }
done
case "${1:-}" in
  --check)
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    python3 "$here/build.py" --out "$tmp" --no-images
    # Only the listings build.py makes (other builders own other files).
    status=0
    for f in "$tmp"/expected/*; do
      diff -u "$here/expected/$(basename "$f")" "$f" || status=1
    done
    if [ $status = 0 ]; then
      echo "build.sh --check: listings match"
    else
      echo "build.sh --check: regenerated listings differ from images/expected" >&2
      exit 1
    fi
    ;;
  "")
    python3 "$here/build.py" --out "$here"
    ls -l "$here"/*.gz "$here"/expected
    ;;
  *)
    echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
