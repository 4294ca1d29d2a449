#!/usr/bin/env python3
"""Build images/wof.img.gz: an NTFS volume with WOF-compressed ("system
compression", `compact /exe:…`) files, and images/expected/wof.tsv.

Windows is not needed, and neither is our own code: the volume is made by
mkntfs and filled through an ntfs-3g FUSE mount (`streams_interface=windows`);
each WOF file gets its chunk table and chunks written as the named stream
`file:WofCompressedData`, with every chunk compressed by wimlib's own XPRESS
or LZX compressor (libwim through ctypes; a chunk that does not shrink is
stored raw, as Windows does), the reparse point set through the
`system.ntfs_reparse_data` extended attribute, and the unnamed stream left
sparse at the original size. The expected content is what was put in.

    python3 images/build-wof.py            # rebuild images/wof.img.gz and expected/wof.tsv
    python3 images/build-wof.py --check    # independent reader: the committed image through
                                           # ntfs-3g + ebiggers/ntfs-3g-system-compression

--check reads the committed image through ntfs-3g with the system-compression
plugin (github.com/ebiggers/ntfs-3g-system-compression), built from source
against ntfs-3g-dev when it is not installed (`--plugin-src` names a checkout
or a bare git directory; otherwise it is cloned), installed into ntfs-3g's
plugin directory for the check and removed again if it was not there before;
every WOF file must read back with the sha256 expected/wof.tsv gives, and the
damaged and WIMBoot files must not (the deduplicated and cloud files are not
checked: ntfs-3g refuses reparse tags it has no plugin for). It also regenerates the content
and compares its hashes with the listing.

Needs root (loop-free: FUSE only), mkntfs/ntfs-3g (`ntfs-3g`), setfattr
(`attr`), libwim (`libwim15`/`libwim-dev`); --check also gcc, make,
autoconf, automake, libtool, pkg-config and `ntfs-3g-dev`.
"""
import argparse
import ctypes
import ctypes.util
import gzip
import hashlib
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = "/work/shared/samples/evtx"
ENV = dict(os.environ, TZ="UTC", LC_ALL="C")
IMAGE_SIZE = 12 << 20
TAG_WOF = 0x80000017
ALGS = {"xpress4k": (0, 4096), "lzx": (1, 32768), "xpress8k": (2, 8192), "xpress16k": (3, 16384)}
PLUGIN_DIR = "/usr/lib/x86_64-linux-gnu/ntfs-3g"
PLUGIN = os.path.join(PLUGIN_DIR, "ntfs-plugin-80000017.so")


def run(cmd, ok=(0,), **kw):
    p = subprocess.run(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if p.returncode not in ok:
        sys.stderr.write("command failed (%d): %s\n%s\n%s\n" % (
            p.returncode, " ".join(map(str, cmd)), p.stdout.decode(errors="replace")[-3000:],
            p.stderr.decode(errors="replace")[-3000:]))
        raise SystemExit(2)
    return p.stdout


class Wimlib:
    """wimlib's compressors (and decompressors, for the speed comparison)."""
    XPRESS, LZX = 1, 2

    def __init__(self):
        name = ctypes.util.find_library("wim") or "libwim.so.15"
        self.lib = ctypes.CDLL(name)
        self.lib.wimlib_compress.restype = ctypes.c_size_t
        self.lib.wimlib_compress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        self.lib.wimlib_create_compressor.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]
        self.lib.wimlib_create_decompressor.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
        self.lib.wimlib_decompress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        self.compressors = {}

    def compressor(self, ctype, chunk, level):
        key = (ctype, chunk, level)
        if key not in self.compressors:
            c = ctypes.c_void_p()
            if self.lib.wimlib_create_compressor(ctype, chunk, level, ctypes.byref(c)) != 0:
                raise SystemExit("wimlib_create_compressor(%d, %d) failed" % (ctype, chunk))
            self.compressors[key] = c
        return self.compressors[key]

    def compress(self, ctype, chunk_size, data, level):
        """The compressed chunk, or None when it does not shrink."""
        c = self.compressor(ctype, chunk_size, level)
        out = ctypes.create_string_buffer(len(data))
        n = self.lib.wimlib_compress(data, len(data), out, len(data) - 1, c)
        return out.raw[:n] if n else None


