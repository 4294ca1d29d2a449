#!/usr/bin/env python3
"""WOF chunk decoding speed: snapsift's own XPRESS Huffman and LZX decoders
(examples/wof_chunks.rs) against wimlib's decompressors (libwim through
ctypes) on the same chunks, made by wimlib's compressors.

    python3 benches/wof.py [FILE…]     (default: the evtx samples, a text log, an ELF binary)

Both sides decode every chunk `ROUNDS` times and keep the best round. The
ctypes call costs about a microsecond per chunk on wimlib's side (measured
with an empty call and subtracted).
"""
import ctypes
import ctypes.util
import glob
import os
import random
import struct
import subprocess
import sys
import tempfile
import time

ROUNDS = 5
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
lib = ctypes.CDLL(ctypes.util.find_library("wim") or "libwim.so.15")
lib.wimlib_compress.restype = ctypes.c_size_t
lib.wimlib_compress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
lib.wimlib_create_compressor.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]
lib.wimlib_create_decompressor.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
lib.wimlib_decompress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def inputs(paths):
    if paths:
        return b"".join(open(p, "rb").read() for p in paths)
    rnd = random.Random(1)
    data = b"".join(open(p, "rb").read() for p in sorted(glob.glob("/work/shared/samples/evtx/*.evtx")))
    data += "".join("2024-05-01T10:%05d host sshd[42]: Accepted publickey for user%d\n" % (i, rnd.randrange(99999))
                    for i in range(60000)).encode()
    data += open("/usr/bin/python3", "rb").read()[:4 << 20]
    return data


def main():
    data = inputs(sys.argv[1:])
    print("input: %.1f MB" % (len(data) / 1e6))
    subprocess.run(["cargo", "build", "-q", "--release", "--example", "wof_chunks"], cwd=REPO, check=True)
    exe = os.path.join(REPO, "target", "release", "examples", "wof_chunks")
    for name, ctype, cs, level in (("xpress4k", 1, 4096, 50), ("xpress16k", 1, 16384, 50), ("lzx", 2, 32768, 50)):
        comp, dec = ctypes.c_void_p(), ctypes.c_void_p()
        lib.wimlib_create_compressor(ctype, cs, level, ctypes.byref(comp))
        lib.wimlib_create_decompressor(ctype, cs, ctypes.byref(dec))
        chunks, rec = [], bytearray()
        for i in range(0, len(data), cs):
            raw = data[i:i + cs]
            buf = ctypes.create_string_buffer(len(raw))
            n = lib.wimlib_compress(raw, len(raw), buf, len(raw) - 1, comp)
            if n:
                chunks.append((buf.raw[:n], raw))
                rec += struct.pack("<BII", ctype == 2, len(raw), n) + buf.raw[:n] + raw
        total = sum(len(r) for _, r in chunks)
        outbuf = ctypes.create_string_buffer(cs)
        best = 1e9
        for _ in range(ROUNDS):
            t = time.perf_counter()
            for c, r in chunks:
                if lib.wimlib_decompress(c, len(c), outbuf, len(r), dec):
                    raise SystemExit("wimlib failed")
            best = min(best, time.perf_counter() - t)
        # The cost of the ctypes call itself (a zero-length decompress returns at once).
        t = time.perf_counter()
        for c, r in chunks:
            lib.wimlib_decompress(c, 0, outbuf, 0, dec)
        overhead = time.perf_counter() - t
        wim = total / max(best - overhead, 1e-9) / 1e6
        with tempfile.NamedTemporaryFile(suffix=".chunks") as f:
            f.write(rec)
            f.flush()
            out = subprocess.run([exe, f.name, str(ROUNDS)], stdout=subprocess.PIPE, check=True).stdout.decode()
        ours = float(out.split(",")[-1].split()[0])
        print("%-9s %5d chunks %6.1f MB: snapsift %7.1f MB/s, wimlib %7.1f MB/s (ctypes call cost %.3f s subtracted): %.2fx" % (
            name, len(chunks), total / 1e6, ours, wim, overhead, ours / wim))


if __name__ == "__main__":
    main()
