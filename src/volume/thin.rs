//! LVM thin pools (device-mapper `thin-pool`): the pool's metadata device
//! maps each thin volume's chunks to chunks of its data device.
//!
//! Own reader from the on-disk format of the kernel's persistent-data
//! library (drivers/md/persistent-data: `dm-btree`, and
//! `dm-thin-metadata.c`), as `thin_dump` of thin-provisioning-tools reads
//! it; no crate reads it. Metadata blocks are 4 KiB: a superblock at block
//! 0, then B-tree nodes. The mapping tree has two levels: thin device id →
//! the root of that device's tree; virtual chunk → `data chunk << 24 |
//! time`. A chunk no tree maps was never written: it reads as zeros, as the
//! thin device returns it (not a gap in the evidence).
//!
//! Every node is checked (checksum, its own block number, entry counts
//! within the block) and each lookup is bounded in depth, so a damaged or
//! looping tree is an error for the read, never a hang. Nodes are looked
//! up per read, with a small cache: memory does not grow with the volume.

use crate::evidence::{ReadAt, Source};
use crate::util::bytes::{u32_at, u64_at};
use crate::util::corrupt;
use crate::util::crc::crc32c_raw;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

const BLOCK: u64 = 4096;
/// `THIN_SUPERBLOCK_MAGIC`.
const MAGIC: u64 = 27_022_010;
/// What each block's checksum is xored with (`SUPERBLOCK_CSUM_XOR`,
/// `BTREE_CSUM_XOR`).
const SUPERBLOCK_XOR: u32 = 160_774;
const NODE_XOR: u32 = 121_107;
const INTERNAL: u32 = 1;
const LEAF: u32 = 2;
const HEADER: usize = 32;
/// Deeper than any tree of 2^64 entries with 4 KiB nodes: a loop.
const MAX_DEPTH: usize = 16;
/// Nodes kept (1 MiB): the few a run of reads walks again and again.
const CACHE_NODES: usize = 256;

/// A thin pool: its metadata and data devices, opened.
pub struct Pool {
    meta: Source,
    data: Source,
    /// Bytes per chunk (`data_block_size`).
    chunk: u64,
    meta_blocks: u64,
    mapping_root: u64,
    cache: Mutex<HashMap<u64, Arc<[u8]>>>,
}

impl Pool {
    /// Reads and checks the pool's superblock.
    pub fn open(meta: Source, data: Source) -> Result<Arc<Pool>, String> {
        let mut b = vec![0u8; BLOCK as usize];
        meta.read_exact_at(0, &mut b).map_err(|e| format!("thin pool metadata unreadable: {e}"))?;
        if u64_at(&b, 32) != MAGIC {
            return Err("thin pool metadata has no superblock (bad magic)".into());
        }
        if !checksum_ok(&b, SUPERBLOCK_XOR) {
            return Err("thin pool metadata superblock fails its checksum".into());
        }
        let sectors = u64::from(u32_at(&b, 336));
        if sectors == 0 || !sectors.is_power_of_two() && sectors % 128 != 0 || sectors > 2 << 20 {
            return Err(format!("thin pool chunk of {sectors} sectors is not one LVM makes"));
        }
        let meta_blocks = u64_at(&b, 344).min(meta.len() / BLOCK);
        Ok(Arc::new(Pool {
            meta,
            data,
            chunk: sectors * 512,
            meta_blocks,
            mapping_root: u64_at(&b, 320),
            cache: Mutex::new(HashMap::new()),
        }))
    }

    /// Thin device `id` of `size` bytes, as a readable volume.
    pub fn device(self: &Arc<Self>, id: u64, size: u64) -> Result<Source, String> {
        let root = self
            .lookup(self.mapping_root, id)
            .map_err(|e| format!("thin device {id}: {e}"))?
            .ok_or_else(|| format!("thin device {id} is not in the pool's metadata"))?;
        Ok(Arc::new(Thin { pool: self.clone(), root, size }))
    }

    /// A checked node.
    fn node(&self, block: u64) -> io::Result<Arc<[u8]>> {
        if let Some(n) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&block) {
            return Ok(n.clone());
        }
        if block == 0 || block >= self.meta_blocks {
            return Err(corrupt(format!("thin metadata node {block} is outside the metadata device")));
        }
        let mut b = vec![0u8; BLOCK as usize];
        self.meta.read_exact_at(block * BLOCK, &mut b)?;
        if !checksum_ok(&b, NODE_XOR) || u64_at(&b, 8) != block {
            return Err(corrupt(format!("thin metadata node {block} is damaged (checksum or block number)")));
        }
        let (flags, n, max, vsize) = (u32_at(&b, 4), u32_at(&b, 16) as usize, u32_at(&b, 20) as usize, u32_at(&b, 24) as usize);
        if !(flags == INTERNAL || flags == LEAF) || vsize != 8 || n > max || HEADER + max * 16 > BLOCK as usize {
            return Err(corrupt(format!("thin metadata node {block} has a bad header")));
        }
        let node: Arc<[u8]> = b.into();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_NODES {
            cache.clear();
        }
        cache.insert(block, node.clone());
        Ok(node)
    }

    /// The value for `key` in the tree at `root`, if the key is there.
    fn lookup(&self, root: u64, key: u64) -> io::Result<Option<u64>> {
        let mut block = root;
        for _ in 0..MAX_DEPTH {
            let n = self.node(block)?;
            let (count, max) = (u32_at(&n, 16) as usize, u32_at(&n, 20) as usize);
            let keys = |i: usize| u64_at(&n, HEADER + 8 * i);
            let value = |i: usize| u64_at(&n, HEADER + 8 * max + 8 * i);
            // How many keys are at or below `key` (binary search: keys ascend).
            let (mut lo, mut hi) = (0, count);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if keys(mid) <= key {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            let i = lo;
            if u32_at(&n, 4) == LEAF {
                return Ok((i > 0 && keys(i - 1) == key).then(|| value(i - 1)));
            }
            let Some(i) = i.checked_sub(1) else { return Ok(None) };
            block = value(i);
        }
        Err(corrupt(format!("thin metadata tree deeper than {MAX_DEPTH} levels (a loop?)")))
    }
}

/// `crc32c(~0, block[4..]) ^ xor`, stored in the first word.
fn checksum_ok(b: &[u8], xor: u32) -> bool {
    crc32c_raw(!0, &b[4..]) ^ xor == u32_at(b, 0)
}

/// A thin volume: its chunks looked up in the pool as they are read.
struct Thin {
    pool: Arc<Pool>,
    root: u64,
    size: u64,
}

impl ReadAt for Thin {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let end = self.size.min(offset.saturating_add(buf.len() as u64));
        let mut pos = offset;
        let chunk = self.pool.chunk;
        while pos < end {
            let within = pos % chunk;
            let n = (chunk - within).min(end - pos) as usize;
            let at = (pos - offset) as usize;
            let dst = &mut buf[at..at + n];
            match self.pool.lookup(self.root, pos / chunk)? {
                Some(v) => {
                    let data = (v >> 24).checked_mul(chunk).and_then(|d| d.checked_add(within));
                    let data = data.ok_or_else(|| corrupt(format!("thin mapping of chunk {} overflows", pos / chunk)))?;
                    self.pool.data.read_exact_at(data, dst)?;
                }
                None => dst.fill(0),
            }
            pos += n as u64;
        }
        Ok((end.saturating_sub(offset)) as usize)
    }

    fn len(&self) -> u64 {
        self.size
    }
}
