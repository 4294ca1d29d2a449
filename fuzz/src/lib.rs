//! What the fuzz targets share. Each target hands untrusted bytes to one
//! parser and then drives everything the parser returns — reads the virtual
//! disk, walks every directory, reads every file — so a bug anywhere below
//! the entry point is reached, not only in the header parsing.
//!
//! Work is bounded (bytes read per file and per run, entries walked) so a
//! valid but huge declared size (a 1 TiB sparse file) costs the fuzzer
//! nothing; a parser that loops or allocates without bound still shows up
//! as a libFuzzer timeout or out-of-memory report.

//!
//! This file is also compiled into tests/fuzz_regressions.rs, which replays
//! every input under tests/fuzz-regressions/<target>/ through [`TARGETS`]:
//! a crash found here stays fixed.

use snapsift::evidence::{self, ReadAt, Source};
use snapsift::fs::{self, FileKind, FileSystem, Probe};
use snapsift::host::{regf, registry};
use snapsift::targets::{Matcher, Scope, Target, VolumeContext};
use snapsift::util::crc::{crc32, crc32c_raw};
use snapsift::volume::lvm;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// A fuzz target's body.
pub type Harness = fn(&[u8]);

/// Every fuzz target: its name (the binary under fuzz_targets/) and body.
pub const TARGETS: &[(&str, Harness)] = &[
    ("evidence_vmdk", evidence_vmdk),
    ("evidence_vhd", evidence_vhd),
    ("evidence_vhdx", evidence_vhdx),
    ("evidence_qcow2", evidence_qcow2),
    ("evidence_archive", evidence_archive),
    ("remote_responses", remote_responses),
    ("volume", volume),
    ("lvm_metadata", lvm_metadata),
    ("thin_pool", thin_pool),
    ("volume_vss", volume_vss),
    ("fs_ext", fs_ext),
    ("ext_journal", ext_journal),
    ("xfs_log", xfs_log),
    ("fs_xfs", fs_xfs),
    ("fs_btrfs", fs_btrfs),
    ("fs_ntfs", fs_ntfs),
    ("ntfs_wof", ntfs_wof),
    ("fs_fat", fs_fat),
    ("fs_exfat", fs_exfat),
    ("regf", regf),
    ("targets_toml", targets_toml),
    ("artifacts_yaml", artifacts_yaml),
    ("bbolt", bbolt),
    ("tar_layer", tar_layer),
    ("image_archive", image_archive),
    ("evtx_json", evtx_json),
    ("utmp_json", utmp_json),
    ("audit_json", audit_json),
    ("journal_json", journal_json),
    ("text_log", text_log),
];

/// VMDK: sparse and streamOptimized headers, embedded descriptors, grain
/// directories and tables, compressed grains, marker scans.
pub fn evidence_vmdk(data: &[u8]) {
    open_evidence(data, "disk.vmdk");
}

/// A link's server answers: a Content-Range value, then an Azure page list
/// (XML from a server that may be hostile).
pub fn remote_responses(data: &[u8]) {
    snapsift::evidence::remote::fuzz_responses(data);
}

/// VHD: footer (at the start or the end), dynamic header, BAT, bitmaps.
pub fn evidence_vhd(data: &[u8]) {
    open_evidence(data, "disk.vhd");
}

/// VHDX: headers, region tables, metadata, BAT. The CRCs are recomputed
/// after mutation, or nothing past the header checks would be reached.
pub fn evidence_vhdx(data: &[u8]) {
    let mut d = data.to_vec();
    fix_vhdx_crcs(&mut d);
    open_evidence(&d, "disk.vhdx");
}

/// QCOW2 v2/v3: header, L1/L2 tables, extended L2, compressed clusters.
pub fn evidence_qcow2(data: &[u8]) {
    open_evidence(data, "disk.qcow2");
}

/// gzip and tar (GNU old sparse, PAX 0.0/0.1/1.0 sparse, long names), and
/// whatever disk format is inside.
pub fn evidence_archive(data: &[u8]) {
    open_evidence(data, "disk.tar.gz");
}

/// Partition tables on an in-memory disk: MBR with its EBR chain, GPT
/// (CRCs recomputed after mutation), LVM PV labels and metadata areas;
/// then every volume found is read.
pub fn volume(data: &[u8]) {
    let mut d = data.to_vec();
    fix_gpt_crcs(&mut d);
    let disk: Source = Arc::new(d);
    let vs = snapsift::volume::discover(&disk);
    for v in vs.volumes.iter().take(64) {
        let _ = v.id();
        read_source(&*v.source);
    }
}

