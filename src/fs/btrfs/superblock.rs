//! The Btrfs superblock (btrfs wiki "On-disk Format", `struct
//! btrfs_super_block`): 4 KiB at 64 KiB, with mirrors at 64 MiB and
//! 256 GiB. Its checksum covers bytes 0x20..0x1000; the checksum type also
//! governs every tree block (crc32c, xxhash64, sha256 and blake2b, all
//! verified).

use crate::util::bytes::{slice, u8_at, u16_at, u32_at, u64_at};
use crate::util::corrupt;
use sha2::Digest;
use std::io;

pub const MAGIC: &[u8; 8] = b"_BHRfS_M";
/// The primary copy and its mirrors.
pub const COPIES: [u64; 3] = [0x1_0000, 0x400_0000, 0x40_0000_0000];
pub const SIZE: usize = 4096;
/// Bytes of `sys_chunk_array`.
const SYS_CHUNK_ARRAY_MAX: usize = 2048;

/// incompat flags that change the on-disk meaning of what we read.
const INCOMPAT_METADATA_UUID: u64 = 1 << 10;
const INCOMPAT_EXTENT_TREE_V2: u64 = 1 << 13;
const INCOMPAT_RAID_STRIPE_TREE: u64 = 1 << 14;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Csum {
    Crc32c,
    XxHash64,
    Sha256,
    Blake2b,
}

