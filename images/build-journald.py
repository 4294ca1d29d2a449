#!/usr/bin/env python3
"""Build the systemd journal fixtures (images/journald/*.journal.gz) and what journalctl makes of
them (images/expected/journald/*.json.gz), for src/convert/journal.rs and tests/journal_json.rs.

    python3 images/build-journald.py            # rebuild the journals and their expected JSON
    python3 images/build-journald.py --check    # no rebuild: re-derive the expected JSON from the
                                                # COMMITTED journals with this machine's journalctl
                                                # and compare (exit 1 on mismatch; 0 with a reason
                                                # when journalctl is missing)
    python3 images/build-journald.py --export F [--entries N]
                                                # only write the export-format input to F

The journals are written by systemd itself: `systemd-journal-remote -o X.journal -` reading the
journal export format (https://systemd.io/JOURNAL_EXPORT_FORMATS/) generated here with a fixed seed.
Debian 12's systemd-journal-remote 252 (`apt-get install systemd-journal-remote`) writes compact
(systemd >= 252) or regular files (SYSTEMD_JOURNAL_COMPACT=0/1), keyed or Jenkins hashes
(SYSTEMD_JOURNAL_KEYED_HASH=0/1), with ZSTD compression or none (--compress=no): systemd 252 has no
way to choose the algorithm. XZ and LZ4 need systemd >= 253's SYSTEMD_JOURNAL_COMPRESS=XZ|LZ4|ZSTD;
give a newer systemd-journal-remote with JOURNAL_REMOTE_NEW=DIR, DIR holding lib/systemd/
systemd-journal-remote and usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-*.so, e.g. Debian's
bookworm-backports 254 unpacked without installing it:

    apt-get download systemd-journal-remote/bookworm-backports libsystemd-shared/bookworm-backports
    for d in *.deb; do dpkg -x "$d" /tmp/sd254; done
    JOURNAL_REMOTE_NEW=/tmp/sd254 python3 images/build-journald.py

(the fixtures made with it are skipped, with a message, when it is not given). A journal file is
not byte-deterministic (file, machine and seqnum ids are random), which is why --check does not
rebuild: the committed journals are the evidence and journalctl's reading of them the truth.

The expected files are `journalctl --file X -o json --all` (systemd 252), one object a line with
the keys sorted: journalctl 252 prints an entry's fields in its hash map's order, which changes
from one run to the next, so only the parsed objects are comparable.

Every journal holds the same 1500 entries over three boots: multi-line, tab, ESC and DEL messages,
binary values (NUL, invalid UTF-8, overlong encodings, U+FFFE, U+FDD0, C1 controls), a field
repeated within one entry with different values, empty values, values of 4095/4096/4097 bytes,
large fields (> 512 bytes, so compressed when compression is on) one of which holds a message found
nowhere else (`grep` acceptance), and enough entries that the main entry array chains 7 deep.
`online-killed` is an unclean shutdown: systemd-journal-remote killed (SIGKILL) while writing,
the file left in state ONLINE (as `*.journal~` files are found).
"""
import argparse
import gzip
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "journald")
EXPECTED = os.path.join(HERE, "expected", "journald")
REMOTE = "/lib/systemd/systemd-journal-remote"

# name: (needs a newer systemd, environment, extra arguments)
FIXTURES = {
    "compact-zstd": (False, {"SYSTEMD_JOURNAL_COMPACT": "1"}, []),
    "regular-plain-jenkins": (False, {"SYSTEMD_JOURNAL_COMPACT": "0", "SYSTEMD_JOURNAL_KEYED_HASH": "0"},
                              ["--compress=no"]),
    "regular-zstd": (False, {"SYSTEMD_JOURNAL_COMPACT": "0"}, []),
    "compact-xz": (True, {"SYSTEMD_JOURNAL_COMPACT": "1", "SYSTEMD_JOURNAL_COMPRESS": "XZ"}, []),
    "regular-lz4": (True, {"SYSTEMD_JOURNAL_COMPACT": "0", "SYSTEMD_JOURNAL_COMPRESS": "LZ4"}, []),
    "compact-lz4": (True, {"SYSTEMD_JOURNAL_COMPACT": "1", "SYSTEMD_JOURNAL_COMPRESS": "LZ4"}, []),
}

