//! exFAT (SD cards, USB drives, data volumes), read-only.
//!
//! Own reader, written from Microsoft's "exFAT File System Specification",
//! in the manner of `fat.rs`. Covered: the boot sector and its region
//! checksum (the backup boot region when the first sector is damaged), the
//! active FAT of two (TexFAT), the allocation bitmap and up-case table
//! entries (located and bounded), the volume label, file entry sets (File,
//! Stream Extension, File Name) with their SetChecksum (a mismatch is a
//! warning), contiguous (NoFatChain) and FAT-chained files and directories,
//! bytes past ValidDataLength read as zeros, the three timestamps with
//! their 10 ms and UTC offset fields, and names compared through the
//! volume's up-case table ([`FileSystem::fold_case`]). A time without a
//! valid UTC offset is local time, shown as if it were UTC (with a warning).
//!
//! Node ids are the byte offset of a file's File entry (0: the root), plus
//! 1 when its directory is contiguous: an entry set that crosses a cluster
//! boundary goes on in the next cluster there, and along the FAT elsewhere.

use super::ntfs::{bytes_to_utf16, utf16_to_bytes};
use super::{DirEntry, FileKind, FileReader, FileSystem, Metadata, NodeId};
use crate::evidence::{ReadAt, Source};
use crate::util::bytes::{u8_at, u16_at, u32_at, u64_at};
use crate::util::corrupt;
use crate::util::time::Timestamp;
use crate::util::warnings::Warnings;
use std::io::{self, Read};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

const ENTRY: u64 = 32;
const TYPE_END: u8 = 0x00;
const TYPE_BITMAP: u8 = 0x81;
const TYPE_UPCASE: u8 = 0x82;
const TYPE_LABEL: u8 = 0x83;
const TYPE_FILE: u8 = 0x85;
const TYPE_STREAM: u8 = 0xC0;
const TYPE_NAME: u8 = 0xC1;
/// An entry type with these bits set is an in-use secondary entry.
const IN_USE_SECONDARY: u8 = 0xC0;
const ATTR_READ_ONLY: u16 = 0x01;
const ATTR_DIR: u16 = 0x10;
/// GeneralSecondaryFlags: the clusters are contiguous, the FAT unused.
const NO_FAT_CHAIN: u8 = 0x02;
/// FAT entry values that are not a next cluster.
const FAT_BAD: u32 = 0xFFFF_FFF7;
const FAT_END: u32 = 0xFFFF_FFFF;
/// The specification's limit on a directory's size.
const MAX_DIR_BYTES: u64 = 256 << 20;
/// Twice a whole uncompressed table (65,536 units).
const MAX_UPCASE_BYTES: u64 = 256 << 10;
/// Node id flag: the entry's directory is contiguous (File entries are
/// 32-byte aligned, so the low bits of their offsets are free).
const IN_CONTIGUOUS_DIR: u64 = 1;

/// The boot sector's fields, checked.
struct Boot {
    sector_shift: u32,
    cluster_shift: u32,
    /// Byte offsets of the active FAT and of the cluster heap.
    fat_offset: u64,
    heap_offset: u64,
    clusters: u32,
    root_cluster: u32,
    serial: u32,
    flags: u16,
}

impl Boot {
    fn parse(b: &[u8]) -> io::Result<Boot> {
        if !crate::util::magic::Magic::Exfat.in_head(b) {
            return Err(corrupt("not an exFAT boot sector"));
        }
        let sector_shift = u32::from(u8_at(b, 108));
        let cluster_shift = sector_shift + u32::from(u8_at(b, 109));
        // Sectors of 512 B to 4 KiB, clusters up to 32 MiB.
        if !(9..=12).contains(&sector_shift) || cluster_shift > 25 {
            return Err(corrupt(format!("exFAT sector size 2^{sector_shift} or cluster size 2^{cluster_shift} is out of range")));
        }
        let fats = u64::from(u8_at(b, 110));
        let (fat_offset, fat_length) = (u64::from(u32_at(b, 80)), u64::from(u32_at(b, 84)));
        let heap = u64::from(u32_at(b, 88));
        let clusters = u32_at(b, 92);
        // The FAT holds an entry for every cluster (and two reserved), and
        // the heap lies after the FATs.
        if !matches!(fats, 1 | 2)
            || fat_offset < 24
            || clusters == 0
            || clusters > 0xFFFF_FFF5
            || (u64::from(clusters) + 2) * 4 > fat_length << sector_shift
            || heap < fat_offset + fat_length * fats
        {
            return Err(corrupt("exFAT geometry is inconsistent"));
        }
        let root_cluster = u32_at(b, 96);
        if !(2..=u64::from(clusters) + 1).contains(&u64::from(root_cluster)) {
            return Err(corrupt(format!("exFAT root directory cluster {root_cluster} is outside the cluster heap")));
        }
        let flags = u16_at(b, 106);
        // VolumeFlags bit 0: the second FAT is the active one.
        let active = if fats == 2 && flags & 1 != 0 { fat_length } else { 0 };
        Ok(Boot {
            sector_shift,
            cluster_shift,
            fat_offset: (fat_offset + active) << sector_shift,
            heap_offset: heap << sector_shift,
            clusters,
            root_cluster,
            serial: u32_at(b, 100),
            flags,
        })
    }
}

/// The checksum of the boot region's first 11 sectors, which its 12th
/// repeats; VolumeFlags and PercentInUse change in place and are left out.
fn boot_checksum(b: &[u8]) -> u32 {
    let bytes = b.iter().enumerate().filter(|(i, _)| !matches!(i, 106 | 107 | 112));
    bytes.fold(0u32, |s, (_, &c)| s.rotate_right(1).wrapping_add(u32::from(c)))
}

