//! Buffer items (`xfs_buf_item_recover.c`): a range of sectors and a bitmap
//! of the 128-byte chunks logged, the chunks' bytes in the regions that
//! follow. Cancelled buffers (freed blocks) are collected in pass 1 and not
//! replayed until the last cancel is passed; inode buffers replay only each
//! inode's `di_next_unlinked`; dquot buffers are skipped (quota accounting is
//! never read here). On v5 a buffer whose home block already carries an LSN
//! at least the transaction's is newer than the change and is left alone.

use super::trans::Item;
use super::{BB, Store};
use crate::fs::xfs::superblock::Superblock;
use crate::util::bytes::{be_u16_at, be_u64_at, u16_at, u32_at, u64_at};
use crate::util::crc::crc32c_raw;
use std::collections::{HashMap, HashSet};

const BLF_INODE_BUF: u16 = 1 << 0;
const BLF_CANCEL: u16 = 1 << 1;
const BLF_DQUOT_BUF: u16 = (1 << 2) | (1 << 3) | (1 << 4);
/// The buffer type in the top 5 bits of `blf_flags`, and the directory
/// and dabtree types (`XFS_BLFT_DIR_BLOCK_BUF` … `XFS_BLFT_DA_NODE_BUF`).
const BLFT_SHIFT: u16 = 11;
const DIR_TYPES: std::ops::RangeInclusive<u16> = 10..=15;
/// `offsetof(struct xfs_buf_log_format, blf_data_map)`.
const DATA_MAP: usize = 20;
/// `XFS_BLF_DATAMAP_SIZE`: words of bitmap for a 64 KiB buffer, plus one.
const MAX_MAP_WORDS: usize = 65536 / 128 / 32 + 1;
/// The largest buffer XFS logs: a 64 KiB directory block, in sectors.
const MAX_SECTORS: u64 = 65536 / 512;
/// `XFS_BLF_CHUNK`.
const CHUNK: usize = 128;
/// `offsetof(struct xfs_dinode, di_next_unlinked)`.
const NEXT_UNLINKED: usize = 96;

pub struct Format {
    flags: u16,
    /// Sectors.
    pub len: u64,
    /// First sector (disk address).
    pub blkno: u64,
    map: Vec<u32>,
}

impl Format {
    /// The item's format region (`xfs_buf_log_format`, host order).
    pub fn parse(item: &Item) -> Result<Format, String> {
        let r = item.region(0).unwrap_or(&[]);
        let words = u32_at(r, 16) as usize;
        if r.len() < DATA_MAP || words > MAX_MAP_WORDS || r.len() < DATA_MAP + 4 * words {
            return Err(format!("bad buffer log item size ({} bytes)", r.len()));
        }
        let map = (0..words).map(|w| u32_at(r, DATA_MAP + 4 * w)).collect();
        Ok(Format { flags: u16_at(r, 4), len: u64::from(u16_at(r, 6)), blkno: u64_at(r, 8), map })
    }

    pub fn cancelled(&self) -> bool {
        self.flags & BLF_CANCEL != 0
    }

    pub fn inode_buf(&self) -> bool {
        self.flags & BLF_INODE_BUF != 0
    }

    fn bit(&self, i: usize) -> bool {
        self.map.get(i / 32).is_some_and(|w| w >> (i % 32) & 1 != 0)
    }

    /// The next set bit at or after `from`.
    fn next_bit(&self, from: usize) -> Option<usize> {
        (from..self.map.len() * 32).find(|&i| self.bit(i))
    }

    /// How many bits are set from `from` on.
    fn contig(&self, from: usize) -> usize {
        (from..self.map.len() * 32).take_while(|&i| self.bit(i)).count()
    }
}

/// Buffers cancelled in the log (`xlog_add_buffer_cancelled`): a buffer is
/// not replayed while a cancel of the same range lies ahead.
#[derive(Default)]
pub struct Cancels {
    ahead: HashMap<(u64, u64), u32>,
    /// Optimistic (one pass, nothing known ahead): the ranges looked up so
    /// far; a cancel of one of them means the pass was wrong.
    looked_up: Option<HashSet<(u64, u64)>>,
    conflict: bool,
}

