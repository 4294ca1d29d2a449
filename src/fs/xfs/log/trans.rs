//! Records → operations → transactions (`xlog_recover_process_data`,
//! `xlog_recover_add_to_trans`, `xlog_recover_add_to_cont_trans`).
//!
//! Each record holds `h_num_logops` operations: a 12-byte header (`oh_tid`,
//! `oh_len`, client, flags) and `oh_len` bytes. A transaction starts with a
//! START operation, then its 16-byte transaction header, then its items: the
//! first region of an item is its format (whose `size` field says how many
//! regions follow). A region that does not fit in a record continues in the
//! next one (CONTINUE, then WAS_CONTINUED). The COMMIT operation makes the
//! transaction count; one never committed is left out.

use super::record::Header;
use super::{Ahead, Log};
use crate::util::bytes::{be_u32_at, u16_at, u32_at};
use std::collections::HashMap;

pub const LI_EFI: u16 = 0x1236;
pub const LI_IUNLINK: u16 = 0x1238;
pub const LI_INODE: u16 = 0x123b;
pub const LI_BUF: u16 = 0x123c;
pub const LI_DQUOT: u16 = 0x123d;
pub const LI_QUOTAOFF: u16 = 0x123e;
pub const LI_ICREATE: u16 = 0x123f;
/// The last intent/done type (`XFS_LI_CUD_RT`).
const LI_LAST_INTENT: u16 = 0x124f;

const CLIENT_TRANSACTION: u8 = 0x69;
const CLIENT_LOG: u8 = 0xaa;
const START: u8 = 0x01;
const COMMIT: u8 = 0x02;
const CONTINUE: u8 = 0x04;
const WAS_CONTINUED: u8 = 0x08;
const END: u8 = 0x10;
const UNMOUNT: u8 = 0x20;
/// "TRAN", in host (little-endian) order.
const TRANS_MAGIC: u32 = 0x5452_414e;
const TRANS_HEADER: usize = 16;
/// `XLOG_MAX_REGIONS_IN_ITEM`.
const MAX_REGIONS: usize = 65536 / 128 / 2 + 1;
/// Records that may be in flight at a crash (`XLOG_MAX_ICLOGS`): a CRC
/// mismatch among them is a torn write.
const IN_FLIGHT_RECORDS: usize = 8;

/// Intent and done items (deferred work), including `XFS_LI_IUNLINK`,
/// which is never written.
pub fn is_intent(kind: u16) -> bool {
    kind == LI_EFI || kind == LI_EFI + 1 || kind == LI_IUNLINK || (0x1240..=LI_LAST_INTENT).contains(&kind)
}

/// Done items have odd type codes (EFD 0x1237, RUD 0x1241, …).
pub fn is_done(kind: u16) -> bool {
    kind & 1 == 1
}

pub fn intent_name(kind: u16) -> &'static str {
    match kind {
        0x1236 => "EFI (extent free)",
        0x1240 => "RUI (reverse map update)",
        0x1242 => "CUI (refcount update)",
        0x1244 => "BUI (block mapping update)",
        0x1246 => "ATTRI (attribute set/remove)",
        0x1248 => "XMI (mapping exchange)",
        0x124a => "realtime EFI",
        0x124c => "realtime RUI",
        0x124e => "realtime CUI",
        _ => "other",
    }
}

#[derive(Default)]
pub struct Item {
    /// Regions the format says the item has (0: not known yet).
    total: usize,
    /// The regions kept, end to end, and where each ends (one buffer per
    /// item, not one per region: a busy log has millions of regions).
    bytes: Vec<u8>,
    ends: Vec<usize>,
    /// Regions after the format that were counted, not kept ([`Pass::Formats`]).
    dropped: usize,
}

/// Items and item lists of replayed transactions, cleared for the walk to
/// fill again: allocating and freeing every region of a busy log took a
/// fifth of its replay.
#[derive(Default)]
pub struct Spare {
    items: Vec<Item>,
    lists: Vec<Vec<Item>>,
    /// Bytes the spare items can hold, at most [`SPARE_BYTES`].
    bytes: usize,
}

/// What the spare items may hold in all, and the most items or lists kept.
const SPARE_BYTES: usize = 4 << 20;
const SPARE_ITEMS: usize = 4096;

