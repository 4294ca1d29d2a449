//! Microsoft VHDX ([MS-VHDX] v6.0): headers and region tables with CRC-32C,
//! metadata (block size, sector sizes, virtual size, parent locator), the
//! BAT with sector-bitmap interleaving, partially present blocks, and
//! differencing disks. A log left by an unclean shutdown is replayed in
//! memory (`vhdx_log.rs`), never into the evidence.
//!
//! Own reader: the `vhdx` crate opens evidence read-write and replays the
//! log into the file, and computes the chunk ratio wrong (wrong data past
//! 4 GiB); keramics' VHDX also returned wrong data past 4 GiB.

use super::mapped::{Mapped, Mapper, Run};
use super::{OpenChained, Opened, ReadAt, Source, vhdx_log};
use crate::util::bytes::{guid, u16_at, u32_at, u64_at};
use crate::util::crc::crc32c_raw;
use anyhow::{Context, Result, bail};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
const BAT_GUID: &str = "2DC27766-F623-4200-9D64-115E9BFD4A08";
const METADATA_GUID: &str = "8B7CA206-4790-4B9A-B8FE-575F050F886E";
const FILE_PARAMETERS: &str = "CAA16737-FA36-4D43-B3B6-33F0AA44E76B";
const VIRTUAL_DISK_SIZE: &str = "2FA54224-CD1B-4876-B211-5DBED83BF4B8";
const LOGICAL_SECTOR_SIZE: &str = "8141BF1D-A96F-4709-BA47-F233A8FAAB5F";
const PARENT_LOCATOR: &str = "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C";

/// CRC-32C of `block` with its checksum field (at `csum_at`) taken as zero.
pub(super) fn crc_ok(block: &[u8], csum_at: usize) -> bool {
    let Some(rest) = block.get(csum_at + 4..) else { return false };
    let crc = crc32c_raw(crc32c_raw(crc32c_raw(!0, &block[..csum_at]), &[0; 4]), rest);
    !crc == u32_at(block, csum_at)
}

/// The current header ([MS-VHDX] 2.2.2: the valid one with the higher
/// sequence number) and the offsets of damaged copies.
fn current_header(file: &dyn ReadAt) -> (Option<Vec<u8>>, Vec<u64>) {
    let mut best: Option<Vec<u8>> = None;
    let mut damaged = Vec::new();
    for off in [64 * KIB, 128 * KIB] {
        let mut h = vec![0u8; 4096];
        if file.read_exact_at(off, &mut h).is_ok() && &h[0..4] == b"head" && crc_ok(&h, 4) {
            if best.as_ref().is_none_or(|b| u64_at(&h, 8) > u64_at(b, 8)) {
                best = Some(h);
            }
        } else {
            damaged.push(off);
        }
    }
    (best, damaged)
}

struct Vhdx {
    /// The file as replayed from its log, if it had one.
    file: Source,
    size: u64,
    block: u64,
    sector: u64,
    chunk_ratio: u64,
    bat: Vec<u64>,
}

impl Vhdx {
    fn entry(&self, i: u64) -> u64 {
        self.bat.get(i as usize).copied().unwrap_or(0)
    }
}

impl Mapper for Vhdx {
    fn size(&self) -> u64 {
        self.size
    }

    fn map(&self, offset: u64) -> io::Result<(Run<'_>, u64)> {
        let b = offset / self.block;
        let within = offset % self.block;
        let left = (self.block - within).min(self.size - offset);
        // A sector-bitmap entry follows every `chunk_ratio` payload entries.
        let e = self.entry(b + b / self.chunk_ratio);
        let state = e & 7;
        let file_off = (e >> 20) << 20;
        match state {
            6 => Ok((Run::Data { file: &*self.file, offset: file_off + within }, left)),
            2 => Ok((Run::Zero, left)),
            7 => {
                // Partially present (differencing): one bit per sector, in
                // the chunk's sector bitmap block; 1 = here, 0 = parent.
                let chunk = b / self.chunk_ratio;
                let sb = self.entry(chunk * (self.chunk_ratio + 1) + self.chunk_ratio);
                if sb & 7 != 6 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("VHDX block {b} is partially present but its sector bitmap is missing"),
                    ));
                }
                let sectors_per_block = self.block / self.sector;
                let first_sector = (b % self.chunk_ratio) * sectors_per_block + within / self.sector;
                let mut bm = vec![0u8; (sectors_per_block / 8).max(1) as usize + 8];
                let bm_off = ((sb >> 20) << 20) + first_sector / 8;
                let n = self.file.read_at(bm_off, &mut bm)?;
                let bit = |s: u64| {
                    let rel = s - (first_sector - first_sector % 8);
                    bm[..n].get((rel / 8) as usize).is_some_and(|x| x & (1 << (rel % 8)) != 0)
                };
                let present = bit(first_sector);
                let last = (b % self.chunk_ratio + 1) * sectors_per_block;
                let mut s = first_sector + 1;
                while s < last && bit(s) == present {
                    s += 1;
                }
                let len = ((s - first_sector) * self.sector - within % self.sector).min(left);
                if present { Ok((Run::Data { file: &*self.file, offset: file_off + within }, len)) } else { Ok((Run::Parent, len)) }
            }
            // Not present, undefined, unmapped: the parent's (zeros if none).
            _ => Ok((Run::Parent, left)),
        }
    }
}