impl Cancels {
    /// For a pass that has not read the log ahead (see `conflict`).
    pub fn optimistic() -> Cancels {
        Cancels { looked_up: Some(HashSet::new()), ..Cancels::default() }
    }

    /// A cancel found by pass 1.
    pub fn add(&mut self, blkno: u64, len: u64) {
        *self.ahead.entry((blkno, len)).or_default() += 1;
    }

    /// Whether a cancel of this range lies ahead.
    pub fn is(&mut self, blkno: u64, len: u64) -> bool {
        if let Some(seen) = &mut self.looked_up {
            seen.insert((blkno, len));
        }
        self.ahead.contains_key(&(blkno, len))
    }

    /// One cancel passed in pass 2.
    pub fn put(&mut self, blkno: u64, len: u64) {
        if self.looked_up.as_ref().is_some_and(|seen| seen.contains(&(blkno, len))) {
            self.conflict = true;
        }
        if let Some(n) = self.ahead.get_mut(&(blkno, len)) {
            *n -= 1;
            if *n == 0 {
                self.ahead.remove(&(blkno, len));
            }
        }
    }

    /// An optimistic pass looked up a range that a later cancel covers:
    /// the kernel would not have replayed what it did there.
    pub fn conflict(&self) -> bool {
        self.conflict
    }
}

pub fn replay(store: &mut Store, sb: &Superblock, cancels: &mut Cancels, f: &Format, item: &Item, lsn: u64) -> Result<(), String> {
    if cancels.is(f.blkno, f.len) {
        return Ok(());
    }
    store.check(f.blkno, f.len).map_err(|e| format!("buffer log item: {e}"))?;
    if f.len > MAX_SECTORS {
        return Err(format!("buffer log item of {} sectors at sector {} (XFS buffers are at most 64 KiB)", f.len, f.blkno));
    }
    if f.flags & BLF_DQUOT_BUF != 0 {
        return Ok(());
    }
    store.settle(f.blkno, f.blkno + f.len - 1, Some((f.blkno, f.len)));
    // A piece of a directory block split over discontiguous extents has no
    // LSN of its own: replayed as logged, and not stamped (the kernel's
    // `xlog_recover_do_partial_dabuf`).
    let partial_dir = DIR_TYPES.contains(&(f.flags >> BLFT_SHIFT)) && f.len * BB != sb.dir_block_size;
    // Every block's LSN lies in its first sector.
    if sb.is_v5()
        && !partial_dir
        && let Some(home) = lsn_of(&store.sector(f.blkno)?, sb)
        && home >= lsn
    {
        return Ok(());
    }
    if f.inode_buf() {
        let mut b = store.read(f.blkno * BB, (f.len * BB) as usize)?;
        next_unlinked(&mut b, sb, f, item)?;
        store.write(f.blkno * BB, &b)?;
    } else {
        for (off, bytes) in runs(f, item)? {
            store.write(f.blkno * BB + off as u64, bytes)?;
        }
    }
    if sb.is_v5() && !partial_dir {
        store.replayed(f.blkno, f.len, lsn);
    }
    Ok(())
}

/// Each logged run of chunks and where it goes in the buffer
/// (`xlog_recover_do_reg_buffer`): only those runs are written home.
fn runs<'a>(f: &Format, item: &'a Item) -> Result<Vec<(usize, &'a [u8])>, String> {
    let mut bit = 0;
    let size = (f.len * BB) as usize;
    let mut out = Vec::new();
    for region in item.regions().skip(1) {
        let Some(start) = f.next_bit(bit) else { break };
        let mut nbits = f.contig(start);
        // A region shorter than its bits (old dquot logging): what it has.
        if region.len() < nbits * CHUNK {
            nbits = region.len() / CHUNK;
        }
        let (off, n) = (start * CHUNK, nbits * CHUNK);
        let (true, Some(src)) = (off + n <= size, region.get(..n)) else {
            return Err(format!("buffer log item at sector {}: chunks {start}+{nbits} past its {size} bytes", f.blkno));
        };
        out.push((off, src));
        bit = start + nbits;
    }
    Ok(out)
}

