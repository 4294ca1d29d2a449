//! Inode items (`xfs_inode_item_recover.c`): the inode log format (where the
//! inode lives, which parts were logged), the core as `xfs_log_dinode` — in
//! the *host's* byte order (little-endian: the kernels that make the images
//! we meet are x86 and arm64) — converted to the big-endian on-disk dinode,
//! then the data and attribute forks (local bytes, extent records, or a
//! btree root turned from its in-memory block form back into the inode's
//! `bmdr` form), and the v3 CRC recomputed (our reader verifies it).

use super::buf::Cancels;
use super::trans::Item;
use super::{BB, Store};
use crate::fs::xfs::superblock::Superblock;
use crate::util::bytes::{be_u16_at, be_u64_at, u8_at, u16_at, u32_at, u64_at};

const MAGIC: u16 = 0x494e;
const ILOG_DDATA: u32 = 0x002;
const ILOG_DEXT: u32 = 0x004;
const ILOG_DBROOT: u32 = 0x008;
const ILOG_DEV: u32 = 0x010;
const ILOG_ADATA: u32 = 0x040;
const ILOG_AEXT: u32 = 0x080;
const ILOG_ABROOT: u32 = 0x100;
const ILOG_DFORK: u32 = ILOG_DDATA | ILOG_DEXT | ILOG_DBROOT;
const ILOG_AFORK: u32 = ILOG_ADATA | ILOG_AEXT | ILOG_ABROOT;
const DIFLAG2_BIGTIME: u64 = 1 << 3;
const DIFLAG2_NREXT64: u64 = 1 << 4;
/// `sizeof(struct xfs_inode_log_format)` and its packed i386 twin.
const FORMAT_64: usize = 56;
const FORMAT_32: usize = 52;
const CRC_OFF: usize = 100;

struct Format {
    fields: u32,
    size: u16,
    ino: u64,
    rdev: u32,
    blkno: u64,
    len: u64,
    boffset: u64,
}

fn format(r: &[u8]) -> Result<Format, String> {
    // The i386 layout lacks the 4 bytes of padding before ilf_ino.
    let pad = match r.len() {
        FORMAT_64 => 4,
        FORMAT_32 => 0,
        n => return Err(format!("inode log item format of {n} bytes")),
    };
    Ok(Format {
        fields: u32_at(r, 4),
        size: u16_at(r, 2),
        ino: u64_at(r, 12 + pad),
        rdev: u32_at(r, 20 + pad),
        blkno: u64_at(r, 36 + pad),
        len: u64::from(u32_at(r, 44 + pad)),
        boffset: u64::from(u32_at(r, 48 + pad)),
    })
}

pub fn replay(store: &mut Store, sb: &Superblock, cancels: &mut Cancels, item: &Item, lsn: u64) -> Result<(), String> {
    item.complete()?;
    let f = format(item.region(0).unwrap_or(&[]))?;
    let ino = f.ino;
    if cancels.is(f.blkno, f.len) {
        return Ok(());
    }
    let isize = sb.inode_size as usize;
    store.check(f.blkno, f.len).map_err(|e| format!("inode {ino}: {e}"))?;
    if f.boffset + sb.inode_size > f.len * BB {
        return Err(format!("inode {ino}: offset {} is outside its {}-sector buffer", f.boffset, f.len));
    }
    let at = f.blkno * BB + f.boffset;
    store.settle(at / BB, (at + sb.inode_size - 1) / BB, None);
    let mut dip = store.read(at, isize)?;
    if be_u16_at(&dip, 0) != MAGIC {
        return Err(format!("inode {ino}: its home at byte {at} holds no inode"));
    }
    let ld = item.region(1).unwrap_or(&[]);
    if u16_at(ld, 0) != MAGIC {
        return Err(format!("inode {ino}: the logged inode core has a bad magic number"));
    }
    let v3 = sb.is_v5();
    if u8_at(&dip, 4) >= 3 {
        // The on-disk inode is newer than this change.
        let disk = be_u64_at(&dip, 112);
        if disk != 0 && disk != u64::MAX && disk > lsn {
            return Ok(());
        }
    }
    if !v3 {
        // v2 inodes order flushes by di_flushiter instead (wrapping at 2^16).
        let (logged, disk) = (u16_at(ld, 30), be_u16_at(&dip, 30));
        if logged < disk && !(disk == u16::MAX && logged < u16::MAX >> 1) {
            return Ok(());
        }
    }
    let mode = u16_at(ld, 2) & 0o170000;
    let fmt = u8_at(ld, 5);
    if (mode == 0o100000 && !(2..=3).contains(&fmt)) || (mode == 0o040000 && !(1..=3).contains(&fmt)) {
        return Err(format!("inode {ino}: logged with data fork format {fmt} for its type"));
    }
    let core = if v3 { 176 } else { 100 };
    let logged_core = if v3 { 176 } else { 96 };
    let (nextents, anextents) = if u8_at(ld, 4) >= 3 && u64_at(ld, 120) & DIFLAG2_NREXT64 != 0 {
        (u64_at(ld, 24), u64::from(u32_at(ld, 76)))
    } else {
        (u64::from(u32_at(ld, 76)), u64::from(u16_at(ld, 80)))
    };
    if nextents.saturating_add(anextents) > u64_at(ld, 64) {
        return Err(format!("inode {ino}: logged with more extents than blocks"));
    }
    if ld.len() != logged_core {
        return Err(format!("inode {ino}: logged core of {} bytes", ld.len()));
    }
    let forkoff = usize::from(u8_at(ld, 82)) * 8;
    if core + forkoff > isize {
        return Err(format!("inode {ino}: attribute fork offset {forkoff} is past the inode"));
    }
    to_disk(ld, &mut dip, lsn);
    if f.fields & ILOG_DEV != 0
        && let Some(d) = dip.get_mut(core..core + 4)
    {
        d.copy_from_slice(&f.rdev.to_be_bytes());
    }
    let dsize = if forkoff > 0 { forkoff } else { isize - core };
    let (aoff, asize) = (core + forkoff, isize - core - forkoff);
    let mut next = 2;
    if f.size > 2 {
        let region = item.region(next).unwrap_or(&[]);
        match f.fields & ILOG_DFORK {
            ILOG_DDATA | ILOG_DEXT => put(&mut dip, core, dsize, region, ino)?,
            ILOG_DBROOT => bmdr(&mut dip, core, dsize, region, v3, ino)?,
            _ => {}
        }
        if f.fields & ILOG_DFORK != 0 {
            next += 1;
        }
    }
    if f.size > 2 && f.fields & ILOG_AFORK != 0 {
        if forkoff == 0 {
            return Err(format!("inode {ino}: attribute fork logged but the inode has none"));
        }
        let region = item.region(next).ok_or(format!("inode {ino}: attribute fork region missing"))?;
        match f.fields & ILOG_AFORK {
            ILOG_ADATA | ILOG_AEXT => put(&mut dip, aoff, asize, region, ino)?,
            ILOG_ABROOT => bmdr(&mut dip, aoff, asize, region, v3, ino)?,
            other => return Err(format!("inode {ino}: attribute fork flags {other:#x}")),
        }
    }
    if v3 {
        set_crc(&mut dip);
    }
    store.write(at, &dip)
}

