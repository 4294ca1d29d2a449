//! FAT12/16/32 (EFI system partitions, small application volumes), read-only.
//!
//! Own reader (Microsoft's FAT specification, "FAT: General Overview of
//! On-Disk Format"), not the `fatfs` crate: that one needs a `Write` handle
//! even to read, is `!Sync` (one instance per thread), and its files borrow
//! the filesystem, which does not fit a shared `&self` reader. Long file
//! names (VFAT) with their checksum, 8.3 names with the NT lower-case flags,
//! all three timestamps. FAT stores local time without a zone: times are
//! shown as if they were UTC (the manifest says so through a warning).
//!
//! Node ids are the byte offset of a file's directory entry (0: the root).

use super::{DirEntry, FileKind, FileReader, FileSystem, Metadata, NodeId};
use crate::evidence::{ReadAt, Source};
use crate::util::bytes::{u8_at, u16_at, u32_at};
use crate::util::corrupt;
use crate::util::time::Timestamp;
use std::io::{self, Read};

const ATTR_DIR: u8 = 0x10;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_LFN: u8 = 0x0F;
/// The FAT specification's limit on directory size (65,536 entries).
const MAX_DIR_BYTES: u64 = 65536 * 32;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Fat12,
    Fat16,
    Fat32,
}

pub struct Fat {
    dev: Source,
    kind: Kind,
    cluster: u64,
    fat_offset: u64,
    /// FAT12/16: the fixed root directory region.
    root_region: (u64, u64),
    root_cluster: u32,
    data_offset: u64,
    clusters: u32,
    label: Option<String>,
    serial: u32,
}

/// Is this a FAT boot sector? (Used by `probe`.)
pub fn looks_like(b: &[u8]) -> bool {
    let bps = u16_at(b, 11);
    let spc = u8_at(b, 13);
    matches!(bps, 512 | 1024 | 2048 | 4096)
        && spc.is_power_of_two()
        && u16_at(b, 14) > 0
        && matches!(u8_at(b, 16), 1 | 2)
        && b.get(510..512) == Some(&[0x55, 0xAA])
}

impl Fat {
    pub fn open(dev: Source) -> io::Result<Fat> {
        let mut b = [0u8; 512];
        dev.read_exact_at(0, &mut b)?;
        if !looks_like(&b) {
            return Err(corrupt("not a FAT boot sector"));
        }
        let bps = u64::from(u16_at(&b, 11));
        let spc = u64::from(u8_at(&b, 13));
        let rsvd = u64::from(u16_at(&b, 14));
        let nfats = u64::from(u8_at(&b, 16));
        let root_entries = u64::from(u16_at(&b, 17));
        let total = match u16_at(&b, 19) {
            0 => u64::from(u32_at(&b, 32)),
            n => u64::from(n),
        };
        let fatsz = match u16_at(&b, 22) {
            0 => u64::from(u32_at(&b, 36)),
            n => u64::from(n),
        };
        let root_sectors = (root_entries * 32).div_ceil(bps);
        let first_data = rsvd + nfats * fatsz + root_sectors;
        let clusters = total.checked_sub(first_data).ok_or_else(|| corrupt("FAT geometry is inconsistent"))? / spc;
        // As the kernel and fsck.fat decide: FAT32 when the BPB's 16-bit FAT
        // size is 0 and its 32-bit one is set (`mkfs.fat -F 32` makes such
        // volumes with fewer than 65,525 clusters too); otherwise FAT12 up to
        // 4,084 clusters, else FAT16.
        let kind = if u16_at(&b, 22) == 0 && u32_at(&b, 36) != 0 {
            Kind::Fat32
        } else if clusters < 4085 {
            Kind::Fat12
        } else {
            Kind::Fat16
        };
        let (label_at, serial_at) = if kind == Kind::Fat32 { (71, 67) } else { (43, 39) };
        let label = String::from_utf8_lossy(&b[label_at..label_at + 11]).trim().to_string();
        Ok(Fat {
            dev,
            kind,
            cluster: spc * bps,
            fat_offset: rsvd * bps,
            root_region: ((rsvd + nfats * fatsz) * bps, root_sectors * bps),
            root_cluster: u32_at(&b, 44),
            data_offset: first_data * bps,
            clusters: clusters.min(u64::from(u32::MAX)) as u32,
            label: (!label.is_empty() && label != "NO NAME").then_some(label),
            serial: u32_at(&b, serial_at),
        })
    }

