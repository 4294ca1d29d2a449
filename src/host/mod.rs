//! Host layer: what a responder calls "a machine".
//!
//! All volumes of one disk (or one evidence set) belong to one host. The
//! host's OS and name come from its OS root volume; every other volume is
//! placed under `_volumes/<id>` until mount-point mapping (fstab) places it
//! where the machine mounted it.

mod linux;
pub mod regf;
mod windows;

use crate::fs::{FileSystem, Probe};
use crate::volume::Volume;
use std::sync::Arc;

#[derive(Clone, Debug, serde::Serialize)]
pub struct OsInfo {
    /// `linux`, `windows`, `unknown`.
    pub family: &'static str,
    /// e.g. "Ubuntu 22.04.4 LTS" from /etc/os-release, "Windows Server 2022
    /// Datacenter 21H2 (build 20348)" from the SOFTWARE hive.
    pub pretty: Option<String>,
}

/// A volume as the host sees it.
pub struct HostVolume {
    pub volume: Option<Volume>,
    pub fs: Option<Arc<dyn FileSystem>>,
    /// Why there is no filesystem (unsupported, damaged, unknown).
    pub problem: Option<String>,
    /// The volume could not be read (damaged, truncated): a failure, not
    /// merely something snapsift does not support.
    pub unreadable: bool,
    pub is_os_root: bool,
    /// Output folder components relative to the host folder: empty for a
    /// Linux OS root, `["C"]` for a Windows one, `["_volumes", "p2_data"]` for others.
    pub out_prefix: Vec<String>,
    /// Home directories on this volume (OS root only).
    pub homes: Vec<Vec<u8>>,
}

impl HostVolume {
    /// `p2` for a partition, `disk` for a bare volume, `dir` for a folder.
    pub fn id(&self) -> String {
        self.volume.as_ref().map_or_else(|| "dir".into(), |v| v.id())
    }
}

pub struct Host {
    pub name: String,
    /// Where the name came from (`/etc/hostname`, `evidence file name`, …).
    pub name_source: String,
    pub os: OsInfo,
    pub volumes: Vec<HostVolume>,
    pub warnings: Vec<String>,
}

/// Builds a host from its volumes. `fallback_name` (the evidence file's
/// stem) is used when no hostname is recorded.
pub fn assemble(volumes: Vec<(Option<Volume>, Probe)>, fallback_name: &str) -> Host {
    let mut warnings = Vec::new();
    let mut hvs: Vec<HostVolume> = volumes
        .into_iter()
        .map(|(volume, probe)| {
            let (fs, problem, unreadable) = match probe {
                Probe::Found(fs) => (Some(fs), None, false),
                Probe::Unsupported(what) => {
                    (None, Some(format!("{what}: not supported by this version of snapsift")), false)
                }
                Probe::Damaged("volume", why) => (None, Some(why), true),
                Probe::Damaged(what, why) => (None, Some(format!("{what} filesystem could not be opened: {why}")), true),
                Probe::Unknown => (None, Some("no recognised filesystem".into()), false),
            };
            HostVolume { volume, fs, problem, unreadable, is_os_root: false, out_prefix: Vec::new(), homes: Vec::new() }
        })
        .collect();

    let mut os = OsInfo { family: "unknown", pretty: None };
    let mut name = None;
    // OS roots: Linux first, then Windows (a Linux root is never NTFS, so
    // a disk with both is a dual-boot or a data copy; the first wins).
    let roots: Vec<(usize, &'static str)> = hvs
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let fs = v.fs.as_deref()?;
            if linux::is_root(fs) {
                Some((i, "linux"))
            } else if windows::is_root(fs) {
                Some((i, "windows"))
            } else {
                None
            }
        })
        .collect();
    if roots.len() > 1 {
        warnings.push(format!(
            "{} volumes look like OS root filesystems; the first ({}, {}) is treated as the OS root",
            roots.len(),
            hvs[roots[0].0].id(),
            roots[0].1
        ));
    }
    if let Some(&(r, family)) = roots.first() {
        let fs = hvs[r].fs.clone().expect("roots have a filesystem");
        hvs[r].is_os_root = true;
        if family == "linux" {
            os = OsInfo { family: "linux", pretty: linux::pretty_name(fs.as_ref()) };
            name = linux::hostname(fs.as_ref());
            hvs[r].homes = linux::homes(fs.as_ref());
        } else {
            os = OsInfo { family: "windows", pretty: windows::pretty_name(fs.as_ref()) };
            name = windows::hostname(fs.as_ref());
            hvs[r].homes = windows::homes(fs.as_ref());
            // The system drive keeps its letter, as responders expect.
            hvs[r].out_prefix = vec!["C".into()];
        }
    }
    for v in hvs.iter_mut().filter(|v| !v.is_os_root) {
        v.out_prefix = vec!["_volumes".into(), volume_folder(v)];
    }
    let (name, name_source) = match name {
        Some((n, src)) => (n, src),
        None => (fallback_name.to_string(), "evidence file name (no hostname found)".to_string()),
    };
    Host { name, name_source, os, volumes: hvs, warnings }
}

