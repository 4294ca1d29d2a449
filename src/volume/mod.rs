//! Volume layer: partition schemes as byte ranges of the disk below.
//!
//! `discover` returns the volumes of a disk: GPT partitions, MBR primary and
//! logical partitions, or the whole disk when there is no partition table
//! (a bare filesystem image). Nothing here knows about filesystems beyond
//! recognising a filesystem's magic at offset 0, which is how a bare volume
//! is told from a disk whose first sector merely ends in 0x55AA.

mod gpt;
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
    pub source: Source,
}

impl Volume {
    /// `p2` (or `disk` for the whole disk): stable, short, used in folder names.
    pub fn id(&self) -> String {
        if self.number == 0 { "disk".into() } else { format!("p{}", self.number) }
    }
}

pub struct VolumeSystem {
    pub scheme: Scheme,
    pub sector_size: u64,
    pub volumes: Vec<Volume>,
    /// Problems worked around (damaged primary GPT, missing signature, …).
    pub warnings: Vec<String>,
}

/// Finds the partitions of `disk`. Never fails: an unreadable or absent
/// table yields the whole disk as one volume, with a warning when something
/// looked damaged.
pub fn discover(disk: &Source) -> VolumeSystem {
    let mut warnings = Vec::new();
    let mut sector0 = [0u8; 4096];
    let n = disk.read_at(0, &mut sector0).unwrap_or(0);
    let head = &sector0[..n];

    if !has_filesystem_magic(disk) {
        match gpt::read(disk, head, &mut warnings) {
            Some((ss, parts)) => return build(disk, Scheme::Gpt, ss, parts, warnings),
            None => {
                if let Some(parts) = mbr::read(disk, head, &mut warnings) {
                    return build(disk, Scheme::Mbr, 512, parts, warnings);
                }
            }
        }
    }
    let whole = Volume {
        number: 0,
        scheme: Scheme::None,
        offset: 0,
        size: disk.len(),
        kind: "whole disk".into(),
        name: None,
        guid: None,
        source: disk.clone(),
    };
    VolumeSystem { scheme: Scheme::None, sector_size: 512, volumes: vec![whole], warnings }
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
                source: Arc::new(Slice::new(disk.clone(), e.offset, e.size)),
            }
        })
        .collect();
    VolumeSystem { scheme, sector_size: ss, volumes, warnings }
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