    fn next_cluster(&self, c: u32) -> io::Result<Option<u32>> {
        let (off, eoc) = match self.kind {
            Kind::Fat12 => (u64::from(c) + u64::from(c) / 2, 0xFF8),
            Kind::Fat16 => (u64::from(c) * 2, 0xFFF8),
            Kind::Fat32 => (u64::from(c) * 4, 0x0FFF_FFF8),
        };
        let mut e = [0u8; 4];
        let n = if self.kind == Kind::Fat32 { 4 } else { 2 };
        self.dev.read_exact_at(self.fat_offset + off, &mut e[..n])?;
        let v = u32::from_le_bytes(e);
        let next = match self.kind {
            Kind::Fat12 => {
                if c & 1 == 1 {
                    v >> 4
                } else {
                    v & 0xFFF
                }
            }
            Kind::Fat16 => v & 0xFFFF,
            Kind::Fat32 => v & 0x0FFF_FFFF,
        };
        Ok((next >= 2 && next < eoc && next <= self.clusters + 1).then_some(next))
    }

    /// The clusters of a chain, at most `max` of them. A loop ends it at
    /// once (Brent's cycle check, no memory): the file then reads as cut
    /// short where its chain does, not as one cluster repeated to its size.
    fn chain(&self, first: u32, max: u64) -> io::Result<Vec<u32>> {
        let mut out = Vec::new();
        let mut c = first;
        let (mut mark, mut lap, mut steps) = (first, 1u64, 0u64);
        while c >= 2 && c <= self.clusters + 1 && (out.len() as u64) < max {
            out.push(c);
            match self.next_cluster(c)? {
                Some(n) if n == mark => {
                    // Found late by up to a lap: drop what repeats.
                    let mut seen = std::collections::HashSet::new();
                    let first_repeat = out.iter().position(|&x| !seen.insert(x)).unwrap_or(out.len());
                    out.truncate(first_repeat);
                    break;
                }
                Some(n) => c = n,
                None => break,
            }
            steps += 1;
            if steps == lap {
                (mark, lap, steps) = (c, lap * 2, 0);
            }
        }
        Ok(out)
    }

    fn cluster_offset(&self, c: u32) -> u64 {
        self.data_offset + u64::from(c - 2) * self.cluster
    }

    /// The raw 32-byte entry at `node`.
    fn dirent(&self, node: NodeId) -> io::Result<[u8; 32]> {
        let mut e = [0u8; 32];
        self.dev.read_exact_at(node, &mut e)?;
        Ok(e)
    }

    fn first_cluster(&self, e: &[u8]) -> u32 {
        let hi = if self.kind == Kind::Fat32 { u32::from(u16_at(e, 20)) << 16 } else { 0 };
        hi | u32::from(u16_at(e, 26))
    }

    /// A directory's entries with the byte offset of each in the volume.
    fn dir_bytes(&self, dir: NodeId) -> io::Result<Vec<(u64, [u8; 32])>> {
        let mut raw = Vec::new();
        if dir == 0 && self.kind != Kind::Fat32 {
            let (off, len) = self.root_region;
            let mut b = vec![0u8; len.min(MAX_DIR_BYTES) as usize];
            self.dev.read_exact_at(off, &mut b)?;
            for (i, e) in b.chunks_exact(32).enumerate() {
                raw.push((off + i as u64 * 32, e.try_into().unwrap_or([0; 32])));
            }
            return Ok(raw);
        }
        let first = if dir == 0 {
            self.root_cluster
        } else {
            let e = self.dirent(dir)?;
            if e[11] & ATTR_DIR == 0 {
                return Err(corrupt("not a directory"));
            }
            self.first_cluster(&e)
        };
        for c in self.chain(first, MAX_DIR_BYTES.div_ceil(self.cluster))? {
            let base = self.cluster_offset(c);
            let mut b = vec![0u8; self.cluster as usize];
            self.dev.read_exact_at(base, &mut b)?;
            for (i, e) in b.chunks_exact(32).enumerate() {
                raw.push((base + i as u64 * 32, e.try_into().unwrap_or([0; 32])));
            }
        }
        Ok(raw)
    }
}