/// A thin pool's metadata device (up to 64 blocks of 4 KiB), with its
/// checksums and block numbers made right so the B-tree walk is reached:
/// each thin device 0–3 looked up and read through the pool.
pub fn thin_pool(data: &[u8]) {
    const B: usize = 4096;
    let mut m = data.get(..data.len().min(64 * B)).unwrap_or(&[]).to_vec();
    m.resize(m.len().div_ceil(B).max(1) * B, 0);
    let blocks = m.len() / B;
    m[32..40].copy_from_slice(&27_022_010u64.to_le_bytes());
    m[344..352].copy_from_slice(&(blocks as u64).to_le_bytes());
    for i in 0..blocks {
        let b = &mut m[i * B..(i + 1) * B];
        if i > 0 {
            b[8..16].copy_from_slice(&(i as u64).to_le_bytes());
        }
        let csum = crc32c_raw(!0, &b[4..]) ^ if i == 0 { 160_774 } else { 121_107 };
        b[0..4].copy_from_slice(&csum.to_le_bytes());
    }
    let data: Source = Arc::new((0..1u32 << 20).map(|i| i as u8).collect::<Vec<u8>>());
    let Ok(pool) = snapsift::volume::thin::Pool::open(Arc::new(m), data) else { return };
    for id in 0..4 {
        if let Ok(dev) = pool.device(id, 16 << 20) {
            read_source(&*dev);
        }
    }
}

/// Volume Shadow Copy stores: the input is a volume of at most 2 MiB with
/// the VSS volume header at 0x1e00 and a catalog block header at 0x4000
/// forced into place, so the catalog's entries, the stores' block lists,
/// bitmaps and descriptors are what gets mutated; every store found is
/// then read whole.
pub fn volume_vss(data: &[u8]) {
    const ID: [u8; 16] = [0x6b, 0x87, 0x08, 0x38, 0x76, 0xc1, 0x48, 0x4e, 0xb7, 0xae, 0x04, 0x04, 0x6e, 0x6c, 0xc7, 0x52];
    let mut v = data.get(..data.len().min(2 << 20)).unwrap_or(&[]).to_vec();
    v.resize(v.len().max(0x8000), 0);
    v[0x1e00..0x1e10].copy_from_slice(&ID);
    v[0x1e14..0x1e18].copy_from_slice(&1u32.to_le_bytes());
    v[0x1e30..0x1e38].copy_from_slice(&0x4000u64.to_le_bytes());
    v[0x4000..0x4010].copy_from_slice(&ID);
    v[0x4014..0x4018].copy_from_slice(&2u32.to_le_bytes());
    let vol: Source = Arc::new(v);
    let Some(shadows) = snapsift::volume::vss::find(&vol) else { return };
    for (_, store) in shadows.stores {
        read_source(&*store);
    }
}

/// LVM2 metadata text (its config language) and the logical volumes it
/// describes, given directly (past the checksums). Each `id = "…"` in it
/// becomes a PV of 1 MiB, so segments map onto real sources.
pub fn lvm_metadata(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let ids: Vec<String> =
        text.match_indices("id = \"").filter_map(|(i, m)| text[i + m.len()..].split('"').next().map(String::from)).take(4).collect();
    let disk: Source = Arc::new((0..1u32 << 20).map(|i| i as u8).collect::<Vec<u8>>());
    let pvs: Vec<lvm::Pv> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| lvm::Pv {
            uuid: id.clone(),
            disk: i % 2,
            source: disk.clone(),
            metadata: (i == 0).then(|| text.clone()),
            problems: Vec::new(),
        })
        .collect();
    let (mut warnings, mut failed) = (Vec::new(), Vec::new());
    for lv in lvm::logical_volumes(&pvs, &mut warnings, &mut failed) {
        if let Some(s) = lv.source {
            read_source(&*s);
        }
    }
}

/// ext2/3/4: superblock, group descriptors, inodes, extent trees and
/// indirect blocks, directories.
pub fn fs_ext(data: &[u8]) {
    if data.get(1080..1082) == Some(&[0x53, 0xEF]) {
        filesystem(data);
    }
}

/// ext3/4 whose journal needs recovery: the jbd2 replay (journal
/// superblock, descriptor/revoke/commit blocks, checksums, revokes), the
/// overlay it leaves, and both views walked and compared file by file as
/// the collector does.
pub fn ext_journal(data: &[u8]) {
    // INCOMPAT_RECOVER, or there is nothing to replay.
    if data.get(1080..1082) != Some(&[0x53, 0xEF]) || data.get(1024 + 0x60).is_none_or(|f| f & 0x4 == 0) {
        return;
    }
    let vol: Source = Arc::new(data.to_vec());
    if let Probe::Found(fs) = fs::probe(&vol) {
        replayed_views(&*fs);
    }
}

