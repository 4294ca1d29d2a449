#!/usr/bin/env bash
# systemd journal → JSON lines: snapsift's converter (src/convert/journal,
# through examples/journal_json.rs, release build) against
# `journalctl --file X -o json --all > out`, on the same ~128 MiB journal
# (journald's default cap on one file), in the same run, interleaved, best of
# RUNS (3). Both are single-threaded: the ratio of their CPU times (user +
# system) is the throughput ratio per core (issue #15's goal: >= 3x
# journalctl); peak RSS of each process (goal for snapsift: <= 64 MiB).
#
#   bash benches/journal_json.sh [X.journal]
#
# Without an argument the journal is made here: syslog-like entries (a
# unique MESSAGE, 330-500 bytes, every 8th one 600-2000 and compressed; 17 fields shared
# between entries, as journald writes them) generated with a fixed seed in
# the export format and written by systemd-journal-remote (compact, ZSTD,
# systemd 252 on Debian 12). Needs journalctl, systemd-journal-remote
# (apt-get install systemd-journal-remote) and python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
runs=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

journal=${1:-}
if [ -z "$journal" ]; then
  journal=$work/bench.journal
  python3 - "$work/bench.export" <<'PY'
import random, sys
rnd = random.Random(15)
out = open(sys.argv[1], "wb")
units = [(b"sshd", b"/usr/sbin/sshd", b"sshd.service"), (b"cron", b"/usr/sbin/cron", b"cron.service"),
         (b"nginx", b"/usr/sbin/nginx", b"nginx.service"), (b"kernel", b"", b""),
         (b"systemd-logind", b"/lib/systemd/systemd-logind", b"systemd-logind.service")]
words = [b"session", b"opened", b"for", b"user", b"root", b"by", b"(uid=0)", b"Accepted", b"publickey", b"from",
         b"port", b"ssh2:", b"RSA", b"SHA256:", b"GET", b"/index.html", b"HTTP/1.1", b"200", b"Connection", b"closed"]
rt, mono = 1_717_200_000_000_000, 5_000_000
boot = b"%032x" % rnd.getrandbits(128)
target = 126 << 20          # written bytes estimated as we go: the journal lands near 128 MiB
written, i = 0, 0
while written < target:
    rt += rnd.randrange(1, 200_000)
    mono += rnd.randrange(1, 200_000)
    comm, exe, unit = units[rnd.randrange(len(units))]
    pid = 1000 + rnd.randrange(200)
    n = rnd.randrange(600, 2000) if i % 8 == 0 else rnd.randrange(330, 500)
    msg = b" ".join(words[rnd.randrange(len(words))] for _ in range(n // 6))[:n] + b" #%d" % i
    e = (b"__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%s\n" % (rt, mono, boot) +
         b"_HOSTNAME=web01\n_MACHINE_ID=5eed0015000040008000000000000001\n_TRANSPORT=syslog\n"
         b"PRIORITY=%d\nSYSLOG_FACILITY=%d\nSYSLOG_IDENTIFIER=%s\n_UID=0\n_GID=0\n_COMM=%s\n_EXE=%s\n"
         b"_CMDLINE=%s -D\n_SYSTEMD_CGROUP=/system.slice/%s\n_SYSTEMD_UNIT=%s\n_SYSTEMD_SLICE=system.slice\n"
         b"_CAP_EFFECTIVE=1ffffffffff\n_PID=%d\nSYSLOG_PID=%d\nMESSAGE=%s\n\n"
         % (rnd.randrange(8), rnd.randrange(24), comm, comm, exe, exe, unit, unit, pid, pid, msg))
    out.write(e)
    # The entry object (64 + 22 items of 4 bytes) and the MESSAGE data
    # object (72 + payload, 8-aligned; compressed above 512 bytes), its
    # entry array slot, and a share of the rest.
    written += 64 + 22 * 4 + 72 + (len(msg) + 8 if len(msg) < 512 else 200) + 24
    i += 1
PY
  /lib/systemd/systemd-journal-remote -o "$journal" "$work/bench.export" 2>"$work/remote.log" \
    || { cat "$work/remote.log"; exit 1; }
  if ls "$work"/bench@*.journal >/dev/null 2>&1; then
    # It rotates when the file reaches 128 MiB: the first, full one is timed.
    journal=$(ls "$work"/bench@*.journal | head -1)
  fi
fi

(cd "$repo" && cargo build -q --release --example journal_json)
bin=$repo/target/release/examples/journal_json

python3 - "$journal" "$bin" "$runs" "$work" <<'PY'
import os, subprocess, sys, time
journal, binary, runs, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def run(argv, out):
    """CPU seconds (user + system), wall seconds, peak RSS (MiB) of one process."""
    with open(out, "wb") as f:
        t = time.monotonic()
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t
    assert status == 0, argv
    return ru.ru_utime + ru.ru_stime, wall, ru.ru_maxrss / 1024

size = os.path.getsize(journal)
best = {}
cmds = {
    "journalctl": (["journalctl", "--file", journal, "-o", "json", "--all", "--no-pager"], work + "/journalctl.json"),
    "snapsift": ([binary, journal, work + "/snapsift.jsonl"], os.devnull),
}
for _ in range(runs):
    for name, (argv, out) in cmds.items():
        cpu, wall, rss = run(argv, out)
        b = best.get(name)
        best[name] = (min(cpu, b[0]), min(wall, b[1]), max(rss, b[2])) if b else (cpu, wall, rss)
lines = sum(1 for _ in open(work + "/snapsift.jsonl", "rb"))
theirs = sum(1 for _ in open(work + "/journalctl.json", "rb"))
print(f"journal: {size / 2**20:.1f} MiB, {lines} entries (journalctl: {theirs}); best of {runs}")
for name, (cpu, wall, rss) in best.items():
    print(f"  {name:10} {cpu:6.2f} s CPU  {wall:6.2f} s wall  {size / 2**20 / cpu:7.1f} MiB/s per core  peak RSS {rss:6.1f} MiB")
j, s = best["journalctl"], best["snapsift"]
print(f"  snapsift / journalctl throughput per core: {j[0] / s[0]:.2f}x (wall {j[1] / s[1]:.2f}x)")
PY
