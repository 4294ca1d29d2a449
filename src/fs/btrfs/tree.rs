//! Tree blocks (`struct btrfs_header`, 101 bytes, then 25-byte leaf items
//! or 33-byte key pointers) and key-range searches over a B-tree.
//!
//! Every block is checked as the kernel's tree checker does where it
//! matters for reading: its header names the logical address it was read
//! from and this filesystem's fsid, its level is the one its parent
//! expects (so a descent always ends: a loop is an error), its first key is
//! the parent's key for it and its last key is below the parent's next key,
//! keys are strictly increasing, items lie inside the block, and its
//! generation is the one its parent recorded. Its checksum is verified; a
//! block with a bad checksum is read from another copy (DUP, RAID1) when
//! there is one, else used with a warning, as ext and XFS do with theirs.

use super::chunks::ChunkMap;
use super::superblock::Superblock;
use crate::evidence::{ReadAt, Source};
use crate::util::bytes::{u8_at, u32_at, u64_at};
use crate::util::cache::Cache;
use crate::util::corrupt;
use crate::util::warnings::Warnings;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Levels are 0 (leaf) to 7.
pub const MAX_LEVEL: u8 = 8;
const HEADER: usize = 101;
const ITEM: usize = 25;
const PTR: usize = 33;
/// Tree blocks kept decoded (16 KiB each by default: 32 MiB).
const CACHE: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub objectid: u64,
    pub kind: u8,
    pub offset: u64,
}

impl Key {
    pub const LEN: usize = 17;

    pub fn new(objectid: u64, kind: u8, offset: u64) -> Key {
        Key { objectid, kind, offset }
    }

    pub fn parse(b: &[u8], off: usize) -> Option<Key> {
        b.get(off..off.checked_add(Key::LEN)?)?;
        Some(Key { objectid: u64_at(b, off), kind: u8_at(b, off + 8), offset: u64_at(b, off + 9) })
    }
}

/// A tree's root block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Root {
    pub bytenr: u64,
    pub level: u8,
}

#[derive(Debug)]
pub struct Node {
    pub level: u8,
    generation: u64,
    nritems: usize,
    raw: Vec<u8>,
}

impl Node {
    /// Checks what the block says about itself (the parent's expectations
    /// are checked in `Meta::node`).
    fn parse(raw: Vec<u8>, bytenr: u64) -> Result<Node, String> {
        let level = u8_at(&raw, 0x64);
        if level >= MAX_LEVEL {
            return Err(format!("tree block {bytenr}: level {level}"));
        }
        let nritems = u32_at(&raw, 0x60) as usize;
        let each = if level == 0 { ITEM } else { PTR };
        if nritems > (raw.len() - HEADER) / each {
            return Err(format!("tree block {bytenr}: {nritems} items do not fit"));
        }
        if level > 0 && nritems == 0 {
            return Err(format!("tree block {bytenr}: an empty internal node"));
        }
        let node = Node { level, generation: u64_at(&raw, 0x50), nritems, raw };
        let mut prev: Option<Key> = None;
        for i in 0..nritems {
            let k = node.key(i);
            if prev.is_some_and(|p| p >= k) {
                return Err(format!("tree block {bytenr}: keys out of order at item {i}"));
            }
            prev = Some(k);
            if level == 0 {
                let (off, size) = node.item_span(i);
                // Item data lies after the item headers, inside the block.
                if off < nritems * ITEM || off + size > node.raw.len() - HEADER {
                    return Err(format!("tree block {bytenr}: item {i} data out of bounds"));
                }
            }
        }
        Ok(node)
    }

    pub fn len(&self) -> usize {
        self.nritems
    }

    pub fn key(&self, i: usize) -> Key {
        let each = if self.level == 0 { ITEM } else { PTR };
        Key::parse(&self.raw, HEADER + i * each).unwrap_or(Key::new(0, 0, 0))
    }

    fn item_span(&self, i: usize) -> (usize, usize) {
        let at = HEADER + i * ITEM + Key::LEN;
        (u32_at(&self.raw, at) as usize, u32_at(&self.raw, at + 4) as usize)
    }

    /// A leaf item's data.
    pub fn data(&self, i: usize) -> &[u8] {
        let (off, size) = self.item_span(i);
        self.raw.get(HEADER + off..HEADER + off + size).unwrap_or(&[])
    }

