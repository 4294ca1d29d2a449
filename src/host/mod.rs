//! Host layer: what a responder calls "a machine".
//!
//! All volumes of one disk (or one evidence set) belong to one host. The
//! host's OS and name come from its OS root volume; every other volume is
//! placed under `_volumes/<id>` until mount-point mapping (fstab) places it
//! where the machine mounted it.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

pub mod containers;
mod fstab;
mod linux;
pub mod regf;
pub mod registry;
mod subvolumes;
pub use subvolumes::snapper_number;
pub(crate) mod view;
pub(crate) mod windows;

use crate::fs::{FileSystem, Probe};
use crate::volume::Volume;
use std::sync::Arc;

/// What kind of machine a host is: decides which targets apply to its OS
/// volume (a target's `os` field names one, or `any`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OsFamily {
    Linux,
    Windows,
    Unknown,
}

impl OsFamily {
    /// As run.json, the report and targets' `os` field write it.
    pub fn as_str(self) -> &'static str {
        match self {
            OsFamily::Linux => "linux",
            OsFamily::Windows => "windows",
            OsFamily::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for OsFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct OsInfo {
    pub family: OsFamily,
    /// e.g. "Ubuntu 22.04.4 LTS" from /etc/os-release, "Windows Server 2022
    /// Datacenter 21H2 (build 20348)" from the SOFTWARE hive.
    pub pretty: Option<String>,
}

/// A volume as the host sees it.
pub struct HostVolume {
    pub volume: Option<Volume>,
    /// The id shown when there is no partition (`container:<folder>`).
    pub name: Option<String>,
    pub fs: Option<Arc<dyn FileSystem>>,
    /// Why there is no filesystem (unsupported, damaged, unknown).
    pub problem: Option<String>,
    /// The volume could not be read (damaged, truncated): a failure, not
    /// merely something snapsift does not support.
    pub unreadable: bool,
    /// A filesystem or format recognised but not read (HFS+, LUKS, swap,
    /// …): the volume was skipped, and every summary says so.
    pub unsupported: Option<&'static str>,
    pub is_os_root: bool,
    /// Where the machine mounted it (`/var/log`), from fstab or a mount unit.
    pub mount_point: Option<String>,
    /// Output folder components relative to the host folder, as raw names
    /// (the collect layer makes them safe): empty for a Linux OS root, `["C"]`
    /// for a Windows one, the mount point (or drive letter) for mounted
    /// volumes, `["_volumes", "p2_data"]` for the others.
    pub out_prefix: Vec<String>,
    /// Home directories on this volume (OS root only).
    pub homes: Vec<Vec<u8>>,
    /// The Btrfs subvolume read, when not the one the volume shows by
    /// default: mounted through fstab `subvol=`, the OS root, a snapshot.
    pub subvol: Option<crate::fs::Subvolume>,
}

/// Where snapshots of a host's volumes go: `<host>/_snapshots/<vg-lv>/<mount point>/…`.
pub const SNAPSHOTS_FOLDER: &str = "_snapshots";
/// Where shadow copies go: `<host>/_vss/<N>-<creation time>/C/…`.
pub const VSS_FOLDER: &str = "_vss";

impl HostVolume {
    /// A snapshot of another volume (an LVM thin snapshot, a shadow copy).
    pub fn is_snapshot(&self) -> bool {
        self.volume.as_ref().is_some_and(|v| v.snapshot_of.is_some())
    }

    /// The OS root, or a snapshot of it: the OS targets apply to it whole.
    pub fn reads_as_os_root(&self) -> bool {
        self.is_os_root || (self.is_snapshot() && self.mount_point.as_deref() == Some("/"))
    }

    /// `p2` for a partition, `disk` for a bare volume, `dir` for a folder;
    /// `p2:@/var` for a Btrfs subvolume other than the default.
    pub fn id(&self) -> String {
        let id = match (&self.volume, &self.name) {
            (Some(v), _) => v.id(),
            (None, Some(n)) => n.clone(),
            (None, None) => "dir".into(),
        };
        match &self.subvol {
            Some(s) => format!("{id}:{}", if s.path.is_empty() { "<top level>" } else { &s.path }),
            None => id,
        }
    }

    /// The same volume read through another of its subvolumes.
    fn view_of(&self, subvol: crate::fs::Subvolume, fs: Arc<dyn FileSystem>) -> HostVolume {
        HostVolume {
            volume: self.volume.clone(),
            name: self.name.clone(),
            fs: Some(fs),
            problem: None,
            unreadable: false,
            unsupported: None,
            is_os_root: false,
            mount_point: None,
            out_prefix: Vec::new(),
            homes: Vec::new(),
            subvol: Some(subvol),
        }
    }
}

pub struct Host {
    pub name: String,
    /// Where the name came from (`/etc/hostname`, `evidence file name`, …).
    pub name_source: String,
    pub os: OsInfo,
    pub volumes: Vec<HostVolume>,
    /// Volumes known to exist that cannot be read: (name, reason).
    pub failed: Vec<(String, String)>,
    pub warnings: Vec<String>,
    /// The containers it runs, each a host of its own.
    pub containers: Vec<containers::Container>,
}

/// Builds a host from its volumes. `fallback_name` (the evidence file's
/// stem) is used when no hostname is recorded.
pub fn assemble(volumes: Vec<(Option<Volume>, Probe)>, fallback_name: &str) -> Host {
    let mut warnings = Vec::new();
    let mut hvs: Vec<HostVolume> = volumes.into_iter().map(|(volume, probe)| host_volume(volume, probe)).collect();
    // A Btrfs volume whose default tree is not the OS root but holds it
    // in a subvolume (Ubuntu's `@`, Fedora's `root`): read that one.
    for v in hvs.iter_mut().filter(|v| !v.is_snapshot()) {
        let Some(fs) = v.fs.as_deref() else { continue };
        if fs.kind() == "btrfs"
            && !linux::is_root(fs)
            && let Some((s, view)) = subvolumes::os_root(fs)
        {
            v.fs = Some(view);
            v.subvol = Some(s);
        }
    }

    let mut os = OsInfo { family: OsFamily::Unknown, pretty: None };
    let mut name = None;
    if let Some((r, family)) = os_root(&hvs, &mut warnings)
        && let Some(fs) = hvs[r].fs.clone()
    {
        hvs[r].is_os_root = true;
        if family == OsFamily::Linux {
            os = OsInfo { family, pretty: linux::pretty_name(fs.as_ref()) };
            name = linux::hostname(fs.as_ref());
            hvs[r].homes = linux::homes(fs.as_ref());
            linux_mounts(&mut hvs, fs.as_ref(), &mut warnings);
        } else {
            os = OsInfo { family, pretty: windows::pretty_name(fs.as_ref()) };
            name = windows::hostname(fs.as_ref());
            hvs[r].homes = windows::homes(fs.as_ref());
            drive_letters(&mut hvs, r, fs.as_ref());
        }
    }
    // The Btrfs subvolumes nothing above reads: snapshots, and the ones
    // neither mounted nor nested in a mounted one.
    let (rest, notes) = subvolumes::the_rest(&hvs);
    hvs.extend(rest);
    warnings.extend(notes);
    add_home_volume_homes(&mut hvs);
    set_folders(&mut hvs);
    let (name, name_source) = match name {
        Some((n, src)) => (n, src),
        None => (fallback_name.to_string(), "evidence file name (no hostname found)".to_string()),
    };
    let mut host = Host { name, name_source, os, volumes: hvs, failed: Vec::new(), warnings, containers: Vec::new() };
    let (containers, notes) = containers::find(&host);
    host.warnings.extend(notes);
    for c in &containers {
        host.warnings.extend(c.problems.iter().map(|p| format!("container {}: {p}", c.folder)));
    }
    host.containers = containers;
    host
}

/// A volume as the host sees it, from what probing it found.
fn host_volume(volume: Option<Volume>, probe: Probe) -> HostVolume {
    let unsupported = match probe {
        Probe::Unsupported(what) => Some(what),
        _ => None,
    };
    let (fs, problem, unreadable) = match probe {
        Probe::Found(fs) => (Some(fs), None, false),
        Probe::Unsupported(what) => (None, Some(format!("{what}: not supported by this version of snapsift")), false),
        Probe::Unreadable(why) => (None, Some(why), true),
        Probe::Damaged(what, why) => (None, Some(format!("{what} filesystem could not be opened: {why}")), true),
        Probe::Unknown => (None, Some("no recognised filesystem".into()), false),
    };
    HostVolume {
        volume,
        name: None,
        fs,
        problem,
        unreadable,
        unsupported,
        is_os_root: false,
        mount_point: None,
        out_prefix: Vec::new(),
        homes: Vec::new(),
        subvol: None,
    }
}

/// The OS root: Linux first, then Windows (a Linux root is never NTFS, so a
/// disk with both is a dual-boot or a data copy; the first wins).
fn os_root(hvs: &[HostVolume], warnings: &mut Vec<String>) -> Option<(usize, OsFamily)> {
    let roots: Vec<(usize, OsFamily)> = hvs
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let fs = v.fs.as_deref().filter(|_| !v.is_snapshot())?;
            if linux::is_root(fs) {
                Some((i, OsFamily::Linux))
            } else if windows::is_root(fs) {
                Some((i, OsFamily::Windows))
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
    roots.first().copied()
}

/// Each volume the root's fstab mounts, at its mount point; a Btrfs
/// subvolume it mounts is added as a view of its own.
fn linux_mounts(hvs: &mut Vec<HostVolume>, root: &dyn FileSystem, warnings: &mut Vec<String>) {
    let mut subvols = Vec::new();
    for m in fstab::mounts(root) {
        if m.point == "/" {
            continue;
        }
        if let Some(spec) = &m.subvol {
            // A Btrfs subvolume (SUSE's @/var, Fedora's home): of
            // the root's volume or of another one in the evidence.
            // Snapper's store is not read as a folder: each of its
            // snapshots is read as a snapshot.
            if m.point.ends_with("/.snapshots") {
                continue;
            }
            let Some(v) = hvs.iter().find(|v| !v.is_snapshot() && v.fs.is_some() && fstab::names(&m.what, v)) else {
                warnings.push(format!(
                    "fstab mounts {} ({spec}) at {}, but that volume is not in this evidence (another disk?)",
                    m.what, m.point
                ));
                continue;
            };
            match subvolumes::mount(v, spec, &m.point) {
                Ok(Some(view)) => subvols.push(view),
                Ok(None) => {}
                Err(why) => warnings.push(format!("fstab mounts {} ({spec}) at {}, which is not read: {why}", m.what, m.point)),
            }
            continue;
        }
        // (A snapshot has its origin's UUID and label: never the one mounted.)
        match hvs.iter_mut().find(|v| !v.is_os_root && !v.is_snapshot() && v.fs.is_some() && fstab::names(&m.what, v)) {
            Some(v) if v.mount_point.is_none() => v.mount_point = Some(m.point.clone()),
            Some(_) => warnings.push(format!("{} is mounted twice in fstab; the first mount is used", m.what)),
            None => {
                warnings.push(format!("fstab mounts {} at {}, but that volume is not in this evidence (another disk?)", m.what, m.point))
            }
        }
    }
    hvs.extend(subvols);
}

/// Each volume under its drive letter, as responders expect: from
/// MountedDevices, the system drive C when nothing says otherwise.
fn drive_letters(hvs: &mut [HostVolume], r: usize, root: &dyn FileSystem) {
    let letters = windows::drive_letters(root);
    let letter_of = |v: &HostVolume| v.volume.as_ref().and_then(|vol| registry::letter_of(vol, &letters));
    hvs[r].out_prefix = vec![letter_of(&hvs[r]).unwrap_or('C').to_string()];
    for v in hvs.iter_mut().filter(|v| !v.is_os_root && v.fs.is_some()) {
        if let Some(l) = letter_of(v) {
            v.mount_point = Some(format!("{l}:"));
        }
    }
}

/// A separate /home volume: each of its directories is a home, even for
/// users no longer in /etc/passwd.
fn add_home_volume_homes(hvs: &mut [HostVolume]) {
    let mut extra_homes = Vec::new();
    for v in hvs.iter().filter(|v| v.mount_point.as_deref() == Some("/home")) {
        if let Some(fs) = v.fs.as_deref()
            && let Ok(entries) = fs.read_dir(fs.root())
        {
            for e in entries.iter().filter(|e| e.name != b"lost+found") {
                let mut p = b"/home/".to_vec();
                p.extend_from_slice(&e.name);
                extra_homes.push(p);
            }
        }
    }
    if let Some(root) = hvs.iter_mut().find(|v| v.is_os_root) {
        for h in extra_homes {
            if !root.homes.contains(&h) {
                root.homes.push(h);
            }
        }
    }
}

/// Where each volume's files go under the host folder: its mount point or
/// drive letter, `_volumes/<name>` when unmounted, and a snapshot (LVM thin
/// snapshot, shadow copy, Btrfs snapshot) read as its volume was, mounted
/// where it is (so the same targets apply), into a folder of its own:
/// `_snapshots/<vg-lv>/<mount point>/…` or `_vss/<N>-<made>/<the volume's
/// folder>/…`.
fn set_folders(hvs: &mut [HostVolume]) {
    for v in hvs.iter_mut().filter(|v| !v.is_os_root && !v.is_snapshot()) {
        v.out_prefix = match &v.mount_point {
            // A Windows drive letter: the folder is the letter alone.
            Some(p) if p.len() == 2 && p.ends_with(':') => vec![p[..1].to_string()],
            Some(p) => p.split('/').filter(|c| !c.is_empty()).map(String::from).collect(),
            None => vec!["_volumes".into(), volume_folder(v)],
        };
    }
    struct Origin {
        names: Vec<String>,
        at: Option<String>,
        folder: Vec<String>,
    }
    let origins: Vec<Origin> = hvs
        .iter()
        .filter(|v| !v.is_snapshot())
        .map(|v| Origin {
            names: v.volume.iter().flat_map(|x| [x.lv.clone(), Some(v.id())]).flatten().collect(),
            at: if v.is_os_root { Some("/".to_string()) } else { v.mount_point.clone() },
            folder: v.out_prefix.clone(),
        })
        .collect();
    for v in hvs.iter_mut().filter(|v| v.is_snapshot()) {
        let of = v.volume.as_ref().and_then(|x| x.snapshot_of.clone()).unwrap_or_default();
        let origin = origins.iter().find(|o| o.names.contains(&of));
        v.mount_point = origin.and_then(|o| o.at.clone());
        let at: Vec<String> = v.mount_point.iter().flat_map(|p| p.split('/').filter(|c| !c.is_empty()).map(String::from)).collect();
        v.out_prefix = match (v.volume.as_ref().and_then(|x| x.shadow.as_ref()), &v.subvol) {
            (Some(s), _) => {
                let folder = origin.map_or_else(|| vec![of.clone()], |o| o.folder.clone());
                [VSS_FOLDER.to_string(), format!("{}-{}", s.number, s.created.compact())].into_iter().chain(folder).collect()
            }
            (None, Some(s)) => [SNAPSHOTS_FOLDER.to_string(), subvolumes::snapshot_folder(s)].into_iter().chain(at).collect(),
            (None, None) => [SNAPSHOTS_FOLDER.to_string(), volume_folder(v)].into_iter().chain(at).collect(),
        };
    }
}

/// `p2` or `p2_<label>`: stable across runs, readable.
fn volume_folder(v: &HostVolume) -> String {
    let id = v.id().replace([':', '/'], "_");
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
    /// The disk only holds LVM physical volumes of a volume group read
    /// with another disk of the same run: it is not a host of its own.
    pub lvm_members_only: bool,
    /// Other evidence given with this one that is part of it (a segment, an
    /// extent, a parent): read here, not as evidence of its own.
    pub folded: Vec<std::path::PathBuf>,
    pub host: Host,
}

impl Loaded {
    /// What to say, once, about each of [`Loaded::folded`].
    pub fn folded_notes(&self) -> impl Iterator<Item = String> + '_ {
        self.folded.iter().map(|p| format!("{} (also given) is part of this image: read with it, not as evidence of its own", p.display()))
    }
}

/// Opens evidence (a disk image of any supported format, or a directory),
/// finds its volumes and filesystems, and identifies the host.
pub fn load(path: &std::path::Path, opts: &crate::evidence::OpenOptions, host_name: Option<&str>) -> anyhow::Result<Loaded> {
    load_all(&[path.to_path_buf()], opts, host_name).remove(0)?.ok_or_else(|| anyhow::anyhow!("{} was not opened", path.display()))
}

/// Opens several pieces of evidence given together. They are separate
/// hosts, except that an LVM volume group may span several disks: its
/// logical volumes belong to the disk holding their first extent, and a
/// disk holding nothing else is marked `lvm_members_only`. A file that
/// another image given with it read as part of itself (a segment of a split
/// set, a VMDK extent, a parent: what `case.E0*` gives) is not evidence of
/// its own: its place holds `None`, and the image that took it says so in
/// its notes.
pub fn load_all(
    paths: &[std::path::PathBuf],
    opts: &crate::evidence::OpenOptions,
    host_name: Option<&str>,
) -> Vec<anyhow::Result<Option<Loaded>>> {
    load_all_with(paths, opts, Reading::default(), host_name)
}

/// How the layers below the host are read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reading {
    /// Filesystems: journal replay or not.
    pub fs: crate::fs::OpenOptions,
    /// Volumes: shadow copies or not.
    pub volumes: crate::volume::Options,
}

/// [`load_all`], with how volumes and filesystems are read.
pub fn load_all_with(
    paths: &[std::path::PathBuf],
    opts: &crate::evidence::OpenOptions,
    reading: Reading,
    host_name: Option<&str>,
) -> Vec<anyhow::Result<Option<Loaded>>> {
    let opened: Vec<anyhow::Result<Given>> = paths
        .iter()
        .map(|p| {
            if p.is_dir() {
                Ok(Given::Dir)
            } else if let Some(outer) = containers::image::sniff(p) {
                Ok(Given::Image(outer))
            } else {
                crate::evidence::open(p, opts).map(Given::Disk).map_err(anyhow::Error::new)
            }
        })
        .collect();
    let taken_by = folded(paths, &opened);
    let disks: Vec<crate::evidence::Source> = opened
        .iter()
        .zip(&taken_by)
        .filter_map(|(o, t)| match o {
            Ok(Given::Disk(e)) if t.is_none() => Some(e.source.clone()),
            _ => None,
        })
        .collect();
    let mut systems = crate::volume::discover_set(&disks, reading.volumes).into_iter();
    let temp = opts.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    paths
        .iter()
        .zip(opened)
        .enumerate()
        .map(|(i, (path, o))| {
            if taken_by[i].is_some() {
                return Ok(None);
            }
            let fallback = evidence_stem(path);
            let bare = |format: String, host: Host, notes: Vec<String>| Loaded {
                path: path.clone(),
                format,
                size: std::fs::metadata(path).map(|m| if m.is_file() { m.len() } else { 0 }).unwrap_or(0),
                files: vec![path.clone()],
                scheme: None,
                sector_size: 0,
                notes,
                lvm_members_only: false,
                folded: Vec::new(),
                host,
            };
            let mut loaded = match o? {
                Given::Dir => {
                    let fs = crate::fs::hostdir::HostDir::open(path)?;
                    let host = assemble(vec![(None, Probe::Found(Arc::new(fs)))], &fallback);
                    bare("directory".into(), host, Vec::new())
                }
                Given::Image(outer) => {
                    let img = containers::image::open(outer, &temp)?;
                    bare(img.format.to_string(), containers::image_host(&img), img.notes.clone())
                }
                Given::Disk(ev) => {
                    let vs = systems.next().ok_or_else(|| anyhow::anyhow!("no volume system for this disk (a bug: please report it)"))?;
                    let probed = vs
                        .volumes
                        .into_iter()
                        .map(|v| {
                            let p = crate::fs::probe_with(&v.source, reading.fs);
                            (Some(v), p)
                        })
                        .collect();
                    let mut host = assemble(probed, &fallback);
                    host.warnings.splice(0..0, ev.warnings.into_iter().chain(vs.warnings));
                    host.failed = vs.failed;
                    Loaded {
                        path: path.clone(),
                        format: ev.format,
                        size: ev.source.len(),
                        files: ev.files,
                        scheme: Some(vs.scheme),
                        sector_size: vs.sector_size,
                        notes: ev.notes,
                        lvm_members_only: vs.lvm_members_only,
                        folded: Vec::new(),
                        host,
                    }
                }
            };
            if let Some(n) = host_name {
                loaded.host.name = n.to_string();
                loaded.host.name_source = "--host option".into();
            }
            loaded.folded = taken_by.iter().zip(paths).filter(|(t, _)| **t == Some(i)).map(|(_, p)| p.clone()).collect();
            Ok(Some(loaded))
        })
        .collect()
}

/// For each piece of evidence, the earlier-opened image that read it as
/// part of itself, if any: a file among another disk image's files (its
/// segments, extents or parents) whose own files do not include that
/// image's (a set where each names the other keeps the first given).
/// Evidence that failed to open is folded too when another image read it.
fn folded(paths: &[std::path::PathBuf], opened: &[anyhow::Result<Given>]) -> Vec<Option<usize>> {
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let files: Vec<Option<std::collections::HashSet<std::path::PathBuf>>> = opened
        .iter()
        .map(|o| match o {
            Ok(Given::Disk(e)) => Some(e.files.iter().map(|f| canon(f)).collect()),
            _ => None,
        })
        .collect();
    let me: Vec<std::path::PathBuf> = paths.iter().map(|p| canon(p)).collect();
    let taken: Vec<Option<usize>> = (0..paths.len())
        .map(|i| {
            if matches!(opened[i], Ok(Given::Dir | Given::Image(_))) {
                return None;
            }
            (0..paths.len()).find(|&j| {
                let takes = files[j].as_ref().is_some_and(|f| f.contains(&me[i]));
                let taken_back = files[i].as_ref().is_some_and(|f| f.contains(&me[j]));
                j != i && me[j] != me[i] && takes && (!taken_back || j < i)
            })
        })
        .collect();
    // To the image that is evidence of its own (`E02 E01 E03`: E03, taken
    // by E02, goes with E02 into E01).
    (0..paths.len())
        .map(|i| {
            let mut at = taken[i]?;
            for _ in 0..paths.len() {
                match taken[at] {
                    Some(next) if next != i => at = next,
                    _ => break,
                }
            }
            Some(at)
        })
        .collect()
}

/// What one piece of evidence turned out to be.
enum Given {
    Dir,
    Image(Arc<crate::fs::tarlayer::TarLayer>),
    Disk(crate::evidence::Evidence),
}

/// `images/web01.img.gz` → `web01`; `disk.001` → `disk`.
pub fn evidence_stem(path: &std::path::Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.split('.').next().unwrap_or("").to_string();
    if stem.is_empty() { "unknown-host".into() } else { stem }
}