/// The SetChecksum of a file's entries (its own field left out).
fn set_checksum(b: &[u8]) -> u16 {
    let bytes = b.iter().enumerate().filter(|(i, _)| !matches!(i, 2 | 3));
    bytes.fold(0u16, |s, (_, &c)| s.rotate_right(1).wrapping_add(u16::from(c)))
}

/// The up-case table's TableChecksum.
fn table_checksum(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |s, &c| s.rotate_right(1).wrapping_add(u32::from(c)))
}

/// The up-case table with one entry per UTF-16 unit. Stored compressed, a
/// 0xFFFF followed by a count stands for that many units that are their
/// own capitals; a unit the table does not reach is its own too.
fn expand_upcase(raw: &[u8]) -> Vec<u16> {
    let mut t: Vec<u16> = (0..=u16::MAX).collect();
    let mut units = raw.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    let mut i = 0usize;
    while let Some(u) = units.next() {
        // Identity first: in an uncompressed table, U+FFFF maps to itself.
        if usize::from(u) == i {
            i += 1;
        } else if u == 0xFFFF {
            i += usize::from(units.next().unwrap_or(0));
        } else if let Some(slot) = t.get_mut(i) {
            *slot = u;
            i += 1;
        }
        if i >= t.len() {
            break;
        }
    }
    t
}

/// A file's entry set, parsed.
#[derive(Debug)]
struct Set {
    attributes: u16,
    /// Timestamp, 10 ms increment, UTC offset (the access time has no
    /// increment).
    created: (u32, u8, u8),
    modified: (u32, u8, u8),
    accessed: (u32, u8, u8),
    contiguous: bool,
    valid: u64,
    first: u32,
    size: u64,
    name: Vec<u16>,
    /// (stored, computed) SetChecksum.
    checksum: (u16, u16),
}

impl Set {
    fn is_dir(&self) -> bool {
        self.attributes & ATTR_DIR != 0
    }
}

/// Parses the entries of one set: the File entry, then its secondaries,
/// the Stream Extension first and the File Name entries after it.
fn parse_set(b: &[u8]) -> Result<Set, String> {
    let count = usize::from(u8_at(b, 1)) + 1;
    if u8_at(b, 0) != TYPE_FILE || !(3..=19).contains(&count) || b.len() != count * ENTRY as usize {
        return Err("not a file entry set".into());
    }
    let s = &b[32..64];
    if s[0] != TYPE_STREAM {
        return Err("no stream extension after the file entry".into());
    }
    let name_len = usize::from(s[3]);
    if name_len == 0 {
        return Err("an empty name".into());
    }
    let name: Vec<u16> = b[64..]
        .chunks_exact(32)
        .take_while(|e| e[0] == TYPE_NAME)
        .flat_map(|e| e[2..32].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])))
        .take(name_len)
        .collect();
    if name.len() < name_len {
        return Err(format!("a name of {name_len} characters in entries that hold {}", name.len()));
    }
    Ok(Set {
        attributes: u16_at(b, 4),
        created: (u32_at(b, 8), u8_at(b, 20), u8_at(b, 22)),
        modified: (u32_at(b, 12), u8_at(b, 21), u8_at(b, 23)),
        accessed: (u32_at(b, 16), 0, u8_at(b, 24)),
        contiguous: s[1] & NO_FAT_CHAIN != 0,
        valid: u64_at(s, 8),
        first: u32_at(s, 20),
        size: u64_at(s, 24),
        name,
        checksum: (u16_at(b, 2), set_checksum(b)),
    })
}

/// How a cluster chain ended.
enum ChainEnd {
    /// It has every cluster asked for.
    Whole,
    /// The FAT marks its end earlier.
    Short,
    /// A loop, a bad cluster or a cluster outside the heap.
    Broken(String),
}

/// Where a directory's entries are; `len` None for the root, whose chain
/// alone says.
struct DirLoc {
    first: u32,
    contiguous: bool,
    len: Option<u64>,
}

/// A window on the FAT, so that following a chain reads it 4 KiB at a
/// time rather than an entry at a time.
#[derive(Default)]
struct FatWindow {
    base: u64,
    buf: Vec<u8>,
}

pub struct Exfat {
    dev: Source,
    boot: Boot,
    label: Option<String>,
    /// The up-case table's first cluster, length and checksum.
    upcase_at: Option<(u32, u64, u32)>,
    /// The table, read on first use (None: unusable, ASCII folding).
    upcase: OnceLock<Option<Vec<u16>>>,
    /// A local time without a UTC offset was seen (warned once).
    local_time: AtomicBool,
    warnings: Warnings,
}

impl Exfat {
    pub fn open(dev: Source) -> io::Result<Exfat> {
        let warnings = Warnings::default();
        let mut b = [0u8; 512];
        dev.read_exact_at(0, &mut b)?;
        let (boot, base) = match Boot::parse(&b) {
            Ok(boot) => (boot, 0),
            Err(e) => {
                // The backup boot region starts at sector 12, of a size
                // the damaged sector no longer says.
                let backup = (9..=12).find_map(|s| {
                    let at = 12u64 << s;
                    dev.read_exact_at(at, &mut b).ok()?;
                    Boot::parse(&b).ok().filter(|boot| boot.sector_shift == s).map(|boot| (boot, at))
                });
                let Some(found) = backup else { return Err(e) };
                warnings.add("the boot sector is damaged; the backup boot region (sector 12) was used".into());
                found
            }
        };
        let mut region = vec![0u8; 12 << boot.sector_shift];
        dev.read_exact_at(base, &mut region)?;
        let (sectors, sums) = region.split_at(11 << boot.sector_shift);
        let sum = boot_checksum(sectors);
        if sums.chunks_exact(4).any(|c| u32_at(c, 0) != sum) {
            warnings.add(format!("the boot region's checksum does not match (computed {sum:08x}); its fields are used as they are"));
        }
        if boot.flags & 2 != 0 {
            warnings.add("the volume is marked dirty (not unmounted cleanly): read as it lies on disk".into());
        }
        if boot.flags & 4 != 0 {
            warnings.add("the volume is marked as having had media failures".into());
        }
        let mut fs =
            Exfat { dev, boot, label: None, upcase_at: None, upcase: OnceLock::new(), local_time: AtomicBool::new(false), warnings };
        fs.scan_root()?;
        Ok(fs)
    }