/// 8.3 name with the NT lower-case flags (0x08 base, 0x10 extension).
fn short_name(e: &[u8]) -> Vec<u8> {
    let lower = |s: &[u8], on: bool| -> Vec<u8> {
        let t: Vec<u8> = s.iter().copied().rev().skip_while(|&c| c == b' ').collect::<Vec<_>>().into_iter().rev().collect();
        if on { t.to_ascii_lowercase() } else { t }
    };
    let mut base = lower(&e[0..8], e[12] & 0x08 != 0);
    if base.first() == Some(&0x05) {
        base[0] = 0xE5;
    }
    let ext = lower(&e[8..11], e[12] & 0x10 != 0);
    if ext.is_empty() { base } else { [base, b".".to_vec(), ext].concat() }
}

fn lfn_checksum(short: &[u8]) -> u8 {
    short[..11].iter().fold(0u8, |s, &c| s.rotate_right(1).wrapping_add(c))
}

/// FAT date and time (local time, 2-second resolution) as a timestamp;
/// exFAT's timestamps have the same layout.
pub(super) fn fat_time(date: u16, time: u16, tenths: u8) -> Option<Timestamp> {
    if date == 0 {
        return None;
    }
    let (y, m, d) = (1980 + i64::from(date >> 9), u32::from((date >> 5) & 15), u32::from(date & 31));
    let (hh, mm, ss) = (i64::from(time >> 11), i64::from((time >> 5) & 63), i64::from(time & 31) * 2);
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let extra_ms = i64::from(tenths.min(199)) * 10;
    let secs = crate::util::time::days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss + extra_ms / 1000;
    Some(Timestamp::new(secs, ((extra_ms % 1000) * 1_000_000) as u32))
}

impl FileSystem for Fat {
    fn kind(&self) -> &'static str {
        match self.kind {
            Kind::Fat12 => "fat12",
            Kind::Fat16 => "fat16",
            Kind::Fat32 => "fat32",
        }
    }
    fn label(&self) -> Option<String> {
        self.label.clone()
    }
    fn uuid(&self) -> Option<String> {
        // fstab's UUID= for FAT is the volume serial, XXXX-XXXX.
        Some(format!("{:04X}-{:04X}", self.serial >> 16, self.serial & 0xFFFF))
    }
    fn root(&self) -> NodeId {
        0
    }

    fn read_dir(&self, dir: NodeId) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        let mut lfn: Vec<(u8, [u16; 13])> = Vec::new();
        for (off, e) in self.dir_bytes(dir)? {
            match e[0] {
                0x00 => break,
                0xE5 => {
                    lfn.clear();
                    continue;
                }
                _ => {}
            }
            if e[11] & 0x3F == ATTR_LFN {
                let mut units = [0u16; 13];
                for (i, o) in [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30].iter().enumerate() {
                    units[i] = u16_at(&e, *o);
                }
                lfn.push((e[13], units));
                continue;
            }
            let taken = std::mem::take(&mut lfn);
            if e[11] & ATTR_VOLUME != 0 {
                continue;
            }
            let short = short_name(&e);
            if short == b"." || short == b".." {
                continue;
            }
            let sum = lfn_checksum(&e);
            let name = if !taken.is_empty() && taken.iter().all(|(c, _)| *c == sum) {
                // Stored last part first.
                let units: Vec<u16> =
                    taken.iter().rev().flat_map(|(_, u)| u.iter().copied()).take_while(|&u| u != 0 && u != 0xFFFF).collect();
                String::from_utf16_lossy(&units).into_bytes()
            } else {
                short
            };
            let kind = if e[11] & ATTR_DIR != 0 { FileKind::Dir } else { FileKind::File };
            out.push(DirEntry { name, node: off, kind });
        }
        Ok(out)
    }

    fn metadata(&self, node: NodeId) -> io::Result<Metadata> {
        if node == 0 {
            return Ok(Metadata { node, kind: Some(FileKind::Dir), nlink: 1, ..Metadata::default() });
        }
        let e = self.dirent(node)?;
        let dir = e[11] & ATTR_DIR != 0;
        Ok(Metadata {
            node,
            kind: Some(if dir { FileKind::Dir } else { FileKind::File }),
            size: if dir { 0 } else { u64::from(u32_at(&e, 28)) },
            mode: if dir { 0o040755 } else { 0o100644 },
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: fat_time(u16_at(&e, 24), u16_at(&e, 22), 0),
            atime: fat_time(u16_at(&e, 18), 0, 0),
            ctime: None,
            btime: fat_time(u16_at(&e, 16), u16_at(&e, 14), e[13]),
            rdev: None,
        })
    }

    fn open(&self, node: NodeId) -> io::Result<FileReader<'_>> {
        let e = self.dirent(node)?;
        if node == 0 || e[11] & ATTR_DIR != 0 {
            return Err(corrupt("is a directory"));
        }
        let size = u64::from(u32_at(&e, 28));
        let chain = if size == 0 { Vec::new() } else { self.chain(self.first_cluster(&e), size.div_ceil(self.cluster))? };
        Ok(Box::new(ChainReader { fs: self, chain, size, pos: 0 }))
    }

    fn read_link(&self, _node: NodeId) -> io::Result<Vec<u8>> {
        Err(corrupt("FAT has no symbolic links"))
    }

    fn warnings(&self) -> Vec<String> {
        vec!["FAT records local time without a time zone: its times are shown as if they were UTC".into()]
    }
}

