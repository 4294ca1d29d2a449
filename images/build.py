#!/usr/bin/env python3
"""Build the snapsift test disk images and their expected listings.

Usage: build.py --out DIR [--only NAME,...] [--keep-raw]

Writes DIR/<name>.img.gz, DIR/split-gpt.00{1,2}.gz and DIR/expected/*.
No root needed: filesystems are made with `mke2fs -d` from staging trees,
partition tables with sgdisk/sfdisk on plain files, fix-ups with `debugfs -w`.

The listings (expected/<name>.tsv) are produced by sleuthkit (fls/icat) on the
final uncompressed image and cross-checked against the staging tree; mtimes
are decoded from the raw on-disk fields via `debugfs stat` (TSK 4.11 gets
pre-1970 times wrong).  Disagreements are recorded in expected/tsk-notes.txt.
"""
import argparse
import concurrent.futures as cf
import datetime as dt
import gzip
import hashlib
import json
import lzma
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

PATTERN = b"SNAPSIFT-STALE!\n"
MiB = 1024 * 1024
FAKE_TIME = 1717243200  # 2024-06-01T12:00:00Z, used for every "now"
ENV = dict(os.environ, E2FSPROGS_FAKE_TIME=str(FAKE_TIME), E2FSCK_TIME=str(FAKE_TIME), SOURCE_DATE_EPOCH=str(FAKE_TIME),
           TZ="UTC", LC_ALL="C")
DIR_TIME = (1717200000, 0)  # directories: 2024-06-01T00:00:00Z