    /// The root's volume label, allocation bitmap and up-case table entries.
    fn scan_root(&mut self) -> io::Result<()> {
        let loc = DirLoc { first: self.boot.root_cluster, contiguous: false, len: None };
        let (clusters, damage) = self.dir_clusters(&loc)?;
        if let Some(d) = damage {
            self.warnings.add(format!("the root directory: {d}"));
        }
        let clusters_n = u64::from(self.boot.clusters);
        let (mut label, mut upcase, mut bitmaps) = (None, None, 0);
        self.each_entry(&clusters, |_, e| {
            match e[0] {
                TYPE_END => return false,
                TYPE_LABEL => {
                    let n = usize::from(e[1].min(11));
                    let units: Vec<u16> = e[2..2 + n * 2].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
                    label = Some(String::from_utf16_lossy(&units));
                }
                TYPE_BITMAP => {
                    bitmaps += 1;
                    let (first, len) = (u32_at(e, 20), u64_at(e, 24));
                    if !self.in_heap(first) || len < clusters_n.div_ceil(8) || len > clusters_n << self.boot.cluster_shift {
                        self.warnings.add(format!(
                            "the allocation bitmap entry is damaged (cluster {first}, {len} bytes for {clusters_n} clusters)"
                        ));
                    }
                }
                TYPE_UPCASE => upcase = Some((u32_at(e, 20), u64_at(e, 24), u32_at(e, 4))),
                _ => {}
            }
            true
        })?;
        if bitmaps == 0 {
            self.warnings.add("the root directory has no allocation bitmap entry".into());
        }
        self.label = label.filter(|l| !l.is_empty());
        self.upcase_at = upcase;
        Ok(())
    }

    fn cluster(&self) -> u64 {
        1 << self.boot.cluster_shift
    }

    fn in_heap(&self, c: u32) -> bool {
        c >= 2 && u64::from(c) <= u64::from(self.boot.clusters) + 1
    }

    fn cluster_offset(&self, c: u32) -> u64 {
        self.boot.heap_offset + (u64::from(c).saturating_sub(2) << self.boot.cluster_shift)
    }

    /// The cluster a byte of the heap is in.
    fn cluster_at(&self, at: u64) -> u32 {
        ((at.saturating_sub(self.boot.heap_offset) >> self.boot.cluster_shift) + 2).min(u64::from(u32::MAX)) as u32
    }

    /// The FAT entry of cluster `c` (in the heap).
    fn fat_entry(&self, w: &mut FatWindow, c: u32) -> io::Result<u32> {
        let at = self.boot.fat_offset + u64::from(c) * 4;
        if at < w.base || at + 4 > w.base + w.buf.len() as u64 {
            let end = self.boot.fat_offset + (u64::from(self.boot.clusters) + 2) * 4;
            let base = at - at % 4096;
            w.buf.resize((end.max(at + 4) - base).min(4096) as usize, 0);
            self.dev.read_exact_at(base, &mut w.buf)?;
            w.base = base;
        }
        Ok(u32_at(&w.buf, (at - w.base) as usize))
    }

    /// The clusters of a chain, at most `max` of them, and how it ended. A
    /// loop ends it at once (Brent's cycle check, no memory), where it
    /// first repeats.
    fn chain(&self, first: u32, max: u64) -> io::Result<(Vec<u32>, ChainEnd)> {
        let mut out = Vec::new();
        if max == 0 {
            return Ok((out, ChainEnd::Whole));
        }
        if !self.in_heap(first) {
            return Ok((out, ChainEnd::Broken(format!("its first cluster {first} is outside the cluster heap"))));
        }
        let mut w = FatWindow::default();
        let (mut c, mut mark, mut lap, mut steps) = (first, first, 1u64, 0u64);
        loop {
            out.push(c);
            if out.len() as u64 >= max {
                return Ok((out, ChainEnd::Whole));
            }
            let next = self.fat_entry(&mut w, c)?;
            let broken = match next {
                FAT_END => return Ok((out, ChainEnd::Short)),
                FAT_BAD => format!("cluster {c} is followed by one marked bad"),
                n if !self.in_heap(n) => format!("cluster {c} is followed by {n}, outside the cluster heap"),
                n if n == mark => {
                    // Found late by up to a lap: drop what repeats.
                    let mut seen = std::collections::HashSet::new();
                    let first_repeat = out.iter().position(|&x| !seen.insert(x)).unwrap_or(out.len());
                    let again = out.get(first_repeat).copied().unwrap_or(n);
                    out.truncate(first_repeat);
                    format!("the cluster chain loops back to cluster {again}")
                }
                n => {
                    c = n;
                    steps += 1;
                    if steps == lap {
                        (mark, lap, steps) = (c, lap * 2, 0);
                    }
                    continue;
                }
            };
            return Ok((out, ChainEnd::Broken(broken)));
        }
    }

