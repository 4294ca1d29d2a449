//! Block maps: extent records in the inode and the bmap B+tree (`BMAP`/`BMA3`
//! long-format blocks under a `bmdr` root in the inode). The runs are read
//! through the reader shared with ext (`fs::extents`), with block numbers
//! already out of allocation-group form.

use super::inode::{Format, Inode};
use super::{Xfs, corrupt};
use crate::fs::extents::{Extent, MappedReader};
use crate::util::bytes::{be_u16_at, be_u64_at};
use std::collections::HashSet;
use std::io;

/// More extents than this is corruption (16 M records is 256 MiB of them).
const MAX_EXTENTS: u64 = 16 << 20;
/// A bmap btree of 9 levels already addresses more than 2^54 blocks.
const MAX_LEVEL: u16 = 9;
const BMAP_MAGIC: &[u8; 4] = b"BMAP";
const BMA3_MAGIC: &[u8; 4] = b"BMA3";

/// Decodes one 16-byte bmbt record: flag (1 bit), file offset (54),
/// filesystem block (52), length (21).
fn record(fs: &Xfs, ino: u64, r: &[u8]) -> io::Result<Option<Extent>> {
    let hi = be_u64_at(r, 0);
    let lo = be_u64_at(r, 8);
    let unwritten = hi >> 63 != 0;
    let logical = (hi & (u64::MAX >> 1)) >> 9;
    let fsb = (hi & 0x1ff) << 43 | lo >> 21;
    let len = lo & 0x1f_ffff;
    if len == 0 {
        return Ok(None);
    }
    let linear = fs.sb.linear_block(fsb).map_err(|e| corrupt(format!("inode {ino}: extent: {e}")))?;
    // Extents never span allocation groups.
    let agbno = fsb & ((1u64 << fs.sb.agblklog) - 1);
    if agbno + len > fs.sb.agblocks || linear + len > fs.sb.dblocks {
        return Err(corrupt(format!(
            "unreadable: inode {ino}: extent at block {fsb} of {len} blocks runs past the end of its allocation group"
        )));
    }
    Ok(Some(Extent { logical, physical: linear, len, unwritten }))
}

/// All extents of the data fork, sorted by file offset.
pub fn extents(fs: &Xfs, inode: &Inode) -> io::Result<Vec<Extent>> {
    fork_extents(fs, inode, inode.data_fork(), inode.format, inode.nextents)
}

/// All extents of the attribute fork (none when it is local or absent).
pub fn attr_extents(fs: &Xfs, inode: &Inode) -> io::Result<Vec<Extent>> {
    match inode.aformat {
        Some(f) => fork_extents(fs, inode, inode.attr_fork(), f, inode.anextents),
        None => Ok(Vec::new()),
    }
}

fn fork_extents(fs: &Xfs, inode: &Inode, fork: &[u8], format: Format, nextents: u64) -> io::Result<Vec<Extent>> {
    let mut out = Vec::new();
    match format {
        Format::Extents => {
            if nextents.saturating_mul(16) > fork.len() as u64 {
                return Err(corrupt(format!("inode {}: {} extents do not fit in the inode's fork", inode.ino, nextents)));
            }
            for r in fork.chunks_exact(16).take(nextents as usize) {
                out.extend(record(fs, inode.ino, r)?);
            }
        }
        Format::Btree => {
            // bmdr root: level, numrecs, then keys and pointers sized for
            // the whole fork.
            let level = be_u16_at(fork, 0);
            let numrecs = usize::from(be_u16_at(fork, 2));
            let maxrecs = fork.len().saturating_sub(4) / 16;
            if level == 0 || level > MAX_LEVEL || numrecs > maxrecs {
                return Err(corrupt(format!("inode {}: bmap btree root is invalid", inode.ino)));
            }
            let mut walk = Walk { seen: HashSet::new(), budget: MAX_EXTENTS.min(fs.sb.dblocks) };
            for i in 0..numrecs {
                let ptr = be_u64_at(fork, 4 + maxrecs * 8 + i * 8);
                walk_block(fs, inode.ino, ptr, level - 1, &mut out, &mut walk)?;
            }
        }
        Format::Local | Format::Device => {}
    }
    out.sort_by_key(|e| e.logical);
    Ok(out)
}

/// Bounds on one walk: blocks visited (each at most once, so shared or
/// cyclic pointers cannot loop or blow up) and records left.
struct Walk {
    seen: HashSet<u64>,
    budget: u64,
}

/// One long-format btree block at `level` (0 = leaf).
fn walk_block(fs: &Xfs, ino: u64, fsb: u64, level: u16, out: &mut Vec<Extent>, walk: &mut Walk) -> io::Result<()> {
    if !walk.seen.insert(fsb) {
        return Err(corrupt(format!("inode {ino}: bmap btree block {fsb} is referenced twice")));
    }
    let b = fs.read_fsblock(fsb)?;
    let (magic, hdr) = if fs.sb.is_v5() { (BMA3_MAGIC, 72) } else { (BMAP_MAGIC, 24) };
    if b.get(0..4) != Some(magic) {
        return Err(corrupt(format!("inode {ino}: bmap btree block {fsb} has a bad magic number")));
    }
    if fs.sb.is_v5() && be_u64_at(&b, 56) != ino {
        return Err(corrupt(format!("inode {ino}: bmap btree block {fsb} belongs to inode {}", be_u64_at(&b, 56))));
    }
    if be_u16_at(&b, 4) != level {
        return Err(corrupt(format!("inode {ino}: bmap btree block {fsb} is at the wrong level")));
    }
    let numrecs = usize::from(be_u16_at(&b, 6));
    let maxrecs = (b.len() - hdr) / 16;
    if numrecs > maxrecs {
        return Err(corrupt(format!("inode {ino}: bmap btree block {fsb} claims {numrecs} records")));
    }
    if level == 0 {
        for r in b[hdr..].chunks_exact(16).take(numrecs) {
            walk.budget =
                walk.budget.checked_sub(1).ok_or_else(|| corrupt(format!("inode {ino}: more extents than the filesystem has blocks")))?;
            out.extend(record(fs, ino, r)?);
        }
        return Ok(());
    }
    // Node: keys (8 bytes each) for maxrecs entries, then pointers.
    let ptrs = hdr + maxrecs * 8;
    for i in 0..numrecs {
        let child = be_u64_at(&b, ptrs + i * 8);
        walk_block(fs, ino, child, level - 1, out, walk)?;
    }
    Ok(())
}

/// A reader over `size` bytes of a fork mapped by `extents`.
pub fn reader(fs: &Xfs, extents: Vec<Extent>, size: u64) -> MappedReader<'_> {
    MappedReader::new(&*fs.dev, fs.sb.block_size, fs.sb.dblocks, extents, size)
}
