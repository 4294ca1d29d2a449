#!/usr/bin/env bash
# Seeds the fuzz corpora: fuzz/corpus/<target>/ (generated, not committed).
#
#   bash fuzz/seed.sh
#
# Seeds are small on purpose (libFuzzer mutates a 1 MiB input far better
# than a 50 MiB one): tiny images built here with the same independent
# tools as images/ (mke2fs -d, mkfs.xfs -p, mkntfs, mkfs.fat + mcopy,
# mkfs.exfat, sfdisk, sgdisk, qemu-img, GNU tar), and the first MiB of the
# committed fixtures (where superblocks, partition tables, the NTFS $MFT
# and LVM metadata are).
# A missing tool only means fewer seeds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
out=$here/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
have() { command -v "$1" >/dev/null; }
seed() { mkdir -p "$out/$1"; cp "$2" "$out/$1/$3"; }

# A small tree for the filesystems: logs, a history, links, a deep path, a
# long name, an empty file, a hole.
tree=$work/tree
mkdir -p "$tree/etc" "$tree/var/log/nginx" "$tree/root" "$tree/a/b/c/d/e/f/g"
echo web01 > "$tree/etc/hostname"
for i in $(seq 1 40); do echo "May  1 00:00:$i web01 sshd[1]: Failed password for root"; done > "$tree/var/log/auth.log"
echo "GET / HTTP/1.1" > "$tree/var/log/nginx/access.log"
echo "curl x | sh" > "$tree/root/.bash_history"
: > "$tree/var/log/empty.log"
echo deep > "$tree/a/b/c/d/e/f/g/deep.log"
echo long > "$tree/var/log/$(printf 'n%.0s' $(seq 1 200)).log"
ln -s /etc/hostname "$tree/var/log/link.log"
ln -s ../../../../../../etc/shadow "$tree/var/log/up.log"
truncate -s 3M "$tree/var/log/sparse.log" && echo tail >> "$tree/var/log/sparse.log"

# --- ext2/3/4 ---------------------------------------------------------------
if have mke2fs; then
  for spec in "ext2 -b1024" "ext3 -b1024 -Jsize=1" "ext4 -b1024 -O^has_journal" \
              "ext4 -b1024 -O^has_journal,inline_data" "ext4 -b4096 -O^has_journal,^extent,^64bit"; do
    set -- $spec
    f=$work/e.img; rm -f "$f"; truncate -s 1536K "$f"
    if mke2fs -q -F -t "$@" -N 64 -E root_owner=0:0 -d "$tree" "$f" 2>/dev/null; then
      seed fs_ext "$f" "$(echo "$spec" | tr -c 'a-z0-9\n' _)"
    fi
  done
fi

# --- XFS (v5 and v4; below 300 MB only for "testing", hence the variables) --
if have mkfs.xfs; then
  proto=$work/proto
  {
    echo /dev/null; echo 0 0; echo "d--755 0 0"
    echo "etc d--755 0 0"; echo "hostname ---644 0 0 $tree/etc/hostname"; echo '$'
    echo "var d--755 0 0"; echo "log d--755 0 0"
    echo "auth.log ---644 0 0 $tree/var/log/auth.log"
    echo "empty.log ---644 0 0 $tree/var/log/empty.log"
    for i in $(seq 1 30); do echo "f$i.log ---644 0 0 $tree/etc/hostname"; done
    echo "link.log l--777 0 0 /etc/hostname"
    echo '$'; echo '$'; echo '$'
  } > "$proto"
  for m in "crc=1" "crc=0 -n ftype=0"; do
    f=$work/x.img; rm -f "$f"; truncate -s 16M "$f"
    # shellcheck disable=SC2086
    if TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f -b size=1024 -d size=16m,agcount=1 -m $m \
        -p "$proto" "$f" >/dev/null; then
      head -c 1M "$f" > "$f.head"
      seed fs_xfs "$f.head" "$(echo "$m" | tr -c 'a-z0-9\n' _)"
    fi
  done
fi

