//! Inode-create items (`xlog_recover_icreate_commit_pass2`): v5 logs a new
//! inode chunk as "initialise these clusters" rather than as buffers; replay
//! writes each inode's magic, version, generation, number, UUID, an empty
//! unlinked pointer and its CRC (`xfs_ialloc_inode_init`), zeros elsewhere.

use super::buf::Cancels;
use super::trans::Item;
use super::{BB, Store};
use crate::fs::xfs::superblock::Superblock;
use crate::util::bytes::{be_u32_at, u16_at};

/// `XFS_INODES_PER_CHUNK`: one create makes at most one chunk.
const CHUNK_INODES: u32 = 64;
/// `XFS_INODE_BIG_CLUSTER_SIZE`.
const BIG_CLUSTER: u64 = 8192;
/// `XFS_DINODE_MIN_SIZE`.
const MIN_INODE: u64 = 256;
const NULLAGINO: u32 = 0xffff_ffff;

pub fn replay(store: &mut Store, sb: &Superblock, cancels: &mut Cancels, item: &Item) -> Result<(), String> {
    let r = item.region(0).unwrap_or(&[]);
    let bad = |why: &str| Err(format!("inode create item: {why}"));
    if u16_at(r, 2) != 1 || r.len() < 28 {
        return bad("bad size");
    }
    let (agno, agbno, count, isize, length, generation) =
        (be_u32_at(r, 4), be_u32_at(r, 8), be_u32_at(r, 12), be_u32_at(r, 16), be_u32_at(r, 20), be_u32_at(r, 24));
    let (agno, agbno, length) = (u64::from(agno), u64::from(agbno), u64::from(length));
    if agno >= sb.agcount || agbno == 0 || agbno >= sb.agblocks {
        return bad(&format!("chunk at AG {agno} block {agbno} is outside the filesystem"));
    }
    if u64::from(isize) != sb.inode_size {
        return bad(&format!("inode size {isize}, the filesystem's is {}", sb.inode_size));
    }
    if count == 0
        || count > CHUNK_INODES
        || length == 0
        || length >= sb.agblocks
        || agbno + length > sb.agblocks
        || u64::from(count) >> sb.inopblog != length
    {
        return bad(&format!("{count} inodes in {length} blocks"));
    }
    let bs = sb.block_size;
    // Inode clusters (`xfs_ino_geometry`): 8 KiB, scaled with the inode size
    // on v5 when the chunk alignment allows.
    let mut cluster = BIG_CLUSTER;
    if sb.is_v5() {
        let scaled = BIG_CLUSTER * (sb.inode_size / MIN_INODE);
        if sb.inoalignmt >= scaled / bs {
            cluster = scaled;
        }
    }
    let per_cluster = (cluster / bs).max(1);
    let ag_linear = agno * sb.agblocks;
    let daddr = |blk: u64| (ag_linear + blk) * (bs / BB);
    let nbufs = length / per_cluster;
    // Clusters freed and reused later in the log are cancelled: then the
    // whole create is skipped, as the kernel does.
    if (0..nbufs).any(|i| cancels.is(daddr(agbno + i * per_cluster), per_cluster * bs / BB)) {
        return Ok(());
    }
    let version = if sb.is_v5() { 3 } else { 2 };
    let inopb = 1u64 << sb.inopblog;
    let agino_shift = u32::from(sb.agblklog) + u32::from(sb.inopblog);
    for i in 0..nbufs {
        let first = agbno + i * per_cluster;
        store.check(daddr(first), per_cluster * bs / BB).map_err(|e| format!("inode create item: {e}"))?;
        store.settle(daddr(first), daddr(first) + per_cluster * bs / BB - 1, None);
        let mut b = vec![0u8; (per_cluster * bs) as usize];
        for (j, d) in b.chunks_exact_mut(sb.inode_size as usize).enumerate() {
            let j = j as u64;
            let ino = (agno << agino_shift) | ((first + j / inopb) << sb.inopblog) | (j % inopb);
            d[0..2].copy_from_slice(b"IN");
            d[4] = version;
            d[92..96].copy_from_slice(&generation.to_be_bytes());
            d[96..100].copy_from_slice(&NULLAGINO.to_be_bytes());
            if version == 3 {
                d[152..160].copy_from_slice(&ino.to_be_bytes());
                d[160..176].copy_from_slice(&sb.meta_uuid);
                super::inode::set_crc(d);
            }
        }
        store.write(daddr(first) * BB, &b)?;
    }
    Ok(())
}
