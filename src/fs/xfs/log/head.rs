//! The head and tail of the log (`xlog_find_head`, `xlog_find_tail`).
//!
//! Every 512-byte log block starts with the cycle number of the pass that
//! wrote it (a record header holds it in `h_cycle`, a data block in its
//! first word, the word itself saved in the header). The log is written
//! round and round, so the blocks read `c … c c-1 … c-1` and the head is
//! where the cycle drops (after a wrap, `c` from end to end: the head is
//! block 0). The last writes before a crash may be torn: a block of the old
//! cycle among the new ones, within the eight 256 KiB records that can be in
//! flight, moves the head back to it (and when no record ends at the head so
//! found, a stray block of the newest cycle far past it is taken for damage:
//! the first block of another cycle is tried). The last complete record before the
//! head names the tail (`h_tail_lsn`); if that record is a lone unmount
//! record, the log is clean.

use super::record::Header;
use super::{BB, Log};
use crate::util::bytes::be_u32_at;

/// Blocks that can be in flight at a crash: 8 iclogs of 256 KiB.
const IN_FLIGHT: u64 = 4096;
/// A record and its headers span at most 512 + 8 blocks.
const MAX_RECORD_SPAN: u64 = 520;
/// `XLOG_UNMOUNT_TRANS`.
const UNMOUNT_TRANS: u8 = 0x20;

pub enum Ends {
    /// Never written (zeroed).
    Empty,
    /// Ends with an unmount record.
    Clean,
    /// Records from `tail` (written in pass `cycle`) up to, not including,
    /// `head` need replaying.
    Dirty { head: u64, tail: u64, cycle: u32 },
}

/// The cycle number of every log block, read a window at a time.
fn cycles(log: &Log) -> Result<Vec<u32>, String> {
    let mut out = Vec::with_capacity(log.bbs as usize);
    let window = 2048;
    let mut blk = 0;
    while blk < log.bbs {
        let n = window.min(log.bbs - blk);
        let b = log.read(blk, n).map_err(|e| format!("log unreadable at block {blk}: {e}"))?;
        for s in b.chunks_exact(BB as usize) {
            out.push(if be_u32_at(s, 0) == super::record::MAGIC { be_u32_at(s, 4) } else { be_u32_at(s, 0) });
        }
        blk += n;
    }
    Ok(out)
}

/// The cycle number of one log block.
fn cycle_at(log: &Log, b: u64) -> Result<u32, String> {
    let s = log.read(b, 1).map_err(|e| format!("log unreadable at block {b}: {e}"))?;
    Ok(if be_u32_at(&s, 0) == super::record::MAGIC { be_u32_at(&s, 4) } else { be_u32_at(&s, 0) })
}