# The one message that exists only inside a compressed field.
NEEDLE = b"snapsift-needle: sshd accepted publickey for mallory from 203.0.113.66"


def field(name, value):
    """One field in the export format: text as NAME=value, anything else as the binary form."""
    if b"\n" in value:
        return name + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
    return name + b"=" + value + b"\n"


def export(n_entries=1500, seed=15):
    rnd = random.Random(seed)
    boots = ["%032x" % rnd.getrandbits(128) for _ in range(3)]
    units = [b"sshd.service", b"cron.service", b"nginx.service", b"systemd-logind.service", b"kernel"]
    odd = [
        b"bin\x00ary", b"latin1 caf\xe9", b"overlong \xc0\xaf", b"nonchar \xef\xbf\xbe", b"reserved \xef\xb7\x90",
        b"c1 \xc2\x85 next", b"esc \x1b[31mred\x1b[0m", b"del \x7f", b"tab\tstop", b"emoji \xf0\x9f\x94\x91",
        b"surrogate \xed\xa0\x80", b"cr\rlf", b"quote \" and \\ backslash", b"", b"\xff",
    ]
    out = bytearray()
    rt = 1_717_200_000_000_000
    for i in range(n_entries):
        boot = min(i * 3 // n_entries, 2)
        mono = 5_000_000 + (i - boot * n_entries // 3) * 1_234_567 + rnd.randrange(1000)
        rt += rnd.randrange(1, 3_000_000)
        unit = rnd.choice(units)
        f = [field(b"__REALTIME_TIMESTAMP", b"%d" % rt), field(b"__MONOTONIC_TIMESTAMP", b"%d" % mono),
             field(b"_BOOT_ID", boots[boot].encode()), field(b"_HOSTNAME", b"web01"),
             field(b"_MACHINE_ID", b"5eed0015000040008000000000000001"), field(b"PRIORITY", b"%d" % rnd.randrange(8)),
             field(b"_SYSTEMD_UNIT", unit), field(b"SYSLOG_IDENTIFIER", unit.split(b".")[0]),
             field(b"_PID", b"%d" % rnd.randrange(1, 40000))]
        kind = i % 13
        if kind == 0:
            msg = b"line one of %d\nline two\n\tindented three" % i
        elif kind == 1:
            msg = rnd.choice(odd) + b" #%d" % i
        elif kind == 2:
            msg = (b"long message %d " % i) + b"".join(b"word%d " % rnd.randrange(50) for _ in range(75))
        elif kind == 3:
            msg = b"binary message \x00\x01\x02 %d" % i
        else:
            msg = b"Accepted password for user%d from 198.51.100.%d port %d ssh2" % (
                rnd.randrange(20), rnd.randrange(255), rnd.randrange(1024, 65535))
        if i != 7:  # one entry without MESSAGE
            f.append(field(b"MESSAGE", msg))
        if kind == 4:
            f += [field(b"TAG", b"first %d" % i), field(b"TAG", b"second"), field(b"TAG", b"third \xff")]
        if kind == 5:
            f.append(field(b"ODD", rnd.choice(odd)))
            f.append(field(b"EMPTY", b""))
        if kind == 6:
            n = rnd.randrange(600, 1500) if i % 300 == 6 else rnd.randrange(20, 80)
            f.append(field(b"BLOB", bytes(rnd.randrange(256) for _ in range(n))))
        if i in (100, 101, 102):
            name_len = len(b"SIZED=")
            f.append(field(b"SIZED", b"s" * (4096 - name_len + (i - 101))))  # 4095, 4096, 4097 bytes with the name
        if i == 1234:
            # The needle, inside a large field (compressed when compression is on) and nowhere else.
            # Its pieces appear before it, so LZ4 and ZSTD encode it as back-references: the needle
            # is in no journal file as it is, only in the decompressed field.
            f.append(field(b"MESSAGE_DETAIL", b"pad " * 200 + b"snapsift-needle: sshd accepted pubkey; then "
                           b"user publickey for mallory from 203.0.113.66 denied; " + NEEDLE + b" pad" * 200))
        if i == 1400:
            f.append(field(b"HUGE", b"".join(b"%08d " % k for k in range(12000))))  # ~108 KB
        if i == 11:
            f.append(field(b"SAME", b"twice"))
            f.append(field(b"SAME", b"twice"))
        out += b"".join(f) + b"\n"
    return bytes(out)


def remote(new_dir):
    if new_dir:
        lib = os.path.join(new_dir, "usr/lib/x86_64-linux-gnu/systemd")
        return os.path.join(new_dir, "lib/systemd/systemd-journal-remote"), {"LD_LIBRARY_PATH": lib}
    return REMOTE, {}


def build_killed(work, data):
    """An unclean shutdown: systemd-journal-remote (252, compact, ZSTD) is fed the first 600
    entries' first half and killed with SIGKILL, leaving the file in state ONLINE."""
    import signal
    import time
    data = data[: data.index(b"\n\n", len(data) // 2) + 2]
    path = os.path.join(work, "online-killed.journal")
    p = subprocess.Popen([REMOTE, "-o", path, "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=dict(os.environ, SYSTEMD_JOURNAL_COMPACT="1"))
    p.stdin.write(data)
    p.stdin.flush()
    time.sleep(2)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    with open(path, "rb") as f:
        assert f.read(17)[16] == 1, "the killed journal is ONLINE"
    return path


def build_one(name, data, work, new_dir):
    needs_new, env_extra, args = FIXTURES[name]
    binary, env_lib = remote(new_dir if needs_new else None)
    path = os.path.join(work, name + ".journal")
    env = dict(os.environ, **env_extra, **env_lib)
    subprocess.run([binary, "-o", path, *args, "-"], input=data, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path


def journalctl_json(path):
    """journalctl's rendering, one sorted-key object a line."""
    out = subprocess.run(["journalctl", "--file", path, "-o", "json", "--all", "--no-pager"],
                         check=True, capture_output=True).stdout
    lines = []
    for line in out.splitlines():
        if line.strip():
            lines.append(json.dumps(json.loads(line), sort_keys=True, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode()


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def check():
    if shutil.which("journalctl") is None:
        print("journalctl not installed: the expected JSON is not re-derived")
        return 0
    bad = 0
    with tempfile.TemporaryDirectory() as work:
        for name in sorted(os.listdir(OUT)):
            if not name.endswith(".journal.gz"):
                continue
            stem = name[: -len(".journal.gz")]
            path = os.path.join(work, stem + ".journal")
            with open(path, "wb") as f:
                f.write(gzip.decompress(open(os.path.join(OUT, name), "rb").read()))
            got = journalctl_json(path)
            want = gzip.decompress(open(os.path.join(EXPECTED, stem + ".json.gz"), "rb").read())
            ok = got == want
            bad += not ok
            print("%-24s %5d entries  %s" % (stem, got.count(b"\n"), "ok" if ok else "MISMATCH"))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--export")
    ap.add_argument("--only", help="comma-separated fixture names to rebuild")
    ap.add_argument("--entries", type=int, default=1500, help="with --export: how many (benches/journal_json.sh)")
    a = ap.parse_args()
    if a.check:
        sys.exit(check())
    data = export(a.entries)
    if a.export:
        open(a.export, "wb").write(data)
        return
    new_dir = os.environ.get("JOURNAL_REMOTE_NEW")
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(EXPECTED, exist_ok=True)
    only = set(a.only.split(",")) if a.only else None
    with tempfile.TemporaryDirectory() as work:
        for name, (needs_new, _, _) in [*FIXTURES.items(), ("online-killed", (False, None, None))]:
            if only and name not in only:
                continue
            if needs_new and not new_dir:
                print("%s: skipped (needs JOURNAL_REMOTE_NEW, see the docstring)" % name)
                continue
            if name == "online-killed":
                path = build_killed(work, export(600))
            else:
                path = build_one(name, data, work, new_dir)
            raw = open(path, "rb").read()
            open(os.path.join(OUT, name + ".journal.gz"), "wb").write(gz(raw))
            want = journalctl_json(path)
            open(os.path.join(EXPECTED, name + ".json.gz"), "wb").write(gz(want))
            print("%-24s %5d entries, %7d bytes gzip'd" % (name, want.count(b"\n"),
                                                         os.path.getsize(os.path.join(OUT, name + ".journal.gz"))))


if __name__ == "__main__":
    main()