impl Csum {
    pub fn name(self) -> &'static str {
        match self {
            Csum::Crc32c => "crc32c",
            Csum::XxHash64 => "xxhash64",
            Csum::Sha256 => "sha256",
            Csum::Blake2b => "blake2b",
        }
    }

    /// Whether `data`'s checksum is `stored` (the first bytes of the 32-byte
    /// field). Btrfs' blake2b is BLAKE2b-256 (a 32-byte digest, not a cut
    /// BLAKE2b-512).
    pub fn verify(self, stored: &[u8], data: &[u8]) -> bool {
        match self {
            Csum::Crc32c => {
                let c = !crate::util::crc::crc32c_raw(!0, data);
                stored.get(..4) == Some(&c.to_le_bytes()[..])
            }
            Csum::XxHash64 => stored.get(..8) == Some(&twox_hash::XxHash64::oneshot(0, data).to_le_bytes()[..]),
            Csum::Sha256 => stored.get(..32) == Some(&sha2::Sha256::digest(data)[..]),
            Csum::Blake2b => stored.get(..32) == Some(&blake2::Blake2b::<blake2::digest::consts::U32>::digest(data)[..]),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Superblock {
    pub fsid: [u8; 16],
    /// What tree block headers carry: `metadata_uuid` when the filesystem's
    /// UUID was changed afterwards, else `fsid`.
    pub meta_fsid: [u8; 16],
    pub root: u64,
    pub chunk_root: u64,
    pub log_root: u64,
    pub num_devices: u64,
    pub sectorsize: u32,
    pub nodesize: u32,
    pub root_level: u8,
    pub chunk_root_level: u8,
    pub csum: Csum,
    /// This device's id (its `dev_item`): which stripe of a chunk is ours.
    pub devid: u64,
    pub label: Vec<u8>,
    pub sys_chunk_array: Vec<u8>,
}

impl Superblock {
    /// Parses one copy, read at `at`; checks its magic, its own offset,
    /// sizes and checksum (an unverifiable checksum type is accepted: the
    /// caller warns).
    pub fn parse(b: &[u8], at: u64) -> io::Result<Superblock> {
        if slice(b, 0x40, 8) != MAGIC {
            return Err(corrupt("no Btrfs superblock magic (_BHRfS_M)"));
        }
        let csum = match u16_at(b, 0xc4) {
            0 => Csum::Crc32c,
            1 => Csum::XxHash64,
            2 => Csum::Sha256,
            3 => Csum::Blake2b,
            t => return Err(corrupt(format!("unknown checksum type {t}"))),
        };
        if b.len() < SIZE {
            return Err(corrupt("superblock truncated"));
        }
        if !csum.verify(&b[..32], &b[0x20..SIZE]) {
            return Err(corrupt(format!("superblock {} checksum mismatch", csum.name())));
        }
        let bytenr = u64_at(b, 0x30);
        if bytenr != at {
            return Err(corrupt(format!("superblock at {at} says it is at {bytenr}")));
        }
        let mut fsid = [0u8; 16];
        fsid.copy_from_slice(&b[0x20..0x30]);
        let incompat = u64_at(b, 0xbc);
        let mut meta_fsid = fsid;
        if incompat & INCOMPAT_METADATA_UUID != 0 {
            meta_fsid.copy_from_slice(&b[0x23b..0x24b]);
        }
        let sectorsize = u32_at(b, 0x90);
        let nodesize = u32_at(b, 0x94);
        if !sectorsize.is_power_of_two() || !(512..=65536).contains(&sectorsize) {
            return Err(corrupt(format!("sector size {sectorsize}")));
        }
        if !nodesize.is_power_of_two() || !(4096..=65536).contains(&nodesize) || nodesize < sectorsize {
            return Err(corrupt(format!("node size {nodesize}")));
        }
        let sys_len = u32_at(b, 0xa0) as usize;
        if sys_len > SYS_CHUNK_ARRAY_MAX {
            return Err(corrupt(format!("sys_chunk_array of {sys_len} bytes (at most {SYS_CHUNK_ARRAY_MAX})")));
        }
        if incompat & INCOMPAT_EXTENT_TREE_V2 != 0 {
            return Err(corrupt("extent tree v2 (experimental) is not supported"));
        }
        if incompat & INCOMPAT_RAID_STRIPE_TREE != 0 {
            return Err(corrupt("the RAID stripe tree (zoned RAID) is not supported"));
        }
        let label = slice(b, 0x12b, 256);
        let label = label[..label.iter().position(|&c| c == 0).unwrap_or(label.len())].to_vec();
        let (root_level, chunk_root_level) = (u8_at(b, 0xc6), u8_at(b, 0xc7));
        if root_level >= super::tree::MAX_LEVEL || chunk_root_level >= super::tree::MAX_LEVEL {
            return Err(corrupt(format!("tree root levels {root_level}/{chunk_root_level} (at most 7)")));
        }
        Ok(Superblock {
            fsid,
            meta_fsid,
            root: u64_at(b, 0x50),
            chunk_root: u64_at(b, 0x58),
            log_root: u64_at(b, 0x60),
            num_devices: u64_at(b, 0x88),
            sectorsize,
            nodesize,
            root_level,
            chunk_root_level,
            csum,
            devid: u64_at(b, 0xc9),
            label,
            sys_chunk_array: b[0x32b..0x32b + sys_len].to_vec(),
        })
    }

    pub fn uuid(&self) -> String {
        crate::util::bytes::uuid(&self.fsid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut b = vec![0u8; SIZE];
        b[0x40..0x48].copy_from_slice(MAGIC);
        b[0x30..0x38].copy_from_slice(&0x1_0000u64.to_le_bytes());
        b[0x90..0x94].copy_from_slice(&4096u32.to_le_bytes());
        b[0x94..0x98].copy_from_slice(&16384u32.to_le_bytes());
        b
    }

    fn seal(b: &mut [u8], csum: u16) {
        b[0xc4..0xc6].copy_from_slice(&csum.to_le_bytes());
        let d = b[0x20..].to_vec();
        match csum {
            0 => b[..4].copy_from_slice(&(!crate::util::crc::crc32c_raw(!0, &d)).to_le_bytes()),
            1 => b[..8].copy_from_slice(&twox_hash::XxHash64::oneshot(0, &d).to_le_bytes()),
            2 => b[..32].copy_from_slice(&sha2::Sha256::digest(&d)),
            _ => b[..32].copy_from_slice(&blake2::Blake2b::<blake2::digest::consts::U32>::digest(&d)),
        }
    }

    #[test]
    fn every_verifiable_checksum_type_is_checked() {
        for t in [0u16, 1, 2, 3] {
            let mut b = sample();
            seal(&mut b, t);
            assert!(Superblock::parse(&b, 0x1_0000).is_ok(), "type {t}");
            b[0x100] ^= 1;
            assert!(Superblock::parse(&b, 0x1_0000).unwrap_err().to_string().contains("checksum"), "type {t}");
        }
        // BLAKE2b-256("abc"), the reference implementation's value.
        let want = "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319";
        let stored: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&want[2 * i..2 * i + 2], 16).unwrap()).collect();
        assert!(Csum::Blake2b.verify(&stored, b"abc"));
        assert!(!Csum::Blake2b.verify(&stored, b"abd"));
    }

    #[test]
    fn a_copy_must_be_where_it_says() {
        let mut b = sample();
        seal(&mut b, 0);
        assert!(Superblock::parse(&b, 0x400_0000).unwrap_err().to_string().contains("says it is at"));
    }
}