pub fn open(path: &Path, depth: u32, open_parent: OpenChained) -> Result<Opened> {
    super::check_chain(depth, "VHDX parent", path)?;
    let raw = super::open_file(path)?;
    let name = path.display();
    let mut warnings = Vec::new();
    let mut sig = [0u8; 8];
    raw.read_exact_at(0, &mut sig)?;
    if &sig != b"vhdxfile" {
        bail!("{name} is not a VHDX file");
    }
    let (header, damaged) = current_header(&raw);
    for off in damaged {
        warnings.push(format!("{name}: VHDX header at {off} is damaged; the other copy is used"));
    }
    let header = header.with_context(|| format!("{name}: both VHDX headers are damaged"))?;
    // Headers are never updated through the log; everything after them is
    // read through the replayed log.
    let (file, log_note) = vhdx_log::replay(raw, &header);
    warnings.extend(log_note.map(|w| format!("{name}: {w}")));
    let mut regions = None;
    for off in [192 * KIB, 256 * KIB] {
        let mut r = vec![0u8; (64 * KIB) as usize];
        if file.read_exact_at(off, &mut r).is_ok() && &r[0..4] == b"regi" && crc_ok(&r, 4) {
            regions = Some(r);
            break;
        }
        warnings.push(format!("{name}: VHDX region table at {off} is damaged"));
    }
    let regions = regions.with_context(|| format!("{name}: both VHDX region tables are damaged"))?;
    let count = u32_at(&regions, 8).min(2047) as usize;
    let mut bat_region = None;
    let mut meta_region = None;
    for i in 0..count {
        let e = &regions[16 + i * 32..48 + i * 32];
        let r = (u64_at(e, 16), u64::from(u32_at(e, 24)));
        match guid(&e[0..16]).as_str() {
            BAT_GUID => bat_region = Some(r),
            METADATA_GUID => meta_region = Some(r),
            _ if u32_at(e, 28) & 1 != 0 => bail!("{name}: VHDX requires an unknown region {}", guid(&e[0..16])),
            _ => {}
        }
    }
    let (meta_off, meta_len) = meta_region.context("VHDX has no metadata region")?;
    let (bat_off, bat_len) = bat_region.context("VHDX has no BAT region")?;
    if meta_len > 16 * MIB || bat_len > 1 << 30 {
        bail!("{name}: VHDX region sizes are implausible");
    }
    let mut meta = vec![0u8; meta_len as usize];
    file.read_exact_at(meta_off, &mut meta)?;
    if meta.get(0..8) != Some(b"metadata".as_slice()) {
        bail!("{name}: VHDX metadata table signature missing");
    }
    let item = |id: &str| -> Option<&[u8]> {
        let n = u16_at(&meta, 10).min(2047) as usize;
        (0..n).find_map(|i| {
            let e = meta.get(32 + i * 32..64 + i * 32)?;
            (guid(&e[0..16]) == id).then(|| {
                let off = u32_at(e, 16) as usize;
                let len = u32_at(e, 20) as usize;
                meta.get(off..off.checked_add(len)?)
            })?
        })
    };
    let params = item(FILE_PARAMETERS).context("VHDX metadata lacks file parameters")?;
    let block = u64::from(u32_at(params, 0));
    let has_parent = u32_at(params, 4) & 2 != 0;
    let size = item(VIRTUAL_DISK_SIZE).map(|v| u64_at(v, 0)).context("VHDX metadata lacks the disk size")?;
    let sector = item(LOGICAL_SECTOR_SIZE).map(|v| u64::from(u32_at(v, 0))).unwrap_or(512);
    if !(MIB..=256 * MIB).contains(&block) || !block.is_power_of_two() || !matches!(sector, 512 | 4096) {
        bail!("{name}: VHDX block size {block} or sector size {sector} is invalid");
    }
    // Chunk ratio = (2^23 × logical sector size) / block size.
    let chunk_ratio = (1u64 << 23) * sector / block;
    let blocks = size.div_ceil(block);
    let entries =
        if has_parent { blocks.div_ceil(chunk_ratio) * (chunk_ratio + 1) } else { blocks + (blocks.saturating_sub(1)) / chunk_ratio };
    if entries * 8 > bat_len {
        bail!("{name}: VHDX BAT region holds fewer entries than the disk needs");
    }
    let mut table = vec![0u8; (entries * 8) as usize];
    file.read_exact_at(bat_off, &mut table).context("cannot read the VHDX BAT")?;
    let bat = table.chunks_exact(8).map(|c| u64_at(c, 0)).collect();
    let mut files = vec![path.to_path_buf()];
    let mut format = "VHDX".to_string();
    let parent = if has_parent {
        let loc = item(PARENT_LOCATOR).context("differencing VHDX without a parent locator")?;
        let ppath = find_parent(path, &locator(loc), &mut warnings)?;
        let p = open_parent(&ppath, depth + 1)?;
        warnings.extend(p.warnings);
        files.extend(p.files);
        format = format!("differencing VHDX over {}", p.format);
        Some(p.source)
    } else {
        None
    };
    let v = Vhdx { file, size, block, sector, chunk_ratio, bat };
    Ok(Opened { source: Arc::new(Mapped::new(v, parent)), format, files, warnings, notes: Vec::new() })
}

