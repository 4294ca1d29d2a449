//! Volume layer: partition schemes as byte ranges of the disk below.
//!
//! `discover` returns the volumes of a disk: GPT partitions, MBR primary and
//! logical partitions, or the whole disk when there is no partition table
//! (a bare filesystem image). Nothing here knows about filesystems beyond
//! recognising a filesystem's magic at offset 0, which is how a bare volume
//! is told from a disk whose first sector merely ends in 0x55AA.
// A parser of untrusted bytes: no panicking shortcuts (see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

mod gpt;
pub mod lvm;
mod mbr;
pub mod thin;
pub mod vss;

use crate::evidence::{ReadAt, Slice, Source};
use crate::util::magic::Magic;
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
    /// `vg/lv` of the logical volume this one is a snapshot of (a thin
    /// snapshot): an older copy of that volume's files.
    pub snapshot_of: Option<String>,
    /// For a Volume Shadow Copy store: which one, and when it was made
    /// (`snapshot_of` names the live volume).
    pub shadow: Option<vss::StoreInfo>,
    /// The MBR disk signature (bytes 440–443 of sector 0), for an MBR
    /// partition: with the offset, how Windows' MountedDevices names it.
    pub mbr_signature: Option<u32>,
    pub source: Source,
}

impl Volume {
    /// `p2`, `disk` for the whole disk, `vg-lv` for a logical volume:
    /// stable, short, used in folder names.
    pub fn id(&self) -> String {
        let id = match &self.lv {
            Some(lv) => lv.replace('/', "-"),
            None if self.number == 0 => "disk".into(),
            None => format!("p{}", self.number),
        };
        match &self.shadow {
            Some(s) => format!("{id}-vss{}", s.number),
            None => id,
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
    /// The disk held only LVM physical volumes whose logical volumes are
    /// read with another disk of the set (a volume group spanning disks).
    pub lvm_members_only: bool,
}

/// What `discover` looks for beyond partitions and logical volumes.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Each Volume Shadow Copy store of an NTFS volume, as a volume of its
    /// own after the live one (`--no-vss` turns it off).
    pub shadow_copies: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { shadow_copies: true }
    }
}

/// Finds the volumes of `disk`: partitions, and LVM logical volumes in
/// place of their physical volumes. Never fails: an unreadable or absent
/// table yields the whole disk as one volume, with a warning when something
/// looked damaged.
pub fn discover(disk: &Source) -> VolumeSystem {
    discover_set(std::slice::from_ref(disk), Options::default()).remove(0)
}

/// The volumes of several disks of one machine, given together: an LVM
/// volume group may span them. Each logical volume is given to the disk
/// holding its first extent.
pub fn discover_set(disks: &[Source], opts: Options) -> Vec<VolumeSystem> {
    let mut systems: Vec<VolumeSystem> = disks.iter().map(partitions).collect();
    expand_lvm(&mut systems);
    if opts.shadow_copies {
        for vs in &mut systems {
            add_shadow_copies(vs);
        }
    }
    systems
}

/// Puts each shadow copy store of an NTFS volume right after it.
fn add_shadow_copies(vs: &mut VolumeSystem) {
    let mut out = Vec::with_capacity(vs.volumes.len());
    for v in std::mem::take(&mut vs.volumes) {
        let ntfs = Magic::Ntfs.found_by(|off, b| v.source.read_exact_at(off, b).is_ok());
        let found = if ntfs { vss::find(&v.source) } else { None };
        out.push(v.clone());
        let Some(shadows) = found else { continue };
        let id = v.id();
        vs.warnings.extend(shadows.warnings.into_iter().map(|w| format!("{id}: {w}")));
        for (info, source) in shadows.stores {
            out.push(Volume {
                size: info.size,
                kind: format!("shadow copy {} of {id}, made {}", info.number, info.created.readable()),
                name: None,
                // Never the live volume's: Windows' MountedDevices and fstab
                // name the live one.
                guid: None,
                mbr_signature: None,
                snapshot_of: Some(id.clone()),
                shadow: Some(info),
                source,
                ..v.clone()
            });
        }
    }
    vs.volumes = out;
}

