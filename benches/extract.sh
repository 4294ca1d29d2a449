#!/usr/bin/env bash
# Extraction benchmark: snapsift vs sleuthkit (fls + icat per file) and the
# write floor (cp -a of the same files), measured in the same run.
#
#   bash benches/extract.sh [NOISE_FILES] [LOG_MIB]     (defaults: 50000, 512)
#
# Builds (seeded) an ext4 disk image with NOISE_FILES small files under
# /usr-, /opt/*/node_modules- and /var/lib-like trees, LOG_MIB of logs in
# ~500 files under /var/log (rotated .gz too) and user histories, with
# mke2fs -d. Then times: snapsift extract (release), fls -r + icat of the
# same files, and cp -a of the staging copies of those files (what writing
# them costs on this disk). Needs e2fsprogs, sleuthkit, GNU time.
set -euo pipefail
noise=${1:-50000}
logmib=${2:-512}
cd "$(dirname "$0")/.."
cargo build --release -q
work=$(mktemp -d /var/tmp/snapsift-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 - "$work/stage" "$noise" "$logmib" <<'PY'
import os, random, sys, gzip
root, noise, logmib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(7)
def w(p, data):
    p = os.path.join(root, p.lstrip("/"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
w("/etc/hostname", b"bench01\n")
w("/etc/os-release", b'PRETTY_NAME="Bench Linux"\n')
w("/etc/passwd", b"root:x:0:0::/root:/bin/bash\n" + b"".join(b"u%d:x:%d:%d::/home/u%d:/bin/bash\n" % (i, 1000 + i, 1000 + i, i) for i in range(20)))
trees = ["usr/lib/python3/dist-packages/pkg%d", "opt/app%d/node_modules/mod", "var/lib/dpkg/info%d", "usr/share/doc/p%d"]
for i in range(noise):
    w("/%s/f%d.py" % (rnd.choice(trees) % (i % 400), i), bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(200, 2000))))
words = [b"sshd", b"Failed", b"password", b"for", b"root", b"from", b"203.0.113.7", b"GET", b"/index.html", b"200", b"kernel:", b"audit"]
per = (logmib << 20) // 500
for i in range(500):
    line = b" ".join(rnd.choice(words) for _ in range(10)) + b"\n"
    data = line * (per // len(line))
    name = "/var/log/svc%d/app%d.log" % (i % 50, i) + ("" if i < 450 else ".1")
    w(name if i < 480 else name + ".gz", data if i < 480 else gzip.compress(data, 1))
for i in range(20):
    w("/home/u%d/.bash_history" % i, b"ls -la\nsudo su\n" * 500)
PY
size_mib=$(( $(du -sm "$work/stage" | cut -f1) * 13 / 10 + 256 ))
mke2fs -q -t ext4 -d "$work/stage" "$work/disk.img" "${size_mib}M"
echo "image: ${size_mib} MiB ext4, $noise noise files, ${logmib} MiB of logs"
t() { /usr/bin/time -f "%e %U %S %M" "$@" 2>&1 >/dev/null | tail -1; }
read -r s_wall s_user s_sys s_rss < <(t ./target/release/snapsift extract "$work/disk.img" -o "$work/case" -q)
files=$(grep -c ',ok,' "$work"/case/snapsift/run-*/manifest.csv || true)
bytes=$(du -sm "$work/case/Host-Based Logs" | cut -f1)
# sleuthkit: list once, then icat every file snapsift took.
mkdir -p "$work/tsk"
start=$(date +%s.%N)
fls -r -p "$work/disk.img" > "$work/fls.txt"
cut -d, -f4,6 "$work"/case/snapsift/run-*/manifest.csv | tail -n +2 | while IFS=, read -r inode path; do
  [ -n "$inode" ] && icat "$work/disk.img" "$inode" > "$work/tsk/$inode"
done
tsk=$(python3 -c "import time; print(round(time.time() - $start, 2))")
# Write floor: cp -a of the same files from the staging tree.
start=$(date +%s.%N)
mkdir -p "$work/cp"
(cd "$work/stage" && cp -a --parents var/log home "$work/cp/")
cpa=$(python3 -c "import time; print(round(time.time() - $start, 2))")
printf '%-22s %8s %8s %8s\n' "" "wall s" "cpu s" "MiB RSS"
printf '%-22s %8s %8.2f %8d\n' "snapsift extract" "$s_wall" "$(python3 -c "print($s_user + $s_sys)")" "$((s_rss / 1024))"
printf '%-22s %8s\n' "sleuthkit fls+icat" "$tsk"
printf '%-22s %8s\n' "cp -a (write floor)" "$cpa"
echo "files extracted: $files ($bytes MiB); ratio snapsift/sleuthkit: $(python3 -c "print(round($s_wall / $tsk, 3))"); snapsift/cp: $(python3 -c "print(round($s_wall / $cpa, 2))")"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
