#!/usr/bin/env bash
# Builds the disk-image format fixtures in images/formats/ from one source
# disk, with independent tools only: qemu-img/qemu-io (VMDK, VHD, VHDX,
# QCOW2, backing chains), ewfacquire (E01), GNU tar (GCP-style exports).
# The oracle for every fixture is qemu-img's (or ewfexport's / tar's) own
# reading of it: images/expected/formats.tsv records the SHA-256 and size of
# `qemu-img convert -O raw <fixture>` (tar: the member; E01: ewfexport).
#
#   bash images/build-formats.sh          # rebuild fixtures + listing
#   bash images/build-formats.sh --check  # rebuild in a temp dir, compare listings
#
# Needs: qemu-utils, ewf-tools, tar, gzip, python3. No root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
check=0
[ "${1:-}" = --check ] && check=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# base.raw: the linux-gpt fixture with the gap before partition 1 zeroed, so
# sparse formats have really unallocated grains/clusters/subclusters there.
gzip -dc "$here/linux-gpt.img.gz" > base.raw
python3 - <<'PY'
with open("base.raw", "r+b") as f:
    f.seek(17408)
    f.write(b"\0" * (1048576 - 17408))
PY

q() { qemu-img convert -O "$@"; }
q vmdk -o subformat=monolithicSparse base.raw sparse.vmdk
q vmdk -o subformat=streamOptimized base.raw stream.vmdk
q vmdk -o subformat=twoGbMaxExtentSparse base.raw split.vmdk
q vmdk -o subformat=monolithicFlat base.raw flat.vmdk
q vmdk -o subformat=twoGbMaxExtentFlat base.raw split-flat.vmdk
q vpc -o subformat=fixed,force_size=on base.raw fixed.vhd
q vpc -o subformat=dynamic,force_size=on base.raw dynamic.vhd
q vhdx base.raw default.vhdx
q vhdx -o block_size=1M base.raw block1m.vhdx
q qcow2 base.raw plain.qcow2
q qcow2 -c base.raw deflate.qcow2
q qcow2 -c -o compression_type=zstd base.raw zstd.qcow2
q qcow2 -o extended_l2=on,cluster_size=128k base.raw subcluster.qcow2
q qcow2 -o compat=0.10 base.raw v2.qcow2

# Snapshot chains: a child over a base, written to by qemu-io.
qemu-img create -q -f qcow2 -b plain.qcow2 -F qcow2 chain.qcow2
qemu-io -f qcow2 -c "write -P 0x5a 3M 64k" -c "write -P 0xa5 20M 4k" -c "write -z 40M 1M" chain.qcow2 >/dev/null
qemu-img create -q -f vmdk -b sparse.vmdk -F vmdk snap.vmdk
qemu-io -f vmdk -c "write -P 0x5a 3M 64k" -c "write -P 0xa5 20M 4k" snap.vmdk >/dev/null

# A VHDX larger than 4 GiB with 1 MiB blocks: data past the first sector
# bitmap interleave (chunk ratio 4096 blocks = 4 GiB).
python3 - <<'PY'
import shutil
shutil.copyfile("base.raw", "big.raw")
with open("big.raw", "r+b") as f:
    f.truncate(4608 << 20)                     # 4.5 GiB
    for off in (4096 << 20, (4097 << 20) + 12345, (4608 << 20) - (1 << 20)):
        f.seek(off)
        f.write(bytes((i * 7 + off) % 251 for i in range(1 << 20)))
PY
q vhdx -o block_size=1M big.raw big.vhdx

# E01 in three segments, no compression (ewfacquire needs a segment size).
ewfacquire -u -q -t disk -c none -S 20MiB -C case-42 -D "web01 root disk" -e examiner -E ev-1 -N "fixture" base.raw >/dev/null

# GCP-style export: disk.raw (with real holes) in a gzip'd tar, GNU old
# sparse format; and PAX sparse variants.
cp --sparse=always base.raw disk.raw
tar --format=oldgnu -S -czf gcp-oldgnu.tar.gz disk.raw
tar --format=pax --sparse-version=1.0 -S -czf pax10.tar.gz disk.raw
tar --format=pax --sparse-version=0.1 -S -cf pax01.tar disk.raw
tar --format=pax --sparse-version=0.0 -S -cf pax00.tar disk.raw

# The listing: qemu-img's reading of each fixture (E01: ewfexport, tar: the member).
{
  printf 'file\tvirtual_size\tsha256\n'
  for f in sparse.vmdk stream.vmdk split.vmdk flat.vmdk split-flat.vmdk dynamic.vhd \
           default.vhdx block1m.vhdx plain.qcow2 deflate.qcow2 zstd.qcow2 subcluster.qcow2 v2.qcow2 \
           chain.qcow2 snap.vmdk; do
    qemu-img convert -O raw "$f" out.raw
    printf '%s\t%s\t%s\n' "$f" "$(stat -c %s out.raw)" "$(sha256sum < out.raw | cut -d' ' -f1)"
    rm out.raw
  done
  # qemu-img reads a fixed VHD's 512-byte footer as one more data sector
  # (virtual size = file size); by the VHD specification the disk is the
  # data before the footer, so that is the oracle here.
  head -c -512 fixed.vhd > out.raw
  printf '%s\t%s\t%s\n' fixed.vhd "$(stat -c %s out.raw)" "$(sha256sum < out.raw | cut -d' ' -f1)"
  rm out.raw
  ewfexport -u -q -t out -f raw disk.E01 >/dev/null
  printf '%s\t%s\t%s\n' disk.E01 "$(stat -c %s out.raw)" "$(sha256sum < out.raw | cut -d' ' -f1)"
  rm out.raw
  for f in gcp-oldgnu.tar.gz pax10.tar.gz pax01.tar pax00.tar; do
    mkdir x && tar -xSf "$f" -C x
    printf '%s\t%s\t%s\n' "$f" "$(stat -c %s x/disk.raw)" "$(sha256sum < x/disk.raw | cut -d' ' -f1)"
    rm -r x
  done
} > formats.tsv

# Windows of the 4.5 GiB VHDX, as qemu-img reads them: around the first
# sector-bitmap interleave (4 GiB) and the data written past it.
qemu-img convert -O raw big.vhdx big.out
{
  printf 'file\toffset\tlength\tsha256\n'
  for w in 0:50331648 4294901760:131072 4295032832:1048576 4296061520:65536 4830789632:1048576 4831834112:4096; do
    off=${w%%:*}; len=${w##*:}
    sum=$(python3 -c "import hashlib,sys;f=open('big.out','rb');f.seek($off);print(hashlib.sha256(f.read($len)).hexdigest())")
    printf 'big.vhdx\t%s\t%s\t%s\n' "$off" "$len" "$sum"
  done
} > formats-windows.tsv
rm big.out

if [ $check = 1 ]; then
  diff -u "$here/expected/formats.tsv" formats.tsv
  diff -u "$here/expected/formats-windows.tsv" formats-windows.tsv
  echo "formats.tsv and formats-windows.tsv match a fresh build"
  exit 0
fi
rm -f "$here"/formats/*
# Everything gzip'd for the repository, except the .tar.gz exports, which
# are committed as they are (tests decompress the rest).
for f in *.vmdk *.vhd *.vhdx *.qcow2 disk.E0* pax01.tar pax00.tar base.raw; do
  gzip -9 -n -c "$f" > "$here/formats/$f.gz"
done
cp gcp-oldgnu.tar.gz pax10.tar.gz "$here/formats/"
cp formats.tsv formats-windows.tsv "$here/expected/"
du -sh "$here/formats"
