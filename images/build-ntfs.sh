#!/usr/bin/env bash
# Rebuild the NTFS test images (ntfs-win, ntfs-64k, ntfs-gpt, ntfs-mbr,
# ntfs-4kn, ntfs-mftlist) and their listings.
#   sudo images/build-ntfs.sh
# Needs root (FUSE mount of the image with ntfs-3g), python3, ntfs-3g
# (mkntfs, ntfs-3g, ntfscat), attr (setfattr), gdisk (sgdisk), util-linux
# (sfdisk) and sleuthkit 4.11 (fls, icat, istat):
#   apt-get install -y ntfs-3g attr gdisk sleuthkit
# Writes images/ntfs-*.img.gz, images/expected/ntfs-*.tsv,
# images/expected/ntfs-notes.txt and expected/volumes-ntfs.tsv.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export TZ=UTC LC_ALL=C
PATH="$PATH:/usr/sbin:/sbin"
for t in python3 sgdisk sfdisk mkntfs ntfs-3g ntfscat setfattr fls icat istat; do
  command -v "$t" >/dev/null || { echo "build-ntfs.sh: missing tool: $t" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "build-ntfs.sh: run as root (ntfs-3g FUSE mount)" >&2; exit 2; }
exec python3 "$here/build_ntfs.py" --out "$here" "$@"
