//! The XFS superblock (sector 0 of allocation group 0) and the geometry that
//! turns XFS's split block and inode numbers into byte offsets.
//!
//! XFS numbers blocks per allocation group: a filesystem block number is
//! `agno << agblklog | agbno`, where `agblklog` is rounded *up* to a power of
//! two. Unless `agblocks` is a power of two, those numbers have gaps and are
//! not linear: the byte offset is `(agno * agblocks + agbno) * blocksize`.
//! Inode numbers add the slot in the block: `agno << (agblklog + inopblog) |
//! agbno << inopblog | slot`.

use super::corrupt;
use crate::util::bytes::{be_u16_at, be_u32_at, be_u64_at, u8_at, u32_at};
use crate::util::crc::crc32c_raw;
use std::io;

const VERSION_NUMBITS: u16 = 0x000f;
const VERSION_MOREBITS: u16 = 0x8000;
const VERSION2_FTYPE: u32 = 0x0000_0200;
const INCOMPAT_FTYPE: u32 = 0x1;
const INCOMPAT_META_UUID: u32 = 0x4;
/// `XFS_SB_VERSION_LOGV2BIT`: v2 log records (always on v5).
const VERSION_LOGV2: u16 = 0x0400;
const INCOMPAT_BIGTIME: u32 = 0x8;
const INCOMPAT_NEEDSREPAIR: u32 = 0x10;
const INCOMPAT_NREXT64: u32 = 0x20;
/// Offset of `sb_crc` (v5).
const SB_CRC_OFF: usize = 224;

pub struct Superblock {
    pub version: u8,
    pub block_size: u64,
    /// Data blocks in the filesystem (all AGs; the last AG may be short).
    pub dblocks: u64,
    pub agblocks: u64,
    pub agcount: u64,
    pub agblklog: u8,
    pub inode_size: u64,
    pub inopblog: u8,
    pub root_ino: u64,
    /// Directory block size: `block_size << sb_dirblklog`.
    pub dir_block_size: u64,
    pub log_start: u64,
    pub log_blocks: u64,
    /// Inode chunk alignment in blocks (`sb_inoalignmt`).
    pub inoalignmt: u64,
    /// The UUID stamped in v5 metadata (`sb_meta_uuid` with the meta_uuid
    /// feature, else `sb_uuid`).
    pub meta_uuid: [u8; 16],
    incompat: u32,
    features2: u32,
    versionnum: u16,
    uuid: [u8; 16],
    fname: [u8; 12],
}

impl Superblock {
    pub fn parse(b: &[u8]) -> io::Result<Superblock> {
        if !crate::util::magic::Magic::Xfs.in_head(b) {
            return Err(corrupt("no XFS superblock (bad magic)"));
        }
        let versionnum = be_u16_at(b, 100);
        let version = (versionnum & VERSION_NUMBITS) as u8;
        if version != 4 && version != 5 {
            return Err(corrupt(format!("XFS superblock version {version} is not 4 or 5")));
        }
        let block_size = u64::from(be_u32_at(b, 4));
        let block_log = u8_at(b, 120);
        if !(512..=65536).contains(&block_size) || block_size != 1u64 << block_log.min(63) {
            return Err(corrupt(format!("XFS block size {block_size} is invalid")));
        }
        let inode_size = u64::from(be_u16_at(b, 104));
        let inopblog = u8_at(b, 123);
        if !(256..=2048).contains(&inode_size)
            || !inode_size.is_power_of_two()
            || inode_size > block_size
            || block_size / inode_size != 1u64 << inopblog.min(63)
        {
            return Err(corrupt(format!("XFS inode size {inode_size} is invalid for {block_size}-byte blocks")));
        }
        let agblocks = u64::from(be_u32_at(b, 84));
        let agcount = u64::from(be_u32_at(b, 88));
        let agblklog = u8_at(b, 124);
        // agblklog is log2(agblocks) rounded up; anything else would make
        // block and inode numbers ambiguous.
        if agblocks < 8 || agcount == 0 || agblklog > 32 || agblocks > 1u64 << agblklog || agblocks <= 1u64 << agblklog >> 1 {
            return Err(corrupt(format!("XFS allocation groups are invalid ({agcount} of {agblocks} blocks, log {agblklog})")));
        }
        if u32::from(agblklog) + u32::from(inopblog) > 56 {
            return Err(corrupt("XFS inode numbers would not fit in 64 bits"));
        }
        let dblocks = be_u64_at(b, 8);
        let max_blocks = agcount * agblocks;
        if dblocks == 0 || dblocks > max_blocks || dblocks <= max_blocks - agblocks {
            return Err(corrupt(format!("XFS size of {dblocks} blocks does not match {agcount} AGs of {agblocks}")));
        }
        // Every byte offset computed later is below this, so none overflows.
        if dblocks.checked_mul(block_size).is_none_or(|n| n > i64::MAX as u64) {
            return Err(corrupt(format!("XFS size of {dblocks} blocks overflows")));
        }
        let dirblklog = u8_at(b, 192);
        let dir_block_size = block_size << dirblklog.min(16);
        if dir_block_size > 65536 {
            return Err(corrupt(format!("XFS directory block size {dir_block_size} is invalid")));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[32..48]);
        let incompat = if version == 5 { be_u32_at(b, 216) } else { 0 };
        let mut meta_uuid = uuid;
        if incompat & INCOMPAT_META_UUID != 0
            && let Some(m) = b.get(248..264)
        {
            meta_uuid.copy_from_slice(m);
        }
        let mut fname = [0u8; 12];
        fname.copy_from_slice(&b[108..120]);
        Ok(Superblock {
            version,
            block_size,
            dblocks,
            agblocks,
            agcount,
            agblklog,
            inode_size,
            inopblog,
            root_ino: be_u64_at(b, 56),
            dir_block_size,
            log_start: be_u64_at(b, 48),
            log_blocks: u64::from(be_u32_at(b, 96)),
            inoalignmt: u64::from(be_u32_at(b, 180)),
            meta_uuid,
            incompat,
            features2: be_u32_at(b, 200),
            versionnum,
            uuid,
            fname,
        })
    }

