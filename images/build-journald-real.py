#!/usr/bin/env python3
"""Journal fixtures written by a real systemd-journald (the ones images/build-journald.py makes
come from systemd-journal-remote): images/journald/real-online.journal.gz, copied while journald
still runs (state ONLINE: what a snapshot of a running machine holds), and real-offline.journal.gz,
the same file after journald stopped; the expected output is journalctl's reading of each
(images/expected/journald/, re-derived by `python3 images/build-journald.py --check`).

    sudo python3 images/build-journald-real.py

Needs root and Debian's systemd (systemd-journald, logger, systemd-cat, journalctl). journald runs
in a private mount namespace (`unshare -m`) over tmpfs /run/systemd/journal and /run/log, so the
machine's own journal and sockets are never touched; refused when a journald is already running.
The messages: sshd and sudo lines through the syslog socket (logger), kubelet and containerd lines
through the stdout stream (systemd-cat), native entries with extra fields, a multi-line message, and
a large field (over 512 bytes, so journald compresses it). /dev/kmsg is hidden from journald, so no
line of this machine's kernel log gets in.
"""
import gzip
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("build_journald", os.path.join(HERE, "build-journald.py"))
bj = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bj)

SCENARIO = r"""
set -eu
mount -t tmpfs tmpfs /run/systemd/journal
mount -t tmpfs tmpfs /run/log
# Not this machine's kernel ring buffer: journald would copy it in.
mount --bind /dev/null /dev/kmsg
/lib/systemd/systemd-journald &
jd=$!
for i in $(seq 50); do [ -S /run/systemd/journal/socket ] && break; sleep 0.1; done
for i in $(seq 40); do
  logger -u /run/systemd/journal/dev-log -t sshd -p auth.info "Accepted publickey for root from 198.51.100.$i port 5$i ssh2: ED25519 SHA256:abc$i"
  logger -u /run/systemd/journal/dev-log -t sudo -p authpriv.notice "  alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u $i"
  echo "I1207 03:30:$((i % 60)).000000 1234 kubelet.go:$i] Pod sandbox changed, it will be killed and re-created" | systemd-cat -t kubelet -p info
  echo "level=info msg=\"shim disconnected\" id=c0ffee$i namespace=k8s.io" | systemd-cat -t containerd -p warning
done
printf 'first line\nsecond line\n\tindented third' | logger --journald=/dev/stdin 2>/dev/null || true
big=$(python3 -c 'print("ZZTOP-" * 200)')
printf 'MESSAGE=a large field follows\nSYSLOG_IDENTIFIER=implant\nPAYLOAD=%s ONLY-IN-A-COMPRESSED-FIELD %s\n' "$big" "$big" | logger --journald
sleep 1
mid=$(cat /etc/machine-id)
cp /run/log/journal/$mid/system.journal "$OUT/real-online.journal"
kill -TERM $jd; wait $jd || true
cp /run/log/journal/$mid/system.journal "$OUT/real-offline.journal"
"""


def main():
    if os.geteuid() != 0:
        sys.exit("build-journald-real.py: needs root (a private mount namespace for journald)")
    if subprocess.run(["pgrep", "-x", "systemd-journald"], capture_output=True).returncode == 0:
        sys.exit("build-journald-real.py: a systemd-journald already runs here; refusing to start another")
    for tool in ("/lib/systemd/systemd-journald", "logger", "systemd-cat", "journalctl", "unshare"):
        if shutil.which(tool) is None:
            sys.exit(f"build-journald-real.py: {tool} is missing (apt-get install systemd util-linux)")
    os.makedirs("/run/systemd/journal", exist_ok=True)
    os.makedirs("/run/log", exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", SCENARIO],
                       env={**os.environ, "OUT": work}, check=True)
        for stem in ("real-online", "real-offline"):
            path = os.path.join(work, stem + ".journal")
            with open(os.path.join(bj.OUT, stem + ".journal.gz"), "wb") as f:
                f.write(bj.gz(open(path, "rb").read()))
            want = bj.journalctl_json(path)
            with open(os.path.join(bj.EXPECTED, stem + ".json.gz"), "wb") as f:
                f.write(bj.gz(want))
            print("%-14s %5d entries" % (stem, want.count(b"\n")))


if __name__ == "__main__":
    main()