/// As the kernel's `xlog_find_head`: the newest cycle's end by binary search
/// (the cycles read `c … c c-1 … c-1`), then the window that may have been
/// in flight read whole for a torn write. Only when no record ends at the
/// head so found is every block's cycle read ([`find_by_scan`]).
pub fn find(log: &Log) -> Result<Ends, String> {
    let n = log.bbs;
    if n == 0 {
        return Err("the log has no blocks".into());
    }
    let first = cycle_at(log, 0)?;
    if first == 0 {
        return Ok(Ends::Empty);
    }
    let newest = if cycle_at(log, n - 1)? == first {
        n
    } else {
        // cycle(lo) is the newest, cycle(hi) is not.
        let (mut lo, mut hi) = (0, n - 1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if cycle_at(log, mid)? == first {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo + 1
    };
    let start = newest.saturating_sub(IN_FLIGHT);
    let window = log.read(start, newest - start).map_err(|e| format!("log unreadable at block {start}: {e}"))?;
    let hole = window.chunks_exact(BB as usize).position(|s| {
        let c = if be_u32_at(s, 0) == super::record::MAGIC { be_u32_at(s, 4) } else { be_u32_at(s, 0) };
        c != first
    });
    let head = hole.map_or(newest, |i| start + i as u64) % n;
    match verify(log, head) {
        Ok(ends) => Ok(ends),
        Err(_) => find_by_scan(log),
    }
}

/// The head from every block's cycle: the last block of the newest cycle,
/// moved back over a torn write; and when no record ends there (a damaged
/// block far past the head carrying the newest cycle), the first block of
/// another cycle.
fn find_by_scan(log: &Log) -> Result<Ends, String> {
    let cyc = cycles(log)?;
    let n = log.bbs;
    let (Some(&first), Some(&last)) = (cyc.first(), cyc.last()) else {
        return Err("the log has no blocks".into());
    };
    if first == 0 {
        return Ok(Ends::Empty);
    }
    let at = |b: u64| cyc.get(b as usize).copied().unwrap_or(0);
    let head = if first == last {
        // Written end to end with one cycle: the head is at the end, unless
        // a hole of the previous cycle near the end says a write was torn.
        (n.saturating_sub(IN_FLIGHT)..n).find(|&b| at(b) != first).unwrap_or(n)
    } else {
        // The last block of the newest cycle, then the first hole before it
        // within what may have been in flight.
        let newest = cyc.iter().rposition(|&c| c == first).map_or(0, |p| p as u64 + 1);
        (newest.saturating_sub(IN_FLIGHT)..newest).find(|&b| at(b) != first).unwrap_or(newest)
    } % n;
    let found = verify(log, head);
    // One damaged block far past the head can carry the newest cycle: then
    // the first block of another cycle is the head.
    let first_change = (0..n).find(|&b| at(b) != first).unwrap_or(0);
    match found {
        Err(_) if first_change != head => verify(log, first_change).or(found),
        _ => found,
    }
}

/// The head is where the last record ends; a torn record (or garbage after
/// the last one) moves it back to that record's header.
fn verify(log: &Log, mut head: u64) -> Result<Ends, String> {
    let n = log.bbs;
    for _ in 0..8 {
        let Some(hdr) = last_header(log, head) else {
            return Err(format!("log head not found: no valid record header in the {MAX_RECORD_SPAN} blocks before block {head}"));
        };
        if log.distance(hdr.blk, head) == hdr.span() % n {
            return ends(log, &hdr, head);
        }
        head = hdr.blk;
    }
    Err(format!("log head not found: the records before block {head} do not end where the next begins"))
}

/// The nearest valid record header before `head`.
fn last_header(log: &Log, head: u64) -> Option<Header> {
    let n = log.bbs;
    (1..=MAX_RECORD_SPAN.min(n)).find_map(|back| {
        let b = (head + n - back) % n;
        // Only a header can hold the magic number in its first word (data
        // blocks have it replaced by the cycle), so read just those.
        let raw = log.read(b, 1).ok()?;
        if be_u32_at(&raw, 0) != super::record::MAGIC {
            return None;
        }
        Header::parse(log, b, raw).ok()
    })
}

fn ends(log: &Log, hdr: &Header, head: u64) -> Result<Ends, String> {
    // A lone unmount record: the first operation's flags (byte 9 of the
    // op header, which the cycle stamp does not cover).
    if hdr.num_ops == 1 {
        let op = log.read(hdr.blk + hdr.hblks, 1).map_err(|e| format!("log unreadable at block {}: {e}", hdr.blk))?;
        if op.get(9).is_some_and(|f| f & UNMOUNT_TRANS != 0) {
            return Ok(Ends::Clean);
        }
    }
    if hdr.foreign(&log.uuid) {
        return Err(format!("the log's last record (block {}) belongs to another filesystem (its UUID differs)", hdr.blk));
    }
    let (tcycle, tail) = ((hdr.tail_lsn >> 32) as u32, hdr.tail_lsn & 0xffff_ffff);
    if tail >= log.bbs {
        return Err(format!("log tail {}:{tail} is past the end of the log ({} blocks)", tcycle, log.bbs));
    }
    // The tail lies in the same pass as the last record, or in the one
    // before and after the head.
    let ok = (tcycle == hdr.cycle && tail <= hdr.blk) || (tcycle.wrapping_add(1) == hdr.cycle && tail >= head);
    if !ok {
        return Err(format!(
            "log tail {tcycle}:{tail} named by the record at block {} (cycle {}) is not in the written log",
            hdr.blk, hdr.cycle
        ));
    }
    Ok(Ends::Dirty { head, tail, cycle: tcycle })
}
