//! Opening evidence: content-based format detection.

use super::{gzip, split, RawFile, ReadAt, Slice, Source, SplitRaw};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An opened piece of evidence: the virtual disk (or bare volume) it holds.
pub struct Evidence {
    pub path: PathBuf,
    /// Human-readable container format, e.g. `raw`, `split raw (2 segments)`.
    pub format: String,
    /// The bytes of the virtual disk.
    pub source: Source,
    /// The files that make up the evidence (segments).
    pub files: Vec<PathBuf>,
}

/// `progress(evidence, done, total)` while inflating compressed evidence.
pub type Progress<'a> = &'a dyn Fn(&Path, u64, u64);

#[derive(Default)]
pub struct OpenOptions<'a> {
    /// Where compressed images are inflated (default: beside the evidence's
    /// case folder, chosen by the caller).
    pub temp_dir: Option<PathBuf>,
    /// Called with the compressed bytes consumed while inflating.
    pub progress: Option<Progress<'a>>,
}

/// Opens `path` read-only and identifies its container format.
pub fn open(path: &Path, opts: &OpenOptions) -> Result<Evidence> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot open evidence {}", path.display()))?;
    if meta.is_dir() {
        bail!("{} is a directory, not a disk image", path.display());
    }
    let raw = RawFile::open(path).with_context(|| format!("cannot open evidence {}", path.display()))?;
    let mut head = [0u8; 512];
    let n = raw.read_at(0, &mut head)?;
    let head = &head[..n];
    let len = raw.len();
    let mut tail = [0u8; 512];
    if len >= 512 {
        raw.read_exact_at(len - 512, &mut tail)?;
    }

    let ev = |format: String, source: Source, files: Vec<PathBuf>| Evidence {
        path: path.to_path_buf(),
        format,
        source,
        files,
    };

    if head.starts_with(&[0x1f, 0x8b]) {
        let temp_dir = match &opts.temp_dir {
            Some(d) => d.clone(),
            None => std::env::temp_dir(),
        };
        let total = len;
        let cb = |done: u64| {
            if let Some(p) = opts.progress {
                p(path, done, total)
            }
        };
        let inflated = gzip::inflate_to_temp(path, &temp_dir, &cb).with_context(|| {
            format!("cannot inflate {} into {}", path.display(), temp_dir.display())
        })?;
        let mut probe = [0u8; 512];
        let m = inflated.read_at(0, &mut probe)?;
        if m >= 262 && &probe[257..262] == b"ustar" {
            bail!(
                "{} is a compressed tar archive (e.g. a GCP disk export); reading the disk \
                 inside a tar is not supported yet: extract it first (tar -xzf) and pass disk.raw",
                path.display()
            );
        }
        return Ok(ev("gzip-compressed raw".into(), Arc::new(inflated), vec![path.into()]));
    }
    if let Some(name) = unsupported_format(head, &tail) {
        bail!(
            "{} is a {name} image, which this version of snapsift cannot read yet; \
             convert it first: qemu-img convert -O raw {} disk.raw",
            path.display(),
            path.display()
        );
    }
    if tail.starts_with(b"conectix") && u32::from_be_bytes([tail[60], tail[61], tail[62], tail[63]]) == 2 {
        // A fixed VHD is a raw disk followed by a 512-byte footer.
        let raw: Source = Arc::new(raw);
        let disk = Slice::new(raw, 0, len - 512);
        return Ok(ev("fixed VHD".into(), Arc::new(disk), vec![path.into()]));
    }
    if let Some(parts) = split::segments_of(path) {
        let s = SplitRaw::open(&parts).context("cannot open split image segment")?;
        let format = format!("split raw ({} segments)", s.segments());
        return Ok(ev(format, Arc::new(s), parts));
    }
    Ok(ev("raw".into(), Arc::new(raw), vec![path.into()]))
}

/// Names container formats we recognise but do not read yet, so a user gets
/// a clear message instead of "no filesystem found".
fn unsupported_format(head: &[u8], tail: &[u8]) -> Option<&'static str> {
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(b"KDMV") || starts(b"# Disk DescriptorFile") || starts(b"COWD") {
        Some("VMDK")
    } else if starts(b"vhdxfile") {
        Some("VHDX")
    } else if starts(b"QFI\xfb") {
        Some("QCOW")
    } else if starts(b"EVF\x09\x0d\x0a\xff\x00") || starts(b"EVF2\x0d\x0a\x81\x00") {
        Some("EnCase (E01)")
    } else if starts(b"conectix")
        || (tail.starts_with(b"conectix") && tail.get(60..64) != Some(&[0, 0, 0, 2]))
    {
        Some("dynamic or differencing VHD")
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some("tar archive")
    } else {
        None
    }
}
