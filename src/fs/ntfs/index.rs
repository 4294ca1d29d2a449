//! Directory indexes ($I30): the entries of `$INDEX_ROOT` and of the INDX
//! blocks of `$INDEX_ALLOCATION`. Every block in use (per `$BITMAP`) is
//! read in turn instead of descending the B+tree, so every entry is found
//! once whatever the tree's shape, and a cycle of subnode pointers cannot
//! loop.

use super::filename::FileName;
use super::mft::File;
use super::record::{AT_BITMAP, AT_INDEX_ALLOCATION, AT_INDEX_ROOT, Body, apply_fixups};
use super::{Ntfs, corrupt};
use crate::util::bytes::{slice, u16_at, u32_at, u64_at};
use std::io;

/// Directory index allocations larger than this are refused.
const MAX_INDEX_BYTES: u64 = 1 << 30;

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

impl Ntfs {
    /// The entries of a directory's $I30 index, and what of it was damaged.
    pub(super) fn index_entries(&self, dir: u64, f: &File) -> io::Result<(Vec<IndexEntry>, Option<String>)> {
        let i30: Vec<u16> = "$I30".encode_utf16().collect();
        let root = f.attr(AT_INDEX_ROOT, &i30).ok_or_else(|| corrupt(format!("unreadable: directory {dir} has no $I30 index root")))?;
        let root = self.attr_bytes(root, 1 << 20)?;
        let mut out = Vec::new();
        let root_damaged = !entries(&root, 16, &mut out);
        let Some(alloc) = f.attr(AT_INDEX_ALLOCATION, &i30) else {
            return Ok((out, root_damaged.then(|| "damaged index root".to_string())));
        };
        let Body::NonResident(nr) = &alloc.body else {
            return Err(corrupt(format!("unreadable: directory {dir}: resident $INDEX_ALLOCATION")));
        };
        let s = self.stream_of(std::slice::from_ref(nr), 0, true)?;
        if s.data_size > MAX_INDEX_BYTES {
            return Err(corrupt(format!("unreadable: directory {dir}: index of {} bytes", s.data_size)));
        }
        let bitmap = f.attr(AT_BITMAP, &i30).and_then(|b| self.attr_bytes(b, 1 << 20).ok());
        let bs = self.boot.index_block_size;
        let mut buf = vec![0u8; bs as usize];
        let mut damaged = 0;
        for i in 0..s.data_size / bs {
            if let Some(bm) = &bitmap
                && bm.get((i / 8) as usize).is_none_or(|b| b >> (i % 8) & 1 == 0)
            {
                continue;
            }
            let ok = self.read_stream_exact(&s, i * bs, &mut buf).is_ok()
                && apply_fixups(&mut buf, b"INDX", "index block").is_ok()
                && entries(&buf, 24, &mut out);
            if !ok {
                damaged += 1;
            }
        }
        let damage = match (root_damaged, damaged) {
            (false, 0) => None,
            (true, 0) => Some("damaged index root".to_string()),
            (r, n) => Some(format!("{}{n} damaged index block(s) skipped", if r { "damaged index root, " } else { "" })),
        };
        Ok((out, damage))
    }
}
