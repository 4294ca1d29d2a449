//! Log record headers (`xlog_rec_header`), their extended headers (v2 logs
//! with records over 32 KiB), the cycle-stamp unpacking of the data blocks
//! (`xlog_unpack_data`) and the record CRC (`xlog_cksum`).

use super::{BB, Log};
use crate::util::bytes::{be_u32_at, be_u64_at, u32_at};
use crate::util::crc::crc32c_raw;

/// `XLOG_HEADER_MAGIC_NUM`.
pub const MAGIC: u32 = 0xFEED_BABE;
/// Cycle data held by one header block (`XLOG_HEADER_CYCLE_SIZE`).
const CYCLE_SIZE: u32 = 32 * 1024;
const CYCLES_PER_HEADER: u64 = (CYCLE_SIZE as u64) / BB;
/// `XLOG_MAX_RECORD_BSIZE`.
const MAX_RECORD: u32 = 256 * 1024;
/// `h_cycle_data` in the header, `xh_cycle_data` in an extended header.
const CYCLE_DATA: usize = 44;
const EXT_CYCLE_DATA: usize = 4;
const CRC_OFF: usize = 32;
/// Bytes of the header under its CRC: `XLOG_REC_SIZE` (x86-64 and most
/// others, to `h_pad0`) or the i386 layout (to `h_size`); and of each
/// extended header (the whole sector, or its cycle data only in newer
/// kernels).
const HEADER_CRC_SIZES: [usize; 2] = [328, 324];
const EXT_CRC_SIZES: [usize; 2] = [512, 260];
const OP_HEADER: u64 = 12;
/// `h_fmt`: the byte order of the host that wrote the log's host-order
/// structures (`XLOG_FMT_LINUX_LE`); and where the filesystem UUID sits.
const FMT_LINUX_LE: u32 = 1;
const FMT_OFF: usize = 300;
const UUID_OFF: usize = 304;

pub struct Header {
    pub blk: u64,
    pub cycle: u32,
    pub len: u32,
    pub lsn: u64,
    pub tail_lsn: u64,
    pub num_ops: u32,
    /// Header blocks (1 + extended headers).
    pub hblks: u64,
    /// The header blocks.
    raw: Vec<u8>,
}

impl Header {
    /// Parses and checks the header at log block `blk` whose first block is
    /// `first` (extended headers are read from the log).
    pub fn parse(log: &Log, blk: u64, first: Vec<u8>) -> Result<Header, String> {
        let b = &first;
        let bad = |why: String| Err(format!("record at block {blk}: bad header ({why})"));
        if be_u32_at(b, 0) != MAGIC {
            return bad("no magic number".into());
        }
        let cycle = be_u32_at(b, 4);
        let version = be_u32_at(b, 8);
        let len = be_u32_at(b, 12);
        let lsn = be_u64_at(b, 16);
        let num_ops = be_u32_at(b, 40);
        let size = be_u32_at(b, 320);
        if version == 0 || version > 3 {
            return bad(format!("version {version}"));
        }
        if cycle == 0 {
            return bad("cycle 0".into());
        }
        if lsn != (u64::from(cycle) << 32 | blk) {
            return bad(format!("its LSN {}:{} is not its place {cycle}:{blk}", lsn >> 32, lsn & 0xffff_ffff));
        }
        let v2 = log.v2 && version & 2 != 0;
        if v2 && size > MAX_RECORD {
            return bad(format!("h_size {size} is over the 256 KiB maximum"));
        }
        let hblks = if v2 && size > CYCLE_SIZE { u64::from(size.div_ceil(CYCLE_SIZE)) } else { 1 };
        let bufsize = if v2 { size.max(CYCLE_SIZE) } else { CYCLE_SIZE };
        if len == 0 || len > bufsize {
            return bad(format!("length {len} for records of at most {bufsize} bytes"));
        }
        let data_blocks = u64::from(len).div_ceil(BB);
        if data_blocks > hblks * CYCLES_PER_HEADER || hblks + data_blocks > log.bbs {
            return bad(format!("length {len} does not fit its {hblks} header block(s)"));
        }
        let fmt = be_u32_at(b, FMT_OFF);
        if fmt != FMT_LINUX_LE {
            return bad(format!("format {fmt}: written by a big-endian or non-Linux host, whose host-order log items are not read here"));
        }
        if u64::from(num_ops) * OP_HEADER > u64::from(len) {
            return bad(format!("{num_ops} operations cannot fit in {len} bytes"));
        }
        let mut raw = first;
        if hblks > 1 {
            let ext = log.read(blk + 1, hblks - 1).map_err(|e| format!("record at block {blk}: unreadable: {e}"))?;
            raw.extend_from_slice(&ext);
        }
        Ok(Header { blk, cycle, len, lsn, tail_lsn: be_u64_at(&raw, 24), num_ops, hblks, raw })
    }

    /// Whether the header names another filesystem (a null UUID, as IRIX
    /// wrote, is accepted as the kernel accepts it).
    pub fn foreign(&self, uuid: &[u8; 16]) -> bool {
        let h = self.raw.get(UUID_OFF..UUID_OFF + 16).unwrap_or(&[]);
        h != uuid && h.iter().any(|&b| b != 0)
    }

