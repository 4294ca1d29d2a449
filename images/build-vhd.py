#!/usr/bin/python3
"""VHD/VHDX fixtures qemu-img cannot make, written from the specifications.

  images/vhd/log.vhdx, log-wrap.vhdx   a qemu-img VHDX with a dirty log
                                       ([MS-VHDX] 2.3) added by this script
  images/vhd/vhd-child.vhd             differencing VHD over vhd-parent.vhd
  images/vhd/vhdx-child.vhdx           differencing VHDX over vhdx-parent.vhdx
  images/expected/vhdx-log.tsv         per log case: patch, expected sha256, oracle
  images/expected/vhd-diff.tsv         per differencing disk: expected sha256

Parents and the base of the log fixtures come from qemu-img. Every expected
sha256 is computed from what this script put in (the raw disks it fed to
qemu-img, with its own changes applied), and is checked here against an
independent reader wherever one exists:
  * log cases: qemu replays the log itself (`qemu-img check -r all` on a
    copy, then `qemu-img convert`). qemu does not check that a sequence's
    head points back to its tail, so for the cases where the specification
    and qemu part ways (a wrapped log, a damaged tail entry, a truncated
    file, which qemu refuses) the expectation is the script's alone;
  * differencing disks: libvhdi (Debian python3-libvhdi, `pyvhdi`, with
    set_parent), which has its own VHD and VHDX readers. It agrees on every
    sector but those of two libvhdi defects (20210425, and 20260901 from
    PyPI), which the listing names: a VHD sector bitmap byte is shifted
    without masking (libvhdi_block_descriptor_read_sector_bitmap_data), so
    after a run of present sectors ends inside a byte the rest of that byte
    reads as present; and a PAYLOAD_BLOCK_ZERO block of a differencing VHDX
    is read from the parent, where [MS-VHDX] 2.5.1.1 says zeros.

  /usr/bin/python3 images/build-vhd.py          # rebuild fixtures and listings
  /usr/bin/python3 images/build-vhd.py --check  # rebuild in a temp dir, diff listings

Needs: qemu-utils, python3-libvhdi (Debian; import pyvhdi), gzip. No root.
"""
import gzip, hashlib, os, shutil, struct, subprocess, sys, tempfile, uuid

HERE = os.path.dirname(os.path.abspath(__file__))
KIB, MIB = 1024, 1 << 20
SECTOR = 512
LOG_SECTOR = 4096


# ---------------------------------------------------------------- helpers

def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC32C = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def with_crc(block, at=4):
    """[MS-VHDX] checksums: CRC-32C over the structure with the field zeroed."""
    b = bytearray(block)
    b[at:at + 4] = b"\0\0\0\0"
    b[at:at + 4] = struct.pack("<I", crc32c(bytes(b)))
    return bytes(b)


_PERIOD = bytes(i % 251 for i in range(2 * 251 + SECTOR))


def pattern(tag, first_sector, count):
    """`count` 512-byte sectors, each unique (tag and sector number at its
    start, then a 251-periodic ramp with a per-sector phase): tells a
    misplaced or shifted sector apart, yet compresses well."""
    out = bytearray()
    for s in range(first_sector, first_sector + count):
        head = ("%s:%08d:" % (tag, s)).encode().ljust(32, b".")
        phase = (s * 37) % 251
        out += head + _PERIOD[phase:phase + SECTOR - 32]
    return bytes(out)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def qemu_raw(path, fmt):
    out = path + ".out.raw"
    run("qemu-img", "convert", "-f", fmt, "-O", "raw", path, out)
    with open(out, "rb") as f:
        data = f.read()
    os.remove(out)
    return data


def libvhdi_read(child, parent):
    """The independent reading: libvhdi with its parent set."""
    import pyvhdi
    p = pyvhdi.file()
    p.open(parent)
    c = pyvhdi.file()
    c.open(child)
    c.set_parent(p)
    size = c.get_media_size()
    data = bytearray()
    while len(data) < size:
        data += c.read_buffer_at_offset(min(MIB, size - len(data)), len(data))
    c.close()
    p.close()
    return bytes(data)