/// A fork's logged bytes at `off`, within its `size`.
fn put(dip: &mut [u8], off: usize, size: usize, src: &[u8], ino: u64) -> Result<(), String> {
    if src.len() > size {
        return Err(format!("inode {ino}: {} logged fork bytes for a fork of {size}", src.len()));
    }
    let dst = dip.get_mut(off..off + src.len()).ok_or(format!("inode {ino}: fork past the inode"))?;
    dst.copy_from_slice(src);
    Ok(())
}

/// `xfs_bmbt_to_bmdr`: the in-memory btree root (a long-format btree block
/// header, keys, then pointers after room for `maxrecs` keys) into the
/// inode's root (level, numrecs, keys, pointers after room for the fork's
/// `maxrecs` keys).
fn bmdr(dip: &mut [u8], off: usize, size: usize, src: &[u8], v3: bool, ino: u64) -> Result<(), String> {
    let hdr = if v3 { 72 } else { 24 };
    let bad = || format!("inode {ino}: logged btree root does not fit the fork");
    let rmax = src.len().checked_sub(hdr).ok_or_else(bad)? / 16;
    let dmax = size.checked_sub(4).ok_or_else(bad)? / 16;
    let numrecs = usize::from(be_u16_at(src, 6));
    if numrecs > rmax || numrecs > dmax {
        return Err(bad());
    }
    let keys = src.get(hdr..hdr + 8 * numrecs).ok_or_else(bad)?;
    let ptrs = src.get(hdr + 8 * rmax..hdr + 8 * rmax + 8 * numrecs).ok_or_else(bad)?;
    let fork = dip.get_mut(off..off + size).ok_or_else(bad)?;
    fork[0..4].copy_from_slice(&src[4..8]);
    fork[4..4 + 8 * numrecs].copy_from_slice(keys);
    fork[4 + 8 * dmax..4 + 8 * dmax + 8 * numrecs].copy_from_slice(ptrs);
    Ok(())
}

