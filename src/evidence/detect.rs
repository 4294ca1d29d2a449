//! Opening evidence: content-based format detection, with formats nested
//! where that happens in practice (a disk inside a `.tar.gz`, a snapshot
//! over its parent).

use super::{OpenError, Opened, ReadAt, Source, SplitRaw, Unsupported, archive, ewf, qcow2, split, vhd, vhdx, vmdk};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An opened piece of evidence: the virtual disk (or bare volume) it holds.
pub struct Evidence {
    pub path: PathBuf,
    /// Human-readable container format, e.g. `VMDK (streamOptimized)`.
    pub format: String,
    /// The bytes of the virtual disk.
    pub source: Source,
    /// The files that make up the evidence (segments, extents, parents).
    pub files: Vec<PathBuf>,
    /// Problems worked around while opening.
    pub warnings: Vec<String>,
    /// Facts recorded in the container (E01 case data, stored hashes).
    pub notes: Vec<String>,
}

/// `progress(evidence, done, total)` while inflating compressed evidence.
pub type Progress<'a> = &'a dyn Fn(&Path, u64, u64);

#[derive(Default)]
pub struct OpenOptions<'a> {
    /// Where compressed or archived images are inflated (default: the
    /// system temporary folder).
    pub temp_dir: Option<PathBuf>,
    pub progress: Option<Progress<'a>>,
}

/// Opens `path` read-only and identifies its container format.
pub fn open(path: &Path, opts: &OpenOptions) -> std::result::Result<Evidence, OpenError> {
    let open = || -> Result<Evidence> {
        if !super::remote::is_url(path) {
            let meta = std::fs::metadata(path).with_context(|| format!("cannot open evidence {}", path.display()))?;
            if meta.is_dir() {
                let why = format!("{} is a directory, not a disk image", path.display());
                return Err(std::io::Error::new(std::io::ErrorKind::IsADirectory, why).into());
            }
        }
        open_at(path, opts, 0).map(|mut e| {
            e.path = path.to_path_buf();
            e
        })
    };
    open().map_err(|e| OpenError::new(path, e))
}

#[derive(Debug, PartialEq)]
enum Format {
    Gzip,
    Tar,
    Vmdk,
    Vhdx,
    Qcow,
    Ewf,
    Vhd,
    Raw,
}

fn sniff(path: &Path) -> Result<Format> {
    let f = super::open_file(path).with_context(|| format!("cannot open evidence {}", path.display()))?;
    let mut head = [0u8; 512];
    let n = f.read_at(0, &mut head)?;
    let head = &head[..n];
    let mut tail = [0u8; 512];
    let has_tail = f.len() >= 512 && f.read_exact_at(f.len() - 512, &mut tail).is_ok();
    use crate::util::magic::Magic as M;
    Ok(match M::first_in(head, &[M::Gzip, M::Tar, M::Vmdk, M::Vhdx, M::Qcow, M::Ewf, M::Vhd, M::VmdkCowd]) {
        Some(M::Gzip) => Format::Gzip,
        Some(M::Tar) => Format::Tar,
        Some(M::Vmdk) => Format::Vmdk,
        Some(M::Vhdx) => Format::Vhdx,
        Some(M::Qcow) => Format::Qcow,
        Some(M::Ewf) => Format::Ewf,
        Some(M::Vhd) => Format::Vhd,
        Some(M::VmdkCowd) => {
            bail!(Unsupported(format!(
                "{} is an ESX 2/3 VMDK (COWD), which is not supported; convert it with qemu-img convert -O raw",
                path.display()
            )))
        }
        // A fixed VHD has its footer only at the end.
        _ if has_tail && M::Vhd.in_head(&tail) => Format::Vhd,
        _ => Format::Raw,
    })
}

fn open_at(path: &Path, opts: &OpenOptions, depth: u32) -> Result<Evidence> {
    if depth > 8 {
        bail!("{}: containers nested more than 8 deep", path.display());
    }
    let ev = |o: Opened| Evidence {
        path: path.to_path_buf(),
        format: o.format,
        source: o.source,
        files: o.files,
        warnings: o.warnings,
        notes: o.notes,
    };
    match sniff(path)? {
        Format::Gzip | Format::Tar if super::remote::is_url(path) => bail!(Unsupported(format!(
            "{}: a compressed or archived image (gzip, tar) cannot be read in place, only from its start to its end: download it first ({}) and give the file, which snapsift unpacks once",
            path.display(),
            super::remote::download_command(&path.to_string_lossy())
        ))),
        Format::Gzip | Format::Tar => {
            let temp = opts.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
            let cb = |done: u64, total: u64| {
                if let Some(p) = opts.progress {
                    p(path, done, total)
                }
            };
            let inflated = archive::inflate(path, &temp, &cb)?;
            // Open by path (formats find their parts by name), then unlink:
            // the open handles keep the data until snapsift exits.
            let inner = open_at(&inflated.path, opts, depth + 1);
            let _ = std::fs::remove_file(&inflated.path);
            let mut inner = inner?;
            inner.format = format!("{} in {}", inner.format, inflated.what);
            inner.files = vec![path.to_path_buf()];
            inner.notes.push(format!(
                "unpacked {} ({} bytes, sparse) into a temporary file in {}, removed after use",
                inflated.what,
                inflated.size,
                temp.display()
            ));
            Ok(inner)
        }
        Format::Vmdk => Ok(ev(vmdk::open(path, 0)?)),
        Format::Vhd => Ok(ev(vhd::open(path, 0)?)),
        Format::Vhdx => Ok(ev(vhdx::open(path, 0, &open_chained)?)),
        Format::Qcow => Ok(ev(qcow2::open(path, 0, &open_chained)?)),
        Format::Ewf => Ok(ev(ewf::open(path)?)),
        Format::Raw => {
            if let Some(parts) = split::segments_of(path).filter(|_| !super::remote::is_url(path)) {
                let s = SplitRaw::open(&parts).context("cannot open split image segment")?;
                let format = format!("split raw ({} segments)", s.segments());
                return Ok(ev(Opened { source: Arc::new(s), format, files: parts, warnings: Vec::new(), notes: Vec::new() }));
            }
            Ok(ev(Opened {
                source: super::open_file(path)?,
                format: "raw".into(),
                files: vec![path.into()],
                warnings: Vec::new(),
                notes: Vec::new(),
            }))
        }
    }
}

/// How a differencing format opens its parent (any disk format).
pub(crate) type OpenChained<'a> = &'a dyn Fn(&Path, u32) -> Result<Evidence>;

/// A parent or backing file: any disk format, but not an archive (a chain
/// member is always a file beside the child).
fn open_chained(path: &Path, depth: u32) -> Result<Evidence> {
    super::check_chain(depth, "backing", path)?;
    match sniff(path)? {
        Format::Gzip | Format::Tar => bail!(Unsupported(format!("backing file {} is an archive; unpack it first", path.display()))),
        Format::Qcow => {
            let o = qcow2::open(path, depth, &open_chained)?;
            Ok(Evidence { path: path.into(), format: o.format, source: o.source, files: o.files, warnings: o.warnings, notes: o.notes })
        }
        _ => open_at(path, &OpenOptions::default(), 1),
    }
}
