//! A minimal read-only Windows registry hive (regf) reader: enough to find
//! a key by path and read a value, for the computer name in SYSTEM.
//!
//! Written from the public format notes (Maxim Suhanov's "Windows registry
//! file format specification"); the GPL crates nt-hive/nt_hive2 are not
//! usable under our licence. Layout: a 4 KiB base block ("regf", root key
//! offset at 0x24), then hive bins of cells. A cell is an i32 size
//! (negative: allocated) and its data; offsets are relative to the first
//! bin (file offset 4096). Keys are "nk" cells; subkey lists are "lf"/"lh"
//! (offset + hash pairs), "li" (offsets) or "ri" (offsets of lists);
//! values are "vk" cells; data above 16 KiB is split by a "db" cell.
//! Transaction logs (.LOG1/.LOG2) are not replayed: a dirty hive reads as
//! on disk.

use crate::util::bytes::{slice, u16_at, u32_at};

const BINS: usize = 4096;
/// Bounds for a damaged hive: subkeys scanned per key, nested "ri" depth.
const MAX_SUBKEYS: usize = 1 << 16;
const MAX_DATA: usize = 1 << 20;

pub struct Hive<'a> {
    b: &'a [u8],
}

/// A key: its cell offset.
#[derive(Clone, Copy)]
pub struct Key(u32);

impl<'a> Hive<'a> {
    pub fn new(b: &'a [u8]) -> Option<Hive<'a>> {
        (b.get(0..4) == Some(b"regf") && b.len() > BINS).then_some(Hive { b })
    }

    /// The data of the cell at `off` (without its size field).
    fn cell(&self, off: u32) -> Option<&'a [u8]> {
        let start = BINS.checked_add(off as usize)?;
        let size = u32_at(self.b, start) as i32;
        // Allocated cells have a negative size; accept either sign.
        let len = size.unsigned_abs() as usize;
        if len < 4 {
            return None;
        }
        self.b.get(start + 4..start.checked_add(len)?)
    }

    pub fn root(&self) -> Option<Key> {
        let off = u32_at(self.b, 0x24);
        self.cell(off).filter(|c| c.starts_with(b"nk")).map(|_| Key(off))
    }

    fn key_name(&self, k: Key) -> Option<Vec<u8>> {
        let c = self.cell(k.0)?;
        let len = usize::from(u16_at(c, 0x48));
        let raw = slice(c, 0x4C, len);
        if u16_at(c, 2) & 0x20 != 0 {
            Some(raw.to_vec())
        } else {
            Some(utf16(raw).into_bytes())
        }
    }

    /// The subkey called `name` (ASCII case-insensitive).
    pub fn subkey(&self, k: Key, name: &str) -> Option<Key> {
        let c = self.cell(k.0)?;
        let list = u32_at(c, 0x1C);
        let mut found = None;
        self.walk_list(list, 0, &mut |off| {
            let child = Key(off);
            if self.cell(off).is_some_and(|c| c.starts_with(b"nk"))
                && self.key_name(child).is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
            {
                found = Some(child);
                return true;
            }
            false
        });
        found
    }

    /// Calls `f` with every key offset in a subkey list until it says stop.
    fn walk_list(&self, off: u32, depth: u32, f: &mut dyn FnMut(u32) -> bool) -> bool {
        let Some(c) = self.cell(off) else { return false };
        let n = usize::from(u16_at(c, 2)).min(MAX_SUBKEYS);
        match c.get(0..2) {
            Some(b"lf") | Some(b"lh") => (0..n).any(|i| f(u32_at(c, 4 + i * 8))),
            Some(b"li") => (0..n).any(|i| f(u32_at(c, 4 + i * 4))),
            Some(b"ri") if depth == 0 => (0..n).any(|i| self.walk_list(u32_at(c, 4 + i * 4), 1, f)),
            _ => false,
        }
    }

    pub fn path(&self, path: &str) -> Option<Key> {
        let mut k = self.root()?;
        for comp in path.split('\\').filter(|c| !c.is_empty()) {
            k = self.subkey(k, comp)?;
        }
        Some(k)
    }

