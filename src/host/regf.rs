//! A minimal read-only Windows registry hive (regf) reader: base block,
//! hive bins, key (`nk`) and value (`vk`) cells, the `lf`/`lh`/`li`/`ri`
//! subkey lists and big data (`db`). Enough to read the SYSTEM hive's
//! computer name, mounted devices and event log locations.
//!
//! The hive is read cell by cell through positional reads and a small page
//! cache, never whole: a server's SOFTWARE hive of 200 MiB costs what the
//! few keys looked up cost, not its size.
//!
//! Own code: nt-hive and nt_hive2 are GPL, notatin does not build on a fresh
//! dependency resolve (../shared/research/crates.md). Every cell access is
//! bounds-checked and every list walk bounded, so a corrupt or hostile hive
//! yields `None`, never a panic or a loop.
// A parser of untrusted bytes: no panicking shortcuts (see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

use crate::evidence::ReadAt;
use crate::util::bytes::{u16_at, u32_at};
use crate::util::cache::Cache;

const BASE: u64 = 4096;
/// Pages of the hive kept (256 × 4 KiB = 1 MiB).
const PAGE: u64 = 4096;
const PAGES_KEPT: usize = 256;
/// No cell snapsift reads is larger (a subkey list of 100,000 keys is 800 KiB).
const MAX_CELL: usize = 8 << 20;
/// Subkey list nesting (`ri` → `lf`) is one level in practice.
const MAX_LIST_DEPTH: u32 = 4;
const MAX_ENTRIES: usize = 1 << 20;
/// The largest value read. snapsift reads names, paths and mount records;
/// a value declaring up to 2 GiB (or a big-data list naming one segment
/// 65,535 times) is not one of them.
const MAX_VALUE: usize = 1 << 20;
/// Data returned by one `values` call, in all.
const MAX_VALUES_BYTES: usize = 16 << 20;

pub struct Hive<'a> {
    src: Box<dyn ReadAt + 'a>,
    pages: Cache<u64, Vec<u8>>,
    root: u32,
    /// The primary and secondary sequence numbers differ: the hive was not
    /// written back cleanly and recent changes may sit in its .LOG files.
    pub dirty: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key(u32);

pub struct Value {
    pub kind: u32,
    pub data: Vec<u8>,
}

pub const REG_SZ: u32 = 1;
pub const REG_EXPAND_SZ: u32 = 2;
pub const REG_DWORD: u32 = 4;

impl Value {
    /// REG_SZ / REG_EXPAND_SZ text (UTF-16LE, up to the first NUL).
    pub fn string(&self) -> Option<String> {
        if !matches!(self.kind, REG_SZ | REG_EXPAND_SZ) {
            return None;
        }
        let units: Vec<u16> = self.data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&u| u != 0).collect();
        Some(String::from_utf16_lossy(&units))
    }

    pub fn dword(&self) -> Option<u32> {
        (self.kind == REG_DWORD && self.data.len() >= 4).then(|| u32_at(&self.data, 0))
    }
}

