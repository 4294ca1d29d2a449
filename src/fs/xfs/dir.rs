//! XFS version 2/3 directories.
//!
//! Short-form directories live in the inode. All other formats (block, leaf,
//! node, btree) keep every entry in *data* blocks below the 32 GiB "leaf
//! offset"; the leaf, node and free-space blocks above it are only indexes.
//! So reading every data block in order lists any directory, however it is
//! indexed, and a damaged index cannot hide entries.

use crate::fs::{DirEntry, FileKind};
use crate::util::bytes::{be_u16_at, be_u32_at, be_u64_at, u8_at};

/// Data blocks live at file offsets below this (XFS_DIR2_LEAF_OFFSET).
pub const LEAF_OFFSET: u64 = 32 << 30;

fn push(out: &mut Vec<DirEntry>, name: &[u8], ino: u64, ftype: Option<u8>) {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) || ino == 0 {
        return;
    }
    out.push(DirEntry { name: name.to_vec(), node: ino, kind: ftype.map_or(FileKind::Unknown, FileKind::from_dirent_type) });
}

/// A short-form directory (the inode's data fork). Returns the entries and
/// whether the structure was damaged (entries past the fork are dropped).
pub fn parse_shortform(fork: &[u8], has_ftype: bool) -> (Vec<DirEntry>, bool) {
    let count = usize::from(u8_at(fork, 0));
    let i8count = usize::from(u8_at(fork, 1));
    // Inode numbers are 4 bytes unless some need 8 (then all are 8).
    let ino_len = if i8count > 0 { 8 } else { 4 };
    let mut off = 2 + ino_len; // header: counts, parent inode
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let namelen = usize::from(u8_at(fork, off));
        let name_at = off + 3; // namelen, 2-byte offset tag
        let ft_at = name_at + namelen;
        let ino_at = ft_at + usize::from(has_ftype);
        let end = ino_at + ino_len;
        if namelen == 0 || end > fork.len() {
            return (out, true);
        }
        let ino = if ino_len == 8 { be_u64_at(fork, ino_at) } else { u64::from(be_u32_at(fork, ino_at)) };
        push(&mut out, &fork[name_at..ft_at], ino, has_ftype.then(|| u8_at(fork, ft_at)));
        off = end;
    }
    (out, false)
}

const XD2B: &[u8; 4] = b"XD2B";
const XD2D: &[u8; 4] = b"XD2D";
const XDB3: &[u8; 4] = b"XDB3";
const XDD3: &[u8; 4] = b"XDD3";

/// One directory data block (`XD2B`/`XD2D` on v4, `XDB3`/`XDD3` on v5).
/// Returns false when it is not a data block or is damaged; entries found
/// before the damage are kept.
pub fn parse_data_block(b: &[u8], v5: bool, has_ftype: bool, owner: u64, out: &mut Vec<DirEntry>) -> bool {
    let magic = b.get(0..4);
    let (is_block, hdr) = match magic {
        Some(m) if !v5 && m == XD2B => (true, 16),
        Some(m) if !v5 && m == XD2D => (false, 16),
        Some(m) if v5 && m == XDB3 => (true, 64),
        Some(m) if v5 && m == XDD3 => (false, 64),
        _ => return false,
    };
    // v5 blocks name their directory: a block of another one is stale.
    if v5 && be_u64_at(b, 40) != owner {
        return false;
    }
    // A single-block directory keeps its leaf entries and a tail (count,
    // stale) at the end of the same block.
    let mut end = b.len();
    if is_block {
        let count = be_u32_at(b, b.len().saturating_sub(8)) as usize;
        match count.checked_mul(8).and_then(|l| b.len().checked_sub(8 + l)) {
            Some(e) if e >= hdr => end = e,
            _ => return false,
        }
    }
    let mut off = hdr;
    while off + 8 <= end {
        if be_u16_at(b, off) == 0xffff {
            // Unused space: freetag, length.
            let len = usize::from(be_u16_at(b, off + 2));
            if len < 8 || len % 8 != 0 {
                return false;
            }
            off += len;
            continue;
        }
        // inumber, namelen, name, [ftype], padding, 2-byte tag; 8-aligned.
        let ino = be_u64_at(b, off);
        let namelen = usize::from(u8_at(b, off + 8));
        let name_at = off + 9;
        let entry_len = (9 + namelen + usize::from(has_ftype) + 2).div_ceil(8) * 8;
        if namelen == 0 || off + entry_len > end {
            return false;
        }
        let ftype = has_ftype.then(|| u8_at(b, name_at + namelen));
        push(out, &b[name_at..name_at + namelen], ino, ftype);
        off += entry_len;
    }
    true
}