    /// An internal node's child: (block address, generation).
    fn child(&self, i: usize) -> (u64, u64) {
        let at = HEADER + i * PTR + Key::LEN;
        (u64_at(&self.raw, at), u64_at(&self.raw, at + 8))
    }
}

/// What tree blocks are read through: the device, the superblock and the
/// chunk map, with a cache of decoded blocks.
pub struct Meta {
    pub dev: Source,
    pub sb: Superblock,
    pub chunks: ChunkMap,
    cache: Cache<u64, Node>,
    pub warnings: Warnings,
    /// A tree block was used despite a checksum mismatch: sizes and
    /// addresses read since may be wrong.
    pub damaged: AtomicBool,
}

/// What a child's parent expects of it.
#[derive(Clone, Copy)]
struct Expect {
    level: u8,
    first: Option<Key>,
    /// Exclusive upper bound: the parent's next key.
    bound: Option<Key>,
    generation: Option<u64>,
}

impl Meta {
    pub fn new(dev: Source, sb: Superblock, chunks: ChunkMap) -> Meta {
        Meta { dev, sb, chunks, cache: Cache::new(CACHE), warnings: Warnings::default(), damaged: AtomicBool::new(false) }
    }

    pub fn warn(&self, msg: String) {
        self.warnings.add(msg);
    }

    /// Reads `len` bytes at a logical address (first copy).
    pub fn read_logical(&self, logical: u64, buf: &mut [u8]) -> io::Result<()> {
        let copies = self.chunks.copies(logical, buf.len() as u64, self.sb.devid)?;
        let first = copies.first().copied().ok_or_else(|| corrupt("no copy"))?;
        self.dev.read_exact_at(first, buf)
    }

    /// A tree block from the first of its copies that checks out.
    fn load(&self, bytenr: u64) -> io::Result<Node> {
        let ns = self.sb.nodesize as usize;
        let copies = self.chunks.copies(bytenr, ns as u64, self.sb.devid)?;
        let mut fallback: Option<Node> = None;
        let mut why = String::new();
        for (n, phys) in copies.iter().enumerate() {
            let mut raw = vec![0u8; ns];
            if let Err(e) = self.dev.read_exact_at(*phys, &mut raw) {
                why = format!("tree block {bytenr}: {e}");
                continue;
            }
            if u64_at(&raw, 0x30) != bytenr {
                why = format!("tree block {bytenr} (copy {}) says it is at {}", n + 1, u64_at(&raw, 0x30));
                continue;
            }
            if raw[0x20..0x30] != self.sb.meta_fsid {
                why = format!("tree block {bytenr} (copy {}) belongs to another filesystem (fsid)", n + 1);
                continue;
            }
            let sum = self.sb.csum.verify(&raw[..32], &raw[0x20..]);
            let node = match Node::parse(raw, bytenr) {
                Ok(node) => node,
                Err(e) => {
                    why = e;
                    continue;
                }
            };
            if sum {
                if n > 0 {
                    self.warn(format!("tree block {bytenr}: copy 1 unusable ({why}); copy {} used", n + 1));
                }
                return Ok(node);
            }
            why = format!("tree block {bytenr}: checksum mismatch");
            if fallback.is_none() {
                fallback = Some(node);
            }
        }
        match fallback {
            Some(node) => {
                self.damaged.store(true, Ordering::Relaxed);
                self.warn(format!("tree block {bytenr}: {} checksum mismatch in every copy; read anyway", self.sb.csum.name()));
                Ok(node)
            }
            None => Err(corrupt(why)),
        }
    }

    fn node(&self, bytenr: u64, want: Expect) -> io::Result<Arc<Node>> {
        let node = self.cache.get_or_try(bytenr, || self.load(bytenr))?;
        if node.level != want.level {
            return Err(corrupt(format!("tree block {bytenr}: level {} where its parent expects {}", node.level, want.level)));
        }
        if let Some(g) = want.generation
            && node.generation != g
        {
            return Err(corrupt(format!("tree block {bytenr}: generation {} where its parent expects {g} (stale)", node.generation)));
        }
        if node.len() > 0 {
            if want.first.is_some_and(|k| node.key(0) != k) {
                return Err(corrupt(format!("tree block {bytenr}: first key differs from its parent's")));
            }
            if want.bound.is_some_and(|b| node.key(node.len() - 1) >= b) {
                return Err(corrupt(format!("tree block {bytenr}: keys past its parent's next key")));
            }
        }
        Ok(node)
    }