/// A replayed filesystem as the collector reads it: what the replay says,
/// both views walked, and each root entry compared.
fn replayed_views(fs: &dyn FileSystem) {
    let _ = fs.replay().map(|r| r.message());
    walk(fs);
    if let Some(disk) = fs.on_disk() {
        walk(&*disk);
        if let Ok(entries) = fs.read_dir(fs.root()) {
            for e in entries.iter().take(1000) {
                let _ = fs.replay_changed(e.node);
            }
        }
    }
}

/// XFS log recovery: the input is the internal log of the kernel's snapshot
/// of a running machine (images/journal-xfs.img.gz), spliced into that
/// filesystem in place of its log (zeros after the input): head and tail
/// search, record headers and extended headers, CRCs, cycle unpacking,
/// operations and transactions, buffer, inode and inode-create items, the
/// overlay, and both views walked and compared as the collector does.
pub fn xfs_log(data: &[u8]) {
    let Some((base, at, len)) = xfs_host() else { return };
    let vol: Source = Arc::new(Spliced { base: base.as_slice(), at: *at, len: *len, log: data.to_vec() });
    if let Probe::Found(fs) = fs::probe(&vol) {
        replayed_views(&*fs);
    }
}

/// The XFS fixture, and the byte range of its internal log (None when the
/// fixture is not beside this crate).
fn xfs_host() -> Option<&'static (Vec<u8>, u64, u64)> {
    static HOST: OnceLock<Option<(Vec<u8>, u64, u64)>> = OnceLock::new();
    HOST.get_or_init(|| {
        // fuzz/ (cargo fuzz) or the main crate (tests/fuzz_regressions.rs).
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let gz = ["images/journal-xfs.img.gz", "../images/journal-xfs.img.gz"].iter().map(|p| dir.join(p)).find(|p| p.exists())?;
        let opts = evidence::OpenOptions { temp_dir: Some(scratch().clone()), progress: None };
        let src = evidence::open(&gz, &opts).ok()?.source;
        let mut img = vec![0u8; usize::try_from(src.len()).ok()?];
        src.read_exact_at(0, &mut img).ok()?;
        let be32 = |o: usize| u64::from(u32::from_be_bytes(img[o..o + 4].try_into().unwrap_or_default()));
        let be64 = |o: usize| u64::from_be_bytes(img[o..o + 8].try_into().unwrap_or_default());
        let (bs, agblocks, start, blocks, agblklog) = (be32(4), be32(84), be64(48), be32(96), img[124]);
        let linear = (start >> agblklog) * agblocks + (start & ((1 << agblklog) - 1));
        let (at, len) = (linear * bs, blocks * bs);
        Some((img, at, len))
    })
    .as_ref()
}

/// A volume: `base`, with `[at, at+len)` read from `log` (zeros past it).
struct Spliced {
    base: &'static [u8],
    at: u64,
    len: u64,
    log: Vec<u8>,
}

impl ReadAt for Spliced {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let total = self.base.len() as u64;
        if offset >= total {
            return Ok(0);
        }
        let n = buf.len().min((total - offset) as usize);
        let end = offset + n as u64;
        buf[..n].copy_from_slice(&self.base[offset as usize..end as usize]);
        let (from, to) = (offset.max(self.at), end.min(self.at + self.len));
        if from < to {
            let dst = &mut buf[(from - offset) as usize..(to - offset) as usize];
            dst.fill(0);
            let src = self.log.get((from - self.at) as usize..).unwrap_or(&[]);
            let k = src.len().min(dst.len());
            dst[..k].copy_from_slice(&src[..k]);
        }
        Ok(n)
    }
    fn len(&self) -> u64 {
        self.base.len() as u64
    }
}

/// XFS: superblock and AG geometry, inode cores and forks, bmap btrees,
/// every directory format.
pub fn fs_xfs(data: &[u8]) {
    if data.starts_with(b"XFSB") {
        filesystem(data);
    }
}

