//! Mapping a file's logical blocks to disk blocks: extent trees (ext4) and
//! indirect blocks (ext2/3). The runs are read through the reader shared
//! with XFS (`fs::extents`).

use super::inode::Inode;
use super::{Ext, corrupt};
use crate::fs::extents::Extent;
use crate::util::bytes::{u16_at, u32_at};
use std::collections::HashSet;
use std::io;

/// A file cannot have more extents than this (about 400 MB of them).
const MAX_EXTENTS: usize = 16 << 20;
/// The kernel never builds extent trees deeper than 5.
const MAX_DEPTH: u16 = 5;

pub fn extent_tree(fs: &Ext, inode: &Inode) -> io::Result<Vec<Extent>> {
    let mut out = Vec::new();
    let mut walk = Walk { budget: MAX_EXTENTS, seen: HashSet::new() };
    walk_node(fs, inode.ino, inode.block_area(), None, &mut out, &mut walk)?;
    out.sort_by_key(|e| e.logical);
    Ok(out)
}

/// Bounds on one tree walk: leaf entries left, and the index blocks read so
/// far (each may be read once: a tree whose nodes share children would
/// otherwise cost exponentially many reads).
struct Walk {
    budget: usize,
    seen: HashSet<u64>,
}

/// One node of the tree. `expect_depth` is the parent's depth minus one, so
/// every step goes down and a block pointing back up cannot loop.
fn walk_node(fs: &Ext, ino: u64, node: &[u8], expect_depth: Option<u16>, out: &mut Vec<Extent>, walk: &mut Walk) -> io::Result<()> {
    if u16_at(node, 0) != 0xF30A {
        return Err(corrupt(format!("inode {ino}: bad extent header magic")));
    }
    let entries = u16_at(node, 2) as usize;
    let depth = u16_at(node, 6);
    if depth > MAX_DEPTH || expect_depth.is_some_and(|d| d != depth) {
        return Err(corrupt(format!("inode {ino}: extent tree depth {depth} is inconsistent")));
    }
    if 12 + entries * 12 > node.len() {
        return Err(corrupt(format!("inode {ino}: extent node claims {entries} entries")));
    }
    for i in 0..entries {
        let e = &node[12 + i * 12..24 + i * 12];
        let logical = u64::from(u32_at(e, 0));
        if depth == 0 {
            let raw_len = u16_at(e, 4);
            let (len, unwritten) = if raw_len > 32768 { (raw_len - 32768, true) } else { (raw_len, false) };
            let physical = u64::from(u16_at(e, 6)) << 32 | u64::from(u32_at(e, 8));
            if walk.budget == 0 {
                return Err(corrupt(format!("inode {ino}: more than {MAX_EXTENTS} extents")));
            }
            walk.budget -= 1;
            if len > 0 {
                out.push(Extent { logical, physical, len: u64::from(len), unwritten });
            }
        } else {
            let child = u64::from(u32_at(e, 4)) | u64::from(u16_at(e, 8)) << 32;
            if !walk.seen.insert(child) {
                return Err(corrupt(format!("inode {ino}: extent tree block {child} is referenced twice")));
            }
            let block = fs.read_blocks(child, 1)?;
            walk_node(fs, ino, &block, Some(depth - 1), out, walk)?;
        }
    }
    Ok(())
}

/// ext2/3 block pointers: 12 direct, then single, double and triple indirect.
/// Zero pointers are holes. Contiguous blocks are merged into runs.
pub fn indirect(fs: &Ext, inode: &Inode) -> io::Result<Vec<Extent>> {
    let bs = fs.block_size();
    let nblocks = inode.size.div_ceil(bs);
    let per = bs / 4;
    let area = inode.block_area();
    let mut runs: Vec<Extent> = Vec::new();
    let mut push = |logical: u64, physical: u64| match runs.last_mut() {
        Some(r) if r.logical + r.len == logical && r.physical + r.len == physical => r.len += 1,
        _ => runs.push(Extent { logical, physical, len: 1, unwritten: false }),
    };
    for i in 0..12u64.min(nblocks) {
        let p = u64::from(u32_at(area, i as usize * 4));
        if p != 0 {
            push(i, p);
        }
    }
    // A sane file has at most as many blocks (data and indirect) as the
    // filesystem; past that the pointers are garbage, possibly cyclic.
    let mut budget = fs.sb.blocks_count;
    let mut start = 12u64;
    for (level, slot) in [(1u32, 12usize), (2, 13), (3, 14)] {
        if start >= nblocks {
            break;
        }
        let span = per.pow(level);
        let p = u64::from(u32_at(area, slot * 4));
        if p != 0 {
            walk_indirect(fs, p, level, start, nblocks, per, &mut budget, &mut push)?;
        }
        start += span;
    }
    Ok(runs)
}

#[allow(clippy::too_many_arguments)]
fn walk_indirect(
    fs: &Ext,
    block: u64,
    level: u32,
    first_logical: u64,
    nblocks: u64,
    per: u64,
    budget: &mut u64,
    push: &mut impl FnMut(u64, u64),
) -> io::Result<()> {
    *budget = budget.checked_sub(1).ok_or_else(|| corrupt("indirect block map references more blocks than the filesystem has"))?;
    let data = fs.read_blocks(block, 1)?;
    let span = per.pow(level - 1);
    for i in 0..per {
        let logical = first_logical + i * span;
        if logical >= nblocks {
            break;
        }
        let p = u64::from(u32_at(&data, (i * 4) as usize));
        if p == 0 {
            continue;
        }
        if level == 1 {
            *budget = budget.checked_sub(1).ok_or_else(|| corrupt("indirect block map references more blocks than the filesystem has"))?;
            push(logical, p);
        } else {
            walk_indirect(fs, p, level - 1, logical, nblocks, per, budget, push)?;
        }
    }
    Ok(())
}
