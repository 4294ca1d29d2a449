//! Logical → physical addresses: the chunk items (`struct btrfs_chunk`,
//! 48 bytes, then `num_stripes` stripes of 32) of the superblock's
//! `sys_chunk_array` (enough to read the chunk tree) and then of the chunk
//! tree itself.
//!
//! Profiles whose every stripe holds the whole chunk (SINGLE, DUP, RAID1,
//! RAID1C3/C4) are read from the stripes on this device, first copy first;
//! striped profiles (RAID0, RAID10, RAID5, RAID6) need the other devices
//! and are refused with a clear error.

use super::tree::Key;
use crate::util::bytes::{u16_at, u64_at};
use crate::util::corrupt;
use std::io;

pub const CHUNK_ITEM: u8 = 228;
const CHUNK_LEN: usize = 48;
const STRIPE_LEN: usize = 32;
const RAID0: u64 = 1 << 3;
const RAID10: u64 = 1 << 6;
const RAID5: u64 = 1 << 7;
const RAID6: u64 = 1 << 8;

#[derive(Clone, Debug)]
pub struct Chunk {
    pub logical: u64,
    pub length: u64,
    pub flags: u64,
    /// (devid, physical offset) of each stripe.
    pub stripes: Vec<(u64, u64)>,
}

impl Chunk {
    /// One chunk item at the start of `b` for logical address `logical`;
    /// also the bytes it took.
    pub fn parse(logical: u64, b: &[u8]) -> io::Result<(Chunk, usize)> {
        if b.len() < CHUNK_LEN {
            return Err(corrupt(format!("chunk item at {logical} truncated")));
        }
        let length = u64_at(b, 0);
        let n = u16_at(b, 44) as usize;
        let need = CHUNK_LEN + n * STRIPE_LEN;
        if n == 0 || b.len() < need {
            return Err(corrupt(format!("chunk item at {logical}: {n} stripes in {} bytes", b.len())));
        }
        if length == 0 || logical.checked_add(length).is_none() {
            return Err(corrupt(format!("chunk item at {logical}: length {length}")));
        }
        let stripes = (0..n).map(|i| (u64_at(b, CHUNK_LEN + i * STRIPE_LEN), u64_at(b, CHUNK_LEN + i * STRIPE_LEN + 8))).collect();
        Ok((Chunk { logical, length, flags: u64_at(b, 24), stripes }, need))
    }

    fn profile(&self) -> Option<&'static str> {
        let f = self.flags;
        // One stripe: nothing is striped, whatever the flags say.
        if self.stripes.len() == 1 {
            return None;
        }
        Some(if f & RAID0 != 0 {
            "RAID0"
        } else if f & RAID10 != 0 {
            "RAID10"
        } else if f & RAID5 != 0 {
            "RAID5"
        } else if f & RAID6 != 0 {
            "RAID6"
        } else {
            return None;
        })
    }
}

#[derive(Clone, Debug, Default)]
pub struct ChunkMap {
    /// Sorted by logical address, not overlapping.
    chunks: Vec<Chunk>,
}

impl ChunkMap {
    /// The bootstrap chunks in the superblock: (disk key, chunk item) pairs.
    pub fn from_sys_array(arr: &[u8]) -> io::Result<ChunkMap> {
        let mut chunks = Vec::new();
        let mut off = 0;
        while off < arr.len() {
            let key = Key::parse(arr, off).ok_or_else(|| corrupt("sys_chunk_array: truncated key"))?;
            if key.kind != CHUNK_ITEM {
                return Err(corrupt(format!("sys_chunk_array: item of type {} (not a chunk)", key.kind)));
            }
            let (c, used) = Chunk::parse(key.offset, arr.get(off + Key::LEN..).unwrap_or(&[]))?;
            chunks.push(c);
            off += Key::LEN + used;
        }
        ChunkMap::new(chunks)
    }

    pub fn new(mut chunks: Vec<Chunk>) -> io::Result<ChunkMap> {
        if chunks.is_empty() {
            return Err(corrupt("no chunks"));
        }
        chunks.sort_by_key(|c| c.logical);
        for w in chunks.windows(2) {
            if w[0].logical + w[0].length > w[1].logical {
                return Err(corrupt(format!("chunks at {} and {} overlap", w[0].logical, w[1].logical)));
            }
        }
        Ok(ChunkMap { chunks })
    }

    /// The physical offsets, on device `devid`, of every copy of `len`
    /// bytes at `logical` (first copy first).
    pub fn copies(&self, logical: u64, len: u64, devid: u64) -> io::Result<Vec<u64>> {
        let i = self.chunks.partition_point(|c| c.logical <= logical);
        let c = i
            .checked_sub(1)
            .and_then(|i| self.chunks.get(i))
            .filter(|c| logical - c.logical < c.length)
            .ok_or_else(|| corrupt(format!("logical address {logical} is in no chunk")))?;
        let within = logical - c.logical;
        if len > c.length - within {
            return Err(corrupt(format!("{len} bytes at logical {logical} run past the end of their chunk")));
        }
        if let Some(p) = c.profile() {
            return Err(corrupt(format!(
                "logical address {logical} is in a {p} chunk striped over {} devices: not supported",
                c.stripes.len()
            )));
        }
        let out: Vec<u64> = c.stripes.iter().filter(|s| s.0 == devid).filter_map(|s| s.1.checked_add(within)).collect();
        if out.is_empty() {
            let on: Vec<String> = c.stripes.iter().map(|s| s.0.to_string()).collect();
            return Err(corrupt(format!(
                "logical address {logical} is on device {} of a multi-device filesystem, not in this evidence (device {devid})",
                on.join(", ")
            )));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(logical: u64, length: u64, flags: u64, stripes: &[(u64, u64)]) -> Chunk {
        Chunk { logical, length, flags, stripes: stripes.to_vec() }
    }

    #[test]
    fn single_dup_raid1_and_striped_profiles() {
        let m = ChunkMap::new(vec![
            chunk(1 << 20, 1 << 20, 1, &[(1, 5 << 20)]),
            chunk(4 << 20, 1 << 20, 4 | 32, &[(1, 8 << 20), (1, 9 << 20)]),
            chunk(16 << 20, 1 << 20, 4 | 16, &[(2, 1 << 20), (1, 2 << 20)]),
            chunk(32 << 20, 1 << 20, 1 | RAID0, &[(1, 1 << 20), (2, 1 << 20)]),
        ])
        .unwrap();
        assert_eq!(m.copies((1 << 20) + 7, 10, 1).unwrap(), vec![(5 << 20) + 7]);
        assert_eq!(m.copies(4 << 20, 4096, 1).unwrap(), vec![8 << 20, 9 << 20]);
        assert_eq!(m.copies(16 << 20, 4096, 1).unwrap(), vec![2 << 20]);
        assert!(m.copies(16 << 20, 4096, 3).unwrap_err().to_string().contains("not in this evidence"));
        assert!(m.copies(32 << 20, 4096, 1).unwrap_err().to_string().contains("RAID0"));
        assert!(m.copies(3 << 20, 1, 1).unwrap_err().to_string().contains("in no chunk"));
        assert!(m.copies((2 << 20) - 1, 2, 1).unwrap_err().to_string().contains("past the end"));
        assert!(ChunkMap::new(vec![chunk(0, 10, 1, &[(1, 0)]), chunk(5, 10, 1, &[(1, 0)])]).is_err());
    }
}