/// Btrfs: superblock (and its mirror), sys_chunk_array and chunk tree,
/// tree blocks and searches, inode, directory, xattr and extent items,
/// nested subvolumes, zlib/zstd/LZO extents.
///
/// mkfs.btrfs puts every chunk at 1 MiB or beyond, past the 1 MiB that
/// libFuzzer mutates, so an input may also be a page list: `BTRFSPG\0`,
/// then records of a little-endian u32 page number (4 KiB pages, below
/// 64 MiB) and the page's bytes, laid out into a sparse image (fuzz/seed.sh
/// writes the seeds so). A crc32c superblock's checksum is recomputed after
/// mutation, or nothing past it would be reached (tree blocks with a bad
/// checksum are read anyway, with a warning).
pub fn fs_btrfs(data: &[u8]) {
    const PAGE: usize = 4096;
    let mut image = match data.strip_prefix(b"BTRFSPG\0") {
        Some(records) => {
            let pages: Vec<(usize, &[u8])> = records
                .chunks(4 + PAGE)
                .filter(|r| r.len() > 4)
                .map(|r| (u32::from_le_bytes([r[0], r[1], r[2], r[3]]) as usize % 16384, &r[4..]))
                .collect();
            let end = pages.iter().map(|(n, _)| (n + 1) * PAGE).max().unwrap_or(0);
            let mut img = vec![0u8; end];
            for (n, p) in pages {
                img[n * PAGE..n * PAGE + p.len()].copy_from_slice(p);
            }
            img
        }
        None => data.to_vec(),
    };
    if image.get(0x10040..0x10048) != Some(&b"_BHRfS_M"[..]) {
        return;
    }
    if image.len() >= 0x11000 && image[0x100c4..0x100c6] == [0, 0] {
        let c = !crc32c_raw(!0, &image[0x10020..0x11000]);
        image[0x10000..0x10004].copy_from_slice(&c.to_le_bytes());
    }
    filesystem(&image);
}

/// NTFS: boot sector (or its backup in the last sector), $MFT runlist,
/// records with fixups and attribute lists, $I30 indexes, sparse and
/// LZNT1-compressed data, alternate data streams.
pub fn fs_ntfs(data: &[u8]) {
    filesystem(data);
}

/// WOF (system compression): the reparse data parser, the XPRESS Huffman
/// and LZX chunk decoders and the chunk-table reader, on the input alone
/// (its first byte picks which; see `fs::ntfs::fuzz_wof`).
pub fn ntfs_wof(data: &[u8]) {
    fs::ntfs::fuzz_wof(data);
}

/// FAT12/16/32: BPB, FAT chains, long names.
pub fn fs_fat(data: &[u8]) {
    if fs::fat::looks_like(data) {
        filesystem(data);
    }
}

/// exFAT: boot region (and its backup), FAT chains, entry sets across
/// cluster boundaries, names through the up-case table.
pub fn fs_exfat(data: &[u8]) {
    if data.get(3..11) != Some(&b"EXFAT   "[..]) {
        return;
    }
    let vol: Source = Arc::new(data.to_vec());
    if let Probe::Found(fs) = fs::probe(&vol) {
        walk(&*fs);
        let _ = fs::lookup_ci(&*fs, "/LOGS/App/BIG.log");
    }
}

/// The registry hive reader: every key (bounded), every value, and the
/// facts snapsift takes from SYSTEM and SOFTWARE hives.
pub fn regf(data: &[u8]) {
    fn visit(h: &regf::Hive, k: regf::Key, depth: u32, budget: &mut u32) {
        if depth > 16 || *budget == 0 {
            return;
        }
        *budget -= 1;
        let _ = h.name(k);
        for (_, v) in h.values(k) {
            let _ = (v.string(), v.dword());
        }
        for s in h.subkeys(k) {
            visit(h, s, depth + 1, budget);
        }
    }
    let Some(h) = regf::Hive::parse(data.to_vec()) else { return };
    visit(&h, h.root(), 0, &mut 10_000);
    let _ = (registry::computer_name(&h), registry::os_version(&h), registry::drive_letters(&h));
    let _ = (registry::event_log_files(&h), h.key("ControlSet001\\Control\\ComputerName\\ComputerName"));
}

/// containerd's bbolt databases: every bucket and value (bounded), and the
/// lookups the containerd reader makes.
pub fn bbolt(data: &[u8]) {
    use snapsift::host::containers::bbolt::{Bucket, Db, Item};
    fn visit(db: &Db, b: Bucket, depth: u32, budget: &mut u32) {
        if depth > 8 || *budget == 0 {
            return;
        }
        *budget -= 1;
        let Ok(entries) = db.entries(b) else { return };
        for (_, item) in entries {
            if let Item::Bucket(child) = item {
                visit(db, child, depth + 1, budget);
            }
        }
    }
    let Ok(db) = Db::parse(data.to_vec()) else { return };
    visit(&db, db.root(), 0, &mut 10_000);
    let _ = db.path(&[b"v1", b"snapshots"]);
    let _ = db.path(&[b"v1", b"k8s.io", b"containers"]);
}

/// An image layer: the tar indexed, then seen through a union view with
/// OCI whiteouts applied, walked and read.
pub fn tar_layer(data: &[u8]) {
    use snapsift::fs::overlay::{Layer, Overlay, Whiteouts};
    let src: Source = Arc::new(data.to_vec());
    let Ok(t) = fs::tarlayer::TarLayer::open(src) else { return };
    let layer = |name: &str| Layer {
        fs: Arc::new(fs::tarlayer::TarLayer::open(Arc::new(data.to_vec())).expect("opened once")),
        root: 0,
        name: name.into(),
        whiteouts: Whiteouts::Oci,
    };
    walk(&t);
    // Twice over itself: whiteouts and opaque markers act on the lower copy.
    if let Ok(o) = Overlay::new(vec![layer("top"), layer("bottom")]) {
        walk(&o);
    }
}

