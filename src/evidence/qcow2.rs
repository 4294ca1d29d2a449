//! QEMU QCOW2 (docs/interop/qcow2.txt): versions 2 and 3, L1/L2 tables,
//! extended L2 entries with subclusters, zero clusters, deflate and zstd
//! compressed clusters, backing-file chains. Encrypted images and external
//! data files are refused with a clear message. Big-endian.
//!
//! Own reader: the `qcow2` crate cannot open images from qemu ≥ 5.1 and has
//! no compression or backing files.

use super::mapped::{Codec, Mapped, Mapper, Run};
use super::{OpenChained, Opened, ReadAt, Source, Unsupported};
use crate::util::bytes::{be_u32_at, be_u64_at};
use crate::util::cache::Cache;
use anyhow::{Context, Result, bail};
use std::io;
use std::path::Path;
use std::sync::Arc;

const INCOMPAT_EXTERNAL_DATA: u64 = 1 << 2;
const INCOMPAT_COMPRESSION: u64 = 1 << 3;
const INCOMPAT_EXTENDED_L2: u64 = 1 << 4;
const INCOMPAT_KNOWN: u64 = 0b11111;
const OFFSET_MASK: u64 = 0x00FF_FFFF_FFFF_FE00;
const L2_CACHE: usize = 1024;

struct Qcow2 {
    file: Source,
    size: u64,
    cluster_bits: u32,
    l1: Vec<u64>,
    extended: bool,
    codec: Codec,
    l2_cache: Cache<u64, Vec<u64>>,
}

impl Qcow2 {
    fn cluster(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// Entries per L2 table (an extended entry is two u64: the standard
    /// entry and the subcluster bitmap).
    fn l2_entries(&self) -> u64 {
        self.cluster() / if self.extended { 16 } else { 8 }
    }

    fn l2(&self, offset: u64) -> io::Result<Arc<Vec<u64>>> {
        self.l2_cache.get_or_try(offset, || {
            let mut raw = vec![0u8; self.cluster() as usize];
            self.file.read_exact_at(offset, &mut raw)?;
            Ok(raw.chunks_exact(8).map(|c| be_u64_at(c, 0)).collect())
        })
    }
}

impl Mapper for Qcow2 {
    fn size(&self) -> u64 {
        self.size
    }