/// Streams a file along its cluster chain; a chain shorter than the size
/// is an error at the point it runs out, never zeros.
struct ChainReader<'a> {
    fs: &'a Fat,
    chain: Vec<u32>,
    size: u64,
    pos: u64,
}

impl Read for ChainReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let cs = self.fs.cluster;
        let i = (self.pos / cs) as usize;
        let Some(&first) = self.chain.get(i) else {
            return Err(corrupt(format!("unreadable: the cluster chain ends at byte {} of {}", self.pos, self.size)));
        };
        // Coalesce consecutive clusters into one read.
        let mut run = 1;
        while self.chain.get(i + run) == Some(&(first + run as u32)) {
            run += 1;
        }
        let within = self.pos % cs;
        let n = (run as u64 * cs - within).min(self.size - self.pos).min(buf.len() as u64) as usize;
        self.fs.dev.read_exact_at(self.fs.cluster_offset(first) + within, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// FAT16 with 512-byte clusters over a FAT whose entries are given.
    fn with_fat(entries: &[(u16, u16)]) -> Fat {
        let mut img = vec![0u8; 4200 * 512];
        img[0] = 0xEB;
        img[11..13].copy_from_slice(&512u16.to_le_bytes());
        img[13] = 1; // sectors per cluster
        img[14] = 1; // reserved
        img[16] = 1; // FATs
        img[17..19].copy_from_slice(&16u16.to_le_bytes()); // root entries
        img[19..21].copy_from_slice(&4200u16.to_le_bytes());
        img[21] = 0xF8;
        img[22..24].copy_from_slice(&17u16.to_le_bytes()); // sectors per FAT
        img[54..59].copy_from_slice(b"FAT16");
        img[510..512].copy_from_slice(&[0x55, 0xAA]);
        for &(c, next) in entries {
            let at = 512 + usize::from(c) * 2;
            img[at..at + 2].copy_from_slice(&next.to_le_bytes());
        }
        Fat::open(Arc::new(img)).unwrap()
    }

    #[test]
    fn a_looping_chain_ends_where_it_first_repeats() {
        // 2 → 3 → 4 → 5 → 3: the file reads clusters 2..=5 once, then its
        // chain ends (a short read, reported), not 3, 4, 5 over and over.
        let fs = with_fat(&[(2, 3), (3, 4), (4, 5), (5, 3)]);
        assert_eq!(fs.chain(2, 1 << 20).unwrap(), [2, 3, 4, 5]);
        let fs = with_fat(&[(7, 7)]);
        assert_eq!(fs.chain(7, 1 << 20).unwrap(), [7]);
        let fs = with_fat(&[(2, 3), (3, 0xFFFF)]);
        assert_eq!(fs.chain(2, 1 << 20).unwrap(), [2, 3], "an ordinary chain is whole");
    }

    #[test]
    fn fat_times_and_names() {
        // 2024-05-01 12:34:56, date = (44<<9)|(5<<5)|1, time = (12<<11)|(34<<5)|28
        let t = fat_time((44 << 9) | (5 << 5) | 1, (12 << 11) | (34 << 5) | 28, 0).unwrap();
        assert_eq!(t.to_string(), "2024-05-01T12:34:56.000000000Z");
        assert!(fat_time(0, 0, 0).is_none());
        let mut e = [b' '; 32];
        e[..8].copy_from_slice(b"README  ");
        e[8..11].copy_from_slice(b"TXT");
        e[12] = 0x18;
        assert_eq!(short_name(&e), b"readme.txt");
    }
}
