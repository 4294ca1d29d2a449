//! VMware VMDK (Virtual Disk Format 5.0): descriptor files (embedded or
//! standalone), monolithicSparse, streamOptimized (compressed grains,
//! footer), twoGbMaxExtentSparse/Flat, monolithicFlat, ZERO extents, and
//! snapshot chains through `parentFileNameHint` with the CID checked.
//!
//! Own reader: `vmdk-core` re-inflates a compressed grain on every small
//! read and is young single-author code; the format is small enough to own
//! (grain lookups go through the shared engine in `mapped.rs`).

use super::mapped::{Codec, Mapped, Mapper, Run};
use super::{Opened, ReadAt, Source, Unsupported};
use crate::util::bytes::{u16_at, u32_at, u64_at};
use crate::util::cache::Cache;
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

const SECTOR: u64 = 512;
const GD_AT_END: u64 = u64::MAX;
const FLAG_REDUNDANT_GT: u32 = 1 << 1;
const FLAG_COMPRESSED: u32 = 1 << 16;
/// Grain tables kept in memory (each 512 entries × 4 bytes).
const GT_CACHE: usize = 4096;

/// One descriptor extent line: `RW 4192256 SPARSE "disk-s001.vmdk"`.
struct ExtentLine {
    sectors: u64,
    kind: String,
    file: Option<String>,
    offset: u64,
}

struct Descriptor {
    cid: Option<u32>,
    parent_cid: Option<u32>,
    create_type: String,
    parent_hint: Option<String>,
    extents: Vec<ExtentLine>,
}

fn parse_descriptor(text: &str) -> Descriptor {
    let mut d = Descriptor { cid: None, parent_cid: None, create_type: String::new(), parent_hint: None, extents: Vec::new() };
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if matches!(first, "RW" | "RDONLY" | "NOACCESS") {
            let sectors = words.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            let kind = words.next().unwrap_or("").to_uppercase();
            // The file name is quoted and may contain spaces.
            let (file, offset) = match (line.find('"'), line.rfind('"')) {
                (Some(a), Some(b)) if b > a => {
                    let off = line[b + 1..].trim().parse().unwrap_or(0);
                    (Some(line[a + 1..b].to_string()), off)
                }
                _ => (None, 0),
            };
            d.extents.push(ExtentLine { sectors, kind, file, offset });
            continue;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim().trim_matches('"');
        match k.trim() {
            "CID" => d.cid = u32::from_str_radix(v, 16).ok(),
            "parentCID" => d.parent_cid = u32::from_str_radix(v, 16).ok(),
            "createType" => d.create_type = v.to_string(),
            "parentFileNameHint" => d.parent_hint = Some(v.to_string()),
            _ => {}
        }
    }
    d
}

/// A hosted sparse extent (`KDMV` header).
struct Sparse {
    file: Source,
    capacity: u64,
    grain: u64,
    gtes_per_gt: u64,
    /// Sector offset of each grain table (0: none).
    gd: Vec<u32>,
    compressed: bool,
    /// A stream whose tables are missing (an interrupted download): grain →
    /// sector rebuilt by scanning markers, and the number of grains the
    /// stream got to (grains are written in order; past that is unknown).
    scanned: Option<(HashMap<u64, u64>, u64)>,
    gts: Cache<u64, Vec<u32>>,
}

struct Header {
    flags: u32,
    capacity: u64,
    grain: u64,
    desc_offset: u64,
    desc_size: u64,
    gtes_per_gt: u32,
    rgd_offset: u64,
    gd_offset: u64,
    overhead: u64,
    compress: u16,
}

fn header(b: &[u8]) -> Option<Header> {
    (&b[0..4] == b"KDMV").then(|| Header {
        flags: u32_at(b, 8),
        capacity: u64_at(b, 12),
        grain: u64_at(b, 20),
        desc_offset: u64_at(b, 28),
        desc_size: u64_at(b, 36),
        gtes_per_gt: u32_at(b, 44),
        rgd_offset: u64_at(b, 48),
        gd_offset: u64_at(b, 56),
        overhead: u64_at(b, 64),
        compress: u16_at(b, 77),
    })
}

