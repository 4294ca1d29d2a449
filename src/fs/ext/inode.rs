//! ext inodes: type, size, times (with nanoseconds and the epoch extension),
//! checksums, inline data.

use super::corrupt;
use super::superblock::Superblock;
use super::xattr;
use crate::fs::FileKind;
use crate::util::bytes::{u16_at, u32_at};
use crate::util::crc::crc32c_raw;
use crate::util::time::Timestamp;
use std::io;

const FL_EXTENTS: u32 = 0x80000;
const FL_INLINE_DATA: u32 = 0x1000_0000;

pub struct Inode {
    pub ino: u64,
    raw: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub links: u32,
    pub flags: u32,
    pub atime: Timestamp,
    pub ctime: Timestamp,
    pub mtime: Timestamp,
    pub crtime: Option<Timestamp>,
    extra_isize: u64,
}

impl Inode {
    pub fn parse(ino: u64, raw: Vec<u8>) -> Inode {
        let r = &raw;
        let mode = u32::from(u16_at(r, 0x00));
        let uid = u32::from(u16_at(r, 0x02)) | u32::from(u16_at(r, 0x78)) << 16;
        let gid = u32::from(u16_at(r, 0x18)) | u32::from(u16_at(r, 0x7A)) << 16;
        let size = u64::from(u32_at(r, 0x04)) | u64::from(u32_at(r, 0x6C)) << 32;
        // i_extra_isize only counts when the inode has room for it.
        let extra_isize = if raw.len() > 128 { u64::from(u16_at(r, 0x80)).min(raw.len() as u64 - 128) } else { 0 };
        let has = |end: u64| extra_isize >= end;
        let time = |base: usize, extra_off: usize, extra_end: u64| {
            let secs = i64::from(u32_at(r, base) as i32);
            if has(extra_end) {
                let extra = u32_at(r, extra_off);
                Timestamp::new(secs + (i64::from(extra & 3) << 32), extra >> 2)
            } else {
                Timestamp::new(secs, 0)
            }
        };
        Inode {
            ino,
            mode,
            uid,
            gid,
            size,
            links: u32::from(u16_at(r, 0x1A)),
            flags: u32_at(r, 0x20),
            ctime: time(0x0C, 0x84, 8),
            mtime: time(0x10, 0x88, 12),
            atime: time(0x08, 0x8C, 16),
            crtime: has(24).then(|| time(0x90, 0x94, 24)),
            extra_isize,
            raw,
        }
    }

    pub fn kind(&self) -> FileKind {
        FileKind::from_mode(self.mode)
    }

    pub fn uses_extents(&self) -> bool {
        self.flags & FL_EXTENTS != 0
    }

    pub fn has_inline_data(&self) -> bool {
        self.flags & FL_INLINE_DATA != 0
    }

    /// The 60-byte `i_block` area: block pointers, extent root, or inline
    /// data / fast symlink target.
    pub fn block_area(&self) -> &[u8] {
        &self.raw[0x28..0x28 + 60]
    }

    pub fn generation(&self) -> u32 {
        u32_at(&self.raw, 0x64)
    }

    /// Extended-attribute block (used to tell fast from slow symlinks).
    fn file_acl(&self) -> u64 {
        u64::from(u32_at(&self.raw, 0x68)) | u64::from(u16_at(&self.raw, 0x76)) << 32
    }

    /// Low 32 bits of the allocated 512-byte sector count: enough to tell
    /// "none" from "some", which is all it is used for.
    fn sectors_lo(&self) -> u64 {
        u64::from(u32_at(&self.raw, 0x1C))
    }

    /// A fast symlink keeps its target in `i_block`: the kernel's test is
    /// "no data blocks besides an xattr block" (which takes a whole cluster
    /// with bigalloc).
    pub fn is_fast_symlink(&self, cluster_size: u64) -> bool {
        if self.uses_extents() || self.has_inline_data() || self.size >= 60 {
            return false;
        }
        let ea = if self.file_acl() != 0 { cluster_size / 512 } else { 0 };
        self.sectors_lo().saturating_sub(ea) == 0
    }

    /// metadata_csum inode checksum: crc32c over the inode number, the
    /// generation and the whole on-disk inode with the checksum fields zeroed.
    pub fn checksum_ok(&self, sb: &Superblock) -> bool {
        if !sb.metadata_csum() {
            return true;
        }
        let mut raw = self.raw.clone();
        let lo = u16_at(&raw, 0x7C);
        raw[0x7C..0x7E].fill(0);
        let has_hi = self.extra_isize >= 4;
        let hi = if has_hi { u16_at(&raw, 0x82) } else { 0 };
        if has_hi {
            raw[0x82..0x84].fill(0);
        }
        let mut c = crc32c_raw(sb.csum_seed, &(self.ino as u32).to_le_bytes());
        c = crc32c_raw(c, &self.generation().to_le_bytes());
        c = crc32c_raw(c, &raw);
        if has_hi { c == (u32::from(hi) << 16 | u32::from(lo)) } else { (c & 0xFFFF) as u16 == lo }
    }

    /// Inline data: the 60 bytes of `i_block` followed by the value of the
    /// `system.data` extended attribute in the inode body, cut to i_size.
    pub fn inline_data(&self, block_size: u64) -> io::Result<Vec<u8>> {
        if self.size > block_size.max(4096) {
            return Err(corrupt(format!("inode {}: inline data of {} bytes cannot fit in an inode", self.ino, self.size)));
        }
        let mut out = self.block_area().to_vec();
        let more = self.xattr_in_body(7, b"data").map_err(|e| corrupt(format!("inode {}: inline data: {e}", self.ino)))?;
        if let Some(more) = more {
            out.extend_from_slice(more);
        }
        out.truncate(self.size as usize);
        // A directory's inline size is the whole area, whatever i_size says.
        Ok(out)
    }

    /// The attribute entries stored in the inode body, if any (an error
    /// when they are damaged).
    pub fn body_xattrs(&self) -> Result<Vec<xattr::Entry<'_>>, String> {
        let start = 128 + self.extra_isize as usize;
        match self.raw.get(start..) {
            Some(body) if body.len() >= 4 && u32_at(body, 0) == xattr::MAGIC => xattr::entries(&body[4..], 0),
            _ => Ok(Vec::new()),
        }
    }

    /// Value of an extended attribute stored in the inode body
    /// (`name_index` 7 is the `system.` namespace).
    pub fn xattr_in_body(&self, name_index: u8, name: &[u8]) -> Result<Option<&[u8]>, String> {
        Ok(self.body_xattrs()?.into_iter().find(|e| e.index == name_index && e.name == name).and_then(|e| match e.value {
            xattr::Value::Inline(v) => Some(v),
            xattr::Value::Inode(..) => None,
        }))
    }

    /// The external attribute block, if any.
    pub fn xattr_block(&self) -> u64 {
        self.file_acl()
    }

    /// (major, minor) of a device inode: the old 8:8 encoding in
    /// `i_block[0]`, or the new 12:20 one in `i_block[1]`.
    pub fn rdev(&self) -> Option<(u32, u32)> {
        if !matches!(self.kind(), FileKind::CharDevice | FileKind::BlockDevice) {
            return None;
        }
        let old = u32_at(&self.raw, 0x28);
        if old != 0 {
            return Some(((old >> 8) & 0xff, old & 0xff));
        }
        let new = u32_at(&self.raw, 0x2C);
        Some(((new & 0xfff00) >> 8, (new & 0xff) | ((new >> 12) & 0xfff00)))
    }
}
