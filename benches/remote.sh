#!/usr/bin/env bash
# Evidence read in place (issue #18): the Linux benchmark disk (the tree of
# benches/matrix.sh on ext4, GPT) served over HTTP on loopback with range
# requests and LATENCY ms added to every request (a cloud endpoint's round
# trip), extracted from its link, against extracting the same image from the
# local file in the same run. Reports the share of the disk fetched, the
# requests, the bytes fetched against the bytes the extraction read (the
# issue's goal: <= 1.2), and the wall-time ratio against local + fetched
# bytes / 100 MiB/s (goal: <= 2).
#
#   bash benches/remote.sh               ~512 MiB disk, 40k files (SMALL)
#   FULL=1 bash benches/remote.sh        ~4 GiB disk, 400k inodes (several minutes)
#   SOURCE=ebs bash benches/remote.sh    the same disk as an EBS snapshot behind the fake
#                                        EBS endpoint benches/fake_ebs.py (512 KiB blocks,
#                                        written ones listed), read as ebs://; builds
#                                        with --features aws. The disk is padded to whole
#                                        GiB (an EBS volume's size), for both runs.
#
# Env: LATENCY (ms, default 20), RUNS (default 3), KEEP=1 keep the work dir. Needs e2fsprogs (mke2fs -d),
# gdisk, python3. No root.
set -euo pipefail
cd "$(dirname "$0")/.."
latency=${LATENCY:-20}
source=${SOURCE:-http}
case $source in http) features=() ;; ebs) features=(--features aws) ;; *) echo "SOURCE is http or ebs" >&2; exit 2 ;; esac
runs=${RUNS:-3}
if [ "${FULL:-0}" = 1 ]; then scale=1 mib=4096 inodes=400000; else scale=0.1 mib=512 inodes=40000; fi
work=$(mktemp -d /tmp/snapsift-remote.XXXXXX)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
cargo build --release -q "${features[@]}"
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/snapsift")
export E2FSPROGS_FAKE_TIME=1717243200 TZ=UTC LC_ALL=C
python3 benches/matrix.py linux "$work/stage" "$scale"
truncate -s "${mib}M" "$work/disk.raw"
mke2fs -q -F -t ext4 -b 4096 -L root -E offset=1048576 -N "$inodes" -d "$work/stage" "$work/disk.raw" $(((mib - 2) * 256))
sgdisk -o -n "1:2048:+$((mib - 2))M" -t 1:8300 -c 1:root "$work/disk.raw" >/dev/null
rm -rf "$work/stage"
[ "$source" = ebs ] && truncate -s "$(((mib + 1023) / 1024))G" "$work/disk.raw"

cat > "$work/serve.py" <<'EOF'
import http.server, os, re, sys, time
path, delay = sys.argv[1], float(sys.argv[3]) / 1000
size = os.path.getsize(path)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        time.sleep(delay)
        a, b = map(int, re.match(r"bytes=(\d+)-(\d+)", self.headers["Range"]).groups())
        b = min(b, size - 1)
        with open(path, "rb") as f:
            f.seek(a)
            body = f.read(b - a + 1)
        self.send_response(206)
        self.send_header("Content-Range", "bytes %d-%d/%d" % (a, b, size))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # 16 readers connect at once: the default 5 drops SYNs (a 1 s retransmit)
Server(("127.0.0.1", int(sys.argv[2])), H).serve_forever()
EOF
port=$((20000 + RANDOM % 20000))
snapshot=snap-0bec4000000000001
remote=(env)
if [ "$source" = ebs ]; then
  python3 benches/fake_ebs.py "$work/disk.raw" "$port" "$latency" "$snapshot" & server=$!
  # Fake credentials, and nothing from this machine's AWS configuration.
  remote=(env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL AWS_ENDPOINT_URL_EBS="http://127.0.0.1:$port"
    AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench AWS_CONFIG_FILE=/nonexistent
    AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_EC2_METADATA_DISABLED=true "$bin" extract "ebs://$snapshot" --region eu-west-3)
else
  python3 "$work/serve.py" "$work/disk.raw" "$port" "$latency" & server=$!
  remote=("$bin" extract "http://127.0.0.1:$port/disk.raw?sig=bench")
fi
until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null; do sleep 0.5; done

best() { sort -n | head -1; }
wall() { /usr/bin/time -f %e -o "$work/t" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; cat "$work/t"; }
local_s=$(for _ in $(seq "$runs"); do rm -rf "$work/case"; wall "$bin" extract "$work/disk.raw" -o "$work/case" --quiet --no-evtx-json; done | best)
remote_s=$(for _ in $(seq "$runs"); do rm -rf "$work/case"; wall "${remote[@]}" -o "$work/case" --quiet --no-evtx-json; done | best)
read -r size fetched requests retries read refetched unused < <(python3 - "$work"/case/snapsift/run-*/run.json <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["evidence"][0]["remote"]
print(r["size"], r["bytes_fetched"], r["requests"], r["retries"], r["bytes_read"], r["bytes_refetched"], r["read_ahead_unused"])
EOF
)
python3 - "$local_s" "$remote_s" "$size" "$fetched" "$requests" "$retries" "$latency" "$read" "$refetched" "$unused" "$source" <<'EOF'
import sys
local, remote, size, fetched, requests, retries, latency, read, refetched, unused = map(float, sys.argv[1:11])
bound = 2 * (local + fetched / (100 * 2**20))
M = 2**20
print("source %s: disk %.0f MiB, %d ms per request: fetched %.1f MiB (%.1f %% of the disk) in %d requests (%d retried)"
      % (sys.argv[11], size / M, latency, fetched / M, 100 * fetched / size, requests, retries))
# bytes_read: what the layers above asked of the evidence, the same reads a
# local extraction makes (checked against strace of pread64 on the image).
print("fetched / read %.3f (read %.1f MiB; of the excess: fetched twice %.1f MiB, read ahead unused %.1f MiB); goal <= 1.2: %s"
      % (fetched / read, read / M, refetched / M, unused / M, "PASS" if fetched <= 1.2 * read else "MISS"))
print("fetched / disk %.3f; wall: local %.2f s, from the link %.2f s (ratio %.2f); goal <= 2 x (local + fetched at 100 MiB/s) = %.2f s: %s"
      % (fetched / size, local, remote, remote / local, bound, "PASS" if remote <= bound else "MISS"))
EOF
