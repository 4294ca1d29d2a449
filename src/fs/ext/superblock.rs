//! The ext superblock (at byte 1024) and group descriptor fields.

use super::corrupt;
use crate::util::bytes::{u16_at, u32_at};
use crate::util::crc::crc32c_raw;
use std::io;

const COMPAT_HAS_JOURNAL: u32 = 0x4;
const INCOMPAT_FILETYPE: u32 = 0x2;
const INCOMPAT_RECOVER: u32 = 0x4;
const INCOMPAT_META_BG: u32 = 0x10;
const INCOMPAT_EXTENTS: u32 = 0x40;
const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_FLEX_BG: u32 = 0x200;
const INCOMPAT_CSUM_SEED: u32 = 0x2000;
const INCOMPAT_INLINE_DATA: u32 = 0x8000;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const RO_COMPAT_HUGE_FILE: u32 = 0x8;
const RO_COMPAT_GDT_CSUM: u32 = 0x10;
const RO_COMPAT_DIR_NLINK: u32 = 0x20;
const RO_COMPAT_EXTRA_ISIZE: u32 = 0x40;
const RO_COMPAT_BIGALLOC: u32 = 0x200;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

pub struct Superblock {
    pub inodes_count: u32,
    pub blocks_count: u64,
    pub first_data_block: u64,
    pub block_size: u64,
    pub blocks_per_group: u64,
    /// Allocation unit: the block size, or a bigalloc cluster.
    pub cluster_size: u64,
    pub inodes_per_group: u32,
    pub inode_size: u64,
    pub desc_size: u64,
    pub first_meta_bg: u64,
    compat: u32,
    incompat: u32,
    ro_compat: u32,
    uuid: [u8; 16],
    volume_name: [u8; 16],
    stored_csum: u32,
    /// The journal's inode (usually 8), or 0 with an external journal.
    pub journal_inum: u32,
    /// An external journal's device number and UUID.
    pub journal_dev: u32,
    pub journal_uuid: [u8; 16],
    /// `s_jnl_blocks` when `s_jnl_backup_type` says it holds a copy of the
    /// journal inode's block map (15 words), size high and low.
    pub journal_backup: Option<[u8; 68]>,
    /// Seed for metadata checksums (crc32c of the UUID, or stored).
    pub csum_seed: u32,
}

impl Superblock {
    pub fn parse(b: &[u8]) -> io::Result<Superblock> {
        if u16_at(b, 0x38) != 0xEF53 {
            return Err(corrupt("no ext2/3/4 superblock (bad magic)"));
        }
        let log = u32_at(b, 0x18);
        if log > 6 {
            return Err(corrupt(format!("block size 2^(10+{log}) is not a valid ext block size")));
        }
        let block_size = 1024u64 << log;
        let incompat = u32_at(b, 0x60);
        let rev = u32_at(b, 0x4C);
        let inode_size = if rev == 0 { 128 } else { u64::from(u16_at(b, 0x58)) };
        if inode_size < 128 || inode_size > block_size || !inode_size.is_power_of_two() {
            return Err(corrupt(format!("inode size {inode_size} is invalid")));
        }
        let desc_size = if incompat & INCOMPAT_64BIT != 0 { u64::from(u16_at(b, 0xFE)).max(32) } else { 32 };
        if desc_size > 1024 || !desc_size.is_power_of_two() {
            return Err(corrupt(format!("group descriptor size {desc_size} is invalid")));
        }
        let mut blocks_count = u64::from(u32_at(b, 0x04));
        if incompat & INCOMPAT_64BIT != 0 {
            blocks_count |= u64::from(u32_at(b, 0x150)) << 32;
        }
        let blocks_per_group = u64::from(u32_at(b, 0x20));
        let inodes_per_group = u32_at(b, 0x28);
        // bigalloc allocates in clusters of 2^n blocks: a group's bitmap
        // covers `s_clusters_per_group` clusters, so it spans that many
        // times the cluster ratio in blocks (extents still count blocks).
        let ratio = if u32_at(b, 0x64) & RO_COMPAT_BIGALLOC != 0 {
            let log_cluster = u32_at(b, 0x1C);
            if log_cluster < log || log_cluster - log > 16 {
                return Err(corrupt(format!("bigalloc cluster size 2^(10+{log_cluster}) for blocks of 2^(10+{log})")));
            }
            let ratio = 1u64 << (log_cluster - log);
            if u64::from(u32_at(b, 0x24)) * ratio != blocks_per_group {
                return Err(corrupt("superblock: blocks per group is not clusters per group times the cluster size"));
            }
            ratio
        } else {
            1
        };
        if blocks_per_group == 0 || inodes_per_group == 0 || blocks_per_group > block_size * 8 * 8 * ratio {
            return Err(corrupt("superblock: zero or implausible blocks/inodes per group"));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[0x68..0x78]);
        let mut volume_name = [0u8; 16];
        volume_name.copy_from_slice(&b[0x78..0x88]);
        let csum_seed = if incompat & INCOMPAT_CSUM_SEED != 0 { u32_at(b, 0x270) } else { crc32c_raw(!0, &uuid) };
        let sb = Superblock {
            inodes_count: u32_at(b, 0x00),
            blocks_count,
            first_data_block: u64::from(u32_at(b, 0x14)),
            block_size,
            blocks_per_group,
            cluster_size: block_size * ratio,
            inodes_per_group,
            inode_size,
            desc_size,
            first_meta_bg: u64::from(u32_at(b, 0x104)),
            compat: u32_at(b, 0x5C),
            incompat,
            ro_compat: u32_at(b, 0x64),
            uuid,
            volume_name,
            stored_csum: u32_at(b, 0x3FC),
            journal_inum: u32_at(b, 0xE0),
            journal_dev: u32_at(b, 0xE4),
            journal_uuid: b.get(0xD0..0xE0).and_then(|u| u.try_into().ok()).unwrap_or([0; 16]),
            // EXT3_JNL_BACKUP_BLOCKS
            journal_backup: if b.get(0xFD) == Some(&1) { b.get(0x10C..0x150).and_then(|u| u.try_into().ok()) } else { None },
            csum_seed,
        };
        // Bound the group count (and so the descriptor table we read).
        if sb.group_count() > 1 << 24 {
            return Err(corrupt(format!("{} block groups is implausible", sb.group_count())));
        }
        Ok(sb)
    }

