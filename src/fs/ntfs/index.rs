//! Directory indexes ($I30): the entries of `$INDEX_ROOT` and of the INDX
//! blocks of `$INDEX_ALLOCATION`. Every block in use (per `$BITMAP`) is
//! read in turn instead of descending the B+tree, so every entry is found
//! once whatever the tree's shape, and a cycle of subnode pointers cannot
//! loop.

use super::filename::FileName;
use crate::util::bytes::{slice, u16_at, u32_at, u64_at};

const ENTRY_LAST: u16 = 0x0002;

/// One directory entry: the file's record number and its name key.
pub struct IndexEntry {
    pub record: u64,
    /// The record's sequence number when the entry was made (0: unchecked).
    pub seq: u16,
    pub name: FileName,
}

/// Parses the entries after an index header at `hdr` in `b` (16 bytes into
/// `$INDEX_ROOT`, 24 into an INDX block). Stops quietly at damage, saying so.
pub fn entries(b: &[u8], hdr: usize, out: &mut Vec<IndexEntry>) -> bool {
    let first = hdr + u32_at(b, hdr) as usize;
    let end = (hdr + u32_at(b, hdr + 4) as usize).min(b.len());
    let mut off = first;
    while off + 16 <= end {
        let len = usize::from(u16_at(b, off + 8));
        let key_len = usize::from(u16_at(b, off + 10));
        let flags = u16_at(b, off + 12);
        if len < 16 || off + len > end {
            return false;
        }
        if flags & ENTRY_LAST != 0 {
            return true;
        }
        if let Some(name) = FileName::parse(slice(b, off + 16, key_len)) {
            let r = u64_at(b, off);
            out.push(IndexEntry { record: r & 0xFFFF_FFFF_FFFF, seq: (r >> 48) as u16, name });
        }
        off += len;
    }
    off == end
}
