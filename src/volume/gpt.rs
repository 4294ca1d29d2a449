//! GUID Partition Table (UEFI spec, ch. 5), 512- and 4096-byte sectors.
//!
//! Own parser rather than a crate: `gpt` needs `Write` even to read, and
//! `gptman` sizes its entry vector from the on-disk entry count before any
//! bound check (a forged header with a valid CRC asks for ~0.5 TiB). Here the
//! entry array is bounded, and the backup header is used when the primary is
//! damaged.

use super::Entry;
use crate::evidence::{ReadAt, Source};
use crate::util::bytes::{guid, u32_at, u64_at};
use crate::util::crc::crc32;

/// The entry array is at most this large (128 entries × 128 bytes = 16 KiB is
/// usual; some tools use more, nobody uses a megabyte).
const MAX_ARRAY: u64 = 1 << 20;

pub(crate) fn read(disk: &Source, head: &[u8], warnings: &mut Vec<String>) -> Option<(u64, Vec<Entry>)> {
    let protective = head.get(510..512) == Some(&[0x55, 0xAA]) && (0..4).any(|i| head.get(446 + i * 16 + 4) == Some(&0xEE));
    for ss in [512u64, 4096] {
        let primary = header_at(disk, ss, 1);
        let primary_ok = primary.as_ref().and_then(|h| h.entries(disk).ok());
        if let Some(entries) = primary_ok {
            return Some((ss, entries));
        }
        // Primary damaged or absent: try the backup at the last sector, or
        // where a readable primary says it is.
        let last = disk.len() / ss;
        let backup_lba = primary.as_ref().map(|h| h.alternate).filter(|&l| l > 1);
        let backup = [backup_lba, last.checked_sub(1)]
            .into_iter()
            .flatten()
            .find_map(|lba| header_at(disk, ss, lba).and_then(|h| h.entries(disk).ok()));
        if let Some(entries) = backup {
            warnings.push(format!("primary GPT header ({ss}-byte sectors) is damaged; used the backup header"));
            return Some((ss, entries));
        }
        if let Some(h) = primary {
            // Signature and header CRC fine but the entry array is damaged.
            if let Err(e) = h.entries(disk) {
                warnings.push(format!("GPT partition entries unreadable: {e}"));
            }
        }
    }
    if protective {
        warnings.push("protective MBR found but no valid GPT header (primary or backup): partitions unknown".into());
    }
    None
}

struct Header {
    ss: u64,
    alternate: u64,
    entries_lba: u64,
    count: u32,
    entry_size: u32,
    entries_crc: u32,
}

fn header_at(disk: &Source, ss: u64, lba: u64) -> Option<Header> {
    let mut b = vec![0u8; ss as usize];
    disk.read_exact_at(lba.checked_mul(ss)?, &mut b).ok()?;
    if &b[0..8] != b"EFI PART" {
        return None;
    }
    let hsize = u32_at(&b, 12) as usize;
    if !(92..=b.len()).contains(&hsize) {
        return None;
    }
    let stored = u32_at(&b, 16);
    let mut h = b[..hsize].to_vec();
    h[16..20].fill(0);
    if crc32(&h) != stored {
        return None;
    }
    Some(Header {
        ss,
        alternate: u64_at(&b, 32),
        entries_lba: u64_at(&b, 72),
        count: u32_at(&b, 80),
        entry_size: u32_at(&b, 84),
        entries_crc: u32_at(&b, 88),
    })
}

impl Header {
    fn entries(&self, disk: &Source) -> Result<Vec<Entry>, String> {
        let esz = u64::from(self.entry_size);
        if esz < 128 || esz % 8 != 0 {
            return Err(format!("bad entry size {esz}"));
        }
        let total = esz * u64::from(self.count);
        if total > MAX_ARRAY {
            return Err(format!("entry array of {total} bytes is implausibly large"));
        }
        let off = self.entries_lba.checked_mul(self.ss).ok_or("entry array offset overflows")?;
        let mut arr = vec![0u8; total as usize];
        disk.read_exact_at(off, &mut arr).map_err(|e| e.to_string())?;
        if crc32(&arr) != self.entries_crc {
            return Err("entry array CRC mismatch".into());
        }
        let mut out = Vec::new();
        for (i, e) in arr.chunks_exact(esz as usize).enumerate() {
            let type_guid = &e[0..16];
            if type_guid.iter().all(|&b| b == 0) {
                continue;
            }
            let (first, last) = (u64_at(e, 32), u64_at(e, 40));
            if last < first {
                continue;
            }
            let (Some(offset), Some(size)) =
                (first.checked_mul(self.ss), (last - first).checked_add(1).and_then(|n| n.checked_mul(self.ss)))
            else {
                continue;
            };
            let name_units: Vec<u16> =
                e[56..128].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&u| u != 0).collect();
            let name = String::from_utf16_lossy(&name_units);
            let tg = guid(type_guid);
            out.push(Entry {
                number: i as u32 + 1,
                offset,
                size,
                kind: type_name(&tg).map_or(tg.clone(), |n| format!("{n} ({tg})")),
                name: (!name.is_empty()).then_some(name),
                guid: Some(guid(&e[16..32])),
            });
        }
        Ok(out)
    }
}

fn type_name(g: &str) -> Option<&'static str> {
    Some(match g {
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4" => "Linux filesystem",
        "E6D6D379-F507-44C2-A23C-238F2A3DF928" => "Linux LVM",
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F" => "Linux swap",
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709" => "Linux root (x86-64)",
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" => "EFI system",
        "21686148-6449-6E6F-744E-656564454649" => "BIOS boot",
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" => "Microsoft basic data",
        "E3C9E316-0B5C-4DB8-817D-F92DF00215AE" => "Microsoft reserved",
        "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC" => "Windows recovery",
        "BC13C2FF-59E6-4262-A352-B275FD6F7172" => "Linux /boot (XBOOTLDR)",
        "7C3457EF-0000-11AA-AA11-00306543ECAC" => "Apple APFS",
        "48465300-0000-11AA-AA11-00306543ECAC" => "Apple HFS+",
        "CA7D7CCB-63ED-4C53-861C-1742536059CC" => "Linux LUKS",
        _ => return None,
    })
}