    /// A directory's clusters, and what of it is lost when they end short.
    fn dir_clusters(&self, d: &DirLoc) -> io::Result<(Vec<u32>, Option<String>)> {
        let want = d.len.unwrap_or(MAX_DIR_BYTES).min(MAX_DIR_BYTES).div_ceil(self.cluster());
        if want == 0 {
            return Ok((Vec::new(), None));
        }
        if d.contiguous {
            if !self.in_heap(d.first) {
                return Ok((Vec::new(), Some(format!("its first cluster {} is outside the cluster heap", d.first))));
            }
            let last = (u64::from(d.first) + want - 1).min(u64::from(self.boot.clusters) + 1) as u32;
            let have: Vec<u32> = (d.first..=last).collect();
            let short = (have.len() as u64) < want;
            return Ok((have, short.then(|| "its clusters run past the end of the cluster heap".to_string())));
        }
        let (chain, end) = self.chain(d.first, want)?;
        let note = match end {
            ChainEnd::Whole if d.len.is_none() => Some(format!("its chain goes on past {MAX_DIR_BYTES} bytes, the most read")),
            ChainEnd::Whole => None,
            ChainEnd::Short if d.len.is_none() => None,
            ChainEnd::Short => Some(format!("its cluster chain ends after {} of {want} clusters", chain.len())),
            ChainEnd::Broken(m) => Some(m),
        };
        Ok((chain, note))
    }