/// An image archive (`docker save`, OCI layout) given as evidence: found,
/// its manifests followed, its layers unpacked and their union walked.
pub fn image_archive(data: &[u8]) {
    use snapsift::host::containers::image;
    let dir = scratch();
    let path = dir.join("image.tar");
    std::fs::write(&path, data).expect("scratch write");
    if let Some(outer) = image::sniff(&path)
        && let Ok(img) = image::open(outer, dir)
    {
        walk(img.root.as_ref());
    }
    let _ = std::fs::remove_file(&path);
}

/// EVTX → JSON lines: the `evtx` crate renders each chunk, snapsift reads
/// `System` and splices its fields in. Each line must be snapsift's fields
/// (one JSON object's worth) followed by the crate's record exactly as the
/// crate rendered it, and valid JSON whenever that record is. (The crate
/// writes element and attribute names unescaped, so a damaged name such as
/// `Th\eadID` makes its own rendering invalid JSON; the line carries it as
/// `evtx_dump` prints it, except that raw control bytes and bad UTF-8 are
/// repaired: one line a record, always UTF-8.) A panic inside the crate is contained,
/// as `extract` contains it (the file becomes an error row); any other
/// panic is a crash.
pub fn evtx_json(data: &[u8]) {
    let path = scratch().join("x.evtx");
    std::fs::write(&path, data).expect("scratch write");
    let host = "h\"o\u{1}st";
    let converted =
        outside_the_evtx_crate_a_panic_is_a_crash(|| snapsift::collect::evtxjson::convert(&path, host, "/W/x.evtx", true, None));
    if let Some(Ok(c)) = converted {
        // The crate's own rendering of the same file, record by record.
        let records = outside_the_evtx_crate_a_panic_is_a_crash(|| {
            let Ok(parser) = evtx::EvtxParser::from_path(&path) else { return Vec::new() };
            let mut parser = parser.with_configuration(snapsift::collect::evtxjson::settings());
            let chunks: Vec<_> = parser.chunks_json_bytes(false).collect();
            chunks.iter().flat_map(|c| c.records().map(|(_, r)| r.to_vec())).collect::<Vec<_>>()
        })
        .unwrap_or_default();
        let text = std::fs::read(&c.path).expect("the output is readable");
        let text = std::str::from_utf8(&text).expect("the output is UTF-8");
        assert!(!text.bytes().any(|c| c < 0x20 && c != b'\n'), "no raw control characters");
        let lines: Vec<&[u8]> = text.as_bytes().split(|&c| c == b'\n').filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len() as u64, c.records, "one line a record");
        assert_eq!(lines.len(), records.len(), "the crate renders as many records");
        for (line, record) in lines.iter().zip(&records) {
            let shown = || String::from_utf8_lossy(line).into_owned();
            // A record with raw control bytes or bad UTF-8 is repaired first.
            let as_is = std::str::from_utf8(record).is_ok() && !record.iter().any(|&c| c < 0x20);
            if let Some(body) = record.strip_prefix(b"{").filter(|b| *b != b"}" && as_is) {
                let added = line.strip_suffix(body).unwrap_or_else(|| panic!("the record is not carried as it is: {}", shown()));
                let mut ours = added.to_vec();
                *ours.last_mut().expect("a comma") = b'}';
                let v: serde_json::Value =
                    serde_json::from_slice(&ours).unwrap_or_else(|e| panic!("the added fields are not JSON ({e}): {}", shown()));
                assert!(v["host"] == host && v["message"].is_string(), "{}", shown());
            }
            if serde_json::from_slice::<serde_json::Value>(record).is_ok() {
                serde_json::from_slice::<serde_json::Value>(line).unwrap_or_else(|e| panic!("a line is not JSON ({e}): {}", shown()));
            }
        }
        let _ = std::fs::remove_file(&c.path);
    }
    let _ = std::fs::remove_file(&path);
}