    /// A value's type and data.
    pub fn value(&self, k: Key, name: &str) -> Option<(u32, Vec<u8>)> {
        let c = self.cell(k.0)?;
        let count = (u32_at(c, 0x24) as usize).min(MAX_SUBKEYS);
        let list = self.cell(u32_at(c, 0x28))?;
        for i in 0..count.min(list.len() / 4) {
            let v = self.cell(u32_at(list, i * 4))?;
            if !v.starts_with(b"vk") {
                continue;
            }
            let nlen = usize::from(u16_at(v, 2));
            let raw = slice(v, 0x14, nlen);
            let vname = if u16_at(v, 0x10) & 1 != 0 { raw.to_vec() } else { utf16(raw).into_bytes() };
            if vname.eq_ignore_ascii_case(name.as_bytes()) {
                return Some((u32_at(v, 0x0C), self.value_data(v)?));
            }
        }
        None
    }

    fn value_data(&self, v: &[u8]) -> Option<Vec<u8>> {
        let size = u32_at(v, 4);
        if size & 0x8000_0000 != 0 {
            // Up to 4 bytes kept in the offset field itself.
            let n = ((size & 0x7FFF_FFFF) as usize).min(4);
            return Some(slice(v, 8, n).to_vec());
        }
        let size = size as usize;
        if size > MAX_DATA {
            return None;
        }
        let d = self.cell(u32_at(v, 8))?;
        if d.starts_with(b"db") && size > 16344 {
            let segs = self.cell(u32_at(d, 4))?;
            let mut out = Vec::new();
            for i in 0..usize::from(u16_at(d, 2)).min(segs.len() / 4) {
                out.extend_from_slice(self.cell(u32_at(segs, i * 4))?);
                if out.len() >= size {
                    break;
                }
            }
            out.truncate(size);
            return Some(out);
        }
        Some(slice(d, 0, size).to_vec())
    }
}

/// A REG_SZ value's text, without its terminating NUL(s).
pub fn string_value(h: &Hive, k: Key, name: &str) -> Option<String> {
    let (_, d) = h.value(k, name)?;
    let s = utf16(&d);
    let s = s.trim_end_matches('\0').trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// "Windows Server 2022 Datacenter 21H2 (build 20348)" from SOFTWARE
/// `Microsoft\Windows NT\CurrentVersion`. Windows 11 keeps "Windows 10" in
/// ProductName; a build of 22000 or later is Windows 11.
pub fn os_version(hive: &[u8]) -> Option<String> {
    let h = Hive::new(hive)?;
    let k = h.path("Microsoft\\Windows NT\\CurrentVersion")?;
    let mut product = string_value(&h, k, "ProductName")?;
    let build = string_value(&h, k, "CurrentBuild").or_else(|| string_value(&h, k, "CurrentBuildNumber"));
    let n: u32 = build.as_deref().and_then(|b| b.parse().ok()).unwrap_or(0);
    if n >= 22000 && product.starts_with("Windows 10") {
        product = product.replacen("Windows 10", "Windows 11", 1);
    }
    if let Some(v) = string_value(&h, k, "DisplayVersion").or_else(|| string_value(&h, k, "ReleaseId")) {
        product = format!("{product} {v}");
    }
    Some(match build {
        Some(b) => format!("{product} (build {b})"),
        None => product,
    })
}

fn utf16(b: &[u8]) -> String {
    let u: Vec<u16> = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    String::from_utf16_lossy(&u)
}

/// `SYSTEM\Select\Current` → `ControlSet00N\Control\ComputerName\ComputerName`,
/// value `ComputerName`.
pub fn computer_name(hive: &[u8]) -> Option<String> {
    computer_name_at(hive).map(|(n, _)| n)
}

/// The computer name and the key it was read from.
pub fn computer_name_at(hive: &[u8]) -> Option<(String, String)> {
    let h = Hive::new(hive)?;
    let current = h
        .path("Select")
        .and_then(|k| h.value(k, "Current"))
        .filter(|(_, d)| d.len() >= 4)
        .map_or(1, |(_, d)| u32_at(&d, 0));
    let path = format!("ControlSet{current:03}\\Control\\ComputerName\\ComputerName");
    let key = h.path(&path)?;
    let (_, data) = h.value(key, "ComputerName")?;
    let name = utf16(&data);
    let name = name.trim_end_matches('\0').trim();
    // The name becomes a folder name: refuse anything odd.
    (!name.is_empty() && name.len() <= 255 && !name.contains(['/', '\\', '\0'])).then(|| (name.to_string(), path))
}