impl Spare {
    /// Takes back the transactions in `done` (leaving it empty).
    pub fn keep(&mut self, done: &mut Vec<Trans>) {
        for mut t in done.drain(..) {
            for mut item in t.items.drain(..) {
                let size = item.bytes.capacity();
                if self.items.len() < SPARE_ITEMS && self.bytes + size <= SPARE_BYTES {
                    item.clear();
                    self.bytes += size;
                    self.items.push(item);
                }
            }
            if self.lists.len() < SPARE_ITEMS {
                self.lists.push(t.items);
            }
        }
    }

    fn item(&mut self) -> Item {
        let item = self.items.pop().unwrap_or_default();
        self.bytes = self.bytes.saturating_sub(item.bytes.capacity());
        item
    }

    fn list(&mut self) -> Vec<Item> {
        self.lists.pop().unwrap_or_default()
    }
}

/// What a walk keeps of each transaction.
#[derive(Clone, Copy)]
pub enum Pass {
    /// Each item's format region only (what pass 1 looks at: buffer
    /// cancellations), every record's checksum checked.
    Formats,
    /// Every region, every record's checksum checked.
    Whole,
    /// Every region, from the records an earlier `Formats` walk read and
    /// checksummed (`Walked::records`); the walk ends where that one did.
    Again { checked: usize },
}

impl Item {
    /// The item's type (first field of its format region, host order).
    pub fn kind(&self) -> u16 {
        self.region(0).map(|r| u16_at(r, 0)).unwrap_or(0)
    }

    /// Region `i` (0 is the format), if kept.
    pub fn region(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { *self.ends.get(i - 1)? };
        self.bytes.get(start..end)
    }

    /// The regions kept, in order.
    pub fn regions(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.ends.len()).filter_map(|i| self.region(i))
    }

    /// Adds a region at the end.
    pub fn push(&mut self, region: &[u8]) {
        self.bytes.extend_from_slice(region);
        self.ends.push(self.bytes.len());
    }

    /// Adds bytes to the last region (one continued from the previous record).
    fn extend_last(&mut self, more: &[u8]) -> Result<(), String> {
        let last = self.ends.last_mut().ok_or("a continued region with nothing before it")?;
        self.bytes.extend_from_slice(more);
        *last = self.bytes.len();
        Ok(())
    }

    fn clear(&mut self) {
        self.total = 0;
        self.bytes.clear();
        self.ends.clear();
        self.dropped = 0;
    }

    /// Checks the item has every region its format announced.
    pub fn complete(&self) -> Result<(), String> {
        if self.total == 0 || self.count() != self.total {
            return Err(format!("log item of type {:#x} has {} of its {} regions", self.kind(), self.count(), self.total));
        }
        Ok(())
    }

    fn count(&self) -> usize {
        self.ends.len() + self.dropped
    }
}

pub struct Trans {
    /// LSN of the record holding the START operation.
    pub lsn: u64,
    pub items: Vec<Item>,
}

#[derive(Default)]
pub struct Walked {
    pub notes: Vec<String>,
    pub stop: Option<String>,
    /// The walk ended because `on_commit` refused a transaction.
    pub refused: bool,
    /// Records read whole, checksum checked, before the walk ended.
    pub records: usize,
}

/// Why handing a committed transaction on failed: said as it is.
pub struct Refused(pub String);

enum Stop {
    /// The record is damaged.
    Record(String),
    /// `on_commit` refused a transaction.
    Refused(String),
}