    pub fn is_v5(&self) -> bool {
        self.version == 5
    }

    /// Directory entries carry the file type (v5 incompat bit, v4 features2).
    pub fn has_ftype(&self) -> bool {
        if self.is_v5() {
            self.incompat & INCOMPAT_FTYPE != 0
        } else {
            self.versionnum & VERSION_MOREBITS != 0 && self.features2 & VERSION2_FTYPE != 0
        }
    }

    /// v2 log records (large records, extended headers).
    pub fn has_logv2(&self) -> bool {
        self.is_v5() || self.versionnum & VERSION_LOGV2 != 0
    }

    pub fn has_bigtime(&self) -> bool {
        self.incompat & INCOMPAT_BIGTIME != 0
    }

    pub fn has_nrext64(&self) -> bool {
        self.incompat & INCOMPAT_NREXT64 != 0
    }

    pub fn needs_repair(&self) -> bool {
        self.incompat & INCOMPAT_NEEDSREPAIR != 0
    }

    /// v5 superblock CRC: crc32c over the sector with the field zeroed,
    /// stored inverted and little-endian.
    pub fn checksum_ok(&self, sector: &[u8]) -> bool {
        if !self.is_v5() || sector.len() < SB_CRC_OFF + 4 {
            return true;
        }
        let mut s = sector.to_vec();
        let stored = u32_at(&s, SB_CRC_OFF);
        s[SB_CRC_OFF..SB_CRC_OFF + 4].fill(0);
        !crc32c_raw(!0, &s) == stored
    }

    /// `sb_uuid` as stored.
    pub fn uuid_bytes(&self) -> [u8; 16] {
        self.uuid
    }

    pub fn label(&self) -> Option<String> {
        let end = self.fname.iter().position(|&c| c == 0).unwrap_or(12);
        let s = String::from_utf8_lossy(&self.fname[..end]).trim().to_string();
        (!s.is_empty()).then_some(s)
    }

    pub fn uuid(&self) -> String {
        crate::util::bytes::uuid(&self.uuid)
    }

    /// Linear block index (from the start of the filesystem) of the
    /// filesystem block number `fsb`, checking both halves.
    pub fn linear_block(&self, fsb: u64) -> io::Result<u64> {
        let agno = fsb >> self.agblklog;
        let agbno = fsb & ((1u64 << self.agblklog) - 1);
        let linear = agno.checked_mul(self.agblocks).and_then(|b| b.checked_add(agbno));
        match linear {
            Some(l) if agno < self.agcount && agbno < self.agblocks && l < self.dblocks => Ok(l),
            _ => Err(corrupt(format!(
                "unreadable: block {fsb} (AG {agno}, block {agbno}) is past the end of the filesystem \
                 ({} AGs of {} blocks)",
                self.agcount, self.agblocks
            ))),
        }
    }

    /// Byte offset of inode `ino`.
    pub fn inode_offset(&self, ino: u64) -> io::Result<u64> {
        let agino_bits = u32::from(self.agblklog) + u32::from(self.inopblog);
        let agno = ino >> agino_bits;
        let agbno = (ino >> self.inopblog) & ((1u64 << self.agblklog) - 1);
        let slot = ino & ((1u64 << self.inopblog) - 1);
        if agno >= self.agcount || agbno >= self.agblocks {
            return Err(corrupt(format!("inode {ino} is out of range (AG {agno}, block {agbno})")));
        }
        let block = self.linear_block(agno << self.agblklog | agbno)?;
        Ok(block * self.block_size + slot * self.inode_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal v5 superblock: 4 AGs of 19,200 4 KiB blocks, 512-byte inodes.
    fn sb() -> Superblock {
        let mut b = vec![0u8; 512];
        b[0..4].copy_from_slice(b"XFSB");
        b[4..8].copy_from_slice(&4096u32.to_be_bytes());
        b[8..16].copy_from_slice(&(4u64 * 19200).to_be_bytes());
        b[56..64].copy_from_slice(&128u64.to_be_bytes());
        b[84..88].copy_from_slice(&19200u32.to_be_bytes());
        b[88..92].copy_from_slice(&4u32.to_be_bytes());
        b[100..102].copy_from_slice(&0xb4a5u16.to_be_bytes());
        b[104..106].copy_from_slice(&512u16.to_be_bytes());
        b[120] = 12;
        b[123] = 3;
        b[124] = 15;
        Superblock::parse(&b).unwrap()
    }

    #[test]
    fn ag_relative_numbers_are_not_linear() {
        let sb = sb();
        // AG 1 starts at fsblock 1 << 15 but at linear block 19,200.
        assert_eq!(sb.linear_block(1 << 15).unwrap(), 19200);
        assert_eq!(sb.linear_block((3 << 15) | 7).unwrap(), 3 * 19200 + 7);
        // The gap between agblocks and 2^agblklog does not exist on disk.
        assert!(sb.linear_block(19200).is_err());
        assert!(sb.linear_block(4 << 15).is_err());
        // Inode: AG 2, block 100, slot 5.
        let ino = (2u64 << 18) | (100 << 3) | 5;
        assert_eq!(sb.inode_offset(ino).unwrap(), (2 * 19200 + 100) * 4096 + 5 * 512);
    }
}