/// An inode buffer logged for unlinked-list changes: only each inode's
/// `di_next_unlinked` is taken from the log (`xlog_recover_do_inode_buffer`).
fn next_unlinked(b: &mut [u8], sb: &Superblock, f: &Format, item: &Item) -> Result<(), String> {
    let isize = sb.inode_size as usize;
    let (mut bit, mut nbits, mut index) = (0usize, 0usize, 0usize);
    let (mut reg_off, mut reg_len) = (0usize, 0usize);
    for i in 0..b.len() / isize {
        let at = i * isize + NEXT_UNLINKED;
        while at >= reg_off + reg_len {
            bit += nbits;
            let Some(s) = f.next_bit(bit) else { return Ok(()) };
            bit = s;
            nbits = f.contig(bit);
            reg_off = bit * CHUNK;
            reg_len = nbits * CHUNK;
            index += 1;
        }
        if at < reg_off {
            continue;
        }
        let value = item.region(index).and_then(|r| r.get(at - reg_off..at - reg_off + 4));
        let Some(value) = value else {
            return Err(format!("inode buffer at sector {}: logged regions do not match its bitmap", f.blkno));
        };
        if value == [0, 0, 0, 0] {
            return Err(format!("inode buffer at sector {}: a logged di_next_unlinked of 0", f.blkno));
        }
        if let Some(dst) = b.get_mut(at..at + 4) {
            dst.copy_from_slice(value);
        }
        if sb.is_v5()
            && let Some(d) = b.get_mut(i * isize..(i + 1) * isize)
        {
            super::inode::set_crc(d);
        }
    }
    Ok(())
}

/// Where a v5 metadata block keeps its LSN, owner UUID and CRC.
struct Layout {
    lsn: usize,
    uuid: usize,
    crc: usize,
}

fn layout(b: &[u8]) -> Option<Layout> {
    const SHORT: Layout = Layout { lsn: 24, uuid: 32, crc: 52 };
    let l = |lsn, uuid, crc| Some(Layout { lsn, uuid, crc });
    match b.get(0..4)? {
        b"AB3B" | b"AB3C" | b"ABTB" | b"ABTC" | b"RMB3" | b"R3FC" | b"FIB3" | b"FIBT" | b"IAB3" | b"IABT" => Some(SHORT),
        b"BMA3" | b"BMAP" => l(32, 40, 64),
        b"XAGF" => l(208, 64, 216),
        b"XAFL" => l(24, 8, 32),
        b"XAGI" => l(320, 296, 312),
        b"XSLM" => l(48, 16, 12),
        b"XDB3" | b"XDD3" | b"XDF3" => l(16, 24, 4),
        b"XFSB" => l(240, 32, 224),
        // Remote attribute blocks: replayed regardless (no usable LSN).
        b"XARM" => None,
        _ => match be_u16_at(b, 8) {
            0x3df1 | 0x3dff | 0x3bee | 0x3ebe => l(24, 32, 12),
            _ => None,
        },
    }
}

/// The LSN a v5 home block carries (`xlog_recover_get_buf_lsn`); None when
/// it has none we can trust (unknown, inode or dquot buffers, another
/// filesystem's UUID): then the buffer is replayed.
fn lsn_of(b: &[u8], sb: &Superblock) -> Option<u64> {
    let l = layout(b)?;
    let lsn = be_u64_at(b, l.lsn);
    let mut ok = b.get(l.uuid..l.uuid + 16) == Some(&sb.meta_uuid[..]);
    if b.get(0..4) == Some(b"XFSB") {
        // sb_meta_uuid when the filesystem has one.
        ok |= b.get(248..264) == Some(&sb.meta_uuid[..]);
    }
    (ok && lsn != 0 && lsn != u64::MAX).then_some(lsn)
}

