#!/usr/bin/env python3
"""Build the NTFS test images and their expected listings (run by build-ntfs.sh).

Each image is a bare NTFS volume made with mkntfs on a file pre-filled with
the SNAPSIFT-STALE pattern (`-Q`: mkntfs then does not zero the data area, so
a reader returning unallocated or uninitialised clusters gets a wrong hash),
populated through an ntfs-3g FUSE mount, unmounted, then listed by an
independent reader: sleuthkit `fls -r -p -u` + `icat` (content) + `istat`
(SI modified time, 100 ns), cross-checked against a read-only ntfs-3g mount
(stat, sha256). Disagreements go to expected/ntfs-notes.txt; the listing
uses the mount's value.
"""
import argparse
import gzip
import hashlib
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build import PATTERN, pattern_file, pct, sfdisk_layout  # noqa: E402  (shared with the ext builder)
MiB = 1 << 20
ENV = dict(os.environ, TZ="UTC", LC_ALL="C")
SAMPLES = "/work/shared/samples/evtx"


def run(cmd, ok=(0,), **kw):
    p = subprocess.run(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if p.returncode not in ok:
        sys.stderr.write("command failed (%d): %s\n%s\n%s\n" % (
            p.returncode, " ".join(map(str, cmd)), p.stdout.decode(errors="replace")[-3000:],
            p.stderr.decode(errors="replace")[-3000:]))
        raise SystemExit(2)
    return p.stdout


def text_lines(rnd, n, fmt):
    return "".join(fmt % (i, rnd.randrange(1000)) for i in range(n)).encode()


def reparse_symlink(target, relative):
    t = target.encode("utf-16-le")
    body = bytes()
    # SubstituteName then PrintName, both the same text.
    hdr = (0).to_bytes(2, "little") + len(t).to_bytes(2, "little") + len(t).to_bytes(2, "little") + \
        len(t).to_bytes(2, "little") + (1 if relative else 0).to_bytes(4, "little")
    body = hdr + t + t
    return (0xA000000C).to_bytes(4, "little") + len(body).to_bytes(2, "little") + b"\0\0" + body


def reparse_junction(subst, printname):
    s = subst.encode("utf-16-le")
    p = printname.encode("utf-16-le")
    hdr = (0).to_bytes(2, "little") + len(s).to_bytes(2, "little") + (len(s) + 2).to_bytes(2, "little") + \
        len(p).to_bytes(2, "little")
    body = hdr + s + b"\0\0" + p + b"\0\0"
    return (0xA0000003).to_bytes(4, "little") + len(body).to_bytes(2, "little") + b"\0\0" + body


def setx(name, value, path, hexval=False):
    v = "0x" + value.hex() if hexval else value
    run(["setfattr", "-h", "-n", name, "-v", v, path])


# --------------------------------------------------------------------------
# a minimal SYSTEM registry hive (regf) with a computer name
# --------------------------------------------------------------------------
def make_hive(tree, filename):
    """A one-bin regf hive: `tree(nk, vk, sz, u32)` returns the root key."""
    cells = bytearray()

    def alloc(data):
        size = (4 + len(data) + 7) & ~7
        off = 32 + len(cells)  # after the hbin header
        cells.extend((-size).to_bytes(4, "little", signed=True) + data + bytes(size - 4 - len(data)))
        return off

    def u32(v):
        return (v & 0xFFFFFFFF).to_bytes(4, "little")

    def vk(name, typ, data):
        n = name.encode()
        if len(data) <= 4:
            size, doff = 0x80000000 | len(data), int.from_bytes(data.ljust(4, b"\0"), "little")
        else:
            size, doff = len(data), alloc(data)
        return alloc(b"vk" + len(n).to_bytes(2, "little") + u32(size) + u32(doff) + u32(typ) +
                     (1).to_bytes(2, "little") + b"\0\0" + n)

    def nk(name, children=(), values=(), flags=0x20):
        n = name.encode()
        sub = 0xFFFFFFFF
        if children:
            kids = sorted(children, key=lambda c: c[0].upper())
            sub = alloc(b"lf" + len(kids).to_bytes(2, "little") +
                        b"".join(u32(off) + nm.encode()[:4].ljust(4, b"\0") for nm, off in kids))
        vl = 0xFFFFFFFF
        if values:
            vl = alloc(b"".join(u32(v) for v in values))
        b = bytearray(0x4C)
        b[0:2] = b"nk"
        b[2:4] = flags.to_bytes(2, "little")
        b[0x10:0x14] = u32(0)
        b[0x14:0x18] = u32(len(children))
        b[0x1C:0x20] = u32(sub)
        b[0x20:0x24] = u32(0xFFFFFFFF)
        b[0x24:0x28] = u32(len(values))
        b[0x28:0x2C] = u32(vl)
        b[0x2C:0x30] = u32(0xFFFFFFFF)
        b[0x30:0x34] = u32(0xFFFFFFFF)
        b[0x48:0x4A] = len(n).to_bytes(2, "little")
        me = alloc(bytes(b) + n)
        for _, off in children:
            # Parent pointer of each child (cell data starts 4 bytes in).
            cells[off - 32 + 4 + 0x10:off - 32 + 4 + 0x14] = u32(me)
        return (name, me)

    def sz(text):
        return (text + "\0").encode("utf-16-le")

    root = tree(nk, vk, sz, u32)
    bins = 4096 * ((32 + len(cells) + 8 + 4095) // 4096)
    free = bins - 32 - len(cells)
    cells.extend(free.to_bytes(4, "little") + bytes(free - 4))
    hbin = b"hbin" + u32(0) + u32(bins) + bytes(20) + cells
    base = bytearray(4096)
    base[0:4] = b"regf"
    base[4:12] = u32(1) + u32(1)
    base[0x14:0x24] = u32(1) + u32(5) + u32(0) + u32(1)
    base[0x24:0x30] = u32(root[1]) + u32(bins) + u32(1)
    name = filename.encode("utf-16-le")[:64]
    base[0x30:0x30 + len(name)] = name
    x = 0
    for i in range(0, 508, 4):
        x ^= int.from_bytes(base[i:i + 4], "little")
    base[0x1FC:0x200] = u32(x)
    return bytes(base) + hbin


def mounted_gpt(guid):
    """A MountedDevices value for a GPT partition: `DMIO:ID:` + its unique GUID."""
    import uuid as U
    return b"DMIO:ID:" + U.UUID(guid).bytes_le


def mounted_mbr(signature, offset):
    """A MountedDevices value for an MBR partition (12 bytes): the disk
    signature, then the partition's byte offset on the disk."""
    return struct.pack("<IQ", signature, offset)


def system_hive(computer, stale="STALE-NAME", mounted=(), eventlog_files=()):
    """Select\\Current = 2; ControlSet001 holds a stale name, ControlSet002
    the real one, so a reader must follow Select\\Current. `mounted`:
    (value name, data) pairs for MountedDevices (`\\DosDevices\\C:`,
    `mounted_gpt(…)`)."""

    def tree(nk, vk, sz, u32):
        def control_set(name, cname, logs=()):
            leaf = nk("ComputerName", values=[vk("ComputerName", 1, sz(cname))])
            # Services\EventLog\<log>\File (REG_EXPAND_SZ): where each log is kept.
            eventlog = nk("EventLog", [nk(log, values=[vk("File", 2, sz(f))]) for log, f in logs])
            return nk(name, [nk("Control", [nk("ComputerName", [leaf]), nk("TimeZoneInformation")]),
                             nk("Services", [eventlog])])

        select = nk("Select", values=[vk("Current", 4, u32(2)), vk("Default", 4, u32(2)), vk("LastKnownGood", 4, u32(1))])
        devices = [vk(name, 3, data) for name, data in mounted]
        root = nk("ROOT", [select, control_set("ControlSet001", stale), control_set("ControlSet002", computer, eventlog_files),
                           nk("MountedDevices", values=devices)], flags=0x2C)
        return root
    return make_hive(tree, "\\SystemRoot\\System32\\Config\\SYSTEM")


def software_hive(product, display, build):
    def tree(nk, vk, sz, u32):
        cv = nk("CurrentVersion", values=[vk("ProductName", 1, sz(product)), vk("DisplayVersion", 1, sz(display)),
                                           vk("CurrentBuild", 1, sz(build)), vk("EditionID", 1, sz("ServerDatacenter"))])
        return nk("ROOT", [nk("Microsoft", [nk("Windows NT", [cv])]), nk("Classes")], flags=0x2C)
    return make_hive(tree, "\\SystemRoot\\System32\\Config\\SOFTWARE")


class Builder:
    def __init__(self, mnt, seed):
        self.mnt = mnt
        self.rnd = random.Random(seed)
        self.times = {}  # path -> (sec, 100ns units)
        self.symlinks = {}  # path -> target text

    def p(self, rel):
        return os.path.join(self.mnt, rel)

    def write(self, rel, data, t=None):
        full = self.p(rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
        self.stamp(rel, t)

    def stamp(self, rel, t=None):
        if t is None:
            t = (1709251200 + self.rnd.randrange(90 * 86400), self.rnd.randrange(10_000_000))
        self.times[rel] = t

    def random(self, n):
        return self.rnd.randbytes(n)

    def finish(self):
        # Timestamps last: later writes (streams, reparse data) change them.
        for rel, (s, h) in self.times.items():
            ns = s * 10**9 + h * 100
            try:
                os.utime(self.p(rel), ns=(ns, ns), follow_symlinks=False)
            except OSError:
                # ntfs-3g cannot set times on a reparse point it shows as a link.
                if rel not in self.symlinks:
                    raise


def populate_win(b: Builder, compress: bool, big: bool, computer: str):
    r = b.rnd
    logs = "Windows/System32/winevt/Logs"
    b.write(logs + "/Application.evtx", open(os.path.join(SAMPLES, "TestLogX.evtx"), "rb").read())
    b.write(logs + "/Security.evtx", b"ElfFile\0" + b.random(69632 - 8))
    b.write(logs + "/System.evtx", b"ElfFile\0" + b.random((200 if big else 100) * 1024 - 8))
    b.write(logs + "/Microsoft-Windows-PowerShell%4Operational.evtx", b"ElfFile\0" + b.random(4096 * 3 - 8))
    hive = system_hive(computer)
    b.write("Windows/System32/config/SYSTEM", hive)
    if shutil.which("hivexget"):
        # An independent registry reader (hivex) agrees on the name.
        with tempfile.NamedTemporaryFile() as t:
            t.write(hive)
            t.flush()
            got = run(["hivexget", t.name, "ControlSet002\\Control\\ComputerName\\ComputerName",
                       "ComputerName"]).decode().strip()
        assert got == computer, (got, computer)
    # Windows 11 still says "Windows 10" in ProductName; the build tells.
    version = ("Windows 10 Pro", "23H2", "22631") if big else ("Windows Server 2022 Datacenter", "21H2", "20348")
    b.write("Windows/System32/config/SOFTWARE", software_hive(*version))
    b.write("Windows/System32/drivers/etc/hosts", b"127.0.0.1 localhost\r\n")
    b.write("Windows/notepad.exe", b"MZ" + b.random(30000))
    psr = "AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt"
    b.write("Users/alice/" + psr, text_lines(r, 40, "Get-Process # %d %d\r\n"))
    b.write("Users/Administrator/" + psr, text_lines(r, 300, "Invoke-WebRequest http://203.0.113.7/%d/%d\r\n"))
    # Case differs from the target glob (PSReadline): NTFS is case-insensitive.
    b.write("Users/bob/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadline/ConsoleHost_history.txt",
            text_lines(r, 5, "whoami /all %d %d\r\n"))
    b.write("Windows/System32/config/systemprofile/" + psr, text_lines(r, 7, "net user %d %d\r\n"))
    b.write("Users/alice/NTUSER.DAT", b"regf" + b.random(8192))
    # Alternate data streams on the history file and a download; the file's
    # content is its unnamed stream only.
    setx("user.Zone.Identifier", "[ZoneTransfer]\r\nZoneId=3\r\n", b.p("Users/alice/" + psr))
    b.write("Users/alice/Downloads/setup.exe", b"MZ" + b.random(5000))
    setx("user.Zone.Identifier", "[ZoneTransfer]\r\nZoneId=3\r\nHostUrl=http://203.0.113.7/\r\n",
         b.p("Users/alice/Downloads/setup.exe"))
    # Unicode names: accents, a symbol, and a non-BMP character (surrogates).
    b.write("Users/alice/Documents/r\u00e9sum\u00e9 \u2603.txt", b"cv\r\n")
    b.write("Users/alice/Documents/smile \U0001F600.log", b"not a target\r\n")
    # A long name with an explicit DOS 8.3 name (two $FILE_NAME attributes).
    b.write("Users/alice/Documents/Quarterly Report Final.txt", b"q1\r\n")
    setx("system.ntfs_dos_name", "QUARTE~1.TXT", b.p("Users/alice/Documents/Quarterly Report Final.txt"))

    w3 = "inetpub/logs/LogFiles/W3SVC1"
    os.makedirs(b.p(w3))
    if compress:
        # Files created in a directory with FILE_ATTRIBUTE_COMPRESSED are
        # LZNT1-compressed by ntfs-3g (-o compression).
        setx("system.ntfs_attrib_be", "0x00000810", b.p(w3))
        os.makedirs(b.p("Compressed"))
        setx("system.ntfs_attrib_be", "0x00000810", b.p("Compressed"))
        # Compressible, incompressible (stored raw), and all-zero units.
        mixed = text_lines(r, 3000, "compressible line %06d %d\n")[:100_000] + b.random(70_000) + \
            bytes(200_000) + text_lines(r, 500, "tail %d %d\n")
        b.write("Compressed/mixed.bin", mixed)
        b.write("Compressed/small.txt", b"tiny compressed? no: resident\n")
        # Compressible units, then an incompressible last partial unit.
        b.write("Compressed/random-tail.bin", text_lines(r, 3000, "line %06d %d\n")[:65536] + b.random(20000))
    iis = text_lines(r, 4000 if big else 1500, "2024-05-01 00:00:%05d W3SVC1 GET /index.html?id=%d 80 - 203.0.113.7 200 0 0\r\n")
    b.write(w3 + "/u_ex240501.log", iis)
    b.write(w3 + "/u_ex240502.log", iis[:5000])

    # A file fragmented into many runs: fill the volume with small files,
    # delete every other one, then write the file into the holes. With
    # 4 KiB clusters its runlist overflows the MFT record, so it gets an
    # $ATTRIBUTE_LIST and its $DATA is split over extension records.
    frag = "inetpub/logs/LogFiles/W3SVC2/u_ex240503.log"
    os.makedirs(b.p(os.path.dirname(frag)))
    os.makedirs(b.p("fill"))
    hole = 8192 if big else 65536
    n = 0
    try:
        while True:
            with open(b.p("fill/%06d" % n), "wb") as f:
                f.write(b"F" * hole)
            n += 1
    except OSError:
        pass
    for i in range(0, n, 2):
        os.unlink(b.p("fill/%06d" % i))
    size = min(8 * MiB if big else 2 * MiB, (n // 2 - 8) * hole)
    # Each 4098-byte block is unique (its number first), the rest repeats, so
    # misplaced blocks change the hash but gzip keeps the image small.
    filler = (b"IIS log line padding 0123456789abcdefghijklmnopqrstuvwxyz\r\n" * 80)[:4096 - 16]
    content = b"".join(b"block %08d\r\n\r\n" % i + filler for i in range(size // 4096 + 1))[:size - 123]
    with open(b.p(frag), "wb") as f:
        f.write(content)
    shutil.rmtree(b.p("fill"))
    b.stamp(frag)
    # Sparse: a hole at the start, data in the middle, a hole at the end.
    sp = "inetpub/logs/LogFiles/sparse.log"
    with open(b.p(sp), "wb") as f:
        f.truncate(3 * MiB + 7)
        f.seek(MiB + 100)
        f.write(b"data in the middle of a sparse file\r\n" * 50)
    b.stamp(sp)
    # A hard link (two $FILE_NAME parents) and reparse-point links.
    os.link(b.p("Users/Administrator/" + psr), b.p("inetpub/logs/LogFiles/admin-history-link.txt"))
    b.write("inetpub/logs/LogFiles/current.log", b"")
    b.times.pop("inetpub/logs/LogFiles/current.log")
    setx("system.ntfs_reparse_data", reparse_symlink("W3SVC1\\u_ex240501.log", True),
         b.p("inetpub/logs/LogFiles/current.log"), hexval=True)
    b.symlinks["inetpub/logs/LogFiles/current.log"] = "W3SVC1\\u_ex240501.log"
    os.makedirs(b.p("Users/All Users"))
    setx("system.ntfs_reparse_data", reparse_junction("\\??\\C:\\ProgramData", "C:\\ProgramData"),
         b.p("Users/All Users"), hexval=True)
    b.symlinks["Users/All Users"] = "C:\\ProgramData"
    b.write("ProgramData/Microsoft/Windows/Start Menu/desktop.ini", b"[.ShellClassInfo]\r\n")
    # A large directory: index root + index allocation (INDX blocks).
    many = "Windows/Temp/many"
    os.makedirs(b.p(many))
    for i in range(5000 if big else 600):
        rel = "%s/f%05d.tmp" % (many, i)
        with open(b.p(rel), "wb") as f:
            f.write(b"%d\n" % i)
        b.stamp(rel, (1714521600 + i, i * 1000 % 10_000_000))
    b.stamp(logs + "/Application.evtx", (1714564800, 1234567))  # 2024-05-01T12:00:00.1234567Z
    b.finish()


# --------------------------------------------------------------------------
# oracle
# --------------------------------------------------------------------------
HEADER = "offset\tpath\ttype\tinode\tsize\tsha256\tmtime\ttarget\texpect\n"
FLS_RE = re.compile(rb"^(.)/(.) (\* )?(\d+)-(\d+)-(\d+):\t(.*)$")
SI_MOD_RE = re.compile(rb"File Modified:\s+(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{9}) \(UTC\)")


def expect(path: bytes, typ: str) -> str:
    if typ != "r":
        return "skip"
    p = path.decode("utf-8", "surrogateescape").lower()
    if re.fullmatch(r"/windows/system32/winevt/logs/[^/]*\.evtx", p):
        return "extract"
    ps = r"/appdata/roaming/microsoft/windows/powershell/psreadline/[^/]*_history\.txt"
    if re.fullmatch(r"/users/[^/]+" + ps, p):
        return "extract"
    if re.fullmatch(r"/windows/(system32|syswow64)/config/systemprofile" + ps, p):
        return "extract"
    if p.startswith("/inetpub/logs/logfiles/"):
        return "extract"
    # Moved by the machine's configuration (ntfs-gpt): the registry's
    # EventLog File value and IIS applicationHost.config's logFile directory.
    if p in ("/windows/system32/config/movedlogs/security.evtx",) or p.startswith("/weblogs/"):
        return "extract"
    return "skip"


LOGNAME_RE = re.compile(r"^.*\.log(\.\d+)?(\.gz)?$|^.*\.log\.xz$|^.*\.log\.\d{4}-\d{2}-\d{2}$", re.S | re.I)


def expect_data(path: bytes, typ: str) -> str:
    """A volume that is not the OS root: the application-logs target."""
    if typ != "r":
        return "skip"
    p = path.decode("utf-8", "surrogateescape")
    parts = p.split("/")
    if LOGNAME_RE.match(parts[-1]) or any(d.lower() in ("log", "logs", "logfiles") for d in parts[1:-1]):
        return "extract"
    return "skip"


def istat_mtime(img, inode):
    out = run(["istat", "-z", "UTC", img, str(inode)])
    si = out.split(b"$FILE_NAME Attribute Values")[0]
    m = SI_MOD_RE.search(si)
    if not m:
        raise SystemExit("istat %d: no SI modified time" % inode)
    import calendar
    y, mo, d, h, mi, s, ns = (int(x) for x in m.groups())
    return calendar.timegm((y, mo, d, h, mi, s)), ns


def oracle(name, img, mnt, b: Builder, notes, offset=0, expect_fn=None):
    expect_fn = expect_fn or expect
    out = run(["fls", "-r", "-p", "-u", img])
    rows = {}
    streams = []
    for line in out.split(b"\n"):
        if not line:
            continue
        if b"$OrphanFiles" in line:
            continue
        m = FLS_RE.match(line)
        if not m and re.match(rb"^./. \d+:\t\$", line):
            # fls lists $MFT's extension records as extra "$MFT" entries
            # of unknown type ("-/r 16:\t$MFT").
            notes.append("%s: fls lists %s" % (name, line.decode(errors="replace").replace("\t", " ")))
            continue
        if not m:
            raise SystemExit("cannot parse fls line: %r" % line)
        nt, mt, _, ino, atype, aid, path = m.groups()
        path = b"/" + path
        top = path.split(b"/")[1]
        if top.startswith(b"$") or mt not in (b"r", b"d"):
            continue
        if mt == b"d":
            continue
        if b":" in path.rsplit(b"/", 1)[-1]:
            streams.append(path)
            continue
        rows[path] = int(ino)
    result = []
    # The mount: the second, independent reader, and the truth on disagreement.
    run(["ntfs-3g", "-o", "ro,streams_interface=none", img, mnt])
    try:
        seen = set()
        for dp, dns, fns in os.walk(mnt):
            for fn in fns + dns:
                full = os.path.join(dp, fn)
                rel = "/" + os.path.relpath(full, mnt)
                st = os.lstat(full)
                relb = rel.encode("utf-8", "surrogateescape")
                import stat as S
                if S.S_ISLNK(st.st_mode):
                    tgt = b.symlinks.get(rel[1:])
                    result.append((relb, "l", st.st_ino, 0, "", (st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9),
                                   tgt.encode()))
                    seen.add(relb)
                    if fn in dns:
                        dns.remove(fn)
                    continue
                if not S.S_ISREG(st.st_mode):
                    continue
                seen.add(relb)
                data = open(full, "rb").read()
                sha = hashlib.sha256(data).hexdigest()
                mt = (st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9)
                ino = rows.get(relb)
                if ino is None:
                    notes.append("%s: %s is on the mount but not in fls" % (name, rel))
                else:
                    tsk = run(["icat", img, str(ino)], ok=(0, 1))
                    if hashlib.sha256(tsk).hexdigest() != sha:
                        notes.append("%s: icat content of %s (%d bytes) differs from the ntfs-3g mount (%d bytes)"
                                     % (name, rel, len(tsk), len(data)))
                    if ino != st.st_ino:
                        notes.append("%s: %s: fls inode %d, mount inode %d" % (name, rel, ino, st.st_ino))
                    imt = istat_mtime(img, ino)
                    if imt != mt:
                        notes.append("%s: istat SI modified time of %s is %d.%09d, the mount says %d.%09d"
                                     % (name, rel, imt[0], imt[1], mt[0], mt[1]))
                result.append((relb, "r", st.st_ino, len(data), sha, mt, b""))
        extra = [p.decode() for p in sorted(rows) if p not in seen]
        if extra:
            states = set()
            for p in extra:
                st = run(["istat", img, str(rows[p.encode()])]).split(b"\n")
                states.add(next((l.decode() for l in st if b"Allocated" in l), "?"))
            notes.append("%s: fls -u lists %d name(s) the mount does not show, e.g. %s; istat says of their "
                         "records: %s (deleted entries left in index-block slack or free index blocks; not in the live B+tree, so neither the mount nor snapsift lists them)"
                         % (name, len(extra), ", ".join(extra[:3]), ", ".join(sorted(states))))
    finally:
        run(["umount", mnt])
    notes.append("%s: named streams (fls): %s" % (name, ", ".join(s.decode() for s in sorted(streams))))
    result.sort()
    lines = []
    for path, typ, ino, size, sha, (s, ns), tgt in result:
        lines.append("%d\t%s\t%s\t%d\t%d\t%s\t%d.%09d\t%s\t%s\n" % (offset, pct(path), typ, ino, size, sha, s, ns,
                                                                   pct(tgt), expect_fn(path, typ)))
    return lines


def populate_small_win(b: Builder, computer: str, mounted=(), moved=False):
    r = b.rnd
    logs = "Windows/System32/winevt/Logs"
    b.write(logs + "/Application.evtx", open(os.path.join(SAMPLES, "TestLogX.evtx"), "rb").read())
    b.write(logs + "/Security.evtx", b"ElfFile\0" + b.random(32768 - 8))
    logs_in_registry = ()
    if moved:
        # An administrator moved the Security log, and IIS writes elsewhere.
        logs_in_registry = [("Application", "%SystemRoot%\\System32\\winevt\\Logs\\Application.evtx"),
                            ("Security", "%SystemRoot%\\System32\\config\\MovedLogs\\Security.evtx")]
        b.write("Windows/System32/config/MovedLogs/Security.evtx", b"ElfFile\0" + b.random(8192 - 8))
        b.write("Windows/System32/inetsrv/config/applicationHost.config",
                b'<configuration>\r\n <system.applicationHost>\r\n  <sites>\r\n   <siteDefaults>\r\n'
                b'    <logFile logFormat="W3C" directory="%SystemDrive%\\WebLogs" />\r\n'
                b'   </siteDefaults>\r\n  </sites>\r\n </system.applicationHost>\r\n</configuration>\r\n')
        b.write("WebLogs/W3SVC1/u_ex240603.log", text_lines(r, 100, "2024-06-03 %05d POST /login %d 401\r\n"))
    b.write("Windows/System32/config/SYSTEM", system_hive(computer, mounted=mounted, eventlog_files=logs_in_registry))
    b.write("Windows/System32/config/SOFTWARE", software_hive("Windows Server 2019 Datacenter", "1809", "17763"))
    psr = "AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt"
    b.write("Users/Administrator/" + psr, text_lines(r, 50, "Get-LocalUser %d %d\r\n"))
    b.write("inetpub/logs/LogFiles/W3SVC1/u_ex240601.log", text_lines(r, 400, "2024-06-01 %05d GET /?q=%d 200\r\n"))
    b.write("Users/Public/Desktop/desktop.ini", b"[.ShellClassInfo]\r\n")
    b.finish()


def populate_data(b: Builder):
    r = b.rnd
    b.write("App/logs/app.log", text_lines(r, 300, "INFO request %d took %d ms\n"))
    b.write("App/logs/README.txt", b"application logs\r\n")
    b.write("App/config.json", b'{"level": "info"}\n')
    b.write("Service/trace.LOG", text_lines(r, 50, "trace %d %d\n"))
    b.write("Service/trace.log.1", text_lines(r, 20, "old trace %d %d\n"))
    b.write("Service/trace.log.bak", b"not a target\n")
    b.write("SQL/LogFiles/ERRORLOG.txt", text_lines(r, 30, "2024-06-01 spid%d error %d\n"))
    b.write("Backup/db.bak", b.random(20000))
    b.write("inetpub/logs/LogFiles/W3SVC2/u_ex240602.log", text_lines(r, 200, "2024-06-02 %05d GET /api?id=%d 200\r\n"))
    setx("user.Zone.Identifier", "[ZoneTransfer]\r\nZoneId=3\r\n", b.p("App/logs/app.log"))
    b.finish()


# Fixed partition GUIDs, so the SYSTEM hive's MountedDevices can name them.
GUID_C = "5eed0003-0000-4000-8000-0000000000c3"
GUID_E = "5eed0003-0000-4000-8000-0000000000e4"


def build_disk(out, notes, name, size, table, parts, computer):
    """A Windows-like disk: `table(disk)` writes the partition table; each
    of `parts` (number, label, seed, populate(builder, layout), os_root) is
    an NTFS volume made and listed as a file, then copied in at its
    partition's offset (`layout`: sfdisk's partitions by number); the build
    checks that `fls -o <sector>` on the final disk gives the same listing.
    Returns the volumes-ntfs.tsv rows."""
    work = tempfile.mkdtemp(prefix="ntfs-build-")
    disk = os.path.join(work, name + ".img")
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt)
    try:
        pattern_file(disk, size)
        table(disk)
        pt = sfdisk_layout(disk)
        ptable = {"dos": "mbr", "gpt": "gpt"}[pt["label"]]
        layout = {int(re.search(r"(\d+)$", p["node"]).group(1)): p for p in pt["partitions"]}
        rows, vols = [], []
        for part, label, seed, populate, os_root in parts:
            first, count = layout[part]["start"], layout[part]["size"]
            fsimg = os.path.join(work, "p%d.img" % part)
            pattern_file(fsimg, count * 512)
            run(["mkntfs", "-F", "-Q", "-q", "-s", "512", "-c", "4096", "-p", str(first), "-L", label, fsimg])
            # mkntfs seeds its serial from the clock: two volumes made in
            # the same second get the same one.
            run(["ntfslabel", "--new-serial=%016X" % (0x5EED000000000000 + seed), fsimg, label])
            run(["ntfs-3g", "-o", "streams_interface=xattr", fsimg, mnt])
            b = Builder(mnt, seed)
            try:
                populate(b, layout)
            finally:
                run(["umount", mnt])
            rows += oracle("%s p%d" % (name, part), fsimg, mnt, b, notes, first * 512,
                           expect if os_root else expect_data)
            with open(fsimg, "rb") as src, open(disk, "r+b") as dst:
                dst.seek(first * 512)
                shutil.copyfileobj(src, dst, MiB)
            # The same listing from the final disk at the partition offset.
            a = run(["fls", "-r", "-p", "-u", fsimg])
            bb = run(["fls", "-r", "-p", "-u", "-o", str(first), disk])
            assert a == bb, "fls differs on the disk at sector %d" % first
            vols.append("%s\t%d\t%d\tntfs\t%s\t%s\t%s\t%s\t512\n" % (
                name, first * 512, count * 512, label, "yes" if os_root else "no", computer if os_root else "", ptable))
        with open(os.path.join(out, "expected", name + ".tsv"), "w") as f:
            f.writelines([HEADER] + rows)
        with open(disk, "rb") as src, gzip.GzipFile(os.path.join(out, name + ".img.gz"), "wb", 9, mtime=0) as dst:
            shutil.copyfileobj(src, dst, MiB)
        return vols
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_gpt(out, notes):
    """A Windows-like GPT disk: ESP and MSR (left as pattern), C: (the OS)
    and a data volume, both NTFS, at their partition offsets."""
    def table(disk):
        run(["sgdisk", "-o", "-U", "5eed0003-0000-4000-8000-000000000003",
             "-n", "1:2048:+16M", "-t", "1:EF00", "-c", "1:EFI system partition",
             "-n", "2:0:+16M", "-t", "2:0C01", "-c", "2:Microsoft reserved partition",
             "-n", "3:0:+40M", "-t", "3:0700", "-c", "3:Basic data partition", "-u", "3:" + GUID_C,
             "-n", "4:0:+20M", "-t", "4:0700", "-c", "4:Data", "-u", "4:" + GUID_E, disk])
    mounted = [("\\DosDevices\\C:", mounted_gpt(GUID_C)), ("\\DosDevices\\E:", mounted_gpt(GUID_E))]
    return build_disk(out, notes, "ntfs-gpt", 96 * MiB, table, [
        (3, "OS", 9, lambda b, _: populate_small_win(b, "WIN-GPT01", mounted=mounted, moved=True), True),
        (4, "Data", 10, lambda b, _: populate_data(b), False),
    ], "WIN-GPT01")


MBR_SIGNATURE = 0x5EED000B


def populate_mbr_data(b: Builder):
    """E: of ntfs-mbr: IIS logs, and names that differ from their lookups
    only in the case of non-ASCII letters (Latin-1, Greek, Cyrillic)."""
    r = b.rnd
    b.write("inetpub/logs/LogFiles/W3SVC1/u_ex240501.log", text_lines(r, 300, "2024-05-01 %05d GET /shop?id=%d 200\r\n"))
    b.write("\u00c4rger/\u00c9V\u00c9NEMENTS.LOG", text_lines(r, 20, "\u00e9v\u00e9nement %d %d\r\n"))
    b.write("\u03a9\u03bc\u03b5\u03b3\u03b1/\u0416\u0443\u0440\u043d\u0430\u043b.log", text_lines(r, 20, "zapis %d %d\r\n"))
    b.write("Backup/notes.txt", b"not a log\r\n")
    b.finish()


def build_mbr(out, notes):
    """A Windows MBR disk: C: (the OS) a primary partition, E: a logical
    one in an extended partition; the SYSTEM hive gives both letters by
    disk signature and byte offset (12-byte MountedDevices values)."""
    def table(disk):
        script = ("label: dos\nlabel-id: 0x%08x\nunit: sectors\n\n"
                  "start=2048, size=24576, type=7, bootable\n"
                  "start=26624, size=22528, type=f\n"
                  "start=28672, size=20480, type=7\n" % MBR_SIGNATURE)
        run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", "--wipe", "never", disk], input=script.encode())

    def populate_c(b, layout):
        at = lambda n: layout[n]["start"] * 512  # noqa: E731
        mounted = [
            ("\\DosDevices\\C:", mounted_mbr(MBR_SIGNATURE, at(1))),
            ("\\DosDevices\\E:", mounted_mbr(MBR_SIGNATURE, at(5))),
            # A disk not in the evidence, and a CD-ROM (a device path).
            ("\\DosDevices\\F:", mounted_mbr(0x0BADD15C, at(1))),
            ("\\DosDevices\\D:", "\\??\\IDE#CdRomQEMU_DVD-ROM#5&1\0".encode("utf-16-le")),
            ("\\??\\Volume{5eed000b-0000-4000-8000-0000000000e5}", mounted_mbr(MBR_SIGNATURE, at(5))),
        ]
        populate_small_win(b, "WIN-MBR01", mounted=mounted)
        if shutil.which("hivexget"):
            # An independent registry reader (hivex) reads the same values.
            hive = b.p("Windows/System32/config/SYSTEM")
            for name, data in mounted:
                assert run(["hivexget", hive, "MountedDevices", name]) == data, name
    return build_disk(out, notes, "ntfs-mbr", 24 * MiB, table, [
        (1, "System", 13, populate_c, True),
        (5, "Logs", 14, lambda b, _: populate_mbr_data(b), False),
    ], "WIN-MBR01")


def populate_4kn(b: Builder):
    r = b.rnd
    for i in range(300):
        b.write("logs/f%03d.log" % i, b"line %d\n" % i)
    b.write("logs/big.log", text_lines(r, 10000, "4Kn %06d %d\n"))
    b.write("notes.txt", b"a 4096-byte-sector volume: 4 KiB MFT records, 8 fixup strides\n")
    setx("user.note", "stream on a 4Kn volume", b.p("notes.txt"))
    b.finish()


def populate_mftlist(b: Builder):
    """Fill the volume with 1 KiB files (two 512-byte clusters and a record
    each), delete every other one, then create files until the disk is full:
    $MFT grows into the two-cluster holes, so its own $DATA runlist
    overflows record 0 and $MFT gets an $ATTRIBUTE_LIST (its $DATA continues
    in extension records)."""
    r = b.rnd
    m = b.p("")
    os.makedirs(b.p("fill"))
    n = 0
    try:
        while True:
            with open(b.p("fill/%05d" % n), "wb") as f:
                f.write(b"x" * 1024)
            n += 1
    except OSError:
        pass
    for i in range(0, n, 2):
        os.unlink(b.p("fill/%05d" % i))
    os.makedirs(b.p("many"))
    k = 0
    try:
        while True:
            open(b.p("many/%05d.txt" % k), "wb").close()
            k += 1
    except OSError:
        pass
    shutil.rmtree(b.p("fill"))
    # Keep every 100th, spread over the whole (fragmented) $MFT.
    for i in range(k):
        if i % 100:
            os.unlink(b.p("many/%05d.txt" % i))
        else:
            with open(b.p("many/%05d.txt" % i), "wb") as f:
                f.write(b"record for file %d\n" % i)
            b.stamp("many/%05d.txt" % i)
    # New records come after the last one allocated: in the fragmented tail.
    b.write("logs/app.log", text_lines(r, 800, "app %06d %d\n"))
    b.write("logs/old/app.log.1", text_lines(r, 300, "old %06d %d\n"))
    b.write("data/blob.bin", b.random(3000))
    assert m
    b.finish()


def build_bare(out, notes, name, size, label, sector, cluster, serial, seed, populate, check=None):
    """A bare NTFS data volume: made, populated through ntfs-3g, listed,
    written as images/<name>.img.gz. Returns its volumes-ntfs.tsv row."""
    work = tempfile.mkdtemp(prefix="ntfs-build-")
    img = os.path.join(work, name + ".img")
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt)
    try:
        pattern_file(img, size)
        run(["mkntfs", "-F", "-Q", "-q", "-s", str(sector), "-c", str(cluster), "-L", label, img])
        run(["ntfslabel", "--new-serial=%s" % serial, img, label])
        run(["ntfs-3g", "-o", "streams_interface=xattr", img, mnt])
        b = Builder(mnt, seed)
        try:
            populate(b)
        finally:
            run(["umount", mnt])
        if check:
            check(img)
        rows = oracle(name, img, mnt, b, notes, 0, expect_data)
        with open(os.path.join(out, "expected", name + ".tsv"), "w") as f:
            f.writelines([HEADER] + rows)
        with open(img, "rb") as src, gzip.GzipFile(os.path.join(out, name + ".img.gz"), "wb", 9, mtime=0) as dst:
            shutil.copyfileobj(src, dst, MiB)
        return ["%s\t0\t%d\tntfs\t%s\tno\t\tnone\t%d\n" % (name, size, label, sector)]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def mft_has_attribute_list(img):
    if b"$ATTRIBUTE_LIST" not in run(["istat", img, "0"]):
        raise SystemExit("ntfs-mftlist: $MFT has no attribute list; the build no longer tests it")


def build_mftlist(out, notes):
    """512-byte clusters, and a $MFT with its own $ATTRIBUTE_LIST."""
    return build_bare(out, notes, "ntfs-mftlist", 16 * MiB, "MftList", 512, 512, "5EED000000000512", 12,
                      populate_mftlist, mft_has_attribute_list)


def build_4kn(out, notes):
    """A bare NTFS volume with 4096-byte sectors (4 KiB MFT records, so the
    update sequence array protects eight 512-byte strides). A data volume."""
    return build_bare(out, notes, "ntfs-4kn", 16 * MiB, "FourKn", 4096, 4096, "5EED000000000411", 11, populate_4kn)


def build(out, name, size, cluster, label, seed, compress, big, computer, notes):
    work = tempfile.mkdtemp(prefix="ntfs-build-")
    img = os.path.join(work, name + ".img")
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt)
    try:
        pattern_file(img, size)
        run(["mkntfs", "-F", "-Q", "-q", "-s", "512", "-c", str(cluster), "-L", label, img])
        run(["ntfslabel", "--new-serial=%016X" % (0x5EED000000000000 + seed), img, label])
        opts = "streams_interface=xattr" + (",compression" if compress else "")
        run(["ntfs-3g", "-o", opts, img, mnt])
        b = Builder(mnt, seed)
        try:
            populate_win(b, compress, big, computer)
        finally:
            run(["umount", mnt])
        lines = oracle(name, img, mnt, b, notes)
        with open(os.path.join(out, "expected", name + ".tsv"), "w") as f:
            f.writelines([HEADER] + lines)
        with open(img, "rb") as src, gzip.GzipFile(os.path.join(out, name + ".img.gz"), "wb", 9, mtime=0) as dst:
            shutil.copyfileobj(src, dst, MiB)
        return size
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", help="rebuild only these images (comma-separated; development)")
    a = ap.parse_args()
    notes = ["# NTFS images: where sleuthkit (fls/icat/istat) and the ntfs-3g mount disagree,",
             "# and other oracle facts. The listings use the mount's values.",
             "# With sleuthkit 4.11.1 and ntfs-3g 2022.10.3 they agree on every row (path, record",
             "# number, size, sha256, SI modified time to 100 ns), including LZNT1 files, the",
             "# attribute-list file, sparse data past initialized_size, 64 KiB clusters and 4 KiB",
             "# sectors. Facts: ntfs-3g cannot set times on reparse points (utime: EIO), so the two",
             "# links carry the build time; its `ln -s` makes Interix symlinks, so the links are",
             "# written as raw reparse data (system.ntfs_reparse_data); fls lists named streams as",
             "# `path:name` (below) and DOS names not at all."]
    vols = []
    for name, size, cluster, label, seed, compress, big, computer in [
        ("ntfs-win", 64 * MiB, 4096, "Windows", 7, True, True, "WIN-SNAPSIFT01"),
        ("ntfs-64k", 48 * MiB, 65536, "Win64K", 8, False, False, "WIN64K-01"),
    ]:
        if a.only and name not in a.only.split(","):
            vols += [line for line in open(os.path.join(a.out, "expected", "volumes-ntfs.tsv")) if line.startswith(name + "\t")]
            continue
        build(a.out, name, size, cluster, label, seed, compress, big, computer, notes)
        vols.append("%s\t0\t%d\tntfs\t%s\tyes\t%s\tnone\t512\n" % (name, size, label, computer))
    for name, fn in [("ntfs-gpt", build_gpt), ("ntfs-mbr", build_mbr), ("ntfs-4kn", build_4kn),
                     ("ntfs-mftlist", build_mftlist)]:
        if a.only and name not in a.only.split(","):
            vols += [line for line in open(os.path.join(a.out, "expected", "volumes-ntfs.tsv")) if line.startswith(name + "\t")]
        else:
            vols += fn(a.out, notes)
    npath = os.path.join(a.out, "expected", "ntfs-notes.txt")
    if a.only and os.path.exists(npath):
        # Keep the notes of the images not rebuilt.
        rebuilt = a.only.split(",")
        notes += [line.rstrip("\n") for line in open(npath) if not line.startswith("#")
                  and line.split(":")[0].split(" ")[0] not in rebuilt]
    with open(npath, "w") as f:
        f.write("\n".join(notes) + "\n")
    # Each image builder owns one volumes-*.tsv; tests read them all.
    vpath = os.path.join(a.out, "expected", "volumes-ntfs.tsv")
    with open(vpath, "w") as f:
        f.write("image\toffset\tsize\tfstype\tlabel\tos_root\thostname\tptable\tsector_size\n")
        f.writelines(vols)


if __name__ == "__main__":
    main()