impl Sparse {
    fn open(file: Source, warnings: &mut Vec<String>, name: &str) -> Result<(Sparse, Option<String>)> {
        let mut b = [0u8; 512];
        file.read_exact_at(0, &mut b)?;
        let mut h = header(&b).context("no VMDK sparse header")?;
        if h.grain == 0 || !h.grain.is_power_of_two() || h.grain > 1 << 16 || h.gtes_per_gt == 0 || h.gtes_per_gt > 1 << 16 {
            bail!("{name}: VMDK header is damaged (grain {} sectors, {} entries per table)", h.grain, h.gtes_per_gt);
        }
        let desc = if h.desc_offset > 0 && h.desc_size > 0 && h.desc_size < 2048 {
            let mut d = vec![0u8; (h.desc_size * SECTOR) as usize];
            let at = h.desc_offset.checked_mul(SECTOR).context("VMDK descriptor offset overflows")?;
            file.read_exact_at(at, &mut d)?;
            let end = d.iter().position(|&c| c == 0).unwrap_or(d.len());
            Some(String::from_utf8_lossy(&d[..end]).into_owned())
        } else {
            None
        };
        let compressed = h.flags & FLAG_COMPRESSED != 0 && h.compress == 1;
        if h.gd_offset == GD_AT_END {
            // streamOptimized: the real header (footer) is 1 KiB before the end.
            let mut f = [0u8; 512];
            let footer = file.len().checked_sub(1024).and_then(|o| file.read_exact_at(o, &mut f).ok()).and_then(|_| header(&f));
            if let Some(fh) = footer.filter(|fh| fh.gd_offset != GD_AT_END) {
                h = Header { gd_offset: fh.gd_offset, ..h };
            }
        }
        let grains = h.capacity.div_ceil(h.grain);
        let gd_entries = grains.div_ceil(u64::from(h.gtes_per_gt));
        if gd_entries > 1 << 22 {
            bail!("{name}: VMDK capacity of {} sectors is implausible", h.capacity);
        }
        let read_gd = |sector: u64| -> Option<Vec<u32>> {
            let mut raw = vec![0u8; (gd_entries * 4) as usize];
            file.read_exact_at(sector.checked_mul(SECTOR)?, &mut raw).ok()?;
            let gd: Vec<u32> = raw.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            let sectors = file.len() / SECTOR;
            gd.iter().all(|&s| u64::from(s) < sectors).then_some(gd)
        };
        let mut scanned = None;
        let gd = match read_gd(h.gd_offset) {
            Some(gd) => gd,
            // A stream that lost its tables: rebuild the map from markers.
            None if compressed => {
                let map = scan_markers(&file, h.overhead, h.grain)?;
                let reached = map.keys().max().map_or(0, |&g| g + 1);
                warnings.push(format!(
                    "{name}: streamOptimized VMDK has no grain tables (an interrupted download?); the grain map \
                     was rebuilt by scanning {} grain markers; data past grain {reached} of {grains} is missing \
                     and reads fail",
                    map.len()
                ));
                scanned = Some((map, reached));
                Vec::new()
            }
            None if h.flags & FLAG_REDUNDANT_GT != 0 && h.rgd_offset != 0 => {
                let gd = read_gd(h.rgd_offset).with_context(|| format!("{name}: both VMDK grain directories are damaged"))?;
                warnings.push(format!("{name}: primary VMDK grain directory damaged; used the redundant copy"));
                gd
            }
            None => bail!("{name}: the VMDK grain directory is damaged or past the end of the file"),
        };
        let s = Sparse {
            file,
            capacity: h.capacity * SECTOR,
            grain: h.grain * SECTOR,
            gtes_per_gt: u64::from(h.gtes_per_gt),
            gd,
            compressed,
            scanned,
            gts: Cache::new(GT_CACHE),
        };
        Ok((s, desc))
    }