/// Hands every transaction committed between `tail` (of pass `cycle`) and
/// `head` to `on_commit`, in log order, as soon as its commit record is
/// read: only the transactions still open are held, so memory does not grow
/// with the log (recovery walks the log twice, as the kernel does).
pub fn walk(
    log: &Log,
    tail: u64,
    mut cycle: u32,
    head: u64,
    pass: Pass,
    on_commit: &mut dyn FnMut(Trans, &mut Spare) -> Result<(), Refused>,
) -> Walked {
    let checked = match pass {
        Pass::Formats | Pass::Whole => None,
        Pass::Again { checked } => Some(checked),
    };
    let mut out = Walked::default();
    let mut ahead = log.ahead(tail);
    let mut open: HashMap<u32, Trans> = HashMap::new();
    let mut spare = Spare::default();
    let mut pos = tail;
    let mut i = 0usize;
    while pos != head {
        if checked.is_some_and(|n| i >= n) {
            return out;
        }
        if i as u64 >= log.bbs {
            out.stop = Some("the records between tail and head run in a circle".into());
            break;
        }
        let h = match record_at(log, &mut ahead, pos, head, cycle) {
            Ok(h) => h,
            Err(e) => {
                out.stop = Some(e);
                break;
            }
        };
        let next = (pos + h.span()) % log.bbs;
        let data = match ahead.blocks(h.blk + h.hblks, h.data_blocks()) {
            Ok(d) => d,
            Err(e) => {
                out.stop = Some(format!("record at block {}: unreadable: {e}", h.blk));
                break;
            }
        };
        if log.crc && checked.is_none() && !h.crc_ok(data) {
            // A checksum mismatch among the last records that were in
            // flight, with nothing wrong after them, is a torn write.
            let after = if next <= pos { cycle.wrapping_add(1) } else { cycle };
            match records_to_head(log, next, head, after, IN_FLIGHT_RECORDS) {
                Some(n) if n < IN_FLIGHT_RECORDS => out.notes.push(format!(
                    "the last {} log record(s), from block {}, fail their checksum: torn writes as the machine stopped, \
                     left out as the kernel does",
                    n + 1,
                    h.blk
                )),
                _ => out.stop = Some(format!("record at block {}: checksum mismatch", h.blk)),
            }
            break;
        }
        h.unpack(data);
        match operations(&h, data, &mut open, &mut spare, pass, on_commit) {
            Ok(()) => {}
            Err(Stop::Record(e)) => {
                out.stop = Some(format!("record at block {}: {e}", h.blk));
                break;
            }
            Err(Stop::Refused(e)) => {
                out.stop = Some(e);
                out.refused = true;
                return out;
            }
        }
        if next <= pos {
            cycle = cycle.wrapping_add(1);
        }
        pos = next;
        i += 1;
        out.records = i;
    }
    if out.stop.is_none() && !open.is_empty() {
        out.notes.push(format!("{} transaction(s) not committed when the machine stopped, left out as the kernel does", open.len()));
    }
    out
}

/// The header of the record at `pos`, checked to lie before `head` and to
/// carry the pass's `cycle`.
fn record_at(log: &Log, ahead: &mut Ahead, pos: u64, head: u64, cycle: u32) -> Result<Header, String> {
    let first = ahead.blocks(pos, 1).map_err(|e| format!("record at block {pos}: unreadable: {e}"))?.to_vec();
    let h = Header::parse(log, pos, first)?;
    if log.distance(pos, head) < h.span() {
        return Err(format!("record at block {pos}: {} blocks long, it runs past the log head at block {head}", h.span()));
    }
    // Each pass round the log writes its own cycle number: another one here
    // is a stale record the head search should have seen.
    if h.cycle != cycle {
        return Err(format!("record at block {pos}: written in pass {} where pass {cycle} was expected (a stale record)", h.cycle));
    }
    Ok(h)
}

/// How many sound records lie from `pos` to `head` (headers only), or
/// `None` when one is damaged or there are more than `most`.
fn records_to_head(log: &Log, mut pos: u64, head: u64, mut cycle: u32, most: usize) -> Option<usize> {
    let mut ahead = log.ahead(pos);
    let mut n = 0;
    while pos != head {
        if n >= most {
            return None;
        }
        let h = record_at(log, &mut ahead, pos, head, cycle).ok()?;
        let next = (pos + h.span()) % log.bbs;
        if next <= pos {
            cycle = cycle.wrapping_add(1);
        }
        pos = next;
        n += 1;
    }
    Some(n)
}

fn operations(
    h: &Header,
    data: &[u8],
    open: &mut HashMap<u32, Trans>,
    spare: &mut Spare,
    pass: Pass,
    on_commit: &mut dyn FnMut(Trans, &mut Spare) -> Result<(), Refused>,
) -> Result<(), Stop> {
    record_operations(h, data, open, spare, pass, on_commit).map_err(|e| match e {
        Ok(refused) => Stop::Refused(refused.0),
        Err(damage) => Stop::Record(damage),
    })
}