impl<'a> Hive<'a> {
    /// A hive held in memory.
    pub fn parse(data: Vec<u8>) -> Option<Hive<'static>> {
        Hive::open(Box::new(data))
    }

    /// A hive read in place (a file of the evidence, by positional reads).
    pub fn open(src: Box<dyn ReadAt + 'a>) -> Option<Hive<'a>> {
        let mut base = [0u8; 40];
        src.read_exact_at(0, &mut base).ok()?;
        if &base[0..4] != b"regf" || src.len() < BASE + 32 {
            return None;
        }
        let dirty = u32_at(&base, 4) != u32_at(&base, 8);
        let root = u32_at(&base, 36);
        let h = Hive { src, pages: Cache::new(PAGES_KEPT), root, dirty };
        h.nk(Key(root))?;
        Some(h)
    }

    /// `len` bytes at `at`, through the page cache.
    fn read(&self, at: u64, len: usize) -> Option<Vec<u8>> {
        if at.checked_add(len as u64)? > self.src.len() {
            return None;
        }
        let mut out = Vec::with_capacity(len);
        let mut pos = at;
        while out.len() < len {
            let page = pos / PAGE;
            let p = self
                .pages
                .get_or_try(page, || {
                    let mut b = vec![0u8; PAGE.min(self.src.len() - page * PAGE) as usize];
                    self.src.read_exact_at(page * PAGE, &mut b).map(|()| b)
                })
                .ok()?;
            let within = (pos - page * PAGE) as usize;
            let take = (len - out.len()).min(p.as_slice().len().checked_sub(within)?);
            if take == 0 {
                return None;
            }
            out.extend_from_slice(p.get(within..within + take)?);
            pos += take as u64;
        }
        Some(out)
    }

    /// The data of the cell at `off` (relative to the first hive bin).
    fn cell(&self, off: u32) -> Option<Vec<u8>> {
        let start = BASE + u64::from(off);
        let size = i32::from_le_bytes(self.read(start, 4)?.try_into().ok()?);
        let len = size.unsigned_abs() as usize;
        if !(4..=MAX_CELL).contains(&len) {
            return None;
        }
        self.read(start + 4, len - 4)
    }

    fn nk(&self, k: Key) -> Option<Vec<u8>> {
        let c = self.cell(k.0)?;
        (c.get(0..2)? == b"nk" && c.len() >= 76).then_some(c)
    }

    pub fn root(&self) -> Key {
        Key(self.root)
    }

    pub fn name(&self, k: Key) -> Option<String> {
        let c = self.nk(k)?;
        let len = u16_at(&c, 72) as usize;
        let raw = c.get(76..76 + len)?;
        Some(decode_name(raw, u16_at(&c, 2) & 0x20 != 0))
    }

    /// Subkeys, through `lf`, `lh`, `li` and `ri` lists.
    pub fn subkeys(&self, k: Key) -> Vec<Key> {
        let mut out = Vec::new();
        if let Some(c) = self.nk(k) {
            self.list(u32_at(&c, 28), &mut out, 0);
        }
        out
    }

    fn list(&self, off: u32, out: &mut Vec<Key>, depth: u32) {
        let Some(c) = self.cell(off) else { return };
        let count = u16_at(&c, 2) as usize;
        let (step, nested) = match c.get(0..2) {
            Some(b"lf") | Some(b"lh") => (8, false),
            Some(b"li") => (4, false),
            Some(b"ri") => (4, true),
            _ => return,
        };
        for i in 0..count {
            if out.len() >= MAX_ENTRIES {
                return;
            }
            let Some(e) = c.get(4 + i * step..8 + i * step) else { return };
            let target = u32_at(e, 0);
            if nested {
                if depth < MAX_LIST_DEPTH {
                    self.list(target, out, depth + 1);
                }
            } else {
                out.push(Key(target));
            }
        }
    }

    /// The subkey called `name` (case-insensitive, as Windows compares).
    pub fn subkey(&self, k: Key, name: &str) -> Option<Key> {
        let want = name.to_lowercase();
        self.subkeys(k).into_iter().find(|s| self.name(*s).is_some_and(|n| n.to_lowercase() == want))
    }

    /// A key by backslash-separated path from the root.
    pub fn key(&self, path: &str) -> Option<Key> {
        path.split('\\').filter(|c| !c.is_empty()).try_fold(self.root(), |k, c| self.subkey(k, c))
    }

    /// The `vk` cells of a key's values, in list order: at most the count
    /// the key declares (capped), and never past the end of the list's cell
    /// (a forged count of 2^32 over a short list is a short walk).
    fn vks(&self, k: Key) -> impl Iterator<Item = Vec<u8>> + '_ {
        let nk = self.nk(k);
        let count = nk.as_ref().map_or(0, |c| (u32_at(c, 36) as usize).min(MAX_ENTRIES));
        let list = nk.and_then(|c| self.cell(u32_at(&c, 40))).unwrap_or_default();
        let cells: Vec<u32> = list.chunks_exact(4).take(count).map(|e| u32_at(e, 0)).collect();
        cells.into_iter().filter_map(|o| self.cell(o)).filter(|vk| vk.get(0..2) == Some(b"vk"))
    }

    fn vk_name(vk: &[u8]) -> Option<String> {
        let name_len = u16_at(vk, 2) as usize;
        Some(decode_name(vk.get(20..20 + name_len)?, u16_at(vk, 16) & 1 != 0))
    }

    /// Every value of a key: (name, value), up to `MAX_VALUES_BYTES` of data
    /// in all (a forged list can name one large value a million times).
    pub fn values(&self, k: Key) -> Vec<(String, Value)> {
        let mut total = 0usize;
        self.vks(k)
            .filter_map(|vk| Some((Self::vk_name(&vk)?, Value { kind: u32_at(&vk, 12), data: self.value_data(&vk)? })))
            .take_while(|(_, v)| {
                total = total.saturating_add(v.data.len());
                total <= MAX_VALUES_BYTES
            })
            .collect()
    }

    /// The value called `name` (case-insensitive); only its data is read.
    pub fn value(&self, k: Key, name: &str) -> Option<Value> {
        let want = name.to_lowercase();
        let vk = self.vks(k).find(|vk| Self::vk_name(vk).is_some_and(|n| n.to_lowercase() == want))?;
        Some(Value { kind: u32_at(&vk, 12), data: self.value_data(&vk)? })
    }

    fn value_data(&self, vk: &[u8]) -> Option<Vec<u8>> {
        let raw_size = u32_at(vk, 4);
        let size = (raw_size & 0x7FFF_FFFF) as usize;
        if size > MAX_VALUE {
            return None;
        }
        if raw_size & 0x8000_0000 != 0 {
            // Up to 4 bytes stored in the offset field itself.
            return Some(vk.get(8..8 + size.min(4))?.to_vec());
        }
        let cell = self.cell(u32_at(vk, 8))?;
        if cell.get(0..2) == Some(b"db") && size > 16344 {
            // Big data: a list of segments of up to 16,344 bytes each.
            let n = u16_at(&cell, 2) as usize;
            let segs = self.cell(u32_at(&cell, 4))?;
            let mut out = Vec::with_capacity(size.min(1 << 20));
            for i in 0..n {
                let seg = self.cell(u32_at(segs.get(i * 4..i * 4 + 4)?, 0))?;
                let take = (size - out.len()).min(16344).min(seg.len());
                out.extend_from_slice(seg.get(..take)?);
                if out.len() >= size {
                    break;
                }
            }
            return Some(out);
        }
        cell.get(..size.min(cell.len())).map(<[u8]>::to_vec)
    }
}