    /// Items with keys in `lo..=hi`, in key order, at most `limit`. With
    /// `damaged`, an unreadable subtree is skipped and described there;
    /// without, it fails the search.
    pub fn search(&self, root: Root, lo: Key, hi: Key, limit: usize, damaged: Option<&mut Vec<String>>) -> io::Result<Vec<(Key, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut sink = damaged;
        let want = Expect { level: root.level, first: None, bound: None, generation: None };
        self.visit(root.bytenr, want, lo, hi, limit, &mut out, &mut sink)?;
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn visit(
        &self,
        bytenr: u64,
        want: Expect,
        lo: Key,
        hi: Key,
        limit: usize,
        out: &mut Vec<(Key, Vec<u8>)>,
        damaged: &mut Option<&mut Vec<String>>,
    ) -> io::Result<()> {
        let node = self.node(bytenr, want)?;
        let n = node.len();
        if node.level == 0 {
            for i in 0..n {
                let k = node.key(i);
                if k > hi || out.len() >= limit {
                    break;
                }
                if k >= lo {
                    out.push((k, node.data(i).to_vec()));
                }
            }
            return Ok(());
        }
        for i in 0..n {
            let k = node.key(i);
            if k > hi || out.len() >= limit {
                break;
            }
            let next = (i + 1 < n).then(|| node.key(i + 1));
            if next.is_some_and(|nk| nk <= lo) {
                continue;
            }
            let (child, generation) = node.child(i);
            let expect = Expect { level: node.level - 1, first: Some(k), bound: next.or(want.bound), generation: Some(generation) };
            if let Err(e) = self.visit(child, expect, lo, hi, limit, out, damaged) {
                match damaged {
                    Some(d) => d.push(e.to_string()),
                    None => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// The item at exactly `key`.
    pub fn get(&self, root: Root, key: Key) -> io::Result<Option<Vec<u8>>> {
        Ok(self.search(root, key, key, 1, None)?.pop().map(|(_, d)| d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4 KiB leaf of `keys`, each item holding 8 bytes.
    fn leaf(keys: &[(u64, u8, u64)]) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[0x60..0x64].copy_from_slice(&(keys.len() as u32).to_le_bytes());
        for (i, &(o, t, off)) in keys.iter().enumerate() {
            let at = HEADER + i * ITEM;
            b[at..at + 8].copy_from_slice(&o.to_le_bytes());
            b[at + 8] = t;
            b[at + 9..at + 17].copy_from_slice(&off.to_le_bytes());
            let data = (4096 - HEADER - 8 * (i + 1)) as u32;
            b[at + 17..at + 21].copy_from_slice(&data.to_le_bytes());
            b[at + 21..at + 25].copy_from_slice(&8u32.to_le_bytes());
        }
        b
    }

    #[test]
    fn blocks_that_contradict_themselves_are_refused() {
        let ok = Node::parse(leaf(&[(256, 1, 0), (256, 12, 5), (257, 1, 0)]), 0).unwrap();
        assert_eq!((ok.len(), ok.key(1)), (3, Key::new(256, 12, 5)));
        assert_eq!(ok.data(2).len(), 8);
        assert!(Node::parse(leaf(&[(256, 1, 0), (256, 1, 0)]), 0).unwrap_err().contains("out of order"));
        assert!(Node::parse(leaf(&[(257, 1, 0), (256, 1, 0)]), 0).unwrap_err().contains("out of order"));
        let mut b = leaf(&[(256, 1, 0)]);
        b[HEADER + 17..HEADER + 21].copy_from_slice(&4000u32.to_le_bytes());
        assert!(Node::parse(b, 0).unwrap_err().contains("out of bounds"));
        let mut b = leaf(&[]);
        b[0x64] = MAX_LEVEL;
        assert!(Node::parse(b, 0).unwrap_err().contains("level"));
        let mut b = leaf(&[]);
        b[0x64] = 1;
        assert!(Node::parse(b, 0).unwrap_err().contains("empty internal node"));
        let mut b = leaf(&[]);
        b[0x60..0x64].copy_from_slice(&1000u32.to_le_bytes());
        assert!(Node::parse(b, 0).unwrap_err().contains("do not fit"));
    }
}