/// The operations of one record; `Err(Ok(_))` when a transaction was
/// refused, `Err(Err(_))` when the record is damaged.
fn record_operations(
    h: &Header,
    data: &[u8],
    open: &mut HashMap<u32, Trans>,
    spare: &mut Spare,
    pass: Pass,
    on_commit: &mut dyn FnMut(Trans, &mut Spare) -> Result<(), Refused>,
) -> Result<(), Result<Refused, String>> {
    let formats_only = matches!(pass, Pass::Formats);
    let end = h.len as usize;
    let mut pos = 0usize;
    let mut left = h.num_ops;
    while pos < end && left > 0 {
        left -= 1;
        let oh = data
            .get(pos..pos + 12)
            .filter(|_| pos + 12 <= end)
            .ok_or_else(|| Err("an operation header runs past the record's end".to_string()))?;
        let (tid, len, client, flags) = (be_u32_at(oh, 0), be_u32_at(oh, 4) as usize, oh[8], oh[9]);
        pos += 12;
        if client != CLIENT_TRANSACTION && client != CLIENT_LOG {
            return Err(Err(format!("operation with unknown client id {client:#x}")));
        }
        let body = data
            .get(pos..pos.saturating_add(len))
            .filter(|_| pos.saturating_add(len) <= end)
            .ok_or_else(|| Err(format!("an operation of {len} bytes runs past the record's end")))?;
        pos += len;
        let Some(trans) = open.get_mut(&tid) else {
            // Operations of transactions begun before the tail, or slack.
            if flags & START != 0 {
                open.insert(tid, Trans { lsn: h.lsn, items: spare.list() });
            }
            continue;
        };
        let mut f = flags & !END;
        if f & WAS_CONTINUED != 0 {
            f &= !CONTINUE;
        }
        match f {
            0 | CONTINUE => add(trans, spare, body, formats_only).map_err(Err)?,
            WAS_CONTINUED => add_continued(trans, spare, body).map_err(Err)?,
            COMMIT => {
                if let Some(t) = open.remove(&tid) {
                    on_commit(t, spare).map_err(Ok)?;
                }
            }
            UNMOUNT => {
                open.remove(&tid);
            }
            _ => return Err(Err(format!("operation with bad flags {flags:#x}"))),
        }
    }
    Ok(())
}

fn add(trans: &mut Trans, spare: &mut Spare, body: &[u8], formats_only: bool) -> Result<(), String> {
    if body.is_empty() {
        return Ok(());
    }
    if trans.items.is_empty() {
        if u32_at(body, 0) != TRANS_MAGIC {
            return Err("transaction header with a bad magic number".into());
        }
        if body.len() > TRANS_HEADER {
            return Err(format!("transaction header of {} bytes", body.len()));
        }
        // A whole header opens the first item; a split one waits for the
        // rest (which opens it).
        if body.len() == TRANS_HEADER {
            trans.items.push(spare.item());
        }
        return Ok(());
    }
    if trans.items.last().is_some_and(|i| i.total != 0 && i.total == i.count()) {
        trans.items.push(spare.item());
    }
    let Some(item) = trans.items.last_mut() else { return Err("no log item".into()) };
    if item.total == 0 {
        let n = usize::from(u16_at(body, 2));
        if n == 0 || n > MAX_REGIONS {
            return Err(format!("log item claims {n} regions"));
        }
        item.total = n;
    }
    if item.total <= item.count() {
        return Err(format!("log item region count overflowed its size ({})", item.total));
    }
    if formats_only && !item.ends.is_empty() {
        item.dropped += 1;
    } else {
        item.push(body);
    }
    Ok(())
}

fn add_continued(trans: &mut Trans, spare: &mut Spare, body: &[u8]) -> Result<(), String> {
    if trans.items.is_empty() {
        if body.len() > TRANS_HEADER {
            return Err(format!("transaction header continued with {} bytes", body.len()));
        }
        trans.items.push(spare.item());
        return Ok(());
    }
    let item = trans.items.last_mut().ok_or("a continued region with nothing before it")?;
    if item.dropped > 0 {
        // The rest of a region not kept.
        return Ok(());
    }
    item.extend_last(body)
}