def wof_stream(wim, alg, data, level=50):
    """The WofCompressedData stream of `data`: chunk table, then chunks."""
    code, cs = ALGS[alg]
    ctype = Wimlib.LZX if alg == "lzx" else Wimlib.XPRESS
    chunks = []
    for i in range(0, len(data), cs):
        raw = data[i:i + cs]
        c = wim.compress(ctype, cs, raw, level)
        chunks.append(c if c is not None else raw)
    width = "<Q" if len(data) > 0xFFFFFFFF else "<I"
    table, end = b"", 0
    for c in chunks[:-1]:
        end += len(c)
        table += struct.pack(width, end)
    return table + b"".join(chunks), chunks


def reparse_wof(alg):
    data = struct.pack("<IIII", 1, 2, 1, ALGS[alg][0])
    return struct.pack("<IHH", TAG_WOF, len(data), 0) + data


def reparse_wim():
    # WOF_EXTERNAL_INFO {1, provider 1 = WIM}, WIM_PROVIDER_EXTERNAL_INFO
    # {version 1, flags 0, data source id 1, a 20-byte resource hash}.
    data = struct.pack("<IIIIq", 1, 1, 1, 0, 1) + hashlib.sha1(b"wimboot").digest()
    return struct.pack("<IHH", TAG_WOF, len(data), 0) + data


def reparse_other(tag, payload=b"\0" * 8):
    return struct.pack("<IHH", tag, len(payload), 0) + payload


def text(rnd, n, fmt):
    return "".join(fmt % (i, rnd.randrange(100000)) for i in range(n)).encode()


def x86ish(rnd, n):
    """Bytes with many E8 (call) instructions whose relative targets the LZX
    compressor turns absolute: the E8 translation must be undone."""
    out = bytearray()
    while len(out) < n:
        out += bytes(rnd.choice(b"\x48\x89\xe5\x8b\x45\xfc\x0f\xb6\xc3\x90") for _ in range(rnd.randrange(3, 12)))
        out += b"\xe8" + struct.pack("<i", rnd.randrange(-40000, 40000))
    return bytes(out[:n])


def contents(need_samples=True):
    """(path, bytes, how) for every file: how = a WOF algorithm, or a
    special case. Without the evtx samples (need_samples False) their
    files are left out."""
    rnd = random.Random(17)
    noise = lambda n: bytes(rnd.getrandbits(8) for _ in range(n))  # noqa: E731
    log = text(rnd, 1200, "2024-05-01T10:%05d Z host sshd[42]: Accepted publickey for user%d\n")
    files = [
        # Several chunks, a raw (incompressible) chunk in the middle, a last partial chunk.
        ("Windows/Logs/xp4k.log", log[:20480] + noise(4096) + log[20480:40000] + b"end\n", "xpress4k"),
        ("Windows/Logs/xp8k.log", log[:32768] + noise(8192) + log[:25123], "xpress8k"),
        ("Windows/Logs/xp16k.log", log[:70001], "xpress16k"),
        ("Windows/System32/calls.bin", x86ish(rnd, 100000) + noise(5000), "lzx"),
        ("Windows/System32/text-lzx.log", log + log[:7000], "lzx"),
        # One chunk (an empty table), compressed; and one stored raw.
        ("Windows/tiny.txt", b"tiny WOF file, one chunk " * 40, "xpress4k"),
        ("Windows/tiny-raw.bin", noise(777), "lzx"),
        # Exactly two full chunks.
        ("Windows/two-chunks.bin", (b"0123456789abcdef" * 512) + noise(2048) + b"\0" * 6144, "xpress8k"),
    ]
    for name in ("Security_short_selected.evtx", "TestLogX.evtx"):
        p = os.path.join(SAMPLES, name)
        if os.path.exists(p):
            with open(p, "rb") as f:
                files.append(("Windows/System32/winevt/Logs/" + name, f.read(), "lzx"))
        elif need_samples:
            raise SystemExit("missing sample %s (the evtx samples are needed to rebuild)" % p)
    files += [
        ("Windows/Logs/damaged.log", log[:20000], "damaged"),
        # A sound table, but chunk 2's Huffman code lengths over-subscribe the
        # code: the first two chunks read, then an error (a `partial` copy).
        ("Windows/Logs/badchunk.log", log[30000:50000], "badchunk"),
        ("Windows/wimboot.dll", noise(3000), "wim"),
        # Other reparse points: data elsewhere (dedup, all sparse) and a
        # hydrated cloud file (tag kept, data present).
        ("Users/alice/dedup.log", log[:12345], "dedup"),
        ("Users/alice/OneDrive/hydrated.log", log[:5000], "cloud"),
        # NTFS (LZNT1) compression, for the manifest's `compression` column.
        ("Compressed/lznt1.log", log[:50000], "lznt1"),
    ]
    return files