/// A systemd journal: `convert::journal::convert` on the input written to
/// a file; every line it writes (one `write_all` per entry) is checked as
/// it comes, without keeping the output: UTF-8 without raw control bytes,
/// one JSON object starting with the added fields, as many as it counts.
pub fn journal_json(data: &[u8]) {
    struct Lines(u64);
    impl std::io::Write for Lines {
        fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
            let text = std::str::from_utf8(line).expect("a line is UTF-8");
            let body = text.strip_suffix('\n').expect("a line ends with a newline");
            assert!(!body.bytes().any(|c| c < 0x20), "no raw control characters: {body}");
            assert!(body.starts_with(r#"{"host":"h\"o\u0001st","source_path":"/var/log/journal/x/system.journal","datetime":""#), "{body}");
            let v: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(body).unwrap_or_else(|e| panic!("a line is not a JSON object ({e}): {body}"));
            assert!(v["message"].is_string() && v["__CURSOR"].is_string() && v["_BOOT_ID"].is_string(), "{body}");
            self.0 += 1;
            Ok(line.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let path = scratch().join("x.journal");
    std::fs::write(&path, data).expect("scratch write");
    let ctx = snapsift::convert::Context { host: "h\"o\u{1}st", source_path: "/var/log/journal/x/system.journal" };
    let mut lines = Lines(0);
    if let Ok(c) = snapsift::convert::journal::convert(&path, &ctx, &mut lines) {
        assert_eq!(c.entries, lines.0, "one line an entry");
        assert_eq!(c.first.is_some(), c.entries > 0);
    }
    let _ = std::fs::remove_file(&path);
}

/// Runs `f`, containing a panic that comes from the `evtx` crate's own
/// code (its result is then `None`); any other panic goes on as one.
fn outside_the_evtx_crate_a_panic_is_a_crash<T>(f: impl FnOnce() -> T) -> Option<T> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let before = Arc::new(std::panic::take_hook());
    let ours = Arc::new(AtomicBool::new(false));
    let (hook, flag) = (before.clone(), ours.clone());
    std::panic::set_hook(Box::new(move |info| {
        if !info.location().is_some_and(|l| l.file().contains("/evtx-0.")) {
            flag.store(true, Ordering::Relaxed);
            hook(info); // libFuzzer's hook reports it as a crash
        }
    }));
    let result = snapsift::util::contain::contain(f);
    drop(std::panic::take_hook());
    if let Ok(before) = Arc::try_unwrap(before) {
        std::panic::set_hook(before);
    }
    match result {
        Ok(v) => Some(v),
        Err(msg) if ours.load(Ordering::Relaxed) => panic!("{msg}"),
        Err(_) => None,
    }
}

/// A user's targets file: the TOML, then its globs compiled and walked.
pub fn targets_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(targets) = snapsift::targets::parse(text) {
        match_paths(&targets);
    }
}

/// ForensicArtifacts YAML: documents, sources, groups, variables; then the
/// resulting globs compiled and walked.
pub fn artifacts_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(targets) = snapsift::targets::artifacts::parse(text) {
        match_paths(&targets);
    }
}

/// A folder of this process's own (formats are opened by path: they find
/// their extents, parents and segments by name beside the image).
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("snapsift-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch folder");
        d
    })
}

/// The lines a login/audit converter wrote: one JSON object each, no raw
/// control bytes, as many as it says.
fn check_json_lines(out: &[u8], entries: u64) -> Vec<serde_json::Value> {
    let text = std::str::from_utf8(out).expect("the output is UTF-8");
    assert!(!text.bytes().any(|c| c < 0x20 && c != b'\n'), "no raw control characters");
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    assert_eq!(lines.len() as u64, entries, "one line an entry");
    for l in &lines {
        assert!(l["host"].is_string() && l["message"].is_string() && (l["datetime"].is_string() || l["datetime"].is_null()));
    }
    lines
}

/// wtmp/btmp/utmp records, and the same bytes as a lastlog file (with the
/// UID names read from them as a passwd): every whole record is a line.
pub fn utmp_json(data: &[u8]) {
    use snapsift::convert::{Context, lastlog, utmp};
    let path = scratch().join("wtmp");
    std::fs::write(&path, data).expect("scratch write");
    let ctx = Context { host: "h", source_path: "/var/log/wtmp" };
    let mut out = Vec::new();
    let c = utmp::convert(&path, &ctx, &mut out).expect("a readable file converts");
    assert_eq!(c.entries, (data.len() / utmp::RECORD) as u64);
    assert_eq!(c.problem.is_some(), !data.len().is_multiple_of(utmp::RECORD));
    check_json_lines(&out, c.entries);
    let users = lastlog::passwd_users(data);
    let mut out = Vec::new();
    let c = lastlog::convert(&path, &ctx, &users, &mut out).expect("a readable file converts");
    assert!(c.entries <= (data.len() as u64).div_ceil(lastlog::RECORD));
    check_json_lines(&out, c.entries);
}