    pub fn group_count(&self) -> u64 {
        self.blocks_count.saturating_sub(self.first_data_block).div_ceil(self.blocks_per_group)
    }

    pub fn metadata_csum(&self) -> bool {
        self.ro_compat & RO_COMPAT_METADATA_CSUM != 0
    }

    pub fn checksum_ok(&self, raw: &[u8]) -> bool {
        !self.metadata_csum() || crc32c_raw(!0, &raw[..0x3FC]) == self.stored_csum
    }

    pub fn needs_recovery(&self) -> bool {
        self.incompat & INCOMPAT_RECOVER != 0
    }

    pub fn has_filetype(&self) -> bool {
        self.incompat & INCOMPAT_FILETYPE != 0
    }

    /// ext4 if any ext4-only feature is on, ext3 if it has a journal.
    pub fn kind(&self) -> &'static str {
        let ext4_incompat = INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG | INCOMPAT_INLINE_DATA;
        let ext4_ro = RO_COMPAT_HUGE_FILE | RO_COMPAT_GDT_CSUM | RO_COMPAT_DIR_NLINK | RO_COMPAT_EXTRA_ISIZE | RO_COMPAT_METADATA_CSUM;
        if self.incompat & ext4_incompat != 0 || self.ro_compat & ext4_ro != 0 {
            "ext4"
        } else if self.compat & COMPAT_HAS_JOURNAL != 0 {
            "ext3"
        } else {
            "ext2"
        }
    }

    pub fn label(&self) -> Option<String> {
        let end = self.volume_name.iter().position(|&c| c == 0).unwrap_or(16);
        let s = String::from_utf8_lossy(&self.volume_name[..end]).trim().to_string();
        (!s.is_empty()).then_some(s)
    }

    pub fn uuid(&self) -> String {
        crate::util::bytes::uuid(&self.uuid)
    }

    /// Block holding the `index`-th block of group descriptors.
    pub fn descriptor_block(&self, index: u64) -> u64 {
        let per_block = self.block_size / self.desc_size;
        // The block after the superblock's (byte 1024): block 2 with 1 KiB
        // blocks even when bigalloc makes the first data block 0.
        let sb_block = 1024 / self.block_size;
        if self.incompat & INCOMPAT_META_BG == 0 || index < self.first_meta_bg {
            return sb_block + 1 + index;
        }
        // meta_bg: each metagroup's descriptors sit in its first group,
        // after the superblock backup if that group has one (and, in group
        // 0 of a 1 KiB-block bigalloc volume, after block 1's superblock).
        let group = index * per_block;
        let base = group * self.blocks_per_group + self.first_data_block;
        let first = group == 0 && self.block_size == 1024 && self.first_data_block == 0;
        base + u64::from(self.group_has_super(group)) + u64::from(first)
    }

    fn group_has_super(&self, g: u64) -> bool {
        if self.ro_compat & RO_COMPAT_SPARSE_SUPER == 0 || g <= 1 {
            return true;
        }
        [3u64, 5, 7].iter().any(|&p| {
            let mut n = p;
            while n < g {
                n *= p;
            }
            n == g
        })
    }
}

/// The inode table block from a group descriptor.
pub fn inode_table_of(d: &[u8], desc_size: u64) -> u64 {
    let lo = u64::from(u32_at(d, 0x08));
    let hi = if desc_size >= 64 { u64::from(u32_at(d, 0x28)) } else { 0 };
    lo | hi << 32
}
