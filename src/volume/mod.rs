//! Volume layer: partition schemes as byte ranges of the disk below.
//!
//! `discover` returns the volumes of a disk: GPT partitions, MBR primary and
//! logical partitions, or the whole disk when there is no partition table
//! (a bare filesystem image). Nothing here knows about filesystems beyond
//! recognising a filesystem's magic at offset 0, which is how a bare volume
//! is told from a disk whose first sector merely ends in 0x55AA.

mod gpt;
pub mod lvm;
mod mbr;

use crate::evidence::{ReadAt, Slice, Source};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Gpt,
    Mbr,
    /// No partition table: the whole disk is one volume.
    None,
    /// A logical volume of an LVM2 volume group.
    Lvm,
}

/// One partition (or the whole disk).
#[derive(Clone)]
pub struct Volume {
    /// Partition number as partitioning tools show it (GPT 1…, MBR 1–4
    /// primary, 5… logical); 0 for the whole disk.
    pub number: u32,
    pub scheme: Scheme,
    /// Byte offset and length within the disk.
    pub offset: u64,
    pub size: u64,
    /// Partition type: GPT type name/GUID or MBR type byte, described.
    pub kind: String,
    /// GPT partition name.
    pub name: Option<String>,
    /// GPT unique partition GUID (how Windows' MountedDevices and fstab's
    /// PARTUUID= refer to a partition).
    pub guid: Option<String>,
    /// `vg/lv` for an LVM logical volume.
    pub lv: Option<String>,
    pub source: Source,
}

impl Volume {
    /// `p2`, `disk` for the whole disk, `vg-lv` for a logical volume:
    /// stable, short, used in folder names.
    pub fn id(&self) -> String {
        match &self.lv {
            Some(lv) => lv.replace('/', "-"),
            None if self.number == 0 => "disk".into(),
            None => format!("p{}", self.number),
        }
    }
}

pub struct VolumeSystem {
    pub scheme: Scheme,
    pub sector_size: u64,
    pub volumes: Vec<Volume>,
    /// Problems worked around (damaged primary GPT, missing signature, …).
    pub warnings: Vec<String>,
    /// Volumes that exist but cannot be read: (name, reason).
    pub failed: Vec<(String, String)>,
}

/// Finds the partitions of `disk`. Never fails: an unreadable or absent
/// table yields the whole disk as one volume, with a warning when something
/// looked damaged.
pub fn discover(disk: &Source) -> VolumeSystem {
    let mut warnings = Vec::new();
    let mut sector0 = [0u8; 4096];
    let n = disk.read_at(0, &mut sector0).unwrap_or(0);
    let head = &sector0[..n];

    let mut vs = None;
    if !has_filesystem_magic(disk) {
        vs = match gpt::read(disk, head, &mut warnings) {
            Some((ss, parts)) => Some(build(disk, Scheme::Gpt, ss, parts, std::mem::take(&mut warnings))),
            None => mbr::read(disk, head, &mut warnings)
                .map(|parts| build(disk, Scheme::Mbr, 512, parts, std::mem::take(&mut warnings))),
        };
    }
    let mut vs = vs.unwrap_or_else(|| {
        let whole = Volume {
            number: 0,
            scheme: Scheme::None,
            offset: 0,
            size: disk.len(),
            kind: "whole disk".into(),
            name: None,
            guid: None,
            lv: None,
            source: disk.clone(),
        };
        VolumeSystem { scheme: Scheme::None, sector_size: 512, volumes: vec![whole], warnings, failed: Vec::new() }
    });
    expand_lvm(&mut vs);
    vs
}

/// Replaces LVM physical volumes by the logical volumes they hold.
fn expand_lvm(vs: &mut VolumeSystem) {
    let mut pvs = Vec::new();
    vs.volumes.retain(|v| match lvm::read_pv(&v.source) {
        Some(pv) => {
            pvs.push(pv);
            false
        }
        None => true,
    });
    if pvs.is_empty() {
        return;
    }
    for lv in lvm::logical_volumes(&pvs, &mut vs.warnings, &mut vs.failed) {
        let name = format!("{}/{}", lv.vg, lv.name);
        match lv.source {
            Some(source) => vs.volumes.push(Volume {
                number: 0,
                scheme: Scheme::Lvm,
                offset: 0,
                size: lv.size,
                kind: format!("LVM2 logical volume {name}"),
                name: None,
                guid: None,
                lv: Some(name),
                source,
            }),
            None if lv.unsupported => vs.warnings.push(format!(
                "LVM logical volume {name} is not read: {}",
                lv.problem.unwrap_or_default()
            )),
            None => vs.failed.push((name.replace('/', "-"), format!("unreadable: {}", lv.problem.unwrap_or_default()))),
        }
    }
}

/// A partition table entry before it is turned into a [`Volume`].
pub(crate) struct Entry {
    pub number: u32,
    pub offset: u64,
    pub size: u64,
    pub kind: String,
    pub name: Option<String>,
    pub guid: Option<String>,
}

fn build(disk: &Source, scheme: Scheme, ss: u64, parts: Vec<Entry>, mut warnings: Vec<String>) -> VolumeSystem {
    let volumes = parts
        .into_iter()
        .map(|e| {
            if e.offset.saturating_add(e.size) > disk.len() {
                warnings.push(format!(
                    "partition {} ends at byte {} but the disk image ends at {}: the image looks truncated",
                    e.number,
                    e.offset.saturating_add(e.size),
                    disk.len()
                ));
            }
            Volume {
                number: e.number,
                scheme,
                offset: e.offset,
                size: e.size,
                kind: e.kind,
                name: e.name,
                guid: e.guid,
                lv: None,
                source: Arc::new(Slice::new(disk.clone(), e.offset, e.size)),
            }
        })
        .collect();
    VolumeSystem { scheme, sector_size: ss, volumes, warnings, failed: Vec::new() }
}

/// Filesystem signatures at the very start of the disk: ext2/3/4 (0xEF53 at
/// 1080), XFS, NTFS, FAT. A boot sector of a bare NTFS or FAT volume ends in
/// 0x55AA like an MBR, so this check must come first.
fn has_filesystem_magic(disk: &Source) -> bool {
    let mut b = [0u8; 1088];
    let n = disk.read_at(0, &mut b).unwrap_or(0);
    let b = &b[..n];
    let at = |off: usize, m: &[u8]| b.get(off..off + m.len()) == Some(m);
    at(1080, &[0x53, 0xEF]) || at(0, b"XFSB") || at(3, b"NTFS    ") || at(54, b"FAT") || at(82, b"FAT32   ")
}