/// Key and value names: Latin-1 when flagged "compressed", else UTF-16LE.
fn decode_name(raw: &[u8], compressed: bool) -> String {
    if compressed {
        raw.iter().map(|&b| b as char).collect()
    } else {
        let units: Vec<u16> = raw.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        String::from_utf16_lossy(&units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hive with cells appended one after the other in its first bin.
    struct Builder(Vec<u8>);

    impl Builder {
        fn new() -> Self {
            let mut d = vec![0u8; BASE as usize];
            d[0..4].copy_from_slice(b"regf");
            Builder(d)
        }
        /// Appends a cell; returns its offset from the first bin.
        fn cell(&mut self, content: &[u8]) -> u32 {
            let off = (self.0.len() - BASE as usize) as u32;
            let size = (content.len() + 4).next_multiple_of(8);
            self.0.extend_from_slice(&(-(size as i32)).to_le_bytes());
            self.0.extend_from_slice(content);
            self.0.resize(BASE as usize + off as usize + size, 0);
            off
        }
        fn vk(&mut self, name: &str, kind: u32, size: u32, data: u32) -> u32 {
            let mut c = vec![0u8; 20];
            c[0..2].copy_from_slice(b"vk");
            c[2..4].copy_from_slice(&(name.len() as u16).to_le_bytes());
            c[4..8].copy_from_slice(&size.to_le_bytes());
            c[8..12].copy_from_slice(&data.to_le_bytes());
            c[12..16].copy_from_slice(&kind.to_le_bytes());
            c[16..18].copy_from_slice(&1u16.to_le_bytes()); // Latin-1 name
            c.extend_from_slice(name.as_bytes());
            self.cell(&c)
        }
        fn root(mut self, value_count: u32, list: &[u32]) -> Hive<'static> {
            let list: Vec<u8> = list.iter().flat_map(|o| o.to_le_bytes()).collect();
            let list = self.cell(&list);
            let mut nk = vec![0u8; 76];
            nk[0..2].copy_from_slice(b"nk");
            nk[28..32].copy_from_slice(&u32::MAX.to_le_bytes()); // no subkeys
            nk[36..40].copy_from_slice(&value_count.to_le_bytes());
            nk[40..44].copy_from_slice(&list.to_le_bytes());
            let root = self.cell(&nk);
            self.0[36..40].copy_from_slice(&root.to_le_bytes());
            Hive::parse(self.0).expect("the built hive parses")
        }
    }

    #[test]
    fn a_forged_value_list_costs_what_it_holds_not_what_it_claims() {
        let mut b = Builder::new();
        let text = b.cell(&[b'w', 0, b'e', 0, b'b', 0, 0, 0]);
        let small = b.vk("ComputerName", REG_SZ, 8, text);
        // Declares 2 GiB of data behind a 16-byte cell.
        let huge = b.cell(&[0u8; 16]);
        let big = b.vk("Big", 3, 0x7FFF_FFF0, huge);
        // A key declaring 2^32 - 1 values over a list of three entries.
        let h = b.root(u32::MAX, &[small, big, small]);
        let names: Vec<String> = h.values(h.root()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["ComputerName", "ComputerName"], "the oversized value is refused");
        assert_eq!(h.value(h.root(), "computername").and_then(|v| v.string()).as_deref(), Some("web"));
        assert!(h.value(h.root(), "Big").is_none());
        assert!(h.value(h.root(), "absent").is_none());
    }

    #[test]
    fn one_large_value_named_many_times_is_read_to_a_bound() {
        let mut b = Builder::new();
        let data = b.cell(&vec![7u8; MAX_VALUE]);
        let v = b.vk("Blob", 3, MAX_VALUE as u32, data);
        let h = b.root(100, &[v; 100]);
        let values = h.values(h.root());
        assert_eq!(values.len(), MAX_VALUES_BYTES / MAX_VALUE);
        assert!(values.iter().all(|(_, v)| v.data.len() == MAX_VALUE));
    }
}