/// audit.log text: every line a record or counted; every event a line
/// whose records are objects of strings.
pub fn audit_json(data: &[u8]) {
    use snapsift::convert::{Context, audit};
    let path = scratch().join("audit.log");
    std::fs::write(&path, data).expect("scratch write");
    let ctx = Context { host: "h", source_path: "/var/log/audit/audit.log" };
    let mut out = Vec::new();
    let c = audit::convert(&path, &ctx, &mut out).expect("a readable file converts");
    for l in check_json_lines(&out, c.entries) {
        let records = l["records"].as_array().expect("records is an array");
        assert!(!records.is_empty());
        for r in records {
            assert!(r.as_object().expect("a record is an object").values().all(|v| v.is_string()));
        }
    }
}

/// A text log's bytes (after the first, which picks a chunk size) scanned
/// for line times whole and in chunks: the same counts either way, every
/// line counted once in its hour, never more lines than newlines + 1.
pub fn text_log(data: &[u8]) {
    use snapsift::collect::textlog::LineHours;
    let Some((&pick, text)) = data.split_first() else { return };
    let scan = |chunk: usize| {
        let mut l = LineHours::new(Some(1_714_564_800));
        text.chunks(chunk.max(1)).for_each(|c| l.feed(c));
        l.finish();
        l
    };
    let (whole, cut) = (scan(text.len()), scan(usize::from(pick % 67)));
    for l in [&whole, &cut] {
        assert_eq!(l.hours.total(), l.lines, "every line counted in its hour");
        assert!(l.local <= l.lines);
    }
    assert_eq!((whole.lines, whole.local, whole.newest_zoned), (cut.lines, cut.local, cut.newest_zoned));
    assert_eq!(whole.hours, cut.hours);
    let want: Vec<usize> = text.iter().enumerate().filter(|(_, c)| **c == b'\n').map(|(i, _)| i).collect();
    assert_eq!(snapsift::util::newlines::newlines(text).collect::<Vec<_>>(), want);
    assert!(whole.lines <= want.len() as u64 + 1);
}

/// Writes `data` as `name` in the scratch folder, opens it as evidence (the
/// content decides the format), reads the virtual disk, and removes what it
/// wrote. Archives are inflated into the scratch folder too.
fn open_evidence(data: &[u8], name: &str) {
    let dir = scratch();
    let path = dir.join(name);
    std::fs::write(&path, data).expect("scratch write");
    let opts = evidence::OpenOptions { temp_dir: Some(dir.clone()), progress: None };
    if let Ok(ev) = evidence::open(&path, &opts) {
        read_source(&*ev.source);
    }
    let _ = std::fs::remove_file(&path);
}

/// Reads a source where parsers keep their surprises: all of the first
/// MiB, 32 unaligned samples spread over the whole length (a declared
/// capacity of terabytes maps to tables far from the start), and the end.
fn read_source(src: &dyn ReadAt) {
    let len = src.len();
    let mut buf = vec![0u8; 64 << 10];
    let mut off = 0;
    while off < len.min(1 << 20) {
        match src.read_at(off, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => off += n as u64,
        }
    }
    let mut small = [0u8; 4096];
    for i in 0..32u64 {
        let at = (len / 32).saturating_mul(i).saturating_add(i * 7);
        let _ = src.read_at(at, &mut small);
    }
    let _ = src.read_at(len.saturating_sub(4096), &mut small);
    let _ = src.read_exact_at(len.saturating_sub(100), &mut small[..200]);
}

/// Bytes read from one file at most, and from all files of one input.
const FILE_BUDGET: u64 = 4 << 20;
const TOTAL_BUDGET: u64 = 32 << 20;

/// Probes `data` as a volume and, if a filesystem is found, walks it.
fn filesystem(data: &[u8]) {
    let vol: Source = Arc::new(data.to_vec());
    if let Probe::Found(fs) = fs::probe(&vol) {
        walk(&*fs);
        // Btrfs: each subvolume (listed from ROOT_REFs, paths from
        // INODE_REFs) as a view of its own.
        for s in fs.subvolumes().unwrap_or_default().iter().take(8) {
            if let Ok(view) = fs.subvolume(s.id) {
                walk(&*view);
            }
        }
    }
}

