//! XFS inodes: the core (v1/v2: 100 bytes, v3: 176 bytes), the data and
//! attribute forks that share the rest of the inode, and timestamps (legacy
//! seconds + nanoseconds, or bigtime nanoseconds since 1901).

use super::corrupt;
use super::superblock::Superblock;
use crate::fs::FileKind;
use crate::util::bytes::{be_u16_at, be_u32_at, be_u64_at, u8_at, u32_at};
use crate::util::crc::crc32c_raw;
use crate::util::time::Timestamp;
use std::io;

const MAGIC: u16 = 0x494e; // "IN"
const DIFLAG2_BIGTIME: u64 = 1 << 3;
const DIFLAG2_NREXT64: u64 = 1 << 4;
/// Bigtime counts from the old signed 32-bit minimum, 1901-12-13T20:45:52Z.
const BIGTIME_EPOCH_OFFSET: i64 = 1 << 31;

/// How a fork stores its content (`di_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Device,
    /// The data itself is in the fork (short-form directories, symlinks).
    Local,
    Extents,
    Btree,
}

pub struct Inode {
    pub ino: u64,
    raw: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub size: u64,
    pub format: Format,
    /// Data fork extent records (extents format).
    pub nextents: u64,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub crtime: Option<Timestamp>,
    /// False when a v3 inode's CRC does not match: its fields, and above
    /// all its size, are then suspect.
    pub checksum_ok: bool,
    core_size: usize,
    forkoff: usize,
    /// Attribute fork format and extent count.
    pub aformat: Option<Format>,
    pub anextents: u64,
}

impl Inode {
    pub fn parse(ino: u64, raw: Vec<u8>, sb: &Superblock) -> io::Result<Inode> {
        let r = &raw;
        if be_u16_at(r, 0) != MAGIC {
            return Err(corrupt(format!("inode {ino}: bad magic (not an XFS inode)")));
        }
        let version = u8_at(r, 4);
        let core_size = match version {
            1 | 2 => 100,
            3 if sb.is_v5() => 176,
            v => return Err(corrupt(format!("inode {ino}: inode version {v} on a v{} filesystem", sb.version))),
        };
        if version == 3 && be_u64_at(r, 152) != ino {
            return Err(corrupt(format!("inode {ino}: the inode records number {} (stale or misplaced)", be_u64_at(r, 152))));
        }
        let format = match u8_at(r, 5) {
            0 => Format::Device,
            1 => Format::Local,
            2 => Format::Extents,
            3 => Format::Btree,
            f => return Err(corrupt(format!("inode {ino}: unknown data fork format {f}"))),
        };
        let flags2 = if version == 3 { be_u64_at(r, 120) } else { 0 };
        let bigtime = flags2 & DIFLAG2_BIGTIME != 0 && sb.has_bigtime();
        let time = |off: usize| {
            if bigtime {
                let ns = be_u64_at(r, off);
                Timestamp::new((ns / 1_000_000_000) as i64 - BIGTIME_EPOCH_OFFSET, (ns % 1_000_000_000) as u32)
            } else {
                Timestamp::new(i64::from(be_u32_at(r, off) as i32), be_u32_at(r, off + 4))
            }
        };
        // Large extent counters move the data fork count to a 64-bit field
        // in what was padding.
        let nextents = if flags2 & DIFLAG2_NREXT64 != 0 && sb.has_nrext64() { be_u64_at(r, 24) } else { u64::from(be_u32_at(r, 76)) };
        let forkoff = usize::from(u8_at(r, 82)) * 8;
        if core_size + forkoff > raw.len() {
            return Err(corrupt(format!("inode {ino}: attribute fork offset {forkoff} is past the inode")));
        }
        // The attribute fork exists when di_forkoff is set.
        let aformat = if forkoff == 0 {
            None
        } else {
            match u8_at(r, 83) {
                1 => Some(Format::Local),
                2 => Some(Format::Extents),
                3 => Some(Format::Btree),
                f => return Err(corrupt(format!("inode {ino}: unknown attribute fork format {f}"))),
            }
        };
        let anextents =
            if flags2 & DIFLAG2_NREXT64 != 0 && sb.has_nrext64() { u64::from(be_u32_at(r, 76)) } else { u64::from(be_u16_at(r, 80)) };
        let size = be_u64_at(r, 56);
        if size > i64::MAX as u64 {
            return Err(corrupt(format!("inode {ino}: size {size} is negative")));
        }
        Ok(Inode {
            ino,
            mode: u32::from(be_u16_at(r, 2)),
            uid: be_u32_at(r, 8),
            gid: be_u32_at(r, 12),
            nlink: if version == 1 { u32::from(be_u16_at(r, 6)) } else { be_u32_at(r, 16) },
            size,
            format,
            nextents,
            atime: time(32),
            mtime: time(40),
            ctime: time(48),
            crtime: (version == 3).then(|| time(144)),
            checksum_ok: Self::crc_matches(core_size, &raw),
            core_size,
            forkoff,
            aformat,
            anextents,
            raw,
        })
    }

    /// v3 inode CRC (crc32c over the whole inode with `di_crc` zeroed,
    /// stored inverted, little-endian). Older inodes have none.
    fn crc_matches(core_size: usize, raw: &[u8]) -> bool {
        if core_size != 176 {
            return true;
        }
        let mut raw = raw.to_vec();
        let stored = u32_at(&raw, 100);
        raw[100..104].fill(0);
        !crc32c_raw(!0, &raw) == stored
    }

    pub fn kind(&self) -> FileKind {
        FileKind::from_mode(self.mode)
    }

    /// The data fork: from the end of the core to the attribute fork (or
    /// the end of the inode when there is none).
    pub fn data_fork(&self) -> &[u8] {
        let end = if self.forkoff > 0 { self.core_size + self.forkoff } else { self.raw.len() };
        &self.raw[self.core_size..end]
    }

    /// The attribute fork: from `di_forkoff` to the end of the inode.
    pub fn attr_fork(&self) -> &[u8] {
        if self.forkoff == 0 { &[] } else { &self.raw[self.core_size + self.forkoff..] }
    }

    /// (major, minor) of a device inode: XFS stores a 32-bit dev_t with a
    /// 14-bit major and an 18-bit minor in the data fork.
    pub fn rdev(&self) -> Option<(u32, u32)> {
        if self.format != Format::Device || !matches!(self.kind(), FileKind::CharDevice | FileKind::BlockDevice) {
            return None;
        }
        let dev = be_u32_at(self.data_fork(), 0);
        Some((dev >> 18, dev & 0x3ffff))
    }
}