/// The parent file named by a parent locator ([MS-VHDX] 2.6.2.6.3), checked
/// against the recorded `parent_linkage` (the parent's DataWriteGuid).
/// Paths are tried in the order the specification gives; a Windows path
/// that does not exist here is tried by its last component beside the child.
fn find_parent(child: &Path, kv: &[(String, String)], warnings: &mut Vec<String>) -> Result<PathBuf> {
    let name = child.display();
    let value = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let dir = child.parent().unwrap_or(Path::new("."));
    let paths: Vec<&str> = ["relative_path", "volume_path", "absolute_win32_path"].into_iter().filter_map(value).collect();
    let ppath = paths
        .iter()
        .flat_map(|v| {
            let v = v.replace('\\', "/");
            let last = v.rsplit('/').next().unwrap_or(&v).to_string();
            [dir.join(v.trim_start_matches("./")), dir.join(last)]
        })
        .find(|p| p.is_file())
        .ok_or_else(|| {
            super::missing_parent(format!("the parent of differencing VHDX {name} is missing: it names {paths:?}; put that file beside it"))
        })?;
    let linkages: Vec<String> =
        ["parent_linkage", "parent_linkage2"].into_iter().filter_map(value).map(|v| v.trim_matches(['{', '}']).to_uppercase()).collect();
    if linkages.is_empty() {
        warnings.push(format!("{name}: the parent locator records no parent_linkage, so {} could not be checked", ppath.display()));
        return Ok(ppath);
    }
    let pguid = super::open_file(&ppath)
        .ok()
        .and_then(|f| current_header(&f).0)
        .map(|h| guid(&h[32..48]))
        .with_context(|| format!("{} has no valid VHDX header, so it cannot be the parent of {name}", ppath.display()))?;
    if !linkages.contains(&pguid) {
        bail!(
            "{} is not the parent of {name}: its data write GUID {pguid} differs from the recorded parent_linkage {} \
             (was the parent modified or replaced?)",
            ppath.display(),
            linkages.join(" / ")
        );
    }
    Ok(ppath)
}

/// Key/value pairs of a parent locator (UTF-16LE strings).
fn locator(b: &[u8]) -> Vec<(String, String)> {
    let n = u16_at(b, 18).min(256) as usize;
    let text = |off: u32, len: u16| -> String {
        let s = b.get(off as usize..off as usize + len as usize).unwrap_or(&[]);
        let u: Vec<u16> = s.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        String::from_utf16_lossy(&u)
    };
    (0..n)
        .filter_map(|i| {
            let e = b.get(20 + i * 12..32 + i * 12)?;
            Some((text(u32_at(e, 0), u16_at(e, 8)), text(u32_at(e, 4), u16_at(e, 10))))
        })
        .collect()
}