/// What the kernel's write verifier does as a replayed buffer goes home:
/// the LSN of its last replay, and the CRC over the buffer. False when the
/// block is of no type we know.
pub fn stamp(b: &mut [u8], lsn: u64) -> bool {
    let Some(l) = layout(b) else { return false };
    if let Some(d) = b.get_mut(l.lsn..l.lsn + 8) {
        d.copy_from_slice(&lsn.to_be_bytes());
    }
    set_crc(b, l.crc)
}

/// crc32c over `b` with the field at `off` zeroed, stored inverted and
/// little-endian (`xfs_update_cksum`).
pub fn set_crc(b: &mut [u8], off: usize) -> bool {
    let Some(f) = b.get_mut(off..off + 4) else { return false };
    f.fill(0);
    let crc = !crc32c_raw(!0, b);
    if let Some(f) = b.get_mut(off..off + 4) {
        f.copy_from_slice(&crc.to_le_bytes());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(map: &[u32], len: u16, regions: Vec<Vec<u8>>) -> (Format, Item) {
        let mut f = vec![0u8; DATA_MAP + 4 * map.len()];
        f[0..2].copy_from_slice(&0x123cu16.to_le_bytes());
        f[6..8].copy_from_slice(&len.to_le_bytes());
        f[16..20].copy_from_slice(&(map.len() as u32).to_le_bytes());
        for (i, w) in map.iter().enumerate() {
            f[DATA_MAP + 4 * i..DATA_MAP + 4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        let mut it = Item::default();
        it.push(&f);
        regions.iter().for_each(|r| it.push(r));
        (Format::parse(&it).unwrap(), it)
    }

    #[test]
    fn an_optimistic_pass_knows_when_a_later_cancel_proves_it_wrong() {
        // Two passes: a range is cancelled while a cancel of it lies ahead,
        // and no longer after the last one.
        let mut c = Cancels::default();
        c.add(8, 8);
        c.add(8, 8);
        assert!(c.is(8, 8) && !c.is(16, 8));
        c.put(8, 8);
        assert!(c.is(8, 8));
        c.put(8, 8);
        assert!(!c.is(8, 8) && !c.conflict());
        // One pass: nothing is known ahead; a cancel of a range looked up
        // before is a conflict, of another range not.
        let mut c = Cancels::optimistic();
        assert!(!c.is(8, 8));
        c.put(16, 8);
        assert!(!c.conflict());
        c.put(8, 8);
        assert!(c.conflict());
    }

    #[test]
    fn logged_chunks_land_where_the_bitmap_says() {
        // Chunks 1-2 and 5 of a 1 KiB buffer: two regions.
        let (f, it) = item(&[0b10_0110], 2, vec![vec![0xAA; 256], vec![0xBB; 128]]);
        let r = runs(&f, &it).unwrap();
        assert_eq!(r.len(), 2);
        assert!(r[0].0 == 128 && r[0].1.len() == 256 && r[0].1.iter().all(|&x| x == 0xAA));
        assert!(r[1].0 == 640 && r[1].1.len() == 128 && r[1].1.iter().all(|&x| x == 0xBB));
        // A bitmap reaching past the buffer is refused.
        let (f, it) = item(&[1 << 9], 2, vec![vec![0xCC; 128]]);
        assert!(runs(&f, &it).is_err());
    }

    #[test]
    fn a_stamped_buffer_carries_its_lsn_and_a_valid_crc() {
        let mut b = vec![0u8; 512];
        b[0..4].copy_from_slice(b"XAGI");
        assert!(stamp(&mut b, 0x2_0000_0010));
        assert_eq!(be_u64_at(&b, 320), 0x2_0000_0010);
        let stored = u32_at(&b, 312);
        b[312..316].fill(0);
        assert_eq!(!crc32c_raw(!0, &b), stored);
        assert!(!stamp(&mut [0u8; 512], 1), "unknown blocks are left alone");
    }
}