# --- Btrfs (mixed block groups, 4 KiB nodes; as page lists: chunks lie past 1 MiB) --
if have mkfs.btrfs; then
  # The pages in use, as fs_btrfs reads a page list (fuzz/src/lib.rs): ~100 KiB.
  pagelist() {
    python3 - "$1" <<'PY'
import struct, sys
p = sys.argv[1]
d = open(p, "rb").read()
out = [b"BTRFSPG\0"]
for i in range(0, len(d), 4096):
    if any(d[i:i + 4096]):
        out.append(struct.pack("<I", i // 4096) + d[i:i + 4096])
open(p + ".head", "wb").write(b"".join(out))
PY
  }
  for c in crc32c xxhash; do
    f=$work/b.img; rm -f "$f"; truncate -s 16M "$f"
    if mkfs.btrfs -q -f --mixed -n 4096 -s 4096 -m single -d single --csum "$c" --rootdir "$tree" "$f" >/dev/null 2>&1; then
      pagelist "$f"
      seed fs_btrfs "$f.head" "mixed_$c"
    fi
  done
  # zstd, zlib and LZO extents and inline items: written by the kernel (root, loop mounts).
  if [ "$(id -u)" = 0 ] && losetup -f >/dev/null 2>&1; then
    f=$work/bc.img; m=$work/bm; rm -f "$f"; truncate -s 16M "$f"; mkdir -p "$m"
    if mkfs.btrfs -q -f --mixed -n 4096 -s 4096 "$f" >/dev/null 2>&1 && mount -o loop,compress=zstd "$f" "$m" 2>/dev/null; then
      for alg in zstd zlib lzo; do
        mount -o "remount,compress=$alg" "$m"
        mkdir -p "$m/var/log/$alg"
        for i in $(seq 1 3000); do echo "May  1 00:00:00 web01 $alg[$i]: session opened for user root"; done > "$m/var/log/$alg/big.log"
        head -c 1500 "$m/var/log/$alg/big.log" > "$m/var/log/$alg/small.log"
      done
      umount "$m"
      pagelist "$f"
      seed fs_btrfs "$f.head" "compressed"
    fi
  fi
fi

# --- NTFS (empty but complete: $MFT, $UpCase, root index, …) ---------------
if have mkntfs; then
  for c in 512 4096; do
    f=$work/n.img; rm -f "$f"; truncate -s 2M "$f"
    mkntfs -F -Q -q -c "$c" "$f" >/dev/null 2>&1 && seed fs_ntfs "$f" "mkntfs-c$c"
  done
fi

# --- FAT12/16/32 --------------------------------------------------------------
if have mkfs.fat && have mcopy; then
  for spec in "12 256" "16 4200" "32 34000"; do
    set -- $spec
    f=$work/f.img; rm -f "$f"
    mkfs.fat -F "$1" -S 512 -s 1 -C "$f" "$2" >/dev/null 2>&1 || continue
    MTOOLS_SKIP_CHECK=1 mcopy -s -i "$f" "$tree/etc" "$tree/root" ::/ 2>/dev/null || true
    MTOOLS_SKIP_CHECK=1 mcopy -i "$f" "$tree/var/log/auth.log" "::/Auth Log With A Long Name.log" 2>/dev/null || true
    head -c 1M "$f" > "$f.head"
    seed fs_fat "$f.head" "fat$1"
  done
fi

# --- exFAT (empty: boot region, FAT, bitmap, up-case table, root) -------------
if have mkfs.exfat; then
  for c in 512 4K; do
    f=$work/x.img; rm -f "$f"; truncate -s 1M "$f"
    mkfs.exfat -c "$c" -b 4K -L seed "$f" >/dev/null 2>&1 && seed fs_exfat "$f" "mkfs-c$c"
  done
fi

# --- partition tables ---------------------------------------------------------
if have sfdisk; then
  f=$work/mbr.img; rm -f "$f"; truncate -s 1M "$f"
  printf 'label: dos\n1,100,83\n200,1500,5\n300,100,83\n500,100,7\n700,100,8e\n' | sfdisk -q "$f" >/dev/null 2>&1 \
    && seed volume "$f" mbr-logical
fi
if have sgdisk; then
  f=$work/gpt.img; rm -f "$f"; truncate -s 1M "$f"
  sgdisk -q -n 1:34:500 -c 1:root -n 2:501:1000 -t 2:8e00 -n 3:1001:1500 -t 3:0700 "$f" >/dev/null 2>&1 \
    && head -c 64K "$f" > "$f.head" && seed volume "$f.head" gpt
fi

# --- disk image formats, from one small raw disk with a few blocks in use ---
raw=$work/disk.raw
python3 - "$raw" <<'PY'
import sys
d = bytearray(1 << 20)
for off in (0, 65536, 700000, (1 << 20) - 4096):
    d[off:off + 4096] = (b"snapsift fuzz seed %d\n" % off) * (4096 // 26) + bytes(4096 % 26)
open(sys.argv[1], "wb").write(d)
PY
if have qemu-img; then
  conv() { qemu-img convert -q -f raw -O "$@" "$raw" "$work/out" && seed "$target" "$work/out" "$name"; rm -f "$work/out"; }
  target=evidence_vmdk name=monolithicSparse conv vmdk -o subformat=monolithicSparse || true
  target=evidence_vmdk name=streamOptimized conv vmdk -o subformat=streamOptimized || true
  target=evidence_vhd name=dynamic conv vpc -o subformat=dynamic || true
  target=evidence_vhd name=fixed conv vpc -o subformat=fixed || true
  # VHDX: qemu-img puts the BAT at 2 MiB, the metadata at 3 MiB and the data
  # block at 8 MiB; moved closer (offsets are the file's own, the reader
  # follows them) the seed is 2 MiB instead of 9. The fuzz target recomputes
  # the header and region table CRCs itself.
  if qemu-img convert -q -f raw -O vhdx -o block_size=1M,log_size=1M "$raw" "$work/big.vhdx"; then
    python3 - "$work/big.vhdx" "$work/small.vhdx" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
KIB, MIB = 1024, 1 << 20
rt = bytearray(d[192 * KIB:256 * KIB])
new = bytearray(d[:192 * KIB]) + bytearray(MIB - 192 * KIB)
bat_at, meta_at = 0x60000, 0x70000
for i in range(struct.unpack_from("<I", rt, 8)[0]):
    e = 16 + i * 32
    off, length = struct.unpack_from("<QI", rt, e + 16)
    if rt[e:e + 4] == bytes.fromhex("6677c22d"):      # BAT
        bat = bytearray(d[off:off + 64 * KIB])
        for j in range(0, len(bat), 8):
            ent = struct.unpack_from("<Q", bat, j)[0]
            if ent & 7 == 6:
                src = (ent >> 20) << 20
                dst = len(new)
                new += d[src:src + MIB]
                struct.pack_into("<Q", bat, j, dst | 6)
        new[bat_at:bat_at + len(bat)] = bat
        struct.pack_into("<QI", rt, e + 16, bat_at, len(bat))
    else:                                             # metadata
        new[meta_at:meta_at + 128 * KIB] = d[off:off + 128 * KIB]
        struct.pack_into("<QI", rt, e + 16, meta_at, 128 * KIB)
new[192 * KIB:256 * KIB] = rt
new[256 * KIB:320 * KIB] = rt
open(sys.argv[2], "wb").write(new)
PY
    seed evidence_vhdx "$work/small.vhdx" default-1m
  fi
  target=evidence_qcow2 name=v3-512 conv qcow2 -o cluster_size=512 || true
  target=evidence_qcow2 name=v2-512 conv qcow2 -o compat=0.10,cluster_size=512 || true
  target=evidence_qcow2 name=deflate-4k conv qcow2 -c -o cluster_size=4096 || true
  target=evidence_qcow2 name=zstd-4k conv qcow2 -c -o cluster_size=4096,compression_type=zstd || true
  target=evidence_qcow2 name=subcluster-16k conv qcow2 -o cluster_size=16k,extended_l2=on || true
fi
if have tar; then
  ( cd "$work" && cp --sparse=always disk.raw disk.img
    for fmt in gnu oldgnu pax; do
      tar --sparse --format=$fmt -cf "t-$fmt.tar" disk.img && seed evidence_archive "t-$fmt.tar" "sparse-$fmt.tar"
    done
    for v in 0.0 0.1 1.0; do
      tar --sparse --format=pax --sparse-version=$v -czf "t.tar.gz" disk.img && seed evidence_archive t.tar.gz "pax$v.tar.gz"
    done
    gzip -c disk.raw > disk.raw.gz && seed evidence_archive disk.raw.gz raw.gz )
fi

# --- WOF chunks (ntfs_wof): made by wimlib's compressors, as images/build-wof.py does
# (first byte: 0x00|k XPRESS chunk of k*512+1 bytes, 0x40|k LZX chunk, 0x80 a
# WofCompressedData stream of 4 KiB XPRESS chunks, 0xC0 of 32 KiB LZX chunks;
# then, for streams, the original size / 64 as two bytes).
python3 - "$out" <<'PY' || true
import ctypes, ctypes.util, os, random, struct, sys
out = os.path.join(sys.argv[1], "ntfs_wof")
try:
    lib = ctypes.CDLL(ctypes.util.find_library("wim") or "libwim.so.15")
except OSError:
    sys.exit(0)
lib.wimlib_compress.restype = ctypes.c_size_t
lib.wimlib_compress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
lib.wimlib_create_compressor.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]
def compress(ctype, size, data, level=50):
    c = ctypes.c_void_p()
    lib.wimlib_create_compressor(ctype, size, level, ctypes.byref(c))
    buf = ctypes.create_string_buffer(len(data))
    n = lib.wimlib_compress(data, len(data), buf, len(data) - 1, c)
    return buf.raw[:n] if n else data
os.makedirs(out, exist_ok=True)
rnd = random.Random(5)
text = "".join("line %d user%d sshd\n" % (i, rnd.randrange(99)) for i in range(3000)).encode()
calls = b"".join(b"\x48\x89\xe5\xe8" + struct.pack("<i", rnd.randrange(-9000, 9000)) for _ in range(5000))
for k in (1, 7, 31):
    n = k * 512 + 1
    open(os.path.join(out, "xpress-%d" % k), "wb").write(bytes([k]) + compress(1, 4096 if n <= 4096 else 16384, text[:n]))
    open(os.path.join(out, "lzx-%d" % k), "wb").write(bytes([0x40 | k]) + compress(2, 32768, (calls if k == 31 else text)[:n], 100))
for sel, ctype, cs in ((0x80, 1, 4096), (0xC0, 2, 32768)):
    size = 64 * 1500
    data = (text + calls)[:size]
    chunks = [compress(ctype, cs, data[i:i + cs]) for i in range(0, size, cs)]
    table, end = b"", 0
    for c in chunks[:-1]:
        end += len(c)
        table += struct.pack("<I", end)
    open(os.path.join(out, "stream-%02x" % sel), "wb").write(bytes([sel]) + struct.pack("<H", size // 64) + table + b"".join(chunks))
PY

# --- the committed fixtures: the first MiB holds the metadata -----------------
python3 - "$repo" "$out" <<'PY'
import gzip, os, struct, sys
repo, out = sys.argv[1:]

def head(name, n=1 << 20):
    with gzip.open(os.path.join(repo, "images", name + ".gz")) as f:
        return f.read(n)

def put(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    open(os.path.join(out, target, name), "wb").write(data)

for n in ("linux-gpt.img", "linux-gpt4k.img", "linux-mbr.img", "al2023-gpt.img"):
    put("volume", n, head(n, 64 << 10))
for n in ("ext4-edge.img", "hostile-ext4.img", "ext2-bare.img", "ext3-bare.img"):
    put("fs_ext", n, head(n))
for n in ("ntfs-win.img", "ntfs-64k.img", "ntfs-mftlist.img", "ntfs-4kn.img"):
    put("fs_ntfs", n, head(n))
for n in ("xfs-v4.img", "xfs-v5.img"):
    put("fs_xfs", n, head(n))
# exFAT: everything the fixture holds is in its first 96 KiB.
put("fs_exfat", "exfat.img", head("exfat.img", 128 << 10))
# LVM: a bare PV (label and metadata area), and its metadata text.
lvm = head("linux-lvm.img", 16 << 20)
label = lvm.find(b"LABELONE")
while label >= 0 and label % 512:
    label = lvm.find(b"LABELONE", label + 1)
if label >= 0:
    pv = label - label % 4096
    put("volume", "lvm-pv", lvm[pv:pv + (1 << 20)])
    mda = lvm.find(b" LVM2 x[5A%r0N*>", pv) - 4
    off, size = struct.unpack_from("<QQ", lvm, mda + 40)
    put("lvm_metadata", "linux-lvm.txt", lvm[mda + off:mda + off + size].rstrip(b"\0"))
for n in ("stream.vmdk", "snap.vmdk"):
    put("evidence_vmdk", n, head("formats/" + n))
put("evidence_qcow2", "chain.qcow2", head("formats/chain.qcow2"))
put("evidence_vhd", "dynamic.vhd", head("formats/dynamic.vhd"))
put("evidence_archive", "gcp-oldgnu.tar.gz", open(os.path.join(repo, "images/formats/gcp-oldgnu.tar.gz"), "rb").read(64 << 10))

# Hives: the builder's own SYSTEM and SOFTWARE.
sys.path.insert(0, os.path.join(repo, "images"))
import build_ntfs as B
put("regf", "system", B.system_hive("WIN01", mounted=[("\\DosDevices\\C:", B.mounted_gpt("5eed0010-0000-4000-8000-000000000001")),
                                                       ("\\DosDevices\\E:", B.mounted_mbr(0x5eed0042, 1 << 20))],
                                    eventlog_files=[("Security", "D:\\Logs\\Security.evtx")]))
put("regf", "software", B.software_hive("Windows Server 2022 Datacenter", "21H2", "20348"))

put("targets_toml", "builtin.toml", open(os.path.join(repo, "src/targets/builtin.toml"), "rb").read())
put("targets_toml", "small.toml", b'[[target]]\nname = "a"\ndescription = "d"\nos = "linux"\nscope = "os"\n'
    b'paths = ["/opt/**/{x,y}[0-9]*.log", "%%users.homedir%%/.h*"]\nexclude = ["opt/skip/**"]\n'
    b'case_insensitive = true\nmax_size = 1024\n\n[[target]]\nname = "b"\ndescription = "e"\nscope = "any"\npaths_from = "a"\n')
put("artifacts_yaml", "small.yaml", b"""name: WindowsEventLogs
doc: Windows Event logs.
sources:
- type: FILE
  attributes:
    paths: ['%%environ_systemroot%%\\\\System32\\\\winevt\\\\Logs\\\\*.evtx']
    separator: '\\\\'
supported_os: [Windows]
---
name: LinuxLogs
doc: Logs.
sources:
- type: FILE
  attributes: {paths:['/var/log/**5', '%%users.homedir%%/.bash_history']}
- type: ARTIFACT_GROUP
  attributes:
    names: [WindowsEventLogs, LinuxLogs]
supported_os: [Linux]
""")
PY
# Login records and audit logs: images/build-logins.py's fixtures (the
# lastlog seed is its first records, not the 17 MiB sparse whole).
mkdir -p "$out/utmp_json" "$out/audit_json"
for f in wtmp btmp utmp; do cp "$repo/images/logins/$f" "$out/utmp_json/$f"; done
# A thin pool's metadata: images/build-lvm-thin.py's (thin_restore), the
# first 64 blocks of its metadata volume (at 2 MiB in the disk).
mkdir -p "$out/thin_pool"
gzip -dc "$repo/images/lvm-thin.img.gz" | tail -c +$((2 * 1048576 + 1)) | head -c 262144 > "$out/thin_pool/lvm-thin" || true
python3 -c 'import gzip, sys; sys.stdout.buffer.write(gzip.open(sys.argv[1]).read()[:292 * 1001][-292 * 2:])' \
  "$repo/images/logins/lastlog.gz" > "$out/utmp_json/lastlog-1000"
cp "$repo/images/logins/passwd" "$out/utmp_json/passwd"
cp "$repo/images/logins/audit.log" "$out/audit_json/audit.log"
# Text logs: the start of a syslog, an access log and ISO lines with zones,
# behind a byte that picks the chunk size.
mkdir -p "$out/text_log"
printf '\x07May  1 12:00:00 web01 sshd[1]: Accepted\nMay  1 13:01:02 web01 cron[2]: x\n' > "$out/text_log/syslog"
printf '\x10203.0.113.7 - - [01/May/2024:12:00:00 +0000] "GET /" 200\n2024-05-01T12:00:00.5+02:00 a\n2024-05-01 07:00:00 -0500 b\n2019-01-01T00:00:00Z c' > "$out/text_log/mixed"
head -n 12 "$repo/images/logins/audit.log" > "$out/audit_json/one-execve.log"
# systemd journals: a few dozen entries written by systemd-journal-remote
# (compact + ZSTD, regular uncompressed, compact + XZ/LZ4 when a newer one is
# given as images/build-journald.py describes), then shrunk from 8 MiB: the
# hash tables (which the converter never reads) and the unused tail are cut
# out and every offset moved down.
if [ -x /lib/systemd/systemd-journal-remote ]; then
  mkdir -p "$out/journal_json"
  python3 "$repo/images/build-journald.py" --export "$work/j.export" --entries 40
  jr() { /lib/systemd/systemd-journal-remote -o "$work/$1.journal" "$work/j.export" >/dev/null 2>&1; }
  SYSTEMD_JOURNAL_COMPACT=1 jr compact-zstd || true
  SYSTEMD_JOURNAL_COMPACT=0 SYSTEMD_JOURNAL_KEYED_HASH=0 jr regular-plain --compress=no || true
  if [ -n "${JOURNAL_REMOTE_NEW:-}" ]; then
    for c in XZ LZ4; do
      LD_LIBRARY_PATH=$JOURNAL_REMOTE_NEW/usr/lib/x86_64-linux-gnu/systemd SYSTEMD_JOURNAL_COMPRESS=$c \
        "$JOURNAL_REMOTE_NEW/lib/systemd/systemd-journal-remote" -o "$work/compact-$c.journal" "$work/j.export" >/dev/null 2>&1 || true
    done
  fi
  python3 - "$work" "$out/journal_json" <<'PY'
import glob, os, struct, sys
work, out = sys.argv[1:]
for path in glob.glob(os.path.join(work, "*.journal")):
    d = bytearray(open(path, "rb").read())
    hsize, arena = struct.unpack_from("<QQ", d, 88)
    compact = struct.unpack_from("<I", d, 12)[0] & 16
    objs, at = [], hsize
    while at + 16 <= min(hsize + arena, len(d)):
        size = struct.unpack_from("<Q", d, at + 8)[0]
        if size == 0:
            break
        objs.append((at, size))
        at += (size + 7) // 8 * 8
    new, pos = {}, hsize
    for at, size in objs:
        if d[at] not in (4, 5):
            new[at] = pos
            pos += (size + 7) // 8 * 8
    m = lambda x: new.get(x, 0)
    def fix(at, width):
        fmt = "<I" if width == 4 else "<Q"
        struct.pack_into(fmt, d, at, m(struct.unpack_from(fmt, d, at)[0]))
    for at, size in objs:
        t = d[at]
        if t == 1:
            for f in (24, 32, 40, 48):
                fix(at + f, 8)
            if compact:
                fix(at + 64, 4)
        elif t == 2:
            fix(at + 24, 8); fix(at + 32, 8)
        elif t == 3:
            step = 4 if compact else 16
            for i in range(at + 64, at + size, step):
                fix(i, 4 if compact else 8)
        elif t == 6:
            fix(at + 16, 8)
            step = 4 if compact else 8
            for i in range(at + 24, at + size, step):
                fix(i, step)
    for f in (104, 120, 136, 176):
        fix(f, 8)
    if hsize >= 264:
        fix(256, 4)
    if hsize >= 272:
        fix(264, 8)
    small = bytearray(d[:hsize])
    for at, size in objs:
        if d[at] not in (4, 5):
            small += d[at:at + size] + bytes((size + 7) // 8 * 8 - size)
    struct.pack_into("<Q", small, 96, len(small) - hsize)
    open(os.path.join(out, os.path.basename(path)), "wb").write(small)
PY
fi
# Third-party samples beside the repository, when present: the community
# ForensicArtifacts definitions, and e2fsprogs' corrupted test images (the
# first 2 MiB of each).
samples=$repo/../shared/samples
if [ -d "$samples/forensic-artifacts" ]; then
  find "$samples/forensic-artifacts" -name '*.yaml' -size -200k -exec cp {} "$out/artifacts_yaml/" \;
fi
# Event logs: the file header and first chunk of each real sample (a chunk
# is self-contained: its own string and template tables).
mkdir -p "$out/evtx_json"
for f in "$samples"/evtx/*.evtx; do
  [ -e "$f" ] || continue
  head -c $((4096 + 65536)) "$f" > "$out/evtx_json/$(basename "$f")"
done
for f in "$samples"/e2fsprogs/*.img.gz; do
  [ -e "$f" ] || continue
  gzip -dc "$f" | head -c 2M > "$out/fs_ext/e2fsprogs-$(basename "$f" .img.gz)" || true
done
# Dirty journals: e2fsprogs' recovery images of at most 2 MiB (clean and
# damaged transactions, checksums v2/v3, revokes), whole.
mkdir -p "$out/ext_journal"
for f in "$samples"/e2fsprogs-journal/*.img.gz; do
  [ -e "$f" ] || continue
  n=$(gzip -dc "$f" | wc -c)
  [ "$n" -le $((2 << 20)) ] && gzip -dc "$f" > "$out/ext_journal/$(basename "$f" .img.gz)"
done
# The XFS log: the kernel's snapshot's internal log up to its head (the
# harness splices the input back into that filesystem in place of its log).
python3 - "$repo" "$out" <<'PY' || true
import gzip, os, struct, sys
repo, out = sys.argv[1:]
img = gzip.open(os.path.join(repo, "images", "journal-xfs.img.gz")).read()
bs, = struct.unpack_from(">I", img, 4)
start, = struct.unpack_from(">Q", img, 48)
agblocks, = struct.unpack_from(">I", img, 84)
blocks, = struct.unpack_from(">I", img, 96)
agblklog = img[124]
at = ((start >> agblklog) * agblocks + (start & ((1 << agblklog) - 1))) * bs
log = img[at:at + blocks * bs]
# The written records: cycle 1 from block 0 until the first cycle-0 block.
end = next((b for b in range(0, len(log), 512)
            if struct.unpack_from(">I", log, b + (4 if log[b:b + 4] == b"\xfe\xed\xba\xbe" else 0))[0] == 0), len(log))
os.makedirs(os.path.join(out, "xfs_log"), exist_ok=True)
open(os.path.join(out, "xfs_log", "journal-xfs-log"), "wb").write(log[:end])
PY
# Containers: the committed image archives, their layers, and containerd's
# two bbolt databases cut out of the node image (offsets from the listing).
mkdir -p "$out/image_archive" "$out/tar_layer" "$out/bbolt"
cp "$repo"/images/containers/*.tar "$out/image_archive/" 2>/dev/null || true
python3 - "$repo" "$out" <<'PY' || true
import csv, gzip, io, os, sys, tarfile
repo, out = sys.argv[1], sys.argv[2]
with tarfile.open(os.path.join(repo, "images/containers/app-image.docker.tar")) as t:
    for m in t.getmembers():
        if m.name.endswith("layer.tar"):
            open(os.path.join(out, "tar_layer", m.name.replace("/", "_")), "wb").write(t.extractfile(m).read())
rows = list(csv.DictReader(open(os.path.join(repo, "images/expected/containers-files.tsv")), delimiter="\t"))
disk = gzip.open(os.path.join(repo, "images/containers-node.img.gz")).read()
for name in sorted({r["path"] for r in rows}):
    db = bytearray()
    for r in (r for r in rows if r["path"] == name):
        fo, off, n = int(r["file_offset"]), int(r["image_offset"]), int(r["length"])
        db[fo:fo + n] = disk[off:off + n]
    open(os.path.join(out, "bbolt", os.path.basename(name)), "wb").write(bytes(db))
PY
# --- a link's server answers: Content-Range, then an Azure page list ------
mkdir -p "$out/remote_responses"
printf 'bytes 0-0/1073741824\n<?xml version="1.0" encoding="utf-8"?><PageList><PageRange><Start>0</Start><End>511</End></PageRange><ClearRange><Start>512</Start><End>1023</End></ClearRange><PageRange><Start>4096</Start><End>65535</End></PageRange><NextMarker>2!84!MDAwMDEw</NextMarker></PageList>' \
  > "$out/remote_responses/pagelist"
printf 'bytes 5-9/10\n<PageList/>' > "$out/remote_responses/empty"

for d in "$out"/*/; do printf '%-20s %3d seeds, %s\n' "$(basename "$d")" "$(ls "$d" | wc -l)" "$(du -sh "$d" | cut -f1)"; done