def expected_rows(files):
    rows = ["path\tsize\tsha256\tcompression\texpect"]
    for path, data, how in files:
        comp = {"damaged": "wof-xpress4k", "badchunk": "wof-xpress4k", "wim": "wof-wim", "dedup": "", "cloud": "", "lznt1": "lznt1"}.get(how, "wof-" + how)
        expect = {"damaged": "error", "wim": "error", "dedup": "error", "badchunk": "partial"}.get(how, "ok")
        rows.append("%s\t%d\t%s\t%s\t%s" % (path, len(data), hashlib.sha256(data).hexdigest(), comp, expect))
    return "\n".join(rows) + "\n"


def build(out_img, out_tsv):
    wim = Wimlib()
    files = contents()
    work = tempfile.mkdtemp(prefix="wof.")
    img, mnt = os.path.join(work, "wof.img"), os.path.join(work, "mnt")
    os.makedirs(mnt)
    with open(img, "wb") as f:
        f.truncate(IMAGE_SIZE)
    run(["mkntfs", "-F", "-Q", "-q", "-s", "512", "-c", "4096", "-L", "WOF", img])
    run(["ntfslabel", "--new-serial=5EED00000000F0F0", img, "WOF"])
    run(["ntfs-3g", "-o", "streams_interface=windows", img, mnt])
    stats = []
    try:
        os.makedirs(os.path.join(mnt, "Compressed"))
        os.setxattr(os.path.join(mnt, "Compressed"), "system.ntfs_attrib_be", struct.pack(">I", 0x810))
        for path, data, how in files:
            p = os.path.join(mnt, path)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            if how in ("cloud", "lznt1"):
                with open(p, "wb") as f:
                    f.write(data)
                if how == "cloud":
                    os.setxattr(p, "system.ntfs_reparse_data", reparse_other(0x9000001A))
                continue
            with open(p, "wb") as f:
                f.truncate(len(data))  # the unnamed stream: sparse, the original size
            if how == "dedup":
                os.setxattr(p, "system.ntfs_reparse_data", reparse_other(0x80000013))
                continue
            if how == "wim":
                os.setxattr(p, "system.ntfs_reparse_data", reparse_wim())
                continue
            alg = "xpress4k" if how in ("damaged", "badchunk") else how
            # LZX at wimlib's highest level: its near-optimal parser also writes aligned-offset blocks.
            stream, chunks = wof_stream(wim, alg, data, level=100 if alg == "lzx" else 50)
            if how == "damaged":
                # Chunk table entry 2 points past the end of the stream.
                stream = stream[:8] + struct.pack("<I", len(stream) + 1000) + stream[12:]
            if how == "badchunk":
                at = 4 * (len(chunks) - 1) + len(chunks[0]) + len(chunks[1])
                assert len(chunks[2]) < 4096, "chunk 2 must be compressed"
                stream = stream[:at] + b"\x11" * 256 + stream[at + 256:]
            with open(p + ":WofCompressedData", "wb") as f:
                f.write(stream)
            os.setxattr(p, "system.ntfs_reparse_data", reparse_wof(alg))
            cs = ALGS[alg][1]
            stored = [len(c) == min(cs, len(data) - i * cs) for i, c in enumerate(chunks)]
            raw = sum(stored)
            kinds = ""
            if alg == "lzx":
                # The first block's type (1 verbatim, 2 aligned, 3 uncompressed) of each compressed chunk.
                kinds = " first LZX block types " + ",".join(
                    str(struct.unpack("<H", c[:2])[0] >> 13) for c, r in zip(chunks, stored) if not r)
            stats.append("%-45s %-9s %7d -> %7d bytes, %d chunks, %d raw%s" % (path, alg, len(data), len(stream), len(chunks), raw, kinds))
    finally:
        run(["umount", mnt])
    print("\n".join(stats))
    with open(img, "rb") as src, gzip.GzipFile(out_img, "wb", compresslevel=9, mtime=0) as dst:
        shutil.copyfileobj(src, dst)
    with open(out_tsv, "w") as f:
        f.write(expected_rows(files))
    shutil.rmtree(work)
    print("wrote %s (%d bytes) and %s" % (out_img, os.path.getsize(out_img), out_tsv))


