//! Microsoft VHD (Virtual Hard Disk Image Format Specification, v1.0):
//! fixed, dynamic and differencing disks. Big-endian throughout.
//!
//! Own reader: the `vhd` crate reads the whole image into memory on open and
//! rejects differencing disks. Here only the footer, dynamic header and the
//! BAT are read up front (4 bytes per 2 MiB block).

use super::mapped::{Mapped, Mapper, Run};
use super::{Opened, ReadAt, Slice, Source};
use crate::util::bytes::{be_u32_at, be_u64_at};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const FIXED: u32 = 2;
const DYNAMIC: u32 = 3;
const DIFFERENCING: u32 = 4;
/// BATs larger than this are refused (16 M blocks of 2 MiB = 32 TiB).
const MAX_BAT_ENTRIES: u32 = 1 << 24;

pub struct Footer {
    pub current_size: u64,
    pub disk_type: u32,
    pub data_offset: u64,
    pub unique_id: [u8; 16],
}

/// The 512-byte footer: at the end, with a copy at offset 0 for dynamic
/// disks (used when the end is damaged or the download was truncated). A
/// footer whose only fault is its checksum (cookie, disk type and size
/// sane) is accepted with a warning, as libvhdi accepts it: a single bit
/// flipped there (or a tool that wrote the checksum wrong) must not cost
/// the whole disk.
pub fn footer(file: &Source) -> Result<(Footer, Vec<String>)> {
    let len = file.len();
    let mut tail = [0u8; 512];
    if len >= 512 {
        file.read_exact_at(len - 512, &mut tail)?;
    }
    let mut head = [0u8; 512];
    if len >= 512 {
        file.read_exact_at(0, &mut head)?;
    }
    let (at_end, at_start) = (parse_footer(&tail), parse_footer(&head));
    let sane = |f: &Footer| matches!(f.disk_type, 2..=4) && f.current_size > 0 && f.current_size.is_multiple_of(512);
    match (at_end, at_start) {
        (Some((f, None)), _) => Ok((f, Vec::new())),
        (_, Some((f, None))) => Ok((f, vec!["VHD footer at the end is missing or damaged; used the copy at offset 0".into()])),
        (Some((f, Some(bad))), _) if sane(&f) => Ok((f, vec![bad])),
        (_, Some((f, Some(bad)))) if sane(&f) => {
            Ok((f, vec![format!("{bad} (the copy at offset 0; the one at the end is missing or damaged)")]))
        }
        _ => bail!("no valid VHD footer (cookie \"conectix\" with a good checksum, or a sane disk type and size) at the start or end"),
    }
}

/// The footer in `b`, if it has the cookie, and what is wrong with its
/// checksum (None: nothing).
fn parse_footer(b: &[u8]) -> Option<(Footer, Option<String>)> {
    if !crate::util::magic::Magic::Vhd.in_head(b) {
        return None;
    }
    let stored = be_u32_at(b, 64);
    let sum: u32 = b.iter().enumerate().filter(|(i, _)| !(64..68).contains(i)).map(|(_, &x)| u32::from(x)).sum();
    let bad = (!sum != stored).then(|| {
        format!(
            "VHD footer checksum is wrong (stored {stored:#010x}, computed {:#010x}); its cookie, disk type and size are sane, \
             so it was read as libvhdi reads it (qemu-img refuses such a disk)",
            !sum
        )
    });
    let mut unique_id = [0u8; 16];
    unique_id.copy_from_slice(&b[68..84]);
    Some((Footer { current_size: be_u64_at(b, 48), disk_type: be_u32_at(b, 60), data_offset: be_u64_at(b, 16), unique_id }, bad))
}

struct Dynamic {
    file: Source,
    size: u64,
    block_size: u64,
    bitmap_bytes: u64,
    bat: Vec<u32>,
}

impl Mapper for Dynamic {
    fn size(&self) -> u64 {
        self.size
    }

    fn map(&self, offset: u64) -> std::io::Result<(Run<'_>, u64)> {
        let block = offset / self.block_size;
        let within = offset % self.block_size;
        let block_left = (self.block_size - within).min(self.size - offset);
        let entry = self.bat.get(block as usize).copied().unwrap_or(u32::MAX);
        if entry == u32::MAX {
            return Ok((Run::Parent, block_left));
        }
        let start = u64::from(entry) * 512;
        // Sector bitmap, MSB first: 1 = sector stored here, 0 = parent's
        // (or never written, for a plain dynamic disk: zeros).
        let sector = within / 512;
        let mut bitmap = vec![0u8; self.bitmap_bytes as usize];
        self.file.read_exact_at(start, &mut bitmap)?;
        let bit = |s: u64| bitmap.get((s / 8) as usize).is_some_and(|b| b & (0x80 >> (s % 8)) != 0);
        let present = bit(sector);
        let sectors_in_block = self.block_size / 512;
        let mut s = sector + 1;
        while s < sectors_in_block && bit(s) == present {
            s += 1;
        }
        let len = (s * 512 - within).min(block_left);
        if present { Ok((Run::Data { file: &self.file, offset: start + self.bitmap_bytes + within }, len)) } else { Ok((Run::Parent, len)) }
    }
}