    fn map(&self, offset: u64) -> io::Result<(Run<'_>, u64)> {
        let cs = self.cluster();
        let within = offset % cs;
        let cluster_left = (cs - within).min(self.size - offset);
        let cluster_index = offset / cs;
        let l1_index = cluster_index / self.l2_entries();
        let l2_index = (cluster_index % self.l2_entries()) as usize;
        let l1e = self.l1.get(l1_index as usize).copied().unwrap_or(0);
        let l2_offset = l1e & OFFSET_MASK;
        if l2_offset == 0 {
            return Ok((Run::Parent, cluster_left));
        }
        let l2 = self.l2(l2_offset)?;
        let (entry, bitmap) = if self.extended { (l2[l2_index * 2], Some(l2[l2_index * 2 + 1])) } else { (l2[l2_index], None) };
        if entry & (1 << 62) != 0 {
            // Compressed: host offset in the low x bits, then the count of
            // additional 512-byte sectors.
            let x = 62 - (self.cluster_bits - 8);
            let host = entry & ((1u64 << x) - 1);
            let sectors = (entry >> x) & ((1u64 << (62 - x)) - 1);
            let len = ((sectors + 1) * 512 - (host & 511)) as usize;
            let run = Run::Compressed { file: &self.file, offset: host, len, size: cs as usize, skip: within as usize, codec: self.codec };
            return Ok((run, cluster_left));
        }
        let host = entry & OFFSET_MASK;
        if let Some(bm) = bitmap {
            // 32 subclusters: bit i allocated, bit 32+i reads as zeros.
            let sc = cs / 32;
            let i = within / sc;
            let state = |i: u64| ((bm >> i) & 1, (bm >> (32 + i)) & 1);
            let first = state(i);
            let mut j = i + 1;
            while j < 32 && state(j) == first {
                j += 1;
            }
            let len = (j * sc - within).min(cluster_left);
            return Ok(match first {
                (_, 1) => (Run::Zero, len),
                (1, _) => (Run::Data { file: &self.file, offset: host + within }, len),
                _ => (Run::Parent, len),
            });
        }
        if entry & 1 != 0 {
            return Ok((Run::Zero, cluster_left));
        }
        if host == 0 {
            return Ok((Run::Parent, cluster_left));
        }
        Ok((Run::Data { file: &self.file, offset: host + within }, cluster_left))
    }
}

pub fn open(path: &Path, depth: u32, open_backing: OpenChained) -> Result<Opened> {
    super::check_chain(depth, "QCOW2 backing", path)?;
    let file = super::open_file(path)?;
    let mut h = [0u8; 512];
    let n = file.read_at(0, &mut h)?;
    if n < 72 || &h[0..4] != b"QFI\xfb" {
        bail!("{} is not a QCOW2 image", path.display());
    }
    let version = be_u32_at(&h, 4);
    if !(2..=3).contains(&version) {
        bail!(Unsupported(format!(
            "QCOW version {version} is not supported (only QCOW2, versions 2 and 3): convert it first with \
             `qemu-img convert -O qcow2 {} converted.qcow2`",
            path.display()
        )));
    }
    let backing_offset = be_u64_at(&h, 8);
    let backing_len = be_u32_at(&h, 16) as usize;
    let cluster_bits = be_u32_at(&h, 20);
    let size = be_u64_at(&h, 24);
    let crypt = be_u32_at(&h, 32);
    let l1_size = be_u32_at(&h, 36);
    let l1_offset = be_u64_at(&h, 40);
    if crypt != 0 {
        bail!(Unsupported(format!("{} is encrypted (QCOW2 encryption method {crypt}); decrypt it with qemu-img first", path.display())));
    }
    if !(9..=21).contains(&cluster_bits) {
        bail!("QCOW2 cluster size 2^{cluster_bits} is invalid");
    }
    let (incompat, header_len) = if version >= 3 { (be_u64_at(&h, 72), be_u32_at(&h, 100)) } else { (0, 72) };
    if incompat & INCOMPAT_EXTERNAL_DATA != 0 {
        bail!(Unsupported(format!(
            "{} keeps its data in an external data file, which snapsift does not read; convert it with qemu-img",
            path.display()
        )));
    }
    if incompat & !INCOMPAT_KNOWN != 0 {
        bail!("QCOW2 image uses unknown incompatible features ({incompat:#x})");
    }
    let codec = if incompat & INCOMPAT_COMPRESSION != 0 && header_len > 104 {
        match h[104] {
            0 => Codec::Deflate,
            1 => Codec::Zstd,
            t => bail!("QCOW2 compression type {t} is unknown"),
        }
    } else {
        Codec::Deflate
    };
    let extended = incompat & INCOMPAT_EXTENDED_L2 != 0;
    let entries_per_l2 = (1u64 << cluster_bits) / if extended { 16 } else { 8 };
    let needed = size.div_ceil(1 << cluster_bits).div_ceil(entries_per_l2);
    if u64::from(l1_size) < needed || l1_size > 1 << 25 {
        bail!("QCOW2 L1 table of {l1_size} entries does not fit a {size}-byte disk");
    }
    let mut raw = vec![0u8; l1_size as usize * 8];
    file.read_exact_at(l1_offset, &mut raw).context("cannot read the QCOW2 L1 table")?;
    let l1 = raw.chunks_exact(8).map(|c| be_u64_at(c, 0)).collect();
    let mut files = vec![path.to_path_buf()];
    let mut format = format!("QCOW2 (v{version})");
    let mut parent = None;
    if backing_offset != 0 && backing_len > 0 {
        if backing_len > 1023 {
            bail!("QCOW2 backing file name of {backing_len} bytes is invalid");
        }
        let mut name = vec![0u8; backing_len];
        file.read_exact_at(backing_offset, &mut name)?;
        let name = String::from_utf8_lossy(&name).into_owned();
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut p = dir.join(&name);
        if !p.is_file() {
            p = dir.join(Path::new(&name).file_name().unwrap_or_default());
        }
        if !p.is_file() {
            return Err(super::missing_parent(format!(
                "the backing file of {} is missing: it needs {name} (put it beside the image)",
                path.display()
            )));
        }
        let backing = open_backing(&p, depth + 1)?;
        files.extend(backing.files);
        format = format!("QCOW2 (v{version}) over {}", backing.format);
        parent = Some(backing.source);
    }
    let q = Qcow2 { file, size, cluster_bits, l1, extended, codec, l2_cache: Cache::new(L2_CACHE) };
    Ok(Opened { source: Arc::new(Mapped::new(q, parent)), format, files, warnings: Vec::new(), notes: Vec::new() })
}
