#!/usr/bin/env bash
# Disk-image read throughput: snapsift's full-disk read of each format as a
# ratio to `qemu-img convert -O raw` of the same file, in the same run.
#
#   bash benches/formats.sh [SIZE_MIB]     (default 1024)
#
# Builds a disk of log-like, compressible data (seeded, reproducible),
# converts it to streamOptimized VMDK, VHDX, QCOW2 and compressed QCOW2,
# then times both readers (best of 3 each; page cache warm for both).
# qemu-img writes its output to a sparse file in the same temp dir.
set -euo pipefail
size=${1:-1024}
cd "$(dirname "$0")/.."
cargo build --release --bench read_throughput -q 2>/dev/null || true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/disk.raw" "$size" <<'PY'
import random, sys
path, mib = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
words = [b"sshd", b"Failed", b"password", b"for", b"root", b"from", b"203.0.113.7", b"port", b"ssh2",
         b"GET", b"/index.html", b"HTTP/1.1", b"200", b"kernel:", b"audit", b"type=SYSCALL", b"uid=0"]
with open(path, "wb") as f:
    block = bytearray()
    written = 0
    while written < mib << 20:
        line = b" ".join(rnd.choice(words) for _ in range(12)) + b" %d\n" % rnd.getrandbits(32)
        block += line
        if len(block) >= 1 << 20:
            f.write(block[: 1 << 20]); written += 1 << 20; block = block[1 << 20:]
        # A quarter of the disk stays unallocated (zeros), as on real disks.
        if written % (64 << 20) == 48 << 20:
            f.seek(16 << 20, 1); written += 16 << 20
    f.truncate(mib << 20)
PY
cd "$work"
qemu-img convert -O vmdk -o subformat=streamOptimized disk.raw stream.vmdk
qemu-img convert -O vhdx disk.raw disk.vhdx
qemu-img convert -O qcow2 disk.raw disk.qcow2
qemu-img convert -c -O qcow2 disk.raw deflate.qcow2
files="stream.vmdk disk.vhdx disk.qcow2 deflate.qcow2"
bench=$(ls -t "$OLDPWD"/target/release/deps/read_throughput-* | grep -v '\.d$' | head -1)
printf '%-16s %10s %12s %12s %8s\n' format "MiB" "qemu-img s" "snapsift s" ratio
for f in $files; do
  best=999
  for _ in 1 2 3; do
    s=$(date +%s.%N); qemu-img convert -O raw "$f" out.raw; e=$(date +%s.%N); rm -f out.raw
    best=$(python3 -c "print(min($best, $e - $s))")
  done
  read -r _ bytes ours < <("$bench" "$f")
  printf '%-16s %10d %12.3f %12.3f %8.2f\n' "$f" $((bytes >> 20)) "$best" "$ours" "$(python3 -c "print($best / $ours)")"
done
echo "ratio = qemu-img convert time / snapsift read time (higher is better; goal >= 1, >= 2 for streamOptimized VMDK)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