/// Everything below the root through the real planner (`/**` matches every
/// file; the planner's loop, depth and entry bounds apply), then every
/// file's content, link target and named streams.
fn walk(fs: &dyn FileSystem) {
    let everything = Target {
        name: "everything".into(),
        description: String::new(),
        os: "any".into(),
        scope: Scope::Any,
        paths: vec!["/**".into()],
        paths_from: None,
        optional: false,
        exclude: Vec::new(),
        case_insensitive: false,
        max_size: None,
        follow_links: true,
    };
    let ctx = VolumeContext { os: snapsift::host::OsFamily::Unknown, is_os_root: false, homes: &[] };
    let m = Matcher::new(&[everything], &ctx).expect("a plain glob compiles");
    let items = snapsift::collect::plan::walk(fs, &[(&m, m.start())], &Default::default());
    let mut budget = TOTAL_BUDGET;
    let mut buf = vec![0u8; 64 << 10];
    let mut drain = |r: &mut dyn Read, budget: &mut u64| {
        let mut file = FILE_BUDGET;
        while file > 0 && *budget > 0 {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    file = file.saturating_sub(n as u64);
                    *budget = budget.saturating_sub(n as u64);
                }
            }
        }
    };
    for it in &items {
        let _ = fs.metadata(it.node);
        match it.kind {
            FileKind::Symlink => {
                let _ = fs.read_link(it.node);
            }
            FileKind::File => {
                if let Ok(mut r) = fs.open(it.node) {
                    drain(&mut r, &mut budget);
                }
                for (name, _) in fs.streams(it.node).unwrap_or_default() {
                    if let Ok(mut r) = fs.open_stream(it.node, &name) {
                        drain(&mut r, &mut budget);
                    }
                }
            }
            _ => {}
        }
    }
    // Path resolution with links inside the image (`..`, loops).
    for p in ["/etc/hostname", "/var/log/../log/./syslog", "/Windows/System32/config/SYSTEM"] {
        let _ = fs::lookup(fs, p.as_bytes());
    }
    let _ = (fs.label(), fs.uuid(), fs.warnings());
}

/// Recomputes the CRCs of a GPT header and its entry array at LBA 1 (512-
/// and 4096-byte sectors), so mutations reach the parsing behind the checks.
fn fix_gpt_crcs(d: &mut [u8]) {
    for ss in [512usize, 4096] {
        let Some(h) = d.get(ss..ss + 92) else { continue };
        if &h[0..8] != b"EFI PART" {
            continue;
        }
        let hsize = (u32_le(h, 12) as usize).clamp(92, ss);
        let lba = u64_le(h, 72) as usize;
        let count = u32_le(h, 80) as usize;
        let esize = u32_le(h, 84) as usize;
        let array = lba.checked_mul(ss).and_then(|a| Some((a, a.checked_add(count.checked_mul(esize)?)?)));
        if let Some((a, b)) = array
            && let Some(entries) = d.get(a..b)
        {
            let c = crc32(entries);
            d[ss + 88..ss + 92].copy_from_slice(&c.to_le_bytes());
        }
        if let Some(hdr) = d.get_mut(ss..ss + hsize) {
            hdr[16..20].fill(0);
            let c = crc32(hdr);
            hdr[16..20].copy_from_slice(&c.to_le_bytes());
        }
    }
}

/// Recomputes the CRC-32C of both VHDX headers (64 and 128 KiB) and both
/// region tables (192 and 256 KiB), and of nothing else.
fn fix_vhdx_crcs(d: &mut [u8]) {
    for (at, len) in [(64 << 10, 4096usize), (128 << 10, 4096), (192 << 10, 64 << 10), (256 << 10, 64 << 10)] {
        if let Some(b) = d.get_mut(at..at + len) {
            b[4..8].fill(0);
            let c = !crc32c_raw(!0, b);
            b[4..8].copy_from_slice(&c.to_le_bytes());
        }
    }
}

fn u32_le(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_le(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 8).map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
}

/// Compiles targets (from a user's TOML or ForensicArtifacts YAML) for an
/// OS root with homes, and steps their globs through a few paths.
fn match_paths(targets: &[Target]) {
    let homes = vec![b"/root".to_vec(), b"/home/a*b".to_vec()];
    for os_root in [true, false] {
        let ctx = VolumeContext { os: snapsift::host::OsFamily::Linux, is_os_root: os_root, homes: &homes };
        let Ok(m) = Matcher::new(targets, &ctx) else { continue };
        for path in ["/var/log/auth.log", "/home/a*b/.bash_history", "/Windows/System32/winevt/Logs/x.evtx", "/a/b/c/d/e/f"] {
            let mut s = m.start_below("/mnt/data");
            s = path.split('/').filter(|c| !c.is_empty()).fold(s, |s, c| m.step(&s, c.as_bytes()).0);
            let mut s2 = m.start();
            for c in path.split('/').filter(|c| !c.is_empty()) {
                let (n, hit) = m.step(&s2, c.as_bytes());
                if let Some(t) = hit {
                    let _ = m.excluded(t, path.as_bytes());
                }
                s2 = m.prune(n, path.as_bytes());
            }
            let _ = s.is_dead();
        }
    }
}

/// Removes this process's scratch folder (the regression test calls it; a
/// fuzzing process leaves an empty folder behind when killed).
pub fn remove_scratch() {
    let _ = std::fs::remove_dir_all(scratch());
}