def plugin(src, work):
    """Builds the system-compression plugin; the path of the .so."""
    tree = os.path.join(work, "plugin")
    if src and os.path.isdir(os.path.join(src, "objects")):  # a bare git directory
        os.makedirs(tree)
        arch = subprocess.run(["git", "--git-dir", src, "archive", "HEAD"], stdout=subprocess.PIPE, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=arch, check=True)
    elif src:
        shutil.copytree(src, tree)
    else:
        p = subprocess.run(["git", "clone", "-q", "https://github.com/ebiggers/ntfs-3g-system-compression", tree])
        if p.returncode != 0:
            return None
    run(["autoreconf", "-i"], cwd=tree)
    run(["./configure", "--libdir=" + os.path.dirname(PLUGIN_DIR)], cwd=tree)
    run(["make", "-j2"], cwd=tree)
    so = os.path.join(tree, ".libs", "ntfs-plugin-80000017.so")
    if not os.path.exists(so):
        raise SystemExit("the plugin did not build")
    return so


def check(img_gz, tsv, plugin_src):
    files = contents(need_samples=False)
    with open(tsv) as f:
        committed = f.read()
    regenerated = expected_rows(files).splitlines()
    if not set(regenerated) <= set(committed.splitlines()):
        sys.stderr.write("expected/wof.tsv differs from the regenerated content\n")
        return 1
    print("expected/wof.tsv: %d of %d rows regenerated and equal" % (len(regenerated) - 1, len(committed.splitlines()) - 1))
    work = tempfile.mkdtemp(prefix="wofcheck.")
    installed = False
    try:
        if not os.path.exists(PLUGIN):
            so = plugin(plugin_src, work)
            if so is None:
                print("build-wof.py --check: the plugin's sources cannot be fetched; read-back check skipped")
                return 0
            os.makedirs(PLUGIN_DIR, exist_ok=True)
            shutil.copy(so, PLUGIN)
            installed = True
        img, mnt = os.path.join(work, "wof.img"), os.path.join(work, "mnt")
        os.makedirs(mnt)
        with gzip.open(img_gz) as src, open(img, "wb") as dst:
            shutil.copyfileobj(src, dst)
        run(["ntfs-3g", "-o", "ro", img, mnt])
        bad = 0
        how = {path: h for path, _, h in contents(need_samples=False)}
        try:
            for line in committed.splitlines()[1:]:
                path, size, sha, comp, expect = line.split("\t")
                if how.get(path, "lzx") in ("dedup", "cloud"):
                    # ntfs-3g refuses every reparse tag it has no plugin for.
                    print("--   %-50s %-14s expected %-5s, not checked (no ntfs-3g plugin for its tag)" % (path, "-", expect))
                    continue
                try:
                    with open(os.path.join(mnt, path), "rb") as f:
                        got = f.read()
                    res = "ok" if hashlib.sha256(got).hexdigest() == sha and len(got) == int(size) else "DIFFERENT"
                except OSError as e:
                    res = "error (%s)" % e.strerror
                # A damaged file must not read back as its content (the plugin
                # may return what precedes the damage).
                good = res == "ok" if expect == "ok" else res != "ok"
                bad += not good
                print("%-4s %-50s %-14s expected %-5s, plugin: %s" % ("ok" if good else "FAIL", path, comp or "-", expect, res))
        finally:
            run(["umount", mnt])
        print("ntfs-3g + system-compression plugin: %s" % ("all files as expected" if not bad else "%d mismatches" % bad))
        return 1 if bad else 0
    finally:
        if installed:
            os.remove(PLUGIN)
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--plugin-src", help="ntfs-3g-system-compression checkout or bare git dir (--check)")
    a = ap.parse_args()
    img, tsv = os.path.join(HERE, "wof.img.gz"), os.path.join(HERE, "expected", "wof.tsv")
    if os.geteuid() != 0:
        print("build-wof.py: needs root (FUSE mounts); skipped")
        return 0
    if a.check:
        return check(img, tsv, a.plugin_src)
    build(img, tsv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