def run(cmd, ok=(0,), **kw):
    p = subprocess.run(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if p.returncode not in ok:
        sys.stderr.write("command failed (%d): %s\n%s\n%s\n" % (
            p.returncode, " ".join(map(str, cmd)), p.stdout.decode(errors="replace")[-3000:],
            p.stderr.decode(errors="replace")[-3000:]))
        raise SystemExit(2)
    return p.stdout


def pattern_file(path, size):
    block = PATTERN * (MiB // len(PATTERN))
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


def ts(y, mo, d, h=0, mi=0, s=0, ns=0):
    sec = int(dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.timezone.utc).timestamp())
    return (sec, ns)


def pct(b: bytes) -> str:
    out = []
    for c in b:
        if c < 0x20 or c == 0x7F or c >= 0x80 or c == 0x25:
            out.append("%%%02X" % c)
        else:
            out.append(chr(c))
    return "".join(out)


# --------------------------------------------------------------------------
# staging-tree description
# --------------------------------------------------------------------------
class Tree:
    """An in-memory description of a filesystem tree (the staging truth)."""

    def __init__(self, seed, ns=True, t0=ts(2024, 3, 1), t1=ts(2024, 5, 30)):
        self.rnd = random.Random(seed)
        self.entries = []  # (kind, path(bytes), payload, (sec, ns))
        self.ns = ns
        self.t0, self.t1 = t0[0], t1[0]

    def _t(self, t):
        if t is None:
            t = (self.rnd.randrange(self.t0, self.t1), self.rnd.randrange(1, 10**9))
        if not self.ns:
            t = (t[0], 0)
        return t

    def file(self, path, data, t=None):
        if isinstance(path, str):
            path = path.encode()
        if isinstance(data, str):
            data = data.encode()
        self.entries.append(("f", path, data, self._t(t)))

    def sparse(self, path, size, chunks, t=None):
        """chunks: list of (offset, bytes); everything else is a hole."""
        if isinstance(path, str):
            path = path.encode()
        self.entries.append(("s", path, (size, chunks), self._t(t)))

    def symlink(self, path, target, t=None):
        self.entries.append(("l", path.encode(), target.encode(), self._t(t)))

    def hardlink(self, path, existing):
        self.entries.append(("h", path.encode(), existing.encode(), None))

    def rand(self, n):
        return bytes(self.rnd.getrandbits(8) for _ in range(n))

    def lines(self, fmt_fn, n):
        return "".join(fmt_fn(i) + "\n" for i in range(n))

    # ---- materialise ----
    def write(self, root):
        root = os.fsencode(root)
        dirs = set()
        for kind, path, payload, t in self.entries:
            full = root + path
            parent = os.path.dirname(full)
            os.makedirs(parent, exist_ok=True)
            p = parent
            while p != root and len(p) > len(root):
                dirs.add(p)
                p = os.path.dirname(p)
            if kind == "f":
                with open(full, "wb") as f:
                    f.write(payload)
            elif kind == "s":
                size, chunks = payload
                with open(full, "wb") as f:
                    for off, data in chunks:
                        f.seek(off)
                        f.write(data)
                    f.truncate(size)
            elif kind == "l":
                os.symlink(payload, full)
            elif kind == "h":
                os.link(root + payload, full)
            if kind in ("f", "s"):
                os.chmod(full, file_mode(path))
            if kind != "h":
                ns = t[0] * 10**9 + t[1]
                os.utime(full, ns=(ns, ns), follow_symlinks=False)
        for d in sorted(dirs, key=len, reverse=True):
            os.chmod(d, 0o700 if d[len(root):] == b"/root" else 0o755)
            ns = DIR_TIME[0] * 10**9
            os.utime(d, ns=(ns, ns))
        os.utime(root, ns=(DIR_TIME[0] * 10**9,) * 2)


def file_mode(path):
    """Fixed permissions (independent of the caller's umask)."""
    name = path.rsplit(b"/", 1)[1]
    if b"history" in name or path.startswith(b"/etc/ssh/"):
        return 0o600
    if re.match(rb"^(/usr)?/s?bin/", path):
        return 0o755
    return 0o644


def walk_staging(root):
    """Return {path(bytes): dict(type, size, sha256, target, mtime(sec,ns), ino_key)}."""
    root = os.fsencode(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        names = list(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for n in names:
            full = os.path.join(dirpath, n)
            st = os.lstat(full)
            rel = full[len(root):]
            sec, ns = divmod(st.st_mtime_ns, 10**9)
            if os.path.islink(full):
                out[rel] = dict(type="l", size=len(os.readlink(full)), sha256="",
                                target=os.readlink(full), mtime=(sec, ns), key=st.st_ino)
            else:
                h = hashlib.sha256()
                with open(full, "rb") as f:
                    for blk in iter(lambda: f.read(MiB), b""):
                        h.update(blk)
                out[rel] = dict(type="r", size=st.st_size, sha256=h.hexdigest(), target=b"",
                                mtime=(sec, ns), key=st.st_ino)
    return out


# --------------------------------------------------------------------------
# content generators
# --------------------------------------------------------------------------
MON = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def syslog_lines(t, host, n, start=ts(2024, 5, 1)[0], prog=None):
    progs = prog or ["systemd[1]", "kernel", "CRON[%d]", "dhclient[812]", "rsyslogd[640]", "snapd[733]"]
    out = []
    s = start
    for i in range(n):
        s += t.rnd.randrange(1, 400)
        d = dt.datetime.fromtimestamp(s, dt.timezone.utc)
        p = t.rnd.choice(progs)
        if "%d" in p:
            p = p % t.rnd.randrange(1000, 30000)
        msg = t.rnd.choice(["Started Session %d of user alice." % i, "Reached target Timers.",
                            "eth0: link up", "(root) CMD (command -v debian-sa1 > /dev/null)",
                            "DHCPACK of 10.0.0.%d" % t.rnd.randrange(2, 250),
                            "Finished Daily apt upgrade and clean activities.",
                            "message repeated %d times" % t.rnd.randrange(2, 9)])
        out.append("%s %2d %02d:%02d:%02d %s %s: %s\n" % (MON[d.month - 1], d.day, d.hour, d.minute,
                                                           d.second, host, p, msg))
    return "".join(out)


def auth_lines(t, host, n, failed=True, start=ts(2024, 5, 2)[0], prog="sshd"):
    out = []
    s = start
    for i in range(n):
        s += t.rnd.randrange(1, 200)
        d = dt.datetime.fromtimestamp(s, dt.timezone.utc)
        pid = t.rnd.randrange(1000, 60000)
        if failed and i % 4 == 1:
            msg = "Failed password for root from 203.0.113.7 port %d ssh2" % t.rnd.randrange(30000, 65000)
        elif i % 4 == 2:
            msg = "Accepted publickey for alice from 198.51.100.%d port %d ssh2: ED25519 SHA256:abc%d" % (
                t.rnd.randrange(2, 250), t.rnd.randrange(30000, 65000), i)
        else:
            msg = "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)"
        out.append("%s %2d %02d:%02d:%02d %s %s[%d]: %s\n" % (MON[d.month - 1], d.day, d.hour, d.minute,
                                                                d.second, host, prog, pid, msg))
    return "".join(out)


def access_lines(t, n):
    out = []
    for i in range(n):
        ip = "192.0.2.%d" % t.rnd.randrange(1, 255)
        path = t.rnd.choice(["/", "/index.html", "/api/v1/items", "/login", "/static/app.js", "/wp-admin"])
        code = t.rnd.choice([200, 200, 200, 301, 404, 500])
        out.append('%s - - [%02d/May/2024:%02d:%02d:%02d +0000] "GET %s HTTP/1.1" %d %d "-" "curl/8.%d"\n' % (
            ip, 1 + i % 28, i % 24, i % 60, (i * 7) % 60, path, code, t.rnd.randrange(100, 9000), i % 9))
    return "".join(out)


def app_lines(t, n, tag="server"):
    lv = ["INFO", "INFO", "DEBUG", "WARN", "ERROR"]
    return "".join("2024-05-%02dT%02d:%02d:%02d.%03dZ %-5s [%s] request id=%06d took %dms\n" % (
        1 + i % 28, i % 24, i % 60, (i * 13) % 60, i % 1000, t.rnd.choice(lv), tag, i, t.rnd.randrange(1, 900))
        for i in range(n))


def gz(data):
    if isinstance(data, str):
        data = data.encode()
    return gzip.compress(data, compresslevel=9, mtime=0)


def xz(data):
    if isinstance(data, str):
        data = data.encode()
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64)


def hist(t, cmds, n):
    return "".join(t.rnd.choice(cmds) + "\n" for _ in range(n))


SHELL_CMDS = ["ls -la", "cd /var/www", "sudo systemctl restart nginx", "tail -f /var/log/syslog",
              "vim /etc/nginx/sites-enabled/default", "git pull", "docker ps", "df -h", "top",
              "curl -s http://localhost/healthz", "ssh bob@db01", "exit"]


def zsh_hist(t, n, start=ts(2024, 5, 3)[0]):
    return "".join(": %d:0;%s\n" % (start + i * 37, t.rnd.choice(SHELL_CMDS)) for i in range(n))


def fish_hist(t, n, start=ts(2024, 5, 4)[0]):
    return "".join("- cmd: %s\n  when: %d\n" % (t.rnd.choice(SHELL_CMDS), start + i * 41) for i in range(n))


def passwd(extra):
    base = ["root:x:0:0:root:/root:/bin/bash",
            "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
            "bin:x:2:2:bin:/bin:/usr/sbin/nologin",
            "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin",
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin"]
    return "\n".join(base + extra) + "\n"


# --------------------------------------------------------------------------
# trees
# --------------------------------------------------------------------------
def tree_gpt_root():
    t = Tree(101)
    h = "web01"
    t.file("/etc/hostname", "web01\n")
    t.file("/etc/os-release", 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\n'
           'VERSION="22.04.4 LTS (Jammy Jellyfish)"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\n'
           'HOME_URL="https://www.ubuntu.com/"\nUBUNTU_CODENAME=jammy\n')
    t.file("/etc/passwd", passwd(["alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash",
                                  "bob:x:1001:1001:Bob,,,:/home/bob:/usr/bin/fish",
                                  "postgres:x:114:120:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash"]))
    t.file("/etc/machine-id", "4c1e8b1f0c9a4d2e9f3b7a6d5c4b3a21\n")
    t.file("/etc/ssh/sshd_config", "Port 22\nPermitRootLogin no\nPasswordAuthentication yes\n")
    t.file("/var/log/auth.log", auth_lines(t, h, 40))
    t.file("/var/log/syslog", syslog_lines(t, h, 120))
    t.file("/var/log/syslog.1", syslog_lines(t, h, 80, start=ts(2024, 4, 20)[0]))
    t.file("/var/log/auth.log.2.gz", gz(auth_lines(t, h, 60, start=ts(2024, 4, 10)[0])))
    t.file("/var/log/nginx/access.log", access_lines(t, 100), t=ts(2040, 1, 2, 3, 4, 5, 123456789))
    t.file("/var/log/nginx/error.log", "2024/05/02 10:00:01 [error] 812#812: *1 open() \"/var/www/html/wp-admin\" failed (2: No such file or directory)\n")
    t.file("/var/log/apt/history.log", "\nStart-Date: 2024-05-01  06:12:01\nCommandline: apt-get -y upgrade\n"
           "Upgrade: openssl:amd64 (3.0.2-0ubuntu1.14, 3.0.2-0ubuntu1.15)\nEnd-Date: 2024-05-01  06:12:09\n")
    t.file("/var/log/journal/4c1e8b1f0c9a4d2e9f3b7a6d5c4b3a21/system.journal", b"LPKSHHRH" + t.rand(8184))
    t.file("/var/log/wtmp", t.rand(384 * 4))
    t.file("/var/log/btmp", t.rand(384 * 2))
    t.file("/var/log/lastlog", t.rand(292 * 3))
    t.file("/var/log/empty.log", b"", t=ts(1965, 3, 4, 5, 6, 7, 987654321))
    t.symlink("/etc/localtime", "/usr/share/zoneinfo/Etc/UTC")
    t.symlink("/var/log/nginx/current.log", "access.log")
    t.file("/root/.bash_history", hist(t, SHELL_CMDS, 30))
    t.file("/home/alice/.bash_history", hist(t, SHELL_CMDS, 50))
    t.file("/home/alice/.bash_history.1", hist(t, SHELL_CMDS, 20))
    t.file("/home/alice/.zsh_history", zsh_hist(t, 25))
    t.file("/home/alice/notes.txt", "remember: rotate the TLS cert\n")
    t.file("/home/alice/.bashrc", "alias ll='ls -alF'\nexport HISTSIZE=10000\n")
    t.file("/home/bob/.local/share/fish/fish_history", fish_hist(t, 15))
    t.file("/home/bob/.python_history", "import os\nprint(os.getcwd())\nexit()\n")
    t.file("/home/bob/.config/fish/config.fish", "set -gx EDITOR vim\n")
    t.file("/var/lib/postgresql/.psql_history", "select * from pg_stat_activity;\n\\dt\n\\q\n")
    t.file("/var/lib/postgresql/14/main/PG_VERSION", "14\n")
    t.file("/usr/bin/ls", b"\x7fELF\x02\x01\x01" + t.rand(40000))
    t.file("/usr/bin/bash", b"\x7fELF\x02\x01\x01" + t.rand(20000))
    t.file("/opt/app/data.bin", t.rand(30000))
    t.file("/opt/app/app.log.conf", "level=info\n")
    return t


def tree_data(seed, ns=True, homes=False):
    t = Tree(seed, ns=ns)
    t.file("/app/logs/server.log", app_lines(t, 150))
    t.file("/app/logs/server.log.1", app_lines(t, 100))
    t.file("/app/logs/server.log.2.gz", gz(app_lines(t, 200)))
    t.file("/app/logs/README", "rotated nightly by logrotate\n")
    t.file("/app/config.yaml", "listen: 0.0.0.0:8080\nlog_dir: /data/app/logs\n")
    t.file("/app/catalog.json", '{"items": []}\n')
    t.file("/nginx/access.log", access_lines(t, 60))
    t.file("/archive/old.log.2024-05-01", app_lines(t, 40, "old"))
    t.file("/archive/older.log.xz", xz(app_lines(t, 80, "older")))
    t.file("/archive/notes.log.bak", "not a log by name\n")
    t.file("/tomcat/logs/catalina.out", "01-May-2024 10:00:00.000 INFO [main] org.apache.catalina.startup.Catalina.start Server startup in [1234] milliseconds\n")
    t.file("/LogFiles/W3SVC1/u_ex240501.log", "#Software: Microsoft Internet Information Services 10.0\n#Fields: date time s-ip cs-method cs-uri-stem sc-status\n2024-05-01 00:00:01 10.0.0.5 GET / 200\n")
    t.file("/Service/Logs/trace.txt", "trace line 1\ntrace line 2\n")
    t.file("/kafka/00000000000000000000.log", t.rand(2000))
    t.file("/kafka/00000000000000000000.index", t.rand(200))
    t.file("/kafka/orders-0/00000000000000001234.log", t.rand(1500))
    t.file("/kafka/orders-0/1234567890123456789.log", "19 digits: not a kafka segment name\n")
    t.file("/db/data.bin", t.rand(12000))
    if homes:
        t.file("/dave/.bash_history", hist(t, SHELL_CMDS, 12))
        t.file("/dave/.zsh_history", zsh_hist(t, 8))
        t.file("/dave/.profile", "PATH=$HOME/bin:$PATH\n")
        t.file("/dave/deep/.bash_history", "not first-level\n")
    return t


def tree_mbr_root():
    t = Tree(201)
    h = "db01"
    t.file("/etc/sysconfig/network", "NETWORKING=yes\nHOSTNAME=db01\nGATEWAY=10.0.0.1\n")
    t.file("/etc/redhat-release", "CentOS Linux release 7.9.2009 (Core)\n")
    t.file("/etc/passwd", passwd(["carol:x:1000:1000:Carol:/home/carol:/bin/bash",
                                  "mysql:x:27:27:MySQL Server:/var/lib/mysql:/bin/false"]))
    t.file("/etc/my.cnf", "[mysqld]\ndatadir=/var/lib/mysql\n")
    t.file("/var/log/messages", syslog_lines(t, h, 150))
    t.file("/var/log/secure", auth_lines(t, h, 40))
    t.file("/var/log/cron", "May  1 00:01:01 db01 CROND[1234]: (root) CMD (run-parts /etc/cron.hourly)\n")
    t.file("/var/log/audit/audit.log", "type=USER_LOGIN msg=audit(1714521600.123:101): pid=1 uid=0 res=success\n")
    t.file("/var/log/maillog-20240501.gz", gz(syslog_lines(t, h, 30, prog=["postfix/smtpd[991]"])))
    t.file("/root/.bash_history", hist(t, SHELL_CMDS, 20))
    t.file("/home/carol/.bash_history", hist(t, SHELL_CMDS, 25))
    t.file("/home/carol/.bash_history~", hist(t, SHELL_CMDS, 5))
    t.file("/home/carol/.mysql_history", "show databases;\nuse shop;\nselect count(*) from orders;\n")
    t.file("/home/carol/.bash_logout", "clear\n")
    t.file("/home/carol/report.log", "a .log in a home dir is not a target on an OS root\n")
    t.file("/var/lib/mysql/ibdata1", t.rand(16000))
    t.file("/usr/sbin/mysqld", b"\x7fELF\x02\x01\x01" + t.rand(12000))
    return t


def tree_mbr_misc():
    t = Tree(206)
    t.file("/a.log", app_lines(t, 30, "a"))
    t.file("/b.log.1", app_lines(t, 20, "b"))
    t.file("/notes.txt", "misc notes\n")
    t.file("/dialog.log.bak", "backup, not matched\n")
    t.file("/catalog.dat", t.rand(3000))
    return t


def tree_mbr_p7():
    t = Tree(207)
    t.file("/journal.log", app_lines(t, 40, "journal"))
    t.file("/log/kern.txt", syslog_lines(t, "db01", 20, prog=["kernel"]))
    t.file("/LOGS/upper.txt", "case-insensitive logs dir\n")
    t.file("/blog/post.txt", "dir named blog is not a log dir\n")
    t.file("/readme.md", "# p7\n")
    return t


def tree_ext2():
    t = Tree(301, ns=False)
    t.file("/etc/HOSTNAME", "legacy01\n")
    t.file("/etc/passwd", passwd([]))
    t.file("/etc/inittab", "id:3:initdefault:\n")
    t.file("/bin/sh", b"\x7fELF\x01\x01\x01" + t.rand(6000))
    t.file("/var/log/messages", syslog_lines(t, "legacy01", 60))
    t.file("/root/.sh_history", "ls\nmount /dev/hda1 /mnt\n")
    t.file("/root/.ash_history", "cat /proc/cpuinfo\nreboot\n")
    t.file("/root/.profile", "PS1='# '\n")
    # 5 MiB of text: with 1 KiB blocks this needs single + double indirect blocks
    big = "".join("2024-05-01T%02d:%02d:%02dZ legacy01 big.log line %08d\n" % (
        (i // 3600) % 24, (i // 60) % 60, i % 60, i) for i in range(120000)).encode()[:5 * MiB]
    t.file("/var/log/big.log", big)
    K = 1024
    t.sparse("/var/log/sparse.log", 300 * K,
             [(20 * K, b"middle-chunk-A " * 200), (150 * K + 100, b"middle-chunk-B\n" * 300)])
    return t


def tree_edge():
    t = Tree(501)
    t.file("/etc/hostname", "edge01\n")
    t.file("/etc/passwd", passwd([]))
    t.file("/var/log/syslog", syslog_lines(t, "edge01", 60))
    t.file("/var/log/tiny.log", "inline\n")
    t.file("/var/log/small.log", "x" * 100 + "\n")  # fits inline (i_block + xattr area)
    t.file("/var/log/two-blocks.log", syslog_lines(t, "edge01", 80)[:6000])
    for i in range(5000):
        t.file("/var/log/big/f%05d.log" % i, "file %05d line\n" % i)
    t.file(b"/var/log/bad-\xff\xfe-name.log", "non-utf8 name\n")
    t.file("/var/log/percent%41.log", "literal percent in name\n")
    t.file("/var/log/tab\tname.log", "control char in name\n")
    t.file("/var/log/caf\xc3\xa9.log".encode("latin-1"), "utf-8 name\n")
    K = 1024
    t.sparse("/var/log/sparse.log", 64 * MiB,
             [(0, b"start of sparse file\n" * 100), (20 * MiB, b"twenty MiB marker\n" * 200),
              (64 * MiB - 4096, (b"last 4 KiB of sparse\n" * 200)[:4096])])
    # prealloc: blocks 0-3 data, 4-11 hole (fallocated later -> uninit extent), 12-15 data
    t.sparse("/var/log/prealloc.log", 64 * K,
             [(0, (b"prealloc head line\n" * 900)[:16 * K]), (48 * K, (b"prealloc tail line\n" * 900)[:16 * K])])
    # many extents: 700 x (4 KiB data, 4 KiB hole) -> extent tree with index nodes
    frag = Tree(5011)
    chunks = [(i * 8192, ("frag %04d " % i).encode() * 409 + b"\n\n") for i in range(700)]
    t.sparse("/var/log/fragmented.log", 700 * 8192 - 4096, chunks)
    t.symlink("/var/log/current", "syslog")
    t.symlink("/var/log/inline-symlink", "/var/log/" + "i" * 80 + ".log")
    t.symlink("/var/log/slow-symlink", "/var/log/" + "/".join(["deeply-nested-directory-%02d" % i for i in range(12)]) + "/target.log")
    t.symlink("/root/.bash_history_link", "/dev/null")
    t.file("/var/log/app.log", app_lines(t, 30, "app"))
    t.hardlink("/root/app-hardlink.log", "/var/log/app.log")
    t.file("/root/.bash_history", hist(t, SHELL_CMDS, 15))
    t.file("/usr/bin/true", b"\x7fELF" + t.rand(2000))
    return t


def tree_4k():
    t = Tree(701)
    t.file("/etc/hostname", "fourk01\n")
    t.file("/etc/os-release", 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n')
    t.file("/etc/passwd", passwd([]))
    t.file("/var/log/syslog", syslog_lines(t, "fourk01", 50))
    t.file("/var/log/kern.log", syslog_lines(t, "fourk01", 20, prog=["kernel"]))
    t.file("/var/log/dpkg.log", "2024-05-01 06:00:00 status installed base-files:amd64 12.4\n")
    t.file("/root/.bash_history", "lsblk\nblockdev --getss /dev/sda\n")
    t.file("/usr/bin/env", b"\x7fELF" + t.rand(3000))
    return t


# --------------------------------------------------------------------------
# filesystem creation
# --------------------------------------------------------------------------
def uid_for(path):
    for pre, uid in ((b"/home/alice", 1000), (b"/home/bob", 1001), (b"/home/carol", 1000),
                     (b"/var/lib/postgresql", 114), (b"/dave", 1002)):
        if path.startswith(pre):
            return uid
    return 0


def q(path: bytes) -> bytes:
    return b'"' + path + b'"'


def make_fs(work, name, tree, size, fstype, label, uuid, block, inode_size=256, features=None,
            post=None, dirindex=False):
    stage = os.path.join(work, name + ".stage")
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    tree.write(stage)
    img = os.path.join(work, name + ".fs")
    pattern_file(img, size)
    cmd = ["mke2fs", "-q", "-F", "-t", fstype, "-b", str(block), "-I", str(inode_size),
           "-L", label, "-U", uuid, "-m", "1",
           "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0,hash_seed=" + uuid[:-2] + "ff,root_owner=0:0"]
    if features:
        cmd += ["-O", features]
    cmd += ["-d", stage, img]
    run(cmd)
    if dirindex:
        run(["e2fsck", "-fyD", img], ok=(0, 1))
    if post:
        post(img)
    # fix times (mke2fs 1.47.0 -d drops nanoseconds and epoch bits) and owners
    cmds = []
    for kind, path, payload, t in tree.entries:
        if kind == "h":
            continue
        sec, ns = t
        lo = sec & 0xFFFFFFFF
        slo = lo - (1 << 32) if lo & 0x80000000 else lo
        epoch = ((sec - slo) >> 32) & 3
        for f in ("atime", "mtime", "ctime"):
            cmds.append(b"sif %s %s @%d" % (q(path), f.encode(), sec))
        if inode_size > 128:
            for f in ("atime", "mtime", "ctime", "crtime"):
                if f == "crtime":
                    cmds.append(b"sif %s crtime @%d" % (q(path), sec))
                cmds.append(b"sif %s %s_extra %d" % (q(path), f.encode(), (ns << 2) | epoch))
        u = uid_for(path)
        cmds.append(b"sif %s uid %d" % (q(path), u))
        cmds.append(b"sif %s gid %d" % (q(path), u))
    # directories (incl. root, lost+found) get one fixed time
    dirs = {b"/", b"/lost+found"}
    for kind, path, payload, t in tree.entries:
        p = os.path.dirname(path)
        while p not in (b"/", b""):
            dirs.add(p)
            p = os.path.dirname(p)
    for d in sorted(dirs):
        for f in ("atime", "mtime", "ctime") + (("crtime",) if inode_size > 128 else ()):
            cmds.append(b"sif %s %s @%d" % (q(d), f.encode(), DIR_TIME[0]))
            if inode_size > 128:
                cmds.append(b"sif %s %s_extra 0" % (q(d), f.encode()))
        u = uid_for(d)
        cmds.append(b"sif %s uid %d" % (q(d), u))
        cmds.append(b"sif %s gid %d" % (q(d), u))
    cf_ = os.path.join(work, name + ".debugfs")
    with open(cf_, "wb") as f:
        f.write(b"\n".join(cmds) + b"\n")
    p = subprocess.run(["debugfs", "-w", "-f", cf_, img], env=ENV, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    err = [l for l in p.stderr.decode(errors="replace").splitlines() if l and not l.startswith("debugfs 1.")]
    if p.returncode or err:
        sys.stderr.write("debugfs fix-up errors for %s:\n%s\n" % (name, "\n".join(err[:20])))
        raise SystemExit(2)
    rc = subprocess.run(["e2fsck", "-fn", img], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if rc.returncode != 0:
        sys.stderr.write("e2fsck -fn %s failed:\n%s\n" % (name, rc.stdout.decode(errors="replace")))
        raise SystemExit(2)
    return img, stage


def embed(disk, fsimg, offset):
    with open(disk, "r+b") as d, open(fsimg, "rb") as f:
        d.seek(offset)
        shutil.copyfileobj(f, d, MiB)


# --------------------------------------------------------------------------
# oracle
# --------------------------------------------------------------------------
FLS_RE = re.compile(rb"^(\S)/(\S) (?:\* )?(\d+)(?:\(realloc\))?:\t(.*)$")


def tsk_args(sector, off_sectors):
    a = []
    if sector != 512:
        a += ["-b", str(sector)]
    if off_sectors:
        a += ["-o", str(off_sectors)]
    return a


def decode_time(lo_hex, extra_hex):
    lo = int(lo_hex, 16)
    sec = lo - (1 << 32) if lo & 0x80000000 else lo
    ns = 0
    if extra_hex is not None:
        ex = int(extra_hex, 16)
        sec += (ex & 3) << 32
        ns = ex >> 2
    return sec, ns


def debugfs_stats(fsimg, inos):
    cmdf = fsimg + ".stat-cmds"
    with open(cmdf, "w") as f:
        for i in inos:
            f.write("stat <%d>\n" % i)
    out = run(["debugfs", "-f", cmdf, fsimg]).decode("latin-1")
    res = {}
    cur = None
    for line in out.splitlines():
        m = re.match(r"^debugfs: stat <(\d+)>", line)
        if m:
            cur = int(m.group(1))
            res[cur] = {"text": []}
            continue
        if cur is None:
            continue
        res[cur]["text"].append(line)
        m = re.match(r"^\s*mtime: 0x([0-9a-f]+)(?::([0-9a-f]+))? --", line)
        if m:
            res[cur]["mtime"] = decode_time(m.group(1), m.group(2))
        m = re.search(r"Size: (\d+)\s*$", line)
        if m and "size" not in res[cur]:
            res[cur]["size"] = int(m.group(1))
        m = re.match(r"^Inode: \d+\s+Type: (\S+)", line)
        if m:
            res[cur]["type"] = m.group(1)
    return res


def tsk_istat_mtime(img, targs, ino):
    out = run(["istat"] + targs + [img, str(ino)]).decode("latin-1")
    m = re.search(r"File Modified:\t(\S+ \S+) ", out)
    if not m:
        return None
    v = m.group(1)
    return v if "." in v else v + ".000000000"


def fmt_tsk_time(sec, ns):
    try:
        d = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=sec)
        return d.strftime("%Y-%m-%d %H:%M:%S") + ".%09d" % ns
    except OverflowError:
        return "?"


def is_os_root(staging):
    p = set(staging)
    def has(prefix):
        return any(x == prefix or x.startswith(prefix + b"/") for x in p)
    return has(b"/etc") and (any(x in p for x in (b"/etc/os-release", b"/etc/hostname", b"/etc/HOSTNAME",
                                                   b"/etc/sysconfig/network")) or has(b"/bin") or has(b"/usr"))


HIST_NAMES = [b".bash_history", b".bash_history~", b".zsh_history", b".zsh_history~", b".zhistory",
              b".zhistory~", b".sh_history", b".ash_history", b".local/share/fish/fish_history",
              b".python_history", b".mysql_history", b".psql_history", b".sqlite_history"]
HIST_PREFIX = [b".bash_history.", b".zsh_history.", b".zhistory."]


def is_hist(rel):
    if rel in HIST_NAMES:
        return True
    return any(rel.startswith(p) and len(rel) > len(p) and b"/" not in rel for p in HIST_PREFIX)


def homes_of(staging):
    homes = {b"/root"}
    for p in staging:
        m = re.match(rb"^(/home/[^/]+)/", p)
        if m:
            homes.add(m.group(1))
    pw = staging.get(b"/etc/passwd")
    if pw is not None:
        for line in pw["content"].splitlines():
            f = line.split(b":")
            if len(f) >= 6 and f[5].startswith(b"/") and f[5] != b"/":
                homes.add(f[5].rstrip(b"/"))
    return homes


LOGNAME_RE = re.compile(rb"^.*\.log(\.\d+)?(\.gz)?$|^.*\.log\.xz$|^.*\.log\.\d{4}-\d{2}-\d{2}$", re.S)
KAFKA_RE = re.compile(rb"^\d{20}\.log$")


def expect(path, typ, os_root, homes):
    if typ != "r":
        return "skip"
    if path.startswith(b"/lost+found/"):
        return "skip"
    if os_root:
        if path.startswith(b"/var/log/"):
            return "extract"
        for h in homes:
            if path.startswith(h + b"/") and is_hist(path[len(h) + 1:]):
                return "extract"
        return "skip"
    name = path.rsplit(b"/", 1)[1]
    if KAFKA_RE.match(name):
        return "skip"
    if LOGNAME_RE.match(name):
        return "extract"
    dirs = path.split(b"/")[1:-1]
    if any(d.lower() in (b"log", b"logs", b"logfiles") for d in dirs):
        return "extract"
    parts = path.split(b"/")
    if len(parts) >= 3 and is_hist(b"/".join(parts[2:])):
        return "extract"
    return "skip"


def oracle(img, sector, off_bytes, fsimg, stage, notes, label):
    """Return list of rows for one filesystem."""
    assert off_bytes % sector == 0
    targs = tsk_args(sector, off_bytes // sector)
    out = run(["fls", "-r", "-p", "-u"] + targs + [img])
    tsk = {}
    for line in out.split(b"\n"):
        if not line:
            continue
        m = FLS_RE.match(line)
        if not m:
            raise SystemExit("cannot parse fls line: %r" % line)
        nt, mt, ino, name = m.group(1), m.group(2), int(m.group(3)), m.group(4)
        if name.startswith(b"$OrphanFiles") or mt not in (b"r", b"l"):
            continue
        tsk[b"/" + name] = (mt.decode(), ino)
    staging = walk_staging(stage)
    for p, v in staging.items():
        if v["type"] == "r" and p in (b"/etc/passwd",):
            with open(os.fsencode(stage) + p, "rb") as f:
                v["content"] = f.read()
    # match TSK names to staging names
    rows = {}
    unmatched = [p for p in tsk if p not in staging]
    for p in unmatched:
        mt, ino = tsk.pop(p)
        # resolve via debugfs ncheck
        nc = run(["debugfs", "-R", "ncheck %d" % ino, fsimg]).split(b"\n")[1:]
        names = [l.split(b"\t", 1)[1] for l in nc if l.strip()]
        cand = [n for n in names if n in staging and n not in tsk]
        if len(cand) != 1:
            raise SystemExit("%s: TSK path %r (inode %d) not in staging; debugfs says %r" % (label, p, ino, names))
        notes.append("%s: fls prints path %s as %s (inode %d); debugfs/staging name used" % (
            label, pct(cand[0]), pct(p), ino))
        tsk[cand[0]] = (mt, ino)
    missing = set(staging) - set(tsk)
    if missing:
        raise SystemExit("%s: files in staging but not listed by fls: %r" % (label, sorted(missing)[:10]))
    inos = sorted({v[1] for v in tsk.values()})
    dstat = debugfs_stats(fsimg, inos)

    def one(p):
        typ, ino = tsk[p]
        s = staging[p]
        ip = subprocess.run(["icat"] + targs + [img, str(ino)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
        data = ip.stdout
        r = dict(path=p, type=typ, inode=ino)
        note = []
        if ip.returncode != 0:
            note.append("%s: icat fails on %s (inode %d): %s (got %d bytes); debugfs dump used" % (
                label, pct(p), ino, " ".join(ip.stderr.decode(errors="replace").split()), len(data)))
        if typ != s["type"]:
            raise SystemExit("%s: type mismatch for %r" % (label, p))
        if typ == "r":
            sha = hashlib.sha256(data).hexdigest()
            if sha != s["sha256"] or len(data) != s["size"]:
                # consult debugfs dump
                tmpf = fsimg + ".dump"
                run(["debugfs", "-R", "dump -p <%d> %s" % (ino, tmpf), fsimg])
                with open(tmpf, "rb") as f:
                    dd = f.read()
                os.unlink(tmpf)
                if hashlib.sha256(dd).hexdigest() != s["sha256"]:
                    raise SystemExit("%s: content of %r differs between staging and debugfs" % (label, p))
                if ip.returncode != 0:
                    diff = []
                else:
                  diff = [i for i in range(0, min(len(dd), len(data)), 4096) if dd[i:i + 4096] != data[i:i + 4096]]
                if ip.returncode == 0:
                  note.append("%s: icat output for %s (inode %d) differs from staging/debugfs dump "
                            "(icat %d bytes sha256 %s..., truth %d bytes sha256 %s...; differing 4 KiB "
                            "chunks at offsets %s; icat bytes there start %r)" % (
                                label, pct(p), ino, len(data), sha[:12], len(dd), s["sha256"][:12],
                                ",".join(str(x) for x in diff[:8]) + ("..." if len(diff) > 8 else ""),
                                data[diff[0]:diff[0] + 16] if diff else b""))
            r.update(size=s["size"], sha256=s["sha256"], target=b"")
        else:
            if data != s["target"]:
                note.append("%s: icat of symlink %s gives %r, staging target %r" % (label, pct(p), data, s["target"]))
            r.update(size=len(s["target"]), sha256="", target=s["target"])
        ds = dstat[ino]
        if ds.get("size") != r["size"]:
            raise SystemExit("%s: debugfs size %r != %r for %r" % (label, ds.get("size"), r["size"], p))
        if ds["mtime"] != s["mtime"]:
            raise SystemExit("%s: debugfs mtime %r != staging %r for %r" % (label, ds["mtime"], s["mtime"], p))
        r["mtime"] = s["mtime"]
        return r, note

    paths = sorted(tsk)
    with cf.ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as ex:
        results = list(ex.map(one, paths))
    # TSK istat view of mtimes, on a sample: every file outside the 5000-file dir
    sample = [p for p in paths if not p.startswith(b"/var/log/big/")] + [p for p in paths if p.startswith(b"/var/log/big/")][:3]
    def ist(p):
        return p, tsk_istat_mtime(img, targs, tsk[p][1])
    with cf.ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as ex:
        istats = dict(ex.map(ist, sample))
    os_root = is_os_root(staging)
    homes = homes_of(staging) if os_root else set()
    rows = []
    for r, note in results:
        notes.extend(note)
        p = r["path"]
        if p in istats:
            want = fmt_tsk_time(*r["mtime"])
            if istats[p] != want:
                notes.append("%s: istat mtime for %s is %s, on-disk value (debugfs/staging) is %s" % (
                    label, pct(p), istats[p], want))
        r["expect"] = expect(p, r["type"], os_root, homes)
        rows.append(r)
    return rows, os_root, staging


def fs_kind(fsimg):
    out = run(["dumpe2fs", "-h", fsimg]).decode(errors="replace")
    feats = re.search(r"Filesystem features:\s*(.*)", out).group(1).split()
    label = re.search(r"Filesystem volume name:\s*(.*)", out).group(1).strip()
    if label == "<none>":
        label = ""
    if any(f in feats for f in ("extent", "extents", "64bit", "flex_bg", "huge_file", "inline_data",
                                "metadata_csum", "dir_nlink", "extra_isize")):
        return "ext4", label
    if "has_journal" in feats:
        return "ext3", label
    return "ext2", label


def hostname_of(staging, stage):
    base = os.fsencode(stage)
    for p in (b"/etc/hostname", b"/etc/HOSTNAME"):
        if p in staging:
            return open(base + p, "rb").read().strip().decode()
    if b"/etc/sysconfig/network" in staging:
        for line in open(base + b"/etc/sysconfig/network", "rb").read().decode().splitlines():
            if line.startswith("HOSTNAME="):
                return line.split("=", 1)[1].strip()
    return ""


def write_listing(path, fsrows):
    with open(path, "w", newline="\n") as f:
        f.write("offset\tpath\ttype\tinode\tsize\tsha256\tmtime\ttarget\texpect\n")
        for off, rows in fsrows:
            for r in sorted(rows, key=lambda r: r["path"]):
                sec, ns = r["mtime"]
                f.write("%s\t%s\t%s\t%d\t%d\t%s\t%d.%09d\t%s\t%s\n" % (
                    off, pct(r["path"]), r["type"], r["inode"], r["size"], r["sha256"], sec, ns,
                    pct(r["target"]), r["expect"]))


# --------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------
def gzip_to(src, dst):
    with open(src, "rb") as f, open(dst, "wb") as o:
        with gzip.GzipFile(filename="", mode="wb", fileobj=o, compresslevel=9, mtime=0) as g:
            shutil.copyfileobj(f, g, MiB)


def sfdisk_layout(disk, sector=512):
    args = ["sfdisk", "-J"]
    if sector != 512:
        args += ["--sector-size", str(sector)]
    j = json.loads(run(args + [disk]))
    return j["partitiontable"]


class Ctx:
    def __init__(self, work, out):
        self.work, self.out = work, out
        self.volumes = []
        self.notes = []
        self.raw = {}

    def finish(self, name, disk, fslist, sector, ptable):
        """fslist: [(offset_bytes, fsimg, stage)]"""
        fsrows = []
        for off, fsimg, stage in fslist:
            rows, os_root, staging = oracle(disk, sector, off, fsimg, stage, self.notes, "%s@%d" % (name, off))
            fsrows.append((off, rows))
            kind, label = fs_kind(fsimg)
            self.volumes.append((name, off, os.path.getsize(fsimg), kind, label, "yes" if os_root else "no",
                                 hostname_of(staging, stage) if os_root else "", ptable, sector))
        write_listing(os.path.join(self.out, "expected", name + ".tsv"), fsrows)
        self.raw[name] = disk


def build_linux_gpt(c):
    disk = os.path.join(c.work, "linux-gpt.img")
    pattern_file(disk, 48 * MiB)
    run(["sgdisk", "-o", "-U", "5eed0001-0000-4000-8000-000000000001",
         "-n", "1:2048:+28M", "-t", "1:8300", "-c", "1:root", "-u", "1:5eed0001-0000-4000-8000-0000000000a1",
         "-n", "2:0:0", "-t", "2:8300", "-c", "2:data", "-u", "2:5eed0001-0000-4000-8000-0000000000a2", disk])
    pt = sfdisk_layout(disk)
    p1, p2 = pt["partitions"][0], pt["partitions"][1]
    fs1, st1 = make_fs(c.work, "linux-gpt.p1", tree_gpt_root(), p1["size"] * 512, "ext4", "root",
                       "5eed0001-1111-4000-8000-000000000001", 4096)
    fs2, st2 = make_fs(c.work, "linux-gpt.p2", tree_data(102), p2["size"] * 512, "ext4", "data",
                       "5eed0001-2222-4000-8000-000000000002", 1024)
    embed(disk, fs1, p1["start"] * 512)
    embed(disk, fs2, p2["start"] * 512)
    c.finish("linux-gpt", disk, [(p1["start"] * 512, fs1, st1), (p2["start"] * 512, fs2, st2)], 512, "gpt")


def build_linux_mbr(c):
    disk = os.path.join(c.work, "linux-mbr.img")
    pattern_file(disk, 64 * MiB)
    script = ("label: dos\nlabel-id: 0x5eed0002\nunit: sectors\n\n"
              "start=2048, size=49152, type=83, bootable\n"
              "start=51200, type=5\n"
              "size=32768, type=83\n"
              "size=16384, type=83\n"
              "type=83\n")
    run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", "--wipe", "never", disk], input=script.encode())
    pt = sfdisk_layout(disk)
    parts = {int(re.search(r"(\d+)$", p["node"]).group(1)): p for p in pt["partitions"]}
    specs = [
        (1, tree_mbr_root(), "ext4", "rootfs", 4096, 256, None),
        (5, tree_data(205, homes=False), "ext3", "applogs", 1024, 256, None),
        (6, tree_mbr_misc(), "ext2", "misc", 1024, 128, None),
        (7, tree_mbr_p7(), "ext4", "extra", 1024, 256, None),
    ]
    fl = []
    for n, tree, typ, label, bs, isz, feat in specs:
        p = parts[n]
        if isz == 128:
            tree.ns = False
            tree.entries = [(k, pa, pl, (t[0], 0) if t else t) for k, pa, pl, t in tree.entries]
        fsimg, st = make_fs(c.work, "linux-mbr.p%d" % n, tree, p["size"] * 512, typ, label,
                            "5eed0002-%04d-4000-8000-000000000000" % n, bs, isz, feat)
        embed(disk, fsimg, p["start"] * 512)
        fl.append((p["start"] * 512, fsimg, st))
    c.finish("linux-mbr", disk, fl, 512, "mbr")


def build_ext2_bare(c):
    fsimg, st = make_fs(c.work, "ext2-bare", tree_ext2(), 8 * MiB, "ext2", "legacy",
                        "5eed0003-0000-4000-8000-000000000003", 1024, 128)
    disk = os.path.join(c.work, "ext2-bare.img")
    shutil.copyfile(fsimg, disk)
    c.finish("ext2-bare", disk, [(0, fsimg, st)], 512, "none")


def build_ext3_bare(c):
    fsimg, st = make_fs(c.work, "ext3-bare", tree_data(401, homes=True), 8 * MiB, "ext3", "applogs3",
                        "5eed0004-0000-4000-8000-000000000004", 1024, 256)
    disk = os.path.join(c.work, "ext3-bare.img")
    shutil.copyfile(fsimg, disk)
    c.finish("ext3-bare", disk, [(0, fsimg, st)], 512, "none")


def edge_post(img):
    # find the hole blocks 4..11 of prealloc.log and fallocate them (uninit extent)
    run(["debugfs", "-w", "-R", "fallocate /var/log/prealloc.log 4 11", img])
    st = run(["debugfs", "-R", "stat /var/log/prealloc.log", img]).decode()
    if "[u]" not in st and "Uninit" not in st:
        raise SystemExit("prealloc.log has no uninit extent:\n" + st)


def build_ext4_edge(c):
    fsimg, st = make_fs(c.work, "ext4-edge", tree_edge(), 32 * MiB, "ext4", "edge",
                        "5eed0005-0000-4000-8000-000000000005", 4096, 256, "inline_data,metadata_csum,64bit",
                        post=edge_post, dirindex=True)
    disk = os.path.join(c.work, "ext4-edge.img")
    shutil.copyfile(fsimg, disk)
    c.finish("ext4-edge", disk, [(0, fsimg, st)], 512, "none")


def write_gpt(disk, sector, disk_guid, parts):
    """Minimal GPT writer (sfdisk 2.38 has no --sector-size; sgdisk assumes 512 on files).
    parts: [(first_lba, last_lba, type_guid, uuid, name)].  Returns nothing."""
    import struct
    import uuid as U
    import zlib
    size = os.path.getsize(disk)
    nlba = size // sector
    last = nlba - 1
    ent_size, nent = 128, 128
    ent_sectors = (ent_size * nent + sector - 1) // sector
    entries = bytearray(ent_size * nent)
    for i, (first, lastp, tg, ug, name) in enumerate(parts):
        e = U.UUID(tg).bytes_le + U.UUID(ug).bytes_le + struct.pack("<QQQ", first, lastp, 0)
        e += name.encode("utf-16-le").ljust(72, b"\0")
        entries[i * ent_size:(i + 1) * ent_size] = e
    ecrc = zlib.crc32(bytes(entries)) & 0xFFFFFFFF

    def header(cur, backup, ent_lba):
        h = struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x00010000, 92, 0, 0, cur, backup,
                        2 + ent_sectors, last - 1 - ent_sectors, U.UUID(disk_guid).bytes_le, ent_lba,
                        nent, ent_size, ecrc)
        crc = zlib.crc32(h) & 0xFFFFFFFF
        h = h[:16] + struct.pack("<I", crc) + h[20:]
        return h.ljust(sector, b"\0")

    mbr = bytearray(sector)
    mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1,
                               min(nlba - 1, 0xFFFFFFFF))
    mbr[510:512] = b"\x55\xaa"
    ent_pad = bytes(entries).ljust(ent_sectors * sector, b"\0")
    with open(disk, "r+b") as f:
        f.seek(0)
        f.write(bytes(mbr))
        f.write(header(1, last, 2))
        f.write(ent_pad)
        f.seek((last - ent_sectors) * sector)
        f.write(ent_pad)
        f.write(header(last, 1, last - ent_sectors))


def build_gpt4k(c):
    disk = os.path.join(c.work, "linux-gpt4k.img")
    SS = 4096
    pattern_file(disk, 16 * MiB)
    first, last = 256, 4090  # 1 MiB aligned start .. last usable LBA (4096 - 1 - 1 - 4)
    write_gpt(disk, SS, "5eed0007-0000-4000-8000-000000000007",
              [(first, last, "0fc63daf-8483-4772-8e79-3d69d8477de4", "5eed0007-0000-4000-8000-0000000000a1", "root")])
    # independent checks of the partition table
    mm = run(["mmls", "-b", str(SS), disk]).decode()
    if not re.search(r"0*%d\s+0*%d\s+0*%d\s+root" % (first, last, last - first + 1), mm):
        raise SystemExit("mmls does not see the 4Kn partition:\n" + mm)
    fd = run(["fdisk", "-b", str(SS), "-l", disk]).decode()
    if "%d %d %d" % (first, last, last - first + 1) not in " ".join(fd.split()):
        raise SystemExit("fdisk does not see the 4Kn partition:\n" + fd)
    fsimg, st = make_fs(c.work, "linux-gpt4k.p1", tree_4k(), (last - first + 1) * SS, "ext4", "root",
                        "5eed0007-1111-4000-8000-000000000007", 4096, 256)
    embed(disk, fsimg, first * SS)
    c.finish("linux-gpt4k", disk, [(first * SS, fsimg, st)], SS, "gpt")


SPLIT_AT = 30 * MiB + 3 * 512  # sector-aligned, inside partition 2, not 1 KiB/4 KiB aligned to the fs


def build_split(c):
    src = c.raw["linux-gpt"]
    a = os.path.join(c.work, "split-gpt.001")
    b = os.path.join(c.work, "split-gpt.002")
    with open(src, "rb") as f:
        with open(a, "wb") as o:
            o.write(f.read(SPLIT_AT))
        with open(b, "wb") as o:
            shutil.copyfileobj(f, o, MiB)
    shutil.copyfile(os.path.join(c.out, "expected", "linux-gpt.tsv"), os.path.join(c.out, "expected", "split-gpt.tsv"))
    for v in [v for v in c.volumes if v[0] == "linux-gpt"]:
        c.volumes.append(("split-gpt",) + v[1:])
    c.raw["split-gpt.001"] = a
    c.raw["split-gpt.002"] = b


BUILDERS = [("linux-gpt", build_linux_gpt), ("linux-mbr", build_linux_mbr), ("ext2-bare", build_ext2_bare),
            ("ext3-bare", build_ext3_bare), ("ext4-edge", build_ext4_edge), ("split-gpt", build_split),
            ("linux-gpt4k", build_gpt4k)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--work")
    ap.add_argument("--no-images", action="store_true", help="only write expected/ (for --check)")
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    os.makedirs(os.path.join(out, "expected"), exist_ok=True)
    work = a.work or tempfile.mkdtemp(prefix="snapsift-img-")
    os.makedirs(work, exist_ok=True)
    c = Ctx(work, out)
    try:
        for name, fn in BUILDERS:
            sys.stderr.write("building %s\n" % name)
            fn(c)
        with open(os.path.join(out, "expected", "volumes.tsv"), "w") as f:
            f.write("image\toffset\tsize\tfstype\tlabel\tos_root\thostname\tptable\tsector_size\n")
            for (img, off, size, kind, label, osr, host, pt, ss) in c.volumes:
                f.write("%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\n" % (img, off, size, kind, label, osr, host, pt, ss))
        with open(os.path.join(out, "expected", "tsk-notes.txt"), "w") as f:
            f.write("# Places where sleuthkit %s disagrees with the staging tree / debugfs.\n"
                    "# The listings use the staging/debugfs value.\n" % run(["fls", "-V"]).decode().strip())
            for n in sorted(set(c.notes)):
                f.write(n + "\n")
        if not a.no_images:
            for name, raw in c.raw.items():
                dst = os.path.join(out, name + (".gz" if name.startswith("split-") else ".img.gz"))
                gzip_to(raw, dst)
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