    /// Sector of grain `g` in the file: 0 unallocated, 1 zero grain.
    fn grain_sector(&self, g: u64) -> io::Result<u64> {
        if let Some((map, reached)) = &self.scanned {
            if g >= *reached {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("truncated: the VMDK stream ends before grain {g}")));
            }
            return Ok(map.get(&g).copied().unwrap_or(0));
        }
        let t = g / self.gtes_per_gt;
        let Some(&gt_sector) = self.gd.get(t as usize) else { return Ok(0) };
        if gt_sector == 0 {
            return Ok(0);
        }
        let gt = self.gts.get_or_try(t, || -> io::Result<Vec<u32>> {
            let mut raw = vec![0u8; (self.gtes_per_gt * 4) as usize];
            self.file.read_exact_at(u64::from(gt_sector) * SECTOR, &mut raw)?;
            Ok(raw.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        })?;
        Ok(u64::from(gt[(g % self.gtes_per_gt) as usize]))
    }

    fn map(&self, within: u64) -> io::Result<(Run<'_>, u64)> {
        let g = within / self.grain;
        let skip = within % self.grain;
        let left = (self.grain - skip).min(self.capacity - within);
        match self.grain_sector(g)? {
            0 => Ok((Run::Parent, left)),
            1 => Ok((Run::Zero, left)),
            s if self.compressed => {
                let mut m = [0u8; 12];
                self.file.read_exact_at(s * SECTOR, &mut m)?;
                let len = u32_at(&m, 8) as usize;
                let run = Run::Compressed {
                    file: &self.file,
                    offset: s * SECTOR + 12,
                    len,
                    size: self.grain as usize,
                    skip: skip as usize,
                    codec: Codec::Zlib,
                };
                Ok((run, left))
            }
            s => Ok((Run::Data { file: &self.file, offset: s * SECTOR + skip }, left)),
        }
    }
}

/// Rebuilds the grain map of a streamOptimized extent from its markers:
/// each grain is `lba u64, size u32, zlib data`, padded to a sector; a
/// metadata marker has size 0 and is followed by `lba` sectors of data.
fn scan_markers(file: &Source, overhead: u64, grain: u64) -> Result<HashMap<u64, u64>> {
    let mut map = HashMap::new();
    let sectors = file.len() / SECTOR;
    let mut s = overhead.max(1);
    let mut m = [0u8; 16];
    while s < sectors {
        if file.read_exact_at(s * SECTOR, &mut m).is_err() {
            break;
        }
        let val = u64_at(&m, 0);
        let size = u64::from(u32_at(&m, 8));
        if size > 0 {
            map.insert(val / grain, s);
            s += (12 + size).div_ceil(SECTOR);
        } else {
            match u32_at(&m, 12) {
                0 => break,                                           // end of stream
                1..=3 => s = s.saturating_add(val).saturating_add(1), // GT, GD, footer
                t => bail!("unknown VMDK stream marker type {t} at sector {s}"),
            }
        }
    }
    Ok(map)
}

enum Kind {
    Flat { file: Source, offset: u64 },
    Zero,
    Sparse(Box<Sparse>),
}

struct Extent {
    start: u64,
    len: u64,
    kind: Kind,
}

struct Vmdk {
    extents: Vec<Extent>,
    size: u64,
}

impl Mapper for Vmdk {
    fn size(&self) -> u64 {
        self.size
    }

    fn map(&self, offset: u64) -> io::Result<(Run<'_>, u64)> {
        let i = self.extents.partition_point(|e| e.start <= offset).saturating_sub(1);
        let e = &self.extents[i];
        let within = offset - e.start;
        let left = e.len - within;
        match &e.kind {
            Kind::Zero => Ok((Run::Zero, left)),
            // Saturating: past the file's end the read fails as truncated.
            Kind::Flat { file, offset } => Ok((Run::Data { file, offset: offset.saturating_add(within) }, left)),
            Kind::Sparse(s) => {
                if within >= s.capacity {
                    return Ok((Run::Zero, left));
                }
                let (run, n) = s.map(within)?;
                Ok((run, n.min(left)))
            }
        }
    }
}