fn partitions(disk: &Source) -> VolumeSystem {
    let mut warnings = Vec::new();
    let mut sector0 = [0u8; 4096];
    let n = disk.read_at(0, &mut sector0).unwrap_or(0);
    let head = &sector0[..n];

    let mut vs = None;
    if !has_filesystem_magic(disk) {
        vs = match gpt::read(disk, head, &mut warnings) {
            Some((ss, parts)) => Some(build(disk, Scheme::Gpt, ss, parts, std::mem::take(&mut warnings))),
            None => mbr::read(disk, head, &mut warnings).map(|parts| build(disk, Scheme::Mbr, 512, parts, std::mem::take(&mut warnings))),
        };
    }
    vs.unwrap_or_else(|| {
        let whole = Volume {
            number: 0,
            scheme: Scheme::None,
            offset: 0,
            size: disk.len(),
            kind: "whole disk".into(),
            name: None,
            guid: None,
            lv: None,
            snapshot_of: None,
            shadow: None,
            mbr_signature: None,
            source: disk.clone(),
        };
        VolumeSystem { scheme: Scheme::None, sector_size: 512, volumes: vec![whole], warnings, failed: Vec::new(), lvm_members_only: false }
    })
}

/// Replaces LVM physical volumes by the logical volumes they hold.
fn expand_lvm(systems: &mut [VolumeSystem]) {
    let mut pvs = Vec::new();
    let mut had_pv = vec![false; systems.len()];
    for (i, vs) in systems.iter_mut().enumerate() {
        vs.volumes.retain(|v| match lvm::read_pv(&v.source) {
            Some(mut pv) => {
                pv.disk = i;
                pvs.push(pv);
                had_pv[i] = true;
                false
            }
            None => true,
        });
    }
    if pvs.is_empty() {
        return;
    }
    let first = pvs[0].disk;
    let (mut warnings, mut failed) = (Vec::new(), Vec::new());
    for lv in lvm::logical_volumes(&pvs, &mut warnings, &mut failed) {
        let name = format!("{}/{}", lv.vg, lv.name);
        let vs = &mut systems[lv.disk];
        match lv.source {
            Some(source) => vs.volumes.push(Volume {
                number: 0,
                scheme: Scheme::Lvm,
                offset: 0,
                size: lv.size,
                kind: format!("LVM2 logical volume {name}"),
                name: None,
                guid: None,
                snapshot_of: lv.origin.map(|o| format!("{}/{o}", lv.vg)),
                shadow: None,
                lv: Some(name),
                mbr_signature: None,
                source,
            }),
            None if lv.unsupported => {
                vs.warnings.push(format!("LVM logical volume {name} is not read: {}", lv.problem.unwrap_or_default()))
            }
            None => vs.failed.push((name.replace('/', "-"), format!("unreadable: {}", lv.problem.unwrap_or_default()))),
        }
    }
    systems[first].warnings.extend(warnings);
    for (disk, name, why) in failed {
        systems[disk].failed.push((name, why));
    }
    for (vs, had) in systems.iter_mut().zip(had_pv) {
        vs.lvm_members_only = had && vs.volumes.is_empty() && vs.failed.is_empty();
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
    let mut sig = [0u8; 4];
    let _ = disk.read_at(440, &mut sig);
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
                snapshot_of: None,
                shadow: None,
                mbr_signature: (scheme == Scheme::Mbr).then(|| crate::util::bytes::u32_at(&sig, 0)),
                source: Arc::new(Slice::new(disk.clone(), e.offset, e.size)),
            }
        })
        .collect();
    VolumeSystem { scheme, sector_size: ss, volumes, warnings, failed: Vec::new(), lvm_members_only: false }
}

/// Filesystem signatures at the very start of the disk: ext2/3/4, XFS,
/// NTFS, FAT, exFAT. A boot sector of a bare NTFS, FAT or exFAT volume ends
/// in 0x55AA like an MBR, so this check must come first.
fn has_filesystem_magic(disk: &Source) -> bool {
    const BARE: [Magic; 5] = [Magic::Ext, Magic::Xfs, Magic::Ntfs, Magic::Exfat, Magic::Fat];
    let mut b = vec![0u8; BARE.iter().map(|m| m.reach()).max().unwrap_or(0)];
    let n = disk.read_at(0, &mut b).unwrap_or(0);
    Magic::first_in(&b[..n], &BARE).is_some()
}
