//! MBR partition tables with extended/logical partitions (EBR chain).
//!
//! Lenient on purpose: disks from the field carry odd boot flags and
//! sometimes lack the 0x55AA signature. An entry is accepted when it starts
//! inside the disk and does not overlap another one; a missing signature is
//! accepted only when every entry passes that check.

use super::Entry;
use crate::evidence::{ReadAt, Source};
use crate::util::bytes::u32_at;
use std::collections::HashSet;

const SECTOR: u64 = 512;
/// Bound on the EBR chain (Linux allows far fewer logical partitions).
const MAX_LOGICAL: u32 = 256;

fn is_extended(t: u8) -> bool {
    matches!(t, 0x05 | 0x0F | 0x85)
}

struct Raw {
    kind: u8,
    start: u64,
    count: u64,
}

fn entries(sector: &[u8]) -> [Raw; 4] {
    std::array::from_fn(|i| {
        let e = &sector[446 + i * 16..462 + i * 16];
        Raw { kind: e[4], start: u64::from(u32_at(e, 8)), count: u64::from(u32_at(e, 12)) }
    })
}

pub(crate) fn read(disk: &Source, head: &[u8], warnings: &mut Vec<String>) -> Option<Vec<Entry>> {
    if head.len() < 512 {
        return None;
    }
    let signed = head[510..512] == [0x55, 0xAA];
    let disk_sectors = disk.len() / SECTOR;
    let prim = entries(head);
    let used: Vec<(usize, &Raw)> = prim.iter().enumerate().filter(|(_, e)| e.kind != 0 && e.count != 0).collect();
    if used.is_empty() {
        return None;
    }
    let plausible = used.iter().all(|(_, e)| e.start >= 1 && e.start < disk_sectors.max(1))
        && !overlapping(used.iter().map(|(_, e)| (e.start, e.count)));
    if !plausible {
        return None;
    }
    if !signed {
        warnings.push("MBR has no 0x55AA signature; its partition entries were used anyway".into());
    }

    let mut out = Vec::new();
    for (i, e) in &used {
        if is_extended(e.kind) {
            logical(disk, e.start, warnings, &mut out);
        } else {
            out.push(entry(*i as u32 + 1, e.kind, e.start, e.count));
        }
    }
    Some(out)
}

fn overlapping(ranges: impl Iterator<Item = (u64, u64)>) -> bool {
    let mut v: Vec<(u64, u64)> = ranges.collect();
    v.sort();
    v.windows(2).any(|w| w[0].0.saturating_add(w[0].1) > w[1].0)
}

/// Walks the EBR chain of the extended partition starting at `ext_start`.
fn logical(disk: &Source, ext_start: u64, warnings: &mut Vec<String>, out: &mut Vec<Entry>) {
    let mut seen = HashSet::new();
    let mut ebr = ext_start;
    let mut number = 5;
    while number < 5 + MAX_LOGICAL {
        if !seen.insert(ebr) {
            warnings.push(format!("EBR chain loops back to sector {ebr}; stopped there"));
            return;
        }
        let mut s = [0u8; 512];
        if let Err(e) = disk.read_exact_at(ebr * SECTOR, &mut s) {
            warnings.push(format!("cannot read EBR at sector {ebr}: {e}"));
            return;
        }
        if s[510..512] != [0x55, 0xAA] {
            warnings.push(format!("EBR at sector {ebr} has no 0x55AA signature; used anyway"));
        }
        let [this, next, ..] = entries(&s);
        if this.kind != 0 && this.count != 0 {
            out.push(entry(number, this.kind, ebr + this.start, this.count));
            number += 1;
        }
        if next.kind == 0 || next.start == 0 {
            return;
        }
        ebr = ext_start + next.start;
    }
    warnings.push(format!("more than {MAX_LOGICAL} logical partitions; the rest were ignored"));
}

fn entry(number: u32, kind: u8, start: u64, count: u64) -> Entry {
    Entry {
        number,
        offset: start * SECTOR,
        size: count * SECTOR,
        kind: format!("0x{kind:02X} {}", type_name(kind)),
        name: None,
        guid: None,
    }
}

fn type_name(t: u8) -> &'static str {
    match t {
        0x83 => "Linux",
        0x82 => "Linux swap",
        0x8E => "Linux LVM",
        0xFD => "Linux RAID",
        0x07 => "NTFS/exFAT",
        0x0B | 0x0C => "FAT32",
        0x01 | 0x04 | 0x06 | 0x0E => "FAT",
        0xEF => "EFI system",
        0xEE => "GPT protective",
        0x27 => "Windows recovery",
        _ => "unknown",
    }
}