/// Opens a VMDK given its descriptor file or its (monolithic) sparse file.
pub fn open(path: &Path, depth: u32) -> Result<Opened> {
    super::check_chain(depth, "VMDK parent", path)?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let name = path.display().to_string();
    let first = super::open_file(path)?;
    let mut head = [0u8; 512];
    let n = first.read_at(0, &mut head)?;
    let mut warnings = Vec::new();
    let mut files = vec![path.to_path_buf()];
    let (desc, extents) = if n >= 4 && &head[0..4] == b"KDMV" {
        let (sparse, text) = Sparse::open(first, &mut warnings, &name)?;
        let desc = text.map(|t| parse_descriptor(&t));
        let len = sparse.capacity;
        (desc, vec![Extent { start: 0, len, kind: Kind::Sparse(Box::new(sparse)) }])
    } else {
        if first.len() > 1 << 20 {
            bail!("{name} is neither a VMDK sparse file nor a descriptor");
        }
        let mut text = vec![0u8; first.len() as usize];
        first.read_exact_at(0, &mut text)?;
        let d = parse_descriptor(&String::from_utf8_lossy(&text));
        if d.extents.is_empty() {
            bail!("{name}: VMDK descriptor lists no extents");
        }
        let mut exts = Vec::new();
        let mut start = 0u64;
        for line in &d.extents {
            let len = line.sectors.checked_mul(SECTOR).context("extent size overflows")?;
            let kind = match (line.kind.as_str(), &line.file) {
                ("ZERO", _) => Kind::Zero,
                ("FLAT" | "VMFS" | "VMFSRAW" | "VMFSRDM", Some(f)) => {
                    let p = dir.join(f);
                    files.push(p.clone());
                    let file = super::open_file(&p).with_context(|| format!("cannot open VMDK extent {}", p.display()))?;
                    let offset = line.offset.checked_mul(SECTOR).context("VMDK extent offset overflows")?;
                    Kind::Flat { file, offset }
                }
                ("SPARSE" | "VMFSSPARSE", Some(f)) => {
                    let p = dir.join(f);
                    files.push(p.clone());
                    let file = super::open_file(&p).with_context(|| format!("cannot open VMDK extent {}", p.display()))?;
                    let (s, _) = Sparse::open(file, &mut warnings, &p.display().to_string())?;
                    Kind::Sparse(Box::new(s))
                }
                (k, _) => bail!(Unsupported(format!("{name}: VMDK extent type {k} is not supported"))),
            };
            exts.push(Extent { start, len, kind });
            start = start.checked_add(len).context("VMDK extents add up to more than 2^64 bytes")?;
        }
        (Some(d), exts)
    };
    let size = extents.iter().map(|e| e.len).sum();
    let create = desc.as_ref().map_or("monolithicSparse".into(), |d| d.create_type.clone());
    let mut format = format!("VMDK ({create})");
    let mut parent = None;
    if let Some(d) = &desc
        && d.parent_cid.is_some_and(|c| c != 0xFFFF_FFFF)
    {
        let hint = d.parent_hint.as_deref().context("VMDK has a parent CID but no parentFileNameHint")?;
        let unix = hint.replace('\\', "/");
        let mut ppath = dir.join(&unix);
        if !ppath.is_file() {
            ppath = dir.join(unix.rsplit('/').next().unwrap_or(&unix));
        }
        if !ppath.is_file() {
            return Err(super::missing_parent(format!(
                "the parent of VMDK snapshot {name} is missing: it needs {hint} (put it beside the snapshot)"
            )));
        }
        let p = open(&ppath, depth + 1)?;
        let pdesc = descriptor_cid(&ppath);
        if let (Some(want), Some(got)) = (d.parent_cid, pdesc)
            && want != got
        {
            bail!(
                "{} is not the parent {name} was taken from: its CID is {got:08x}, the snapshot expects {want:08x} \
                 (the parent was modified after the snapshot)",
                ppath.display()
            );
        }
        warnings.extend(p.warnings);
        files.extend(p.files);
        format = format!("VMDK snapshot ({create}) over {}", p.format);
        parent = Some(p.source);
    }
    Ok(Opened { source: Arc::new(Mapped::new(Vmdk { extents, size }, parent)), format, files, warnings, notes: Vec::new() })
}

/// The CID of a VMDK (embedded or standalone descriptor).
fn descriptor_cid(path: &Path) -> Option<u32> {
    let f = super::open_file(path).ok()?;
    let mut head = [0u8; 512];
    f.read_exact_at(0, &mut head).ok()?;
    let text = if let Some(h) = header(&head) {
        let mut d = vec![0u8; (h.desc_size.min(2048) * SECTOR) as usize];
        f.read_exact_at(h.desc_offset * SECTOR, &mut d).ok()?;
        String::from_utf8_lossy(&d).into_owned()
    } else {
        let mut d = vec![0u8; f.len().min(1 << 20) as usize];
        f.read_exact_at(0, &mut d).ok()?;
        String::from_utf8_lossy(&d).into_owned()
    };
    parse_descriptor(&text).cid
}