/// `p2` or `p2_<label>`: stable across runs, readable.
fn volume_folder(v: &HostVolume) -> String {
    let id = v.id();
    match v.fs.as_ref().and_then(|f| f.label()) {
        Some(l) => format!("{id}_{l}"),
        None => id,
    }
}

/// A piece of evidence opened all the way up to a host.
pub struct Loaded {
    pub path: std::path::PathBuf,
    /// Container format (`raw`, `split raw (2 segments)`, `directory`, …).
    pub format: String,
    pub size: u64,
    pub files: Vec<std::path::PathBuf>,
    /// Partitioning, when the evidence is a disk.
    pub scheme: Option<crate::volume::Scheme>,
    pub sector_size: u64,
    /// Facts recorded in the container (E01 case data, stored hashes, …).
    pub notes: Vec<String>,
    pub host: Host,
}

/// Opens evidence (a disk image of any supported format, or a directory),
/// finds its volumes and filesystems, and identifies the host.
pub fn load(
    path: &std::path::Path,
    opts: &crate::evidence::OpenOptions,
    host_name: Option<&str>,
) -> anyhow::Result<Loaded> {
    let fallback = evidence_stem(path);
    let mut loaded = if path.is_dir() {
        let fs = crate::fs::hostdir::HostDir::open(path)?;
        let host = assemble(vec![(None, Probe::Found(Arc::new(fs)))], &fallback);
        Loaded {
            path: path.into(),
            format: "directory".into(),
            size: 0,
            files: vec![path.into()],
            scheme: None,
            sector_size: 0,
            notes: Vec::new(),
            host,
        }
    } else {
        let ev = crate::evidence::open(path, opts)?;
        let vs = crate::volume::discover(&ev.source);
        let probed = vs
            .volumes
            .into_iter()
            .map(|v| {
                let p = crate::fs::probe(&v.source);
                (Some(v), p)
            })
            .collect();
        let mut host = assemble(probed, &fallback);
        host.warnings.splice(0..0, ev.warnings.into_iter().chain(vs.warnings));
        Loaded {
            path: path.into(),
            format: ev.format,
            size: ev.source.len(),
            files: ev.files,
            scheme: Some(vs.scheme),
            sector_size: vs.sector_size,
            notes: ev.notes,
            host,
        }
    };
    if let Some(n) = host_name {
        loaded.host.name = n.to_string();
        loaded.host.name_source = "--host option".into();
    }
    Ok(loaded)
}

/// `images/web01.img.gz` → `web01`; `disk.001` → `disk`.
pub fn evidence_stem(path: &std::path::Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.split('.').next().unwrap_or("").to_string();
    if stem.is_empty() { "unknown-host".into() } else { stem }
}
