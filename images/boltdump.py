#!/usr/bin/env python3
"""Print the bucket tree of a bbolt (BoltDB) file: an independent reader for
checking containerd's meta.db and the overlayfs snapshotter's metadata.db.

    python3 images/boltdump.py FILE [--values] [--raw]

Only the on-disk format is used (no bbolt library): two meta pages (0 and 1,
the valid one with the higher txid wins), branch pages (flag 0x01), leaf pages
(0x02), overflow pages, and inline buckets (bucket value with root page 0,
followed by an inline leaf page). Keys/values are shown as text when they are
printable, else hex; `--values` prints values of non-bucket keys; protobuf
values (spec, runtime options) are not decoded; containerd's known scalar
keys are: size/inodes/version = signed (zigzag) varint, id = uvarint,
kind = one byte (1 View, 2 Active, 3 Committed), createdat/updatedat = Go
time.MarshalBinary (v1: int64 s since 0001-01-01, int32 ns, int16 zone).
"""
import hashlib
import struct
import sys

PAGE_HDR = 16  # id u64, flags u16, count u16, overflow u32
BRANCH, LEAF, META, FREELIST = 0x01, 0x02, 0x04, 0x10
BUCKET_LEAF = 0x01
MAGIC = 0xED0CDAED


class Bolt:
    def __init__(self, data):
        self.data = data
        m0 = self._meta(0)
        psize = m0["page_size"] if m0 else 4096
        metas = [m for m in (m0, self._meta(psize)) if m]
        if not metas:
            raise SystemExit("not a bbolt file (no valid meta page)")
        self.meta = max(metas, key=lambda m: m["txid"])
        self.psize = self.meta["page_size"]

    def _meta(self, off):
        if off + PAGE_HDR + 64 > len(self.data):
            return None
        pid, flags, count, ovf = struct.unpack_from("<QHHI", self.data, off)
        if not flags & META:
            return None
        b = off + PAGE_HDR
        magic, version, psize, mflags, root, seq, freelist, pgid, txid, csum = struct.unpack_from(
            "<IIIIQQQQQQ", self.data, b)
        if magic != MAGIC:
            return None
        # checksum: FNV-1a 64 over the meta struct up to the checksum field
        h = 0xcbf29ce484222325
        for c in self.data[b:b + 56]:
            h = ((h ^ c) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
        if h != csum:
            return None
        return dict(version=version, page_size=psize, root=root, seq=seq, freelist=freelist, pgid=pgid, txid=txid)

    def page(self, pgid):
        off = pgid * self.psize
        pid, flags, count, ovf = struct.unpack_from("<QHHI", self.data, off)
        return off, flags, count, ovf

    def items(self, pgid, inline=None):
        """Yield (flags, key, value) of the leaf entries under page pgid (or an inline page)."""
        if inline is not None:
            buf, off = inline, 0
            pid, flags, count, ovf = struct.unpack_from("<QHHI", buf, 0)
        else:
            buf = self.data
            off, flags, count, ovf = self.page(pgid)
        if flags & BRANCH:
            for i in range(count):
                e = off + PAGE_HDR + i * 16
                pos, ksize, child = struct.unpack_from("<IIQ", buf, e)
                yield from self.items(child)
        elif flags & LEAF:
            for i in range(count):
                e = off + PAGE_HDR + i * 16
                fl, pos, ksize, vsize = struct.unpack_from("<IIII", buf, e)
                k = bytes(buf[e + pos:e + pos + ksize])
                v = bytes(buf[e + pos + ksize:e + pos + ksize + vsize])
                yield fl, k, v
        else:
            raise SystemExit("page %d has unexpected flags 0x%x" % (pgid, flags))

    def bucket(self, v):
        root, seq = struct.unpack_from("<QQ", v, 0)
        if root == 0:
            return self.items(0, inline=v[16:]), seq, True
        return self.items(root), seq, False


def show(b):
    if b and all(32 <= c < 127 for c in b):
        return b.decode()
    return "0x" + b.hex()


def varint(b):
    n = shift = 0
    for i, c in enumerate(b):
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n if i == len(b) - 1 else None
    return None


SIGNED = {b"size", b"inodes", b"version"}  # containerd: binary.PutVarint (zigzag)
UNSIGNED = {b"id"}                          # snapshotter ids: binary.PutUvarint
TIMES = {b"createdat", b"updatedat"}        # Go time.MarshalBinary


def value(k, v, raw):
    if k in SIGNED or k in UNSIGNED:
        n = varint(v)
        if n is not None:
            if k in SIGNED:
                n = (n >> 1) ^ -(n & 1)
            return "%d (%s)" % (n, "varint" if k in SIGNED else "uvarint")
    if k == b"kind" and len(v) == 1:
        return "%d (%s)" % (v[0], {1: "View", 2: "Active", 3: "Committed"}.get(v[0], "?"))
    if k in TIMES and len(v) in (15, 16) and v[0] in (1, 2):
        sec, nsec, off = struct.unpack_from(">qih", v, 1)
        unix = sec - 62135596800
        import datetime as dt
        d = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=unix)
        return "%s.%09dZ (time)" % (d.strftime("%Y-%m-%dT%H:%M:%S"), nsec)
    if len(v) > 120 and not raw:
        return "<%d bytes sha256 %s...>" % (len(v), hashlib.sha256(v).hexdigest()[:12])
    return show(v)


def dump(db, it, depth, values, raw):
    for fl, k, v in it:
        pad = "  " * depth
        if fl & BUCKET_LEAF:
            sub, seq, inl = db.bucket(v)
            print("%s[%s]%s%s" % (pad, show(k), " seq=%d" % seq if seq else "", " (inline)" if inl and raw else ""))
            dump(db, sub, depth + 1, values, raw)
        else:
            if values:
                print("%s%s = %s" % (pad, show(k), value(k, v, raw)))
            else:
                print("%s%s (%d bytes)" % (pad, show(k), len(v)))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        raise SystemExit(__doc__)
    data = open(args[0], "rb").read()
    db = Bolt(data)
    m = db.meta
    print("# %s: page size %d, txid %d, root page %d, freelist page %d, high-water pgid %d, file %d bytes" % (
        args[0], db.psize, m["txid"], m["root"], m["freelist"], m["pgid"], len(data)))
    dump(db, db.items(m["root"]), 0, "--values" in sys.argv, "--raw" in sys.argv)


if __name__ == "__main__":
    main()