# ---------------------------------------------------------------- VHDX parsing

def vhdx_current_header(f):
    best = None
    for off in (64 * KIB, 128 * KIB):
        f.seek(off)
        h = f.read(4096)
        if h[:4] == b"head" and with_crc(h) == h:
            if best is None or struct.unpack_from("<Q", h, 8)[0] > struct.unpack_from("<Q", best[1], 8)[0]:
                best = (off, h)
    return best


def vhdx_regions(f):
    f.seek(192 * KIB)
    r = f.read(64 * KIB)
    assert r[:4] == b"regi"
    out = {}
    for i in range(struct.unpack_from("<I", r, 8)[0]):
        g, off, length = struct.unpack_from("<16sQI", r, 16 + 32 * i)
        out[str(uuid.UUID(bytes_le=g)).upper()] = (off, length)
    return out


BAT_GUID = "2DC27766-F623-4200-9D64-115E9BFD4A08"
META_GUID = "8B7CA206-4790-4B9A-B8FE-575F050F886E"


# ---------------------------------------------------------------- VHDX log

LOG_GUID = uuid.UUID("5a4c0e6b-1f3d-4e55-9a31-6c0d2b7e9f10").bytes_le
OLD_LOG_GUID = uuid.UUID("0badc0de-0000-4000-8000-000000000001").bytes_le
LOG_DISK = 8 * MIB
LOG_BLOCK = MIB


