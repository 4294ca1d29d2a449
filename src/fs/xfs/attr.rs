//! XFS extended attributes (the attribute fork), from the XFS on-disk
//! format's "Extended Attributes" chapter: short form in the inode, or
//! leaf blocks reached from block 0 of the attribute fork (a single leaf,
//! or a dabtree whose leftmost leaf starts a `forw`-linked chain).
//!
//! Values kept in remote blocks are skipped (reported by the caller): they
//! are only used for values too large for a leaf, never for the one-byte
//! overlay markers snapshots depend on.

use super::bmap;
use super::inode::{Format, Inode};
use super::{Xfs, corrupt};
use crate::util::bytes::{be_u16_at, be_u32_at, u8_at};
use std::collections::HashSet;
use std::io;

const LEAF_MAGIC: u16 = 0xfbee;
const LEAF3_MAGIC: u16 = 0x3bee;
const NODE_MAGIC: u16 = 0xfebe;
const NODE3_MAGIC: u16 = 0x3ebe;
/// Entry flags: the value is local; the namespace; an unfinished update.
const LOCAL: u8 = 1;
const ROOT: u8 = 2;
const SECURE: u8 = 4;
const PARENT: u8 = 8;
const INCOMPLETE: u8 = 0x80;
/// Leaf blocks visited for one inode (a corrupt chain must end).
const MAX_BLOCKS: usize = 4096;

pub type Attrs = Vec<(Vec<u8>, Vec<u8>)>;

/// The namespace prefix for an entry's flags; None for entries that are not
/// user-visible attributes (parent pointers, unfinished updates).
fn full_name(flags: u8, name: &[u8]) -> Option<Vec<u8>> {
    if flags & (PARENT | INCOMPLETE) != 0 {
        return None;
    }
    let prefix: &[u8] = if flags & ROOT != 0 {
        b"trusted."
    } else if flags & SECURE != 0 {
        b"security."
    } else {
        b"user."
    };
    Some([prefix, name].concat())
}

/// Every attribute of an inode, and how many remote values were skipped.
pub fn read(fs: &Xfs, inode: &Inode) -> io::Result<(Attrs, usize)> {
    match inode.aformat {
        None => Ok((Vec::new(), 0)),
        Some(Format::Local) => Ok((shortform(inode.attr_fork()), 0)),
        Some(Format::Extents | Format::Btree) => leaves(fs, inode),
        Some(Format::Device) => Err(corrupt(format!("inode {}: device attribute fork", inode.ino))),
    }
}

/// Short form: totsize, count, pad, then (namelen, valuelen, flags, name, value).
fn shortform(fork: &[u8]) -> Attrs {
    let count = usize::from(u8_at(fork, 2));
    let mut out = Vec::new();
    let mut off = 4usize;
    for _ in 0..count {
        let (nl, vl, flags) = (usize::from(u8_at(fork, off)), usize::from(u8_at(fork, off + 1)), u8_at(fork, off + 2));
        let (Some(name), Some(value)) = (fork.get(off + 3..off + 3 + nl), fork.get(off + 3 + nl..off + 3 + nl + vl)) else {
            break;
        };
        if let Some(n) = full_name(flags, name) {
            out.push((n, value.to_vec()));
        }
        off += 3 + nl + vl;
    }
    out
}

fn leaves(fs: &Xfs, inode: &Inode) -> io::Result<(Attrs, usize)> {
    let extents = bmap::attr_extents(fs, inode)?;
    // An extents-format fork with no extents: every attribute was removed.
    if extents.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let bs = fs.sb.block_size;
    let end = extents.iter().map(|e| (e.logical + e.len).saturating_mul(bs)).max().unwrap_or(0);
    let mut reader = bmap::reader(fs, extents, end);
    let v5 = fs.sb.is_v5();
    let mut block = |n: u64| reader.read_range(n.saturating_mul(bs), bs as usize);
    // Down the leftmost path of a dabtree to the first leaf.
    let mut n = 0u64;
    let mut b = block(n)?;
    let mut seen = HashSet::from([n]);
    while matches!(be_u16_at(&b, 8), NODE_MAGIC | NODE3_MAGIC) {
        // Node header then (hashval, before) pairs; `before` is a block.
        let hdr = if v5 { 64 } else { 16 };
        n = u64::from(be_u32_at(&b, hdr + 4));
        if !seen.insert(n) || seen.len() > MAX_BLOCKS {
            return Err(corrupt(format!("inode {}: attribute btree loops", inode.ino)));
        }
        b = block(n)?;
    }
    let (mut out, mut remote) = (Vec::new(), 0);
    loop {
        let magic = be_u16_at(&b, 8);
        if magic != (if v5 { LEAF3_MAGIC } else { LEAF_MAGIC }) {
            return Err(corrupt(format!("inode {}: attribute block {n} has a bad magic number", inode.ino)));
        }
        remote += leaf(&b, v5, &mut out);
        let forw = u64::from(be_u32_at(&b, 0));
        if forw == 0 {
            break;
        }
        if !seen.insert(forw) || seen.len() > MAX_BLOCKS {
            return Err(corrupt(format!("inode {}: attribute leaf chain loops", inode.ino)));
        }
        n = forw;
        b = block(n)?;
    }
    Ok((out, remote))
}

/// One leaf block's entries (hashval, nameidx, flags, pad) and the names
/// they point at; returns how many values were remote.
fn leaf(b: &[u8], v5: bool, out: &mut Attrs) -> usize {
    let (count_at, entries_at) = if v5 { (56, 80) } else { (12, 32) };
    let count = usize::from(be_u16_at(b, count_at));
    let mut remote = 0;
    for i in 0..count.min(b.len() / 8) {
        let e = entries_at + i * 8;
        let (idx, flags) = (usize::from(be_u16_at(b, e + 4)), u8_at(b, e + 6));
        if e + 8 > b.len() {
            break;
        }
        if flags & LOCAL == 0 {
            remote += 1;
            continue;
        }
        // Local name: valuelen (be16), namelen, name, value.
        let (vl, nl) = (usize::from(be_u16_at(b, idx)), usize::from(u8_at(b, idx + 2)));
        let (Some(name), Some(value)) = (b.get(idx + 3..idx + 3 + nl), b.get(idx + 3 + nl..idx + 3 + nl + vl)) else {
            continue;
        };
        if let Some(n) = full_name(flags, name) {
            out.push((n, value.to_vec()));
        }
    }
    remote
}