/// Opens a VHD. Differencing disks open their parent (and its parents),
/// checking each link's unique id.
pub fn open(path: &Path, depth: u32) -> Result<Opened> {
    super::check_chain(depth, "VHD parent", path)?;
    let file = super::open_file(path)?;
    let (f, mut warnings) = footer(&file)?;
    match f.disk_type {
        FIXED => {
            let data_len = file.len().saturating_sub(512);
            let size = f.current_size.min(data_len);
            let src: Source = Arc::new(file);
            let source = Arc::new(Slice::new(src, 0, size));
            Ok(Opened { source, format: "fixed VHD".into(), files: vec![path.into()], warnings, notes: Vec::new() })
        }
        DYNAMIC | DIFFERENCING => {
            let mut h = [0u8; 1024];
            file.read_exact_at(f.data_offset, &mut h).context("cannot read the VHD dynamic header")?;
            if &h[0..8] != b"cxsparse" {
                bail!("VHD dynamic header at {} has no \"cxsparse\" cookie", f.data_offset);
            }
            let bat_offset = be_u64_at(&h, 16);
            let entries = be_u32_at(&h, 28);
            let block_size = u64::from(be_u32_at(&h, 32));
            if entries > MAX_BAT_ENTRIES || block_size < 512 || !block_size.is_power_of_two() || block_size > 1 << 30 {
                bail!("VHD dynamic header is damaged (block size {block_size}, {entries} BAT entries)");
            }
            if u64::from(entries) * block_size < f.current_size {
                warnings.push("VHD BAT covers less than the disk size; the rest reads as unallocated".into());
            }
            let mut raw = vec![0u8; entries as usize * 4];
            file.read_exact_at(bat_offset, &mut raw).context("cannot read the VHD block allocation table")?;
            let bat = raw.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
            let bitmap_bytes = (block_size / 512 / 8).div_ceil(512) * 512;
            let mut files = vec![path.to_path_buf()];
            let (parent, format) = if f.disk_type == DIFFERENCING {
                let mut parent_id = [0u8; 16];
                parent_id.copy_from_slice(&h[40..56]);
                let ppath = find_parent(path, &file, &h)?;
                let pfile = super::open_file(&ppath)?;
                let (pf, _) = footer(&pfile)?;
                if pf.unique_id != parent_id {
                    bail!(
                        "{} is not the parent of {}: its unique id does not match the one the child recorded \
                         (was the parent modified or replaced?)",
                        ppath.display(),
                        path.display()
                    );
                }
                let p = open(&ppath, depth + 1)?;
                warnings.extend(p.warnings);
                files.extend(p.files);
                (Some(p.source), format!("differencing VHD over {}", p.format))
            } else {
                (None, "dynamic VHD".to_string())
            };
            let m = Dynamic { file, size: f.current_size, block_size, bitmap_bytes, bat };
            Ok(Opened { source: Arc::new(Mapped::new(m, parent)), format, files, warnings, notes: Vec::new() })
        }
        t => bail!("VHD disk type {t} is not fixed (2), dynamic (3) or differencing (4)"),
    }
}

/// The parent file: relative (`W2ru`), absolute (`W2ku`, `MacX`) locators,
/// then the parent's name beside the child. Windows paths are taken by
/// their last component when the absolute path does not exist here.
fn find_parent(child: &Path, file: &Source, h: &[u8]) -> Result<PathBuf> {
    let dir = child.parent().unwrap_or(Path::new("."));
    let mut candidates = Vec::new();
    for i in 0..8 {
        let e = &h[576 + i * 24..600 + i * 24];
        let code = &e[0..4];
        let len = be_u32_at(e, 8) as usize;
        let off = be_u64_at(e, 16);
        if code == [0; 4] || len == 0 || len > 4096 {
            continue;
        }
        let mut data = vec![0u8; len];
        if file.read_exact_at(off, &mut data).is_err() {
            continue;
        }
        let text = match code {
            b"W2ku" | b"W2ru" => {
                let units: Vec<u16> = data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
                String::from_utf16_lossy(&units).trim_end_matches('\0').to_string()
            }
            b"MacX" => String::from_utf8_lossy(&data).trim_start_matches("file://").trim_end_matches('\0').to_string(),
            _ => continue,
        };
        candidates.push(text);
    }
    let name: Vec<u16> = h[64..576].chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).take_while(|&u| u != 0).collect();
    candidates.push(String::from_utf16_lossy(&name));
    for c in &candidates {
        let unix = c.replace('\\', "/");
        let as_given = dir.join(unix.trim_start_matches("./"));
        if as_given.is_file() {
            return Ok(as_given);
        }
        if let Some(last) = unix.rsplit('/').next().filter(|s| !s.is_empty()) {
            let beside = dir.join(last);
            if beside.is_file() {
                return Ok(beside);
            }
        }
    }
    Err(super::missing_parent(format!(
        "the parent of differencing VHD {} is missing: it names {:?}; put that file beside it",
        child.display(),
        candidates
    )))
}