def log_entry(seq, tail, writes, flushed, last, guid=LOG_GUID):
    """One log entry ([MS-VHDX] 2.3.1): header and descriptors, then a data
    sector per data descriptor; `writes` are (file offset, 4 KiB bytes) or
    (file offset, ("zero", length))."""
    descs, data = b"", b""
    for off, w in writes:
        if isinstance(w, tuple):
            descs += struct.pack("<4sIQQQ", b"zero", 0, w[1], off, seq)
        else:
            assert len(w) == LOG_SECTOR and off % LOG_SECTOR == 0
            descs += struct.pack("<4s4s8sQQ", b"desc", w[4092:], w[:8], off, seq)
            data += b"data" + struct.pack("<I", seq >> 32) + w[8:4092] + struct.pack("<I", seq & 0xFFFFFFFF)
    head_len = -(-(64 + len(descs)) // LOG_SECTOR) * LOG_SECTOR
    length = head_len + len(data)
    hdr = struct.pack("<4sIIIQII16sQQ", b"loge", 0, length, tail, seq, len(writes), 0, guid, flushed, last)
    entry = (hdr + descs).ljust(head_len, b"\0") + data
    return with_crc(entry)


def set_log_guid(f, guid):
    """Both headers name the log (the current one is what counts)."""
    for off in (64 * KIB, 128 * KIB):
        f.seek(off)
        h = bytearray(f.read(4096))
        h[48:64] = guid
        f.seek(off)
        f.write(with_crc(bytes(h)))


def build_log(work):
    # The disk: data in blocks 0-3 and 6-7; blocks 4 and 5 all zero, so
    # qemu-img leaves them unallocated (zero blocks) and the log can
    # allocate block 5.
    disk = bytearray(LOG_DISK)
    for b in (0, 1, 2, 3, 6, 7):
        at = b * LOG_BLOCK
        disk[at:at + 256 * KIB] = pattern("LOGDISK", at // SECTOR, 256 * KIB // SECTOR)
    raw = os.path.join(work, "log-disk.raw")
    with open(raw, "wb") as f:
        f.write(disk)
    base = os.path.join(work, "log-base.vhdx")
    run("qemu-img", "convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M,subformat=dynamic", raw, base)
    assert qemu_raw(base, "vhdx") == bytes(disk)

    with open(base, "r+b") as f:
        _, h = vhdx_current_header(f)
        log_len, log_off = struct.unpack_from("<IQ", h, 68)
        assert log_len == MIB and h[48:64] == bytes(16), "qemu-img made an unexpected log"
        bat_off, _ = vhdx_regions(f)[BAT_GUID]
        f.seek(bat_off)
        bat = list(struct.unpack("<8Q", f.read(64)))
        assert [e & 7 for e in bat] == [6, 6, 6, 6, 2, 2, 6, 6], bat  # 2: PAYLOAD_BLOCK_ZERO
        phys = lambda b, within: (bat[b] >> 20 << 20) + within
        # Payload of block 5 is written in place (payload never goes
        # through the log); only the BAT entry that allocates it is logged.
        f.seek(0, 2)
        new_block = -(-f.tell() // MIB) * MIB
        new_data = pattern("NEWBLOCK", 5 * LOG_BLOCK // SECTOR, LOG_BLOCK // SECTOR)
        f.seek(new_block)
        f.write(new_data)
        size = f.tell()
        f.seek(bat_off)
        bat_sector = bytearray(f.read(LOG_SECTOR))
    bat_sector[5 * 8:6 * 8] = struct.pack("<Q", new_block | 6)

    def sector(tag, n):
        return pattern(tag, n * 8, 8)

    p1, p2, p3, p4 = (0, 64 * KIB), (1, 128 * KIB), (2, 200 * KIB), (3, 32 * KIB)
    x1, x1b, x2, y = sector("A-P1", 1), sector("C-P1", 2), sector("A-P2", 3), sector("C-P4", 4)
    entries = [
        # A: two payload sectors.
        (10, [(phys(*p1), x1), (phys(*p2), x2)]),
        # B: the BAT sector allocating block 5; 8 KiB of payload zeroed.
        (11, [(bat_off, bytes(bat_sector)), (phys(*p3), ("zero", 8 * KIB))]),
        # C: P1 again (the later write wins); 16 KiB zeroed, then a sector
        # inside that range written (in order within one entry).
        (12, [(phys(*p1), x1b), (phys(*p4), ("zero", 16 * KIB)), (phys(*p4) + 4 * KIB, y)]),
    ]

    def virt(p):
        return p[0] * LOG_BLOCK + p[1]

    def expect(upto):
        d = bytearray(disk)
        if upto >= 10:
            d[virt(p1):virt(p1) + 4096] = x1
            d[virt(p2):virt(p2) + 4096] = x2
        if upto >= 11:
            d[5 * LOG_BLOCK:6 * LOG_BLOCK] = new_data
            d[virt(p3):virt(p3) + 8 * KIB] = bytes(8 * KIB)
        if upto >= 12:
            d[virt(p1):virt(p1) + 4096] = x1b
            d[virt(p4):virt(p4) + 16 * KIB] = bytes(16 * KIB)
            d[virt(p4) + 4 * KIB:virt(p4) + 8 * KIB] = y
        return bytes(d)

    def write_log(path, start_sector, extra):
        """The three entries from `start_sector` on (wrapping), all with
        their tail at the first; plus `extra` (sector, entry) elsewhere."""
        shutil.copyfile(base, path)
        ring = bytearray(log_len)
        at = start_sector * LOG_SECTOR
        places = {}
        for seq, writes in entries:
            e = log_entry(seq, start_sector * LOG_SECTOR, writes, size, size)
            places[seq] = at
            for i in range(0, len(e), LOG_SECTOR):
                o = (at + i) % log_len
                ring[o:o + LOG_SECTOR] = e[i:i + LOG_SECTOR]
            at = (at + len(e)) % log_len
        for s, e in extra:
            ring[s * LOG_SECTOR:s * LOG_SECTOR + len(e)] = e
        with open(path, "r+b") as f:
            # Block 5's payload, appended above, is in `base` already.
            f.seek(log_off)
            f.write(ring)
            set_log_guid(f, LOG_GUID)
        return {seq: log_off + at for seq, at in places.items()}

    stale_old_session = (128, log_entry(50, 128 * LOG_SECTOR, [(phys(*p2), sector("OLDGUID", 5))], size, size, OLD_LOG_GUID))
    log = os.path.join(work, "log.vhdx")
    at = write_log(log, 0, [stale_old_session])
    # The wrapped copy: A starts two sectors before the end of the ring and
    # its data sector wraps; an older complete sequence (seq 5, same LogGuid)
    # sits in the middle and must lose to the newer one.
    stale_same_guid = (100, log_entry(5, 100 * LOG_SECTOR, [(phys(*p2), sector("SEQ5", 6))], size, size))
    wrap = os.path.join(work, "log-wrap.vhdx")
    write_log(wrap, log_len // LOG_SECTOR - 2, [stale_same_guid, stale_old_session])

    # A byte of C's (head) and A's (tail) data sectors; a torn C; the file
    # cut below the newest entry's FlushedFileOffset.
    data_c = at[12] + LOG_SECTOR + 100
    data_a = at[10] + LOG_SECTOR + 100
    with open(log, "rb") as f:
        f.seek(data_c)
        c_byte = f.read(1)[0]
        f.seek(data_a)
        a_byte = f.read(1)[0]
    cases = [
        ("log.vhdx", "clean", "-", expect(12), "replayed in memory (3 entries, sequence numbers 10–12)"),
        ("log.vhdx", "bad-crc-head", "write:%d:%02x" % (data_c, c_byte ^ 0xFF), expect(11),
         "replayed in memory (2 entries, sequence numbers 10–11)"),
        ("log.vhdx", "torn-head", "zero:%d:%d" % (at[12] + LOG_SECTOR, LOG_SECTOR), expect(11),
         "replayed in memory (2 entries, sequence numbers 10–11)"),
        ("log.vhdx", "bad-crc-tail", "write:%d:%02x" % (data_a, a_byte ^ 0xFF), expect(0),
         "no valid, complete sequence"),
        ("log.vhdx", "truncated", "truncate:%d" % new_block, expect(0), "truncated"),
        ("log-wrap.vhdx", "clean", "-", expect(12), "replayed in memory (3 entries, sequence numbers 10–12)"),
    ]
    # qemu reads nothing of a VHDX whose log needs replaying read-only:
    # the fixture is dirty as far as an independent reader is concerned.
    r = subprocess.run(["qemu-img", "convert", "-f", "vhdx", "-O", "raw", log, log + ".raw"], capture_output=True, text=True)
    assert r.returncode != 0 and "log that needs to be replayed" in r.stderr, r.stderr
    rows = []
    for name, case, patch, want, warning in cases:
        oracle = "script"
        if name == "log.vhdx" and case in ("clean", "bad-crc-head", "torn-head"):
            # qemu replays a copy in place; its reading must agree.
            copy = os.path.join(work, "qemu-" + case + ".vhdx")
            shutil.copyfile(log, copy)
            apply_patch(copy, patch)
            run("qemu-img", "check", "-q", "-r", "all", "-f", "vhdx", copy)
            got = qemu_raw(copy, "vhdx")
            assert got == want, "qemu disagrees on %s %s" % (name, case)
            os.remove(copy)
            oracle = "qemu-img check -r all; convert"
        rows.append((name, case, patch, len(want), sha(want), oracle, warning))
    assert sha(expect(0)) != sha(expect(11)) != sha(expect(12))
    return [log, wrap], rows


def apply_patch(path, patch):
    """`-`, `write:OFFSET:HEX`, `zero:OFFSET:LENGTH` or `truncate:LENGTH`
    (tests/formats.rs applies the same to a copy of the fixture)."""
    if patch == "-":
        return
    kind, _, rest = patch.partition(":")
    with open(path, "r+b") as f:
        if kind == "truncate":
            f.truncate(int(rest))
            return
        off, arg = rest.split(":")
        f.seek(int(off))
        f.write(bytes.fromhex(arg) if kind == "write" else bytes(int(arg)))


# ---------------------------------------------------------------- differencing VHD

VHD_DISK = 12 * MIB
VHD_BLOCK = 2 * MIB
VHD_EPOCH_2024 = 757382400  # 2024-01-01 in VHD time (seconds since 2000-01-01)


def vhd_checksum(b, at):
    b = bytearray(b)
    b[at:at + 4] = b"\0\0\0\0"
    b[at:at + 4] = struct.pack(">I", ~sum(b) & 0xFFFFFFFF)
    return bytes(b)


def present_runs():
    """Child sectors per block (index within the block), shared by both
    formats: partial blocks with runs that start and end inside bitmap bytes."""
    return {
        0: list(range(0, 8)) + [9] + list(range(100, 164)) + ["last"],
        2: "all",
        3: [],  # allocated, every sector still the parent's
        4: list(range(3, 13)) + [17] + list(range(1000, 1101)),
    }


def sectors_of(spec, per_block):
    if spec == "all":
        return list(range(per_block))
    return [per_block - 1 if s == "last" else s for s in spec]


def build_vhd(work):
    parent_disk = pattern("VHDPARENT", 0, VHD_DISK // SECTOR)
    praw = os.path.join(work, "vhd-parent.raw")
    with open(praw, "wb") as f:
        f.write(parent_disk)
    parent = os.path.join(work, "vhd-parent.vhd")
    run("qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", praw, parent)
    with open(parent, "rb") as f:
        pfooter = f.read(512)
    assert pfooter[:8] == b"conectix"
    parent_id = pfooter[68:84]

    per_block = VHD_BLOCK // SECTOR
    blocks = VHD_DISK // VHD_BLOCK
    bitmap_len = 512  # 4096 sectors, one bit each, padded to a sector
    want = bytearray(parent_disk)
    runs = present_runs()

    # Layout: footer copy, dynamic header, BAT, locator data, blocks, footer.
    bat_off = 512 + 1024
    bat_len = -(-blocks * 4 // 512) * 512
    loc_off = bat_off + bat_len
    locators = [(b"W2ru", ".\\vhd-parent.vhd"), (b"W2ku", "C:\\evidence\\vhd-parent.vhd")]
    data_off = loc_off + 512 * len(locators)
    bat = [0xFFFFFFFF] * blocks
    body = bytearray()
    blind = set()
    for b in sorted(runs):
        present = sectors_of(runs[b], per_block)
        bitmap = bytearray(bitmap_len)
        # Sectors not present hold stale bytes a reader must not return.
        block = bytearray(pattern("STALE", b * per_block, per_block))
        child = pattern("VHDCHILD", b * per_block, per_block)
        for s in present:
            bitmap[s // 8] |= 0x80 >> (s % 8)  # VHD bitmaps are MSB first
            block[s * SECTOR:(s + 1) * SECTOR] = child[s * SECTOR:(s + 1) * SECTOR]
            v = b * VHD_BLOCK + s * SECTOR
            want[v:v + SECTOR] = child[s * SECTOR:(s + 1) * SECTOR]
        # libvhdi's defect: a clear bit after a set one in the same byte.
        for s in range(per_block):
            if not bitmap[s // 8] & (0x80 >> (s % 8)) and bitmap[s // 8] >> (7 - s % 8):
                blind.add(b * per_block + s)
        bat[b] = (data_off + len(body)) // 512
        body += bitmap + block

    footer = bytearray(pfooter)
    footer[24:28] = struct.pack(">I", VHD_EPOCH_2024)
    footer[60:64] = struct.pack(">I", 4)  # differencing
    footer[68:84] = uuid.UUID("6e1d0c3b-7a2f-4c1e-8d5b-3f9a0e2c4b71").bytes
    footer = vhd_checksum(bytes(footer), 64)

    dyn = bytearray(1024)
    struct.pack_into(">8sQQIIII16sII", dyn, 0, b"cxsparse", 0xFFFFFFFFFFFFFFFF, bat_off, 0x00010000,
                     blocks, VHD_BLOCK, 0, parent_id, struct.unpack_from(">I", pfooter, 24)[0], 0)
    name = "vhd-parent.vhd".encode("utf-16-be")
    dyn[64:64 + len(name)] = name
    loc_data = b""
    for i, (code, text) in enumerate(locators):
        data = text.encode("utf-16-le")
        struct.pack_into(">4sIIIQ", dyn, 576 + 24 * i, code, 1, len(data), 0, loc_off + 512 * i)  # space: 1 sector
        loc_data += data.ljust(512, b"\0")
    dyn = vhd_checksum(bytes(dyn), 36)

    child = os.path.join(work, "vhd-child.vhd")
    with open(child, "wb") as f:
        f.write(footer + dyn)
        f.write(b"".join(struct.pack(">I", e) for e in bat).ljust(bat_len, b"\xff"))
        f.write(loc_data + body + footer)
    return parent, child, bytes(want), blind


# ---------------------------------------------------------------- differencing VHDX

VHDX_DISK = 8 * MIB
VHDX_BLOCK = MIB
FILE_PARAMETERS = "CAA16737-FA36-4D43-B3B6-33F0AA44E76B"
VIRTUAL_DISK_SIZE = "2FA54224-CD1B-4876-B211-5DBED83BF4B8"
VIRTUAL_DISK_ID = "BECA12AB-B2E6-4523-93EF-C309E000C746"
LOGICAL_SECTOR = "8141BF1D-A96F-4709-BA47-F233A8FAAB5F"
PHYSICAL_SECTOR = "CDA348C7-445D-4471-9CC9-E9885251C556"
PARENT_LOCATOR = "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C"
VHDX_LOCATOR_TYPE = "B04AEFB7-D19E-4A81-B789-25B8E9445913"


def g(s):
    return uuid.UUID(s).bytes_le


def vhdx_child_file(parent_dwg, blocks, sector_bitmap, payload):
    """A differencing VHDX ([MS-VHDX] 2): file id, two headers, two region
    tables, an empty 1 MiB log, metadata, BAT, one sector bitmap block,
    payload blocks. `blocks` maps block → (state, payload index or None)."""
    log_off, meta_off, bat_off, sb_off, data_off = MIB, 2 * MIB, 3 * MIB, 4 * MIB, 5 * MIB
    f = bytearray(data_off + len(payload) * VHDX_BLOCK)
    f[0:8] = b"vhdxfile"
    creator = "snapsift images/build-vhd.py".encode("utf-16-le")
    f[8:8 + len(creator)] = creator
    for i, off in enumerate((64 * KIB, 128 * KIB)):
        h = struct.pack("<4sIQ16s16s16sHHIQ", b"head", 0, i + 1, g("11111111-2222-4333-8444-555555555555"),
                        g("a5a5a5a5-0000-4000-8000-00000000c41d"), bytes(16), 0, 1, MIB, log_off)
        f[off:off + 4096] = with_crc(h.ljust(4096, b"\0"))
    regions = struct.pack("<4sIII", b"regi", 0, 2, 0)
    regions += struct.pack("<16sQII", g(BAT_GUID), bat_off, MIB, 1)
    regions += struct.pack("<16sQII", g(META_GUID), meta_off, MIB, 1)
    regions = with_crc(regions.ljust(64 * KIB, b"\0"))
    f[192 * KIB:256 * KIB] = regions
    f[256 * KIB:320 * KIB] = regions

    # Parent locator: header, key/value entries, UTF-16LE strings.
    kv = [("parent_linkage", "{%s}" % str(uuid.UUID(bytes_le=parent_dwg)).lower()),
          ("relative_path", ".\\vhdx-parent.vhdx"),
          ("absolute_win32_path", "\\\\?\\C:\\evidence\\vhdx-parent.vhdx")]
    strings, table = b"", b""
    base = 20 + 12 * len(kv)
    for k, v in kv:
        kb, vb = k.encode("utf-16-le"), v.encode("utf-16-le")
        table += struct.pack("<IIHH", base + len(strings), base + len(strings) + len(kb), len(kb), len(vb))
        strings += kb + vb
    locator = struct.pack("<16sHH", g(VHDX_LOCATOR_TYPE), 0, len(kv)) + table + strings
    items = [
        (FILE_PARAMETERS, struct.pack("<II", VHDX_BLOCK, 2), 0b100),  # HasParent; IsRequired
        (VIRTUAL_DISK_SIZE, struct.pack("<Q", VHDX_DISK), 0b110),
        (VIRTUAL_DISK_ID, g("0d15c0de-5eed-4a11-b00c-0000000000d1"), 0b110),
        (LOGICAL_SECTOR, struct.pack("<I", SECTOR), 0b110),
        (PHYSICAL_SECTOR, struct.pack("<I", 4096), 0b110),
        (PARENT_LOCATOR, locator, 0b100),
    ]
    meta = bytearray(MIB)
    struct.pack_into("<8sHH", meta, 0, b"metadata", 0, len(items))
    at = 64 * KIB
    for i, (guid_s, data, flags) in enumerate(items):
        struct.pack_into("<16sIIII", meta, 32 + 32 * i, g(guid_s), at, len(data), flags, 0)
        meta[at:at + len(data)] = data
        at += -(-len(data) // 4096) * 4096
    f[meta_off:meta_off + MIB] = meta

    chunk_ratio = (1 << 23) * SECTOR // VHDX_BLOCK
    bat = [0] * (chunk_ratio + 1)  # one chunk: payload entries, then its sector bitmap
    for b, (state, idx) in blocks.items():
        bat[b] = state | ((data_off + idx * VHDX_BLOCK) if idx is not None else 0)
    bat[chunk_ratio] = sb_off | 6  # SB_BLOCK_PRESENT
    f[bat_off:bat_off + 8 * len(bat)] = struct.pack("<%dQ" % len(bat), *bat)
    f[sb_off:sb_off + len(sector_bitmap)] = sector_bitmap
    for i, p in enumerate(payload):
        f[data_off + i * VHDX_BLOCK:data_off + (i + 1) * VHDX_BLOCK] = p
    return bytes(f)


def build_vhdx_diff(work):
    parent_disk = pattern("VHDXPARENT", 0, VHDX_DISK // SECTOR)
    praw = os.path.join(work, "vhdx-parent.raw")
    with open(praw, "wb") as f:
        f.write(parent_disk)
    parent = os.path.join(work, "vhdx-parent.vhdx")
    run("qemu-img", "convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M,subformat=dynamic", praw, parent)
    with open(parent, "rb") as f:
        _, ph = vhdx_current_header(f)
    parent_dwg = ph[32:48]

    per_block = VHDX_BLOCK // SECTOR
    want = bytearray(parent_disk)
    sector_bitmap = bytearray(MIB)
    payload, blocks = [], {}
    blind = set()
    runs = present_runs()
    runs[6] = []                                     # partially present, no sector here
    runs[7] = list(range(per_block - 8, per_block))  # the block's last sectors
    for b in range(VHDX_DISK // VHDX_BLOCK):
        if b == 3:
            blocks[b] = (2, None)  # PAYLOAD_BLOCK_ZERO: zeros, not the parent's
            want[b * VHDX_BLOCK:(b + 1) * VHDX_BLOCK] = bytes(VHDX_BLOCK)
            blind.update(range(b * per_block, (b + 1) * per_block))  # libvhdi reads the parent
            continue
        if b not in runs:
            continue  # PAYLOAD_BLOCK_NOT_PRESENT: the parent's
        child = pattern("VHDXCHILD", b * per_block, per_block)
        if runs[b] == "all":
            blocks[b] = (6, len(payload))  # PAYLOAD_BLOCK_FULLY_PRESENT
            payload.append(child)
            want[b * VHDX_BLOCK:(b + 1) * VHDX_BLOCK] = child
            continue
        block = bytearray(pattern("STALE", b * per_block, per_block))
        for s in sectors_of(runs[b], per_block):
            bit = b * per_block + s  # the chunk's bitmap: bit 0 of byte 0 first
            sector_bitmap[bit // 8] |= 1 << (bit % 8)
            block[s * SECTOR:(s + 1) * SECTOR] = child[s * SECTOR:(s + 1) * SECTOR]
            v = b * VHDX_BLOCK + s * SECTOR
            want[v:v + SECTOR] = child[s * SECTOR:(s + 1) * SECTOR]
        blocks[b] = (7, len(payload))  # PAYLOAD_BLOCK_PARTIALLY_PRESENT
        payload.append(bytes(block))
    child = os.path.join(work, "vhdx-child.vhdx")
    with open(child, "wb") as f:
        f.write(vhdx_child_file(parent_dwg, blocks, bytes(sector_bitmap), payload))
    return parent, child, bytes(want), blind


# ---------------------------------------------------------------- main

def main():
    check = "--check" in sys.argv
    with tempfile.TemporaryDirectory() as work:
        log_files, log_rows = build_log(work)
        diff_rows, diff_files = [], []
        for fmt, build in (("vpc", build_vhd), ("vhdx", build_vhdx_diff)):
            parent, child, want, blind = build(work)
            got = libvhdi_read(child, parent)
            assert len(got) == len(want)
            differ = {i // SECTOR for i in range(0, len(want), SECTOR) if got[i:i + SECTOR] != want[i:i + SECTOR]}
            assert differ <= blind, "libvhdi disagrees on %s, sectors %s" % (child, sorted(differ - blind)[:20])
            oracle = "libvhdi (pyvhdi, set_parent)"
            if differ:
                oracle += ", all but %d sectors of its known defects" % len(differ)
            diff_rows.append((os.path.basename(child), os.path.basename(parent), len(want), sha(want), oracle))
            diff_files += [parent, child]
        listings = {
            "vhdx-log.tsv": "file\tcase\tpatch\tvirtual_size\tsha256\toracle\twarning\n"
            + "".join("\t".join(map(str, r)) + "\n" for r in log_rows),
            "vhd-diff.tsv": "file\tparent\tvirtual_size\tsha256\toracle\n"
            + "".join("\t".join(map(str, r)) + "\n" for r in diff_rows),
        }
        if check:
            status = 0
            for name, text in listings.items():
                with open(os.path.join(HERE, "expected", name)) as f:
                    if f.read() != text:
                        print("%s differs from a fresh build:\n%s" % (name, text))
                        status = 1
            print("listings match a fresh build" if status == 0 else "MISMATCH")
            sys.exit(status)
        out = os.path.join(HERE, "vhd")
        os.makedirs(out, exist_ok=True)
        for old in os.listdir(out):
            os.remove(os.path.join(out, old))
        for p in log_files + diff_files:
            with open(p, "rb") as src, open(os.path.join(out, os.path.basename(p) + ".gz"), "wb") as dst:
                dst.write(gzip.compress(src.read(), 9, mtime=0))
        for name, text in listings.items():
            with open(os.path.join(HERE, "expected", name), "w") as f:
                f.write(text)
        subprocess.run(["du", "-sh", out])


if __name__ == "__main__":
    main()