/// `xfs_log_dinode_to_disk`: host-order fields to big-endian, in place.
fn to_disk(ld: &[u8], d: &mut [u8], lsn: u64) {
    let version = u8_at(ld, 4);
    let flags2 = if version >= 3 { u64_at(ld, 120) } else { 0 };
    let put = |d: &mut [u8], off: usize, bytes: &[u8]| {
        if let Some(dst) = d.get_mut(off..off + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    };
    // A field logged in host (little-endian) order, put home big-endian.
    let swap = |d: &mut [u8], off: usize, n: usize| {
        if let Some(dst) = d.get_mut(off..off + n) {
            match ld.get(off..off + n) {
                Some(src) => dst.iter_mut().zip(src.iter().rev()).for_each(|(x, &y)| *x = y),
                None => dst.fill(0),
            }
        }
    };
    for (off, n) in
        [(0, 2), (2, 2), (6, 2), (8, 4), (12, 4), (16, 4), (20, 2), (22, 2), (56, 8), (64, 8), (72, 4), (84, 4), (88, 2), (90, 2), (92, 4)]
    {
        swap(d, off, n);
    }
    put(d, 4, &[version, u8_at(ld, 5)]);
    put(d, 82, &[u8_at(ld, 82), u8_at(ld, 83)]);
    // Timestamps: one 64-bit count (bigtime), or seconds and nanoseconds.
    let bigtime = version >= 3 && flags2 & DIFLAG2_BIGTIME != 0;
    let times: &[usize] = if version >= 3 { &[32, 40, 48, 144] } else { &[32, 40, 48] };
    for &off in times {
        if bigtime {
            swap(d, off, 8);
        } else {
            swap(d, off, 4);
            swap(d, off + 4, 4);
        }
    }
    if version >= 3 {
        for (off, n) in [(104, 8), (120, 8), (128, 4), (152, 8)] {
            swap(d, off, n);
        }
        put(d, 112, &lsn.to_be_bytes());
        put(d, 132, &[0; 12]);
        put(d, 160, ld.get(160..176).unwrap_or(&[0; 16]));
    } else {
        // di_flushiter is reset on replay, the pad zeroed.
        put(d, 24, &[0; 8]);
    }
    if version >= 3 && flags2 & DIFLAG2_NREXT64 != 0 {
        swap(d, 24, 8);
    } else if version >= 3 {
        put(d, 24, &[0; 8]);
    }
    swap(d, 76, 4);
    swap(d, 80, 2);
}

/// The v3 inode CRC over the whole inode (`xfs_dinode_calc_crc`).
pub fn set_crc(dinode: &mut [u8]) {
    super::buf::set_crc(dinode, CRC_OFF);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_dinode_fields_become_big_endian() {
        let mut ld = vec![0u8; 176];
        ld[0..2].copy_from_slice(&MAGIC.to_le_bytes());
        ld[2..4].copy_from_slice(&0o100644u16.to_le_bytes());
        ld[4] = 3;
        ld[5] = 2;
        ld[56..64].copy_from_slice(&123_456u64.to_le_bytes());
        ld[120..128].copy_from_slice(&DIFLAG2_BIGTIME.to_le_bytes());
        ld[40..48].copy_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
        ld[152..160].copy_from_slice(&99u64.to_le_bytes());
        let mut d = vec![0u8; 512];
        to_disk(&ld, &mut d, 0x1_0000_0022);
        assert_eq!(be_u16_at(&d, 0), MAGIC);
        assert_eq!(be_u16_at(&d, 2), 0o100644);
        assert_eq!((d[4], d[5]), (3, 2));
        assert_eq!(be_u64_at(&d, 56), 123_456);
        assert_eq!(be_u64_at(&d, 40), 0x0102_0304_0506_0708, "bigtime: one 64-bit count");
        assert_eq!(be_u64_at(&d, 152), 99);
        assert_eq!(be_u64_at(&d, 112), 0x1_0000_0022, "di_lsn: the transaction's");
        // Legacy timestamps: seconds and nanoseconds swapped separately.
        ld[120..128].fill(0);
        ld[40..44].copy_from_slice(&7u32.to_le_bytes());
        ld[44..48].copy_from_slice(&9u32.to_le_bytes());
        to_disk(&ld, &mut d, 0);
        assert_eq!((crate::util::bytes::be_u32_at(&d, 40), crate::util::bytes::be_u32_at(&d, 44)), (7, 9));
    }

    #[test]
    fn btree_root_moves_its_pointers_to_the_fork_layout() {
        // In-memory root (v5 header of 72 bytes) with room for 3 records,
        // 2 used; a fork of 36 bytes has room for 2.
        let mut src = vec![0u8; 72 + 3 * 16];
        src[4..6].copy_from_slice(&1u16.to_be_bytes());
        src[6..8].copy_from_slice(&2u16.to_be_bytes());
        src[72..80].copy_from_slice(&10u64.to_be_bytes());
        src[80..88].copy_from_slice(&20u64.to_be_bytes());
        src[72 + 24..72 + 32].copy_from_slice(&1000u64.to_be_bytes());
        src[72 + 32..72 + 40].copy_from_slice(&2000u64.to_be_bytes());
        let mut dip = vec![0u8; 176 + 36];
        bmdr(&mut dip, 176, 36, &src, true, 1).unwrap();
        let f = &dip[176..];
        assert_eq!((be_u16_at(f, 0), be_u16_at(f, 2)), (1, 2));
        assert_eq!((be_u64_at(f, 4), be_u64_at(f, 12)), (10, 20));
        assert_eq!((be_u64_at(f, 20), be_u64_at(f, 28)), (1000, 2000));
        // More records than the fork holds: refused, not written past it.
        src[6..8].copy_from_slice(&3u16.to_be_bytes());
        assert!(bmdr(&mut dip, 176, 36, &src, true, 1).is_err());
    }
}