    /// Calls `f` with the volume offset and bytes of each 32-byte entry in
    /// the clusters, in order, until it returns false.
    fn each_entry(&self, clusters: &[u32], mut f: impl FnMut(u64, &[u8]) -> bool) -> io::Result<()> {
        let cs = self.cluster();
        let step = cs.min(64 << 10);
        let mut buf = vec![0u8; step as usize];
        for &c in clusters {
            let base = self.cluster_offset(c);
            for done in (0..cs).step_by(step as usize) {
                self.dev.read_exact_at(base + done, &mut buf)?;
                for (i, e) in buf.chunks_exact(ENTRY as usize).enumerate() {
                    if !f(base + done + i as u64 * ENTRY, e) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// The entry set a node names, read across a cluster boundary where it
    /// crosses one.
    fn set(&self, node: NodeId) -> io::Result<Set> {
        let contiguous = node & IN_CONTIGUOUS_DIR != 0;
        let start = node & !IN_CONTIGUOUS_DIR;
        if start < self.boot.heap_offset || !start.is_multiple_of(ENTRY) || !self.in_heap(self.cluster_at(start)) {
            return Err(corrupt(format!("node {node} is not a directory entry of this volume")));
        }
        let mut b = vec![0u8; ENTRY as usize];
        self.dev.read_exact_at(start, &mut b)?;
        let count = u64::from(b[1]) + 1;
        if b[0] != TYPE_FILE || !(3..=19).contains(&count) {
            return Err(corrupt(format!("the entry at byte {start} is not a file entry")));
        }
        let mut at = start;
        let mut w = FatWindow::default();
        for _ in 1..count {
            at += ENTRY;
            if (at - self.boot.heap_offset).is_multiple_of(self.cluster()) {
                // The set goes on in the directory's next cluster.
                let c = self.cluster_at(at - ENTRY);
                let next = if contiguous { c.saturating_add(1) } else { self.fat_entry(&mut w, c)? };
                if !self.in_heap(next) {
                    return Err(corrupt(format!("the entry set at byte {start} runs past its directory's clusters")));
                }
                at = self.cluster_offset(next);
            }
            let mut e = [0u8; ENTRY as usize];
            self.dev.read_exact_at(at, &mut e)?;
            b.extend_from_slice(&e);
        }
        parse_set(&b).map_err(|m| corrupt(format!("the entry set at byte {start}: {m}")))
    }

    fn dir_loc(&self, dir: NodeId) -> io::Result<DirLoc> {
        if dir == 0 {
            return Ok(DirLoc { first: self.boot.root_cluster, contiguous: false, len: None });
        }
        let s = self.set(dir)?;
        if !s.is_dir() {
            return Err(corrupt("not a directory"));
        }
        Ok(DirLoc { first: s.first, contiguous: s.contiguous, len: Some(s.size) })
    }

    /// A stored time as UTC: local time less its UTC offset where the
    /// offset is valid, else as it is (with a warning, once).
    fn time(&self, (stamp, ms10, utc): (u32, u8, u8)) -> Option<Timestamp> {
        let t = super::fat::fat_time((stamp >> 16) as u16, stamp as u16, ms10)?;
        if utc & 0x80 == 0 {
            if !self.local_time.swap(true, Ordering::Relaxed) {
                self.warnings.add(
                    "exFAT records local time without a time zone for some files (no UTC offset): their times are shown as if they were UTC"
                        .into(),
                );
            }
            return Some(t);
        }
        // A signed 7-bit count of 15 minutes east of UTC.
        let quarters = i64::from(((utc << 1) as i8) >> 1);
        Some(Timestamp::new(t.secs - quarters * 900, t.nanos))
    }

    /// The up-case table, read on first use. None (with one warning) when
    /// it is missing or damaged: names are then folded as ASCII only.
    fn upcase(&self) -> Option<&[u16]> {
        self.upcase
            .get_or_init(|| {
                self.load_upcase()
                    .inspect_err(|e| {
                        self.warnings.add(format!("the up-case table is unusable ({e}); names are compared with ASCII case folding only"))
                    })
                    .ok()
            })
            .as_deref()
    }

    fn load_upcase(&self) -> io::Result<Vec<u16>> {
        let (first, len, sum) = self.upcase_at.ok_or_else(|| corrupt("the root directory has no up-case table entry"))?;
        if len == 0 || len > MAX_UPCASE_BYTES || len % 2 != 0 {
            return Err(corrupt(format!("a table of {len} bytes")));
        }
        let (chain, end) = self.chain(first, len.div_ceil(self.cluster()))?;
        match end {
            ChainEnd::Whole => {}
            ChainEnd::Short => return Err(corrupt("its cluster chain ends early")),
            ChainEnd::Broken(m) => return Err(corrupt(m)),
        }
        let mut raw = vec![0u8; len as usize];
        for (piece, &c) in raw.chunks_mut(self.cluster() as usize).zip(&chain) {
            self.dev.read_exact_at(self.cluster_offset(c), piece)?;
        }
        let computed = table_checksum(&raw);
        if computed != sum {
            return Err(corrupt(format!("its checksum is {computed:08x}, not {sum:08x}")));
        }
        let t = expand_upcase(&raw);
        // Every table maps ASCII as ASCII does; one that does not is not a
        // table (zeroed or overwritten clusters).
        let ascii_ok = (0u16..0x80).all(|c| {
            let up = if (0x61..=0x7A).contains(&c) { c - 0x20 } else { c };
            t.get(usize::from(c)) == Some(&up)
        });
        if !ascii_ok {
            return Err(corrupt("it does not map ASCII letters to their capitals"));
        }
        Ok(t)
    }

    fn where_dir(dir: NodeId) -> String {
        if dir == 0 { "the root directory".into() } else { format!("directory {dir}") }
    }
}

impl FileSystem for Exfat {
    fn kind(&self) -> &'static str {
        "exfat"
    }
    fn label(&self) -> Option<String> {
        self.label.clone()
    }
    fn uuid(&self) -> Option<String> {
        // As FAT's: the volume serial, XXXX-XXXX (blkid, fstab's UUID=).
        let s = self.boot.serial;
        Some(format!("{:04X}-{:04X}", s >> 16, s & 0xFFFF))
    }
    fn root(&self) -> NodeId {
        0
    }

    fn read_dir(&self, dir: NodeId) -> io::Result<Vec<DirEntry>> {
        let (entries, damage) = self.read_dir_checked(dir)?;
        if let Some(d) = damage {
            self.warnings.add(format!("{}: {d}", Self::where_dir(dir)));
        }
        Ok(entries)
    }

    fn read_dir_checked(&self, dir: NodeId) -> io::Result<(Vec<DirEntry>, Option<String>)> {
        let loc = self.dir_loc(dir)?;
        let (clusters, mut damage) = self.dir_clusters(&loc)?;
        let flag = if loc.contiguous { IN_CONTIGUOUS_DIR } else { 0 };
        let mut out = Vec::new();
        let (mut set, mut set_at, mut bad) = (Vec::new(), 0u64, 0u32);
        let finish = |set: &[u8], at: u64, out: &mut Vec<DirEntry>, bad: &mut u32| match parse_set(set) {
            Ok(s) => {
                let name = utf16_to_bytes(&s.name);
                if s.checksum.0 != s.checksum.1 {
                    self.warnings.add(format!(
                        "the entry set of {:?} at byte {at}: checksum {:04x}, computed {:04x}; read as stored",
                        String::from_utf8_lossy(&name),
                        s.checksum.0,
                        s.checksum.1
                    ));
                }
                let kind = if s.is_dir() { FileKind::Dir } else { FileKind::File };
                out.push(DirEntry { name, node: at | flag, kind });
            }
            Err(_) => *bad += 1,
        };
        let res = self.each_entry(&clusters, |at, e| {
            if !set.is_empty() {
                if e[0] & IN_USE_SECONDARY == IN_USE_SECONDARY {
                    set.extend_from_slice(e);
                    if set.len() == (usize::from(set[1]) + 1) * ENTRY as usize {
                        finish(&set, set_at, &mut out, &mut bad);
                        set.clear();
                    }
                    return true;
                }
                // Fewer secondaries than the File entry counts.
                bad += 1;
                set.clear();
            }
            match e[0] {
                TYPE_END => return false,
                TYPE_FILE if (2..=18).contains(&e[1]) => {
                    set.extend_from_slice(e);
                    set_at = at;
                }
                TYPE_FILE => bad += 1,
                // Deleted entries (InUse clear), the volume's own entries
                // and stray secondaries.
                _ => {}
            }
            true
        });
        // A set the directory's clusters end in the middle of.
        if !set.is_empty() {
            bad += 1;
        }
        let mut note = |m: String| damage = Some(damage.take().map_or(m.clone(), |d| format!("{d}; {m}")));
        if let Err(e) = res {
            if out.is_empty() && bad == 0 {
                return Err(e);
            }
            note(format!("unreadable after {} entries ({e})", out.len()));
        }
        if bad > 0 {
            note(format!("{bad} damaged entry set{} skipped", if bad == 1 { "" } else { "s" }));
        }
        Ok((out, damage))
    }

    fn metadata(&self, node: NodeId) -> io::Result<Metadata> {
        if node == 0 {
            return Ok(Metadata { node, kind: Some(FileKind::Dir), mode: 0o040755, nlink: 1, ..Metadata::default() });
        }
        let s = self.set(node)?;
        let dir = s.is_dir();
        let mode = match (dir, s.attributes & ATTR_READ_ONLY != 0) {
            (true, _) => 0o040755,
            (false, true) => 0o100444,
            (false, false) => 0o100644,
        };
        Ok(Metadata {
            node,
            kind: Some(if dir { FileKind::Dir } else { FileKind::File }),
            size: if dir { 0 } else { s.size },
            mode,
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: self.time(s.modified),
            atime: self.time(s.accessed),
            ctime: None,
            btime: self.time(s.created),
            rdev: None,
        })
    }

    fn open(&self, node: NodeId) -> io::Result<FileReader<'_>> {
        if node == 0 {
            return Err(corrupt("is a directory"));
        }
        let s = self.set(node)?;
        if s.is_dir() {
            return Err(corrupt("is a directory"));
        }
        let cs = self.cluster();
        if s.size > u64::from(self.boot.clusters) << self.boot.cluster_shift {
            return Err(corrupt(format!("a data length of {} bytes, more than the volume holds", s.size)));
        }
        let valid = if s.valid > s.size {
            self.warnings.add(format!("file {node}: valid data length {} is past its data length {}; read to the latter", s.valid, s.size));
            s.size
        } else {
            s.valid
        };
        let want = valid.div_ceil(cs);
        let mut runs = Vec::new();
        let mut end = None;
        if want > 0 && s.first == 0 {
            return Err(corrupt(format!("{valid} bytes of data but no first cluster")));
        } else if want > 0 && s.contiguous {
            if !self.in_heap(s.first) || u64::from(s.first) + want - 1 > u64::from(self.boot.clusters) + 1 {
                return Err(corrupt(format!("its clusters {}+{want} run past the end of the cluster heap", s.first)));
            }
            runs.push(ClusterRun { at: 0, cluster: s.first, count: want });
        } else if want > 0 {
            let (chain, how) = self.chain(s.first, want)?;
            end = match how {
                ChainEnd::Whole => None,
                ChainEnd::Short => Some("the cluster chain ends".to_string()),
                ChainEnd::Broken(m) => Some(m),
            };
            // Consecutive clusters are one run, read at once.
            for (i, &c) in chain.iter().enumerate() {
                match runs.last_mut() {
                    Some(r) if u64::from(r.cluster) + r.count == u64::from(c) => r.count += 1,
                    _ => runs.push(ClusterRun { at: i as u64 * cs, cluster: c, count: 1 }),
                }
            }
        }
        Ok(Box::new(Reader { fs: self, runs, end, valid, size: s.size, pos: 0 }))
    }

    fn read_link(&self, _node: NodeId) -> io::Result<Vec<u8>> {
        Err(corrupt("exFAT has no symbolic links"))
    }

    fn fold_case(&self, name: &[u8]) -> Option<Vec<u8>> {
        let t = self.upcase()?;
        let units: Vec<u16> = bytes_to_utf16(name)?.into_iter().map(|u| t.get(usize::from(u)).copied().unwrap_or(u)).collect();
        Some(utf16_to_bytes(&units))
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.list()
    }
}

/// Clusters `cluster..cluster + count` hold the file's bytes from `at`.
struct ClusterRun {
    at: u64,
    cluster: u32,
    count: u64,
}

/// Streams a file along its runs up to its valid data length, zeros after
/// it up to its size; runs that end before the valid length are an error
/// at the point they run out, never zeros.
struct Reader<'a> {
    fs: &'a Exfat,
    runs: Vec<ClusterRun>,
    /// Why the runs end early, if they do.
    end: Option<String>,
    valid: u64,
    size: u64,
    pos: u64,
}

impl Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.valid {
            // Past ValidDataLength the specification defines the bytes as zeros.
            let n = (self.size - self.pos).min(buf.len() as u64) as usize;
            buf[..n].fill(0);
            self.pos += n as u64;
            return Ok(n);
        }
        let cs = self.fs.cluster();
        let i = self.runs.partition_point(|r| r.at + r.count * cs <= self.pos);
        let Some(r) = self.runs.get(i) else {
            let why = self.end.as_deref().unwrap_or("the cluster chain ends");
            return Err(corrupt(format!("unreadable: {why} at byte {} of {}", self.pos, self.valid)));
        };
        let within = self.pos - r.at;
        let n = (r.count * cs - within).min(self.valid - self.pos).min(buf.len() as u64) as usize;
        self.fs.dev.read_exact_at(self.fs.cluster_offset(r.cluster) + within, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const HEAP: usize = 40 * 512;
    const CLUSTERS: u32 = 100;

    /// One file's entry set: File, Stream Extension, File Names, with its
    /// checksum.
    fn entry_set(name: &str, attrs: u16, flags: u8, first: u32, valid: u64, size: u64) -> Vec<u8> {
        let units: Vec<u16> = name.encode_utf16().collect();
        let names = units.len().div_ceil(15);
        let mut b = vec![0u8; (2 + names) * 32];
        b[0] = TYPE_FILE;
        b[1] = (1 + names) as u8;
        b[4..6].copy_from_slice(&attrs.to_le_bytes());
        // Modified 2024-05-01 14:34:56 local, +1 s, at UTC+2 (8 quarters).
        let stamp: u32 = (44 << 25) | (5 << 21) | (1 << 16) | (14 << 11) | (34 << 5) | 28;
        b[12..16].copy_from_slice(&stamp.to_le_bytes());
        b[21] = 100;
        b[23] = 0x80 | 8;
        b[32] = TYPE_STREAM;
        b[33] = 1 | flags;
        b[35] = units.len() as u8;
        b[40..48].copy_from_slice(&valid.to_le_bytes());
        b[52..56].copy_from_slice(&first.to_le_bytes());
        b[56..64].copy_from_slice(&size.to_le_bytes());
        for (i, u) in units.iter().enumerate() {
            let e = 64 + (i / 15) * 32;
            b[e] = TYPE_NAME;
            b[e + 2 + (i % 15) * 2..e + 4 + (i % 15) * 2].copy_from_slice(&u.to_le_bytes());
        }
        let sum = set_checksum(&b);
        b[2..4].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// 512-byte sectors and clusters, the FAT at sector 24, the heap at
    /// sector 40, 100 clusters, the root in cluster 2.
    struct Img(Vec<u8>);

    impl Img {
        fn new() -> Img {
            let mut b = vec![0u8; HEAP + CLUSTERS as usize * 512];
            b[0..3].copy_from_slice(&[0xEB, 0x76, 0x90]);
            b[3..11].copy_from_slice(b"EXFAT   ");
            b[80..84].copy_from_slice(&24u32.to_le_bytes());
            b[84..88].copy_from_slice(&8u32.to_le_bytes());
            b[88..92].copy_from_slice(&40u32.to_le_bytes());
            b[92..96].copy_from_slice(&CLUSTERS.to_le_bytes());
            b[96..100].copy_from_slice(&2u32.to_le_bytes());
            b[100..104].copy_from_slice(&0x5EED_0E0Fu32.to_le_bytes());
            b[108] = 9;
            b[110] = 1;
            b[510..512].copy_from_slice(&[0x55, 0xAA]);
            let sum = boot_checksum(&b[..11 * 512]);
            for i in 0..128 {
                b[11 * 512 + i * 4..11 * 512 + i * 4 + 4].copy_from_slice(&sum.to_le_bytes());
            }
            let mut img = Img(b);
            img.fat(2, FAT_END);
            // Bitmap in cluster 3 (13 bytes cover 100 clusters).
            let mut bitmap = [0u8; 32];
            bitmap[0] = TYPE_BITMAP;
            bitmap[20..24].copy_from_slice(&3u32.to_le_bytes());
            bitmap[24..32].copy_from_slice(&13u64.to_le_bytes());
            img.fat(3, FAT_END);
            img.put(2, 0, &bitmap);
            img
        }
        fn fat(&mut self, c: u32, next: u32) {
            let at = 24 * 512 + c as usize * 4;
            self.0[at..at + 4].copy_from_slice(&next.to_le_bytes());
        }
        fn put(&mut self, cluster: u32, off: usize, bytes: &[u8]) {
            let at = HEAP + (cluster as usize - 2) * 512 + off;
            self.0[at..at + bytes.len()].copy_from_slice(bytes);
        }
        fn open(self) -> Exfat {
            Exfat::open(Arc::new(self.0)).unwrap()
        }
    }

    fn read_all(fs: &Exfat, node: NodeId) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        fs.open(node)?.read_to_end(&mut v)?;
        Ok(v)
    }

    fn find(fs: &Exfat, dir: NodeId, name: &str) -> NodeId {
        fs.read_dir(dir).unwrap().into_iter().find(|e| e.name == name.as_bytes()).unwrap().node
    }

    #[test]
    fn entry_sets_parse_and_checksum() {
        let b = entry_set("a name of more than fifteen characters.log", 0x20, NO_FAT_CHAIN, 7, 100, 200);
        assert_eq!(b.len(), 5 * 32, "File, Stream, three File Names");
        let s = parse_set(&b).unwrap();
        assert_eq!(String::from_utf16(&s.name).unwrap(), "a name of more than fifteen characters.log");
        assert_eq!((s.contiguous, s.first, s.valid, s.size), (true, 7, 100, 200));
        assert_eq!(s.checksum.0, s.checksum.1);
        let mut bad = b.clone();
        bad[70] ^= 1;
        let s = parse_set(&bad).unwrap();
        assert_ne!(s.checksum.0, s.checksum.1, "a damaged set is read, its checksum says so");
        // A name longer than its File Name entries hold, a missing stream.
        let mut short = b.clone();
        short[35] = 60;
        assert!(parse_set(&short).unwrap_err().contains("60 characters"));
        let mut nostream = b.clone();
        nostream[32] = TYPE_NAME;
        assert!(parse_set(&nostream).is_err());
        assert!(parse_set(&b[..128]).is_err(), "fewer entries than the count");
        // The specification's example: the checksum skips its own field.
        let mut other = b.clone();
        other[2] ^= 0xFF;
        assert_eq!(set_checksum(&other), set_checksum(&b));
    }

    #[test]
    fn files_label_times_and_the_tail_past_valid_data() {
        let mut img = Img::new();
        let mut label = [0u8; 32];
        label[0] = TYPE_LABEL;
        label[1] = 3;
        for (i, u) in "Lab".encode_utf16().enumerate() {
            label[2 + i * 2..4 + i * 2].copy_from_slice(&u.to_le_bytes());
        }
        img.put(2, 32, &label);
        // contiguous.txt: clusters 10-11, 700 valid bytes of 1500.
        img.put(2, 64, &entry_set("contiguous.txt", 0x21, NO_FAT_CHAIN, 10, 700, 1500));
        img.put(10, 0, &[b'c'; 512]);
        img.put(11, 0, &[b'd'; 512]);
        img.put(12, 0, &[b'x'; 512]); // past the valid length: not read
        // A deleted set (InUse clear) before a live one.
        let mut gone = entry_set("gone.txt", 0x20, NO_FAT_CHAIN, 10, 10, 10);
        for e in gone.chunks_mut(32) {
            e[0] &= 0x7F;
        }
        img.put(2, 160, &gone);
        let fs = img.open();
        assert_eq!(fs.label().as_deref(), Some("Lab"));
        assert_eq!(fs.uuid().as_deref(), Some("5EED-0E0F"));
        let names: Vec<_> = fs.read_dir(0).unwrap().into_iter().map(|e| String::from_utf8(e.name).unwrap()).collect();
        assert_eq!(names, ["contiguous.txt"]);
        let node = find(&fs, 0, "contiguous.txt");
        let data = read_all(&fs, node).unwrap();
        assert_eq!(data.len(), 1500);
        assert!(data[..512].iter().all(|&c| c == b'c') && data[512..700].iter().all(|&c| c == b'd'));
        assert!(data[700..].iter().all(|&c| c == 0), "zeros past the valid data length");
        let m = fs.metadata(node).unwrap();
        assert_eq!((m.size, m.mode), (1500, 0o100444));
        // 14:34:57 at UTC+2 is 12:34:57 UTC.
        assert_eq!(m.mtime.unwrap().to_string(), "2024-05-01T12:34:57.000000000Z");
        assert!(m.btime.is_none());
        assert!(fs.warnings().is_empty(), "{:?}", fs.warnings());
    }

    #[test]
    fn utc_offsets_and_local_time() {
        let fs = Img::new().open();
        let stamp: u32 = (44 << 25) | (5 << 21) | (1 << 16) | (7 << 11);
        // UTC-5 (-20 quarters, 7-bit two's complement 0x6C): 07:00 is 12:00 UTC.
        assert_eq!(fs.time((stamp, 0, 0x80 | 0x6C)).unwrap().to_string(), "2024-05-01T12:00:00.000000000Z");
        assert_eq!(fs.time((stamp, 199, 0x80)).unwrap().to_string(), "2024-05-01T07:00:01.990000000Z");
        assert!(fs.warnings().is_empty());
        assert_eq!(fs.time((stamp, 0, 0x6C)).unwrap().to_string(), "2024-05-01T07:00:00.000000000Z", "offset not valid");
        assert!(fs.time((0, 0, 0x80)).is_none());
        assert_eq!(fs.warnings().len(), 1, "{:?}", fs.warnings());
    }

    #[test]
    fn chains_sets_across_clusters_and_loops() {
        let mut img = Img::new();
        // The root: clusters 2 → 5. A set starting in the last entry of
        // cluster 2 goes on in cluster 5, not 3.
        img.fat(2, 5);
        img.fat(5, FAT_END);
        for off in (32..480).step_by(32) {
            img.put(2, off, &[0x05]); // deleted entries
        }
        let set = entry_set("fragmented.log", 0x20, 0, 20, 1100, 1100);
        img.put(2, 480, &set[..32]);
        img.put(5, 0, &set[32..]);
        img.fat(20, 30);
        img.fat(30, 31);
        img.fat(31, FAT_END);
        img.put(20, 0, &[1; 512]);
        img.put(30, 0, &[2; 512]);
        img.put(31, 0, &[3; 512]);
        // looped.log: 40 → 41 → 40.
        img.put(5, 64, &entry_set("looped.log", 0x20, 0, 40, 2048, 2048));
        img.fat(40, 41);
        img.fat(41, 40);
        // A contiguous directory (clusters 50-51) whose set crosses into 51.
        img.put(5, 160, &entry_set("dir", ATTR_DIR, NO_FAT_CHAIN, 50, 1024, 1024));
        let inner = entry_set("inner.txt", 0x20, NO_FAT_CHAIN, 60, 3, 3);
        for off in (0..480).step_by(32) {
            img.put(50, off, &[0x05]);
        }
        img.put(50, 480, &inner[..32]);
        img.put(51, 0, &inner[32..]);
        img.put(60, 0, b"abc");
        let fs = img.open();
        let f = find(&fs, 0, "fragmented.log");
        let data = read_all(&fs, f).unwrap();
        assert_eq!(data.len(), 1100);
        assert!(data[..512].iter().all(|&c| c == 1) && data[512..1024].iter().all(|&c| c == 2) && data[1024..].iter().all(|&c| c == 3));
        let err = read_all(&fs, find(&fs, 0, "looped.log")).unwrap_err();
        assert!(err.to_string().contains("loops back to cluster 40"), "{err}");
        let dir = find(&fs, 0, "dir");
        assert_eq!(dir & IN_CONTIGUOUS_DIR, 0, "the root is FAT-chained");
        let inner = find(&fs, dir, "inner.txt");
        assert_eq!(inner & IN_CONTIGUOUS_DIR, 1);
        assert_eq!(read_all(&fs, inner).unwrap(), b"abc");
        assert!(fs.read_dir(inner).is_err() && fs.open(dir).is_err() && fs.read_link(inner).is_err());
        assert!(fs.metadata(12345).is_err(), "not an entry's offset");
    }

    #[test]
    fn damaged_sets_are_skipped_and_said() {
        let mut img = Img::new();
        let mut bad = entry_set("bad-sum.txt", 0x20, NO_FAT_CHAIN, 10, 0, 0);
        bad[66] ^= 0x20; // the name: 'b' → 'B'
        img.put(2, 32, &bad);
        // Two secondaries counted, one present.
        let cut = entry_set("cut.txt", 0x20, NO_FAT_CHAIN, 10, 0, 0);
        img.put(2, 128, &cut[..64]);
        img.put(2, 192, &entry_set("after.txt", 0x20, NO_FAT_CHAIN, 10, 0, 0));
        let fs = img.open();
        let (entries, damage) = fs.read_dir_checked(0).unwrap();
        let names: Vec<_> = entries.iter().map(|e| String::from_utf8(e.name.clone()).unwrap()).collect();
        assert_eq!(names, ["Bad-sum.txt", "after.txt"]);
        assert_eq!(damage.as_deref(), Some("1 damaged entry set skipped"));
        assert!(fs.warnings().iter().any(|w| w.contains("Bad-sum.txt") && w.contains("checksum")), "{:?}", fs.warnings());
    }

    #[test]
    fn up_case_tables_expand() {
        // Identity for 0x00-0x60, 'a'-'c' to capitals, then a run of 3 kept.
        let mut raw: Vec<u16> = vec![0xFFFF, 0x61, 0x41, 0x42, 0x43, 0xFFFF, 3, 0x20AC];
        let t = expand_upcase(&raw.iter().flat_map(|u| u.to_le_bytes()).collect::<Vec<_>>());
        assert_eq!(&t[0x5F..0x64], &[0x5F, 0x60, 0x41, 0x42, 0x43]);
        assert_eq!(&t[0x64..0x68], &[0x64, 0x65, 0x66, 0x20AC]);
        assert_eq!(t[0xFFFF], 0xFFFF);
        assert_eq!(t.len(), 65536);
        // Uncompressed, U+FFFF mapping to itself is not a run marker.
        raw = (0..=u16::MAX).collect();
        let t2 = expand_upcase(&raw.iter().flat_map(|u| u.to_le_bytes()).collect::<Vec<_>>());
        assert_eq!(t2, (0..=u16::MAX).collect::<Vec<_>>());
    }
}
