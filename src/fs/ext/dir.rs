//! ext directory entries, linear and hashed (htree) directories alike.
//!
//! An htree directory is read block by block like a linear one: its index
//! blocks present themselves as one empty entry spanning the block (and the
//! root block as `.` and `..`), and metadata_csum tails as entries with inode
//! 0, so every real entry is found exactly once without trusting the index.

use crate::fs::{DirEntry, FileKind};
use crate::util::bytes::{u8_at, u16_at, u32_at};

/// Parses every block; returns the entries and the count of damaged blocks.
pub fn parse_blocks(data: &[u8], block_size: usize, filetype: bool) -> (Vec<DirEntry>, usize) {
    let mut out = Vec::new();
    let mut damaged = 0;
    for block in data.chunks(block_size) {
        if !parse_region(block, block_size, filetype, &mut out) {
            damaged += 1;
        }
    }
    (out, damaged)
}

/// Inline directory: 4 bytes of parent inode, then entries in the rest of
/// `i_block` and in the `system.data` attribute (already appended).
pub fn parse_inline(data: &[u8], filetype: bool) -> Vec<DirEntry> {
    let mut out = Vec::new();
    let first = data.get(4..data.len().min(60)).unwrap_or(&[]);
    parse_region(first, 60, filetype, &mut out);
    if let Some(rest) = data.get(60..) {
        parse_region(rest, 60, filetype, &mut out);
    }
    out
}

/// Returns false when the region's entry chain is damaged (entries up to
/// the damage are kept).
fn parse_region(b: &[u8], block_size: usize, filetype: bool, out: &mut Vec<DirEntry>) -> bool {
    let mut off = 0usize;
    while off + 8 <= b.len() {
        let inode = u32_at(b, off);
        let mut rec_len = u16_at(b, off + 4) as usize;
        // 64 KiB blocks encode a full-block record as 0 or 65535.
        if block_size >= 65536 && (rec_len == 0 || rec_len == 65535) {
            rec_len = block_size;
        }
        let (name_len, ftype) = if filetype { (u8_at(b, off + 6) as usize, u8_at(b, off + 7)) } else { (u16_at(b, off + 6) as usize, 0) };
        if rec_len < 8 || off + rec_len > b.len() || !rec_len.is_multiple_of(4) {
            return false;
        }
        if inode != 0 && name_len > 0 && 8 + name_len <= rec_len {
            let name = &b[off + 8..off + 8 + name_len];
            if name != b"." && name != b".." {
                out.push(DirEntry { name: name.to_vec(), node: u64::from(inode), kind: FileKind::from_dirent_type(ftype) });
            }
        }
        off += rec_len;
    }
    true
}