    pub fn data_blocks(&self) -> u64 {
        u64::from(self.len).div_ceil(BB)
    }

    /// Log blocks the record takes, headers included.
    pub fn span(&self) -> u64 {
        self.hblks + self.data_blocks()
    }

    /// Puts back the first word of every data block (`data` is the record's
    /// data, whole blocks).
    pub fn unpack(&self, data: &mut [u8]) {
        for (i, block) in data.chunks_exact_mut(BB as usize).enumerate().take(self.data_blocks() as usize) {
            let i = i as u64;
            let (j, k) = (i / CYCLES_PER_HEADER, i % CYCLES_PER_HEADER);
            let at = if j == 0 { CYCLE_DATA + 4 * k as usize } else { (j * BB) as usize + EXT_CYCLE_DATA + 4 * k as usize };
            if let (Some(src), Some(dst)) = (self.raw.get(at..at + 4), block.get_mut(0..4)) {
                dst.copy_from_slice(src);
            }
        }
    }

    /// Whether the v5 record CRC matches `data` (packed, as on disk).
    pub fn crc_ok(&self, data: &[u8]) -> bool {
        let stored = u32_at(&self.raw, CRC_OFF);
        let Some(body) = data.get(..self.len as usize) else { return false };
        let xheads = u64::from(self.len.div_ceil(CYCLE_SIZE));
        HEADER_CRC_SIZES.iter().any(|&hs| {
            EXT_CRC_SIZES.iter().any(|&es| {
                let mut h = self.raw.get(..hs).unwrap_or(&[]).to_vec();
                if let Some(c) = h.get_mut(CRC_OFF..CRC_OFF + 4) {
                    c.fill(0);
                }
                let mut crc = crc32c_raw(!0, &h);
                for i in 1..xheads.min(self.hblks) {
                    let at = (i * BB) as usize;
                    crc = crc32c_raw(crc, self.raw.get(at..at + es).unwrap_or(&[]));
                }
                !crc32c_raw(crc, body) == stored
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Source;
    use std::sync::Arc;

    /// A 256 KiB-record log of 600 blocks with one record of 40,000 bytes
    /// (79 data blocks: cycle words in the header and an extended header)
    /// that wraps round the end of the log.
    #[test]
    fn extended_headers_unpack_and_checksum_across_the_wrap() {
        let bbs = 600u64;
        let (blk, cycle, len) = (560u64, 3u32, 40_000u32);
        let data: Vec<u8> = (0..79 * 512).map(|i| (i * 7 % 251) as u8).collect();
        let mut hdr = vec![0u8; 2 * 512];
        hdr[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        hdr[4..8].copy_from_slice(&cycle.to_be_bytes());
        hdr[8..12].copy_from_slice(&2u32.to_be_bytes());
        hdr[12..16].copy_from_slice(&len.to_be_bytes());
        hdr[16..24].copy_from_slice(&(u64::from(cycle) << 32 | blk).to_be_bytes());
        hdr[300..304].copy_from_slice(&1u32.to_be_bytes());
        hdr[320..324].copy_from_slice(&(64u32 << 10).to_be_bytes());
        // Pack: each data block's first word to the headers, the cycle in its place.
        let mut packed = data.clone();
        for i in 0..79usize {
            let at = if i < 64 { CYCLE_DATA + 4 * i } else { 512 + EXT_CYCLE_DATA + 4 * (i - 64) };
            hdr[at..at + 4].copy_from_slice(&data[i * 512..i * 512 + 4]);
            packed[i * 512..i * 512 + 4].copy_from_slice(&cycle.to_be_bytes());
        }
        hdr[512..516].copy_from_slice(&cycle.to_be_bytes());
        let mut crc = crc32c_raw(!0, &hdr[..328]);
        crc = crc32c_raw(crc, &hdr[512..1024]);
        crc = crc32c_raw(crc, &packed[..len as usize]);
        hdr[32..36].copy_from_slice(&(!crc).to_le_bytes());
        // Lay it out: header at 560, data from 562 round to block 41.
        let mut disk = vec![0u8; (bbs * 512) as usize];
        let mut rec = hdr.clone();
        rec.extend_from_slice(&packed);
        for (i, b) in rec.chunks(512).enumerate() {
            let at = ((blk + i as u64) % bbs * 512) as usize;
            disk[at..at + 512].copy_from_slice(b);
        }
        let dev: Source = Arc::new(disk);
        let log = Log { dev: &dev, start: 0, bbs, v2: true, crc: true, uuid: [0; 16] };
        let h = Header::parse(&log, blk, log.read(blk, 1).unwrap()).unwrap();
        assert_eq!((h.hblks, h.data_blocks(), h.span()), (2, 79, 81));
        let mut got = log.read(blk + h.hblks, h.data_blocks()).unwrap();
        assert!(h.crc_ok(&got));
        h.unpack(&mut got);
        assert_eq!(got, data);
        // One flipped bit anywhere fails the CRC; a header lying about its
        // place is refused.
        got[30_000] ^= 4;
        assert!(!h.crc_ok(&got));
        assert!(Header::parse(&log, blk + 1, log.read(blk, 1).unwrap()).is_err());
    }
}
