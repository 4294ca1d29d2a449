//! XFS log recovery, read-only, in memory (issue 14).
//!
//! Written from the kernel's fs/xfs/xfs_log_recover.c, xfs_buf_item_recover.c,
//! xfs_inode_item_recover.c, xfs_icreate_item.c and libxfs/xfs_log_format.h;
//! no crate reads the XFS log. What the kernel does at mount, we do into an
//! overlay of 512-byte sectors:
//!
//! - find the head and the tail of the log (`head.rs`): the head is where the
//!   cycle numbers stamped in every log block drop; the last record before it
//!   gives the tail; a log whose last record is an unmount record is clean;
//! - walk the records from tail to head (`record.rs`): validate each header,
//!   check its CRC (v5), put back the cycle-stamped first word of every block
//!   (extended headers for records over 32 KiB); a CRC mismatch in the last
//!   eight records is a torn write the kernel drops silently, anywhere else it
//!   ends the replay;
//! - turn operations into transactions (`trans.rs`), regions split across
//!   records joined;
//! - pass 1: collect cancelled buffers; pass 2: replay each committed
//!   transaction's items in the kernel's order (buffers, then inodes, then
//!   inode-unlink buffers): buffer regions (`buf.rs`, with v5's "home block
//!   newer" skip), inode cores and forks (`inode.rs`), new inode chunks
//!   (`icreate.rs`). Unlike the kernel, we first try both in one pass and
//!   fall back on two only when a cancel turns out to matter (`recover`).
//!
//! Knowingly not done: intent items (EFI/EFD, RUI/RUD, CUI/CUD, BUI/BUD,
//! ATTRI/ATTRD, XMI/XMD) describe deferred work (freeing extents, updating
//! reverse/refcount maps and mappings) that the kernel *finishes* after
//! replay; they change allocation metadata, which is never read here, and
//! finishing them would mean running the allocator. An intent left without
//! its done item is reported in `notes`. Quota items (dquots, quotaoff) only
//! change quota accounting, which is never read here. Unlinked inodes (open
//! but deleted files) are not freed: nothing is ever freed here, and such an
//! inode is unreachable from the tree anyway.
//!
//! Bounded: the log is read a record (at most 256 KiB) at a time; memory is 4 bytes a log block
//! for the cycle map, plus the transactions still open during the walk (at
//! most the log's size; pass 1 keeps only each item's format region), plus
//! the replayed sectors, plus at most 16 MiB of home sectors read once and
//! kept because relogged buffers need them again. Nothing panics or loops on any
//! bytes: every defect becomes a [`Replay`] that says where the replay stopped.

mod buf;
mod head;
mod icreate;
mod inode;
mod record;
mod trans;

use super::superblock::Superblock;
use crate::evidence::{ReadAt, Source};
use crate::fs::replay::{Patch, Replay, Status};
use std::collections::{BTreeMap, HashMap};
use std::io;

pub const LOG: &str = "XFS log";
/// Basic blocks: the log's and the disk address unit.
pub const BB: u64 = 512;
/// The largest log mkfs.xfs makes is just under 2 GiB.
const MAX_LOG_BYTES: u64 = 2 << 30;

/// A replay's overlay (512-byte units) and its account.
pub struct Recovery {
    pub patches: BTreeMap<u64, Patch>,
    pub replay: Replay,
    /// The log ends with an unmount record (or is empty): nothing to do.
    pub clean: bool,
}

/// The internal log: `bbs` 512-byte blocks from byte `start` of the volume.
pub(crate) struct Log<'a> {
    dev: &'a Source,
    start: u64,
    pub bbs: u64,
    /// v2 log records (extended headers).
    pub v2: bool,
    /// Records carry a CRC (v5).
    pub crc: bool,
    /// The filesystem's `sb_uuid`, which every record header repeats.
    pub uuid: [u8; 16],
}

impl<'a> Log<'a> {
    /// `n` log blocks from block `blk`, wrapping at the log's end.
    pub fn read(&self, blk: u64, n: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_into(blk, n, &mut out)?;
        Ok(out)
    }

    /// [`Log::read`] into `out` (a buffer reused record after record).
    pub fn read_into(&self, blk: u64, n: u64, out: &mut Vec<u8>) -> io::Result<()> {
        if n > self.bbs || self.bbs == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "read longer than the log"));
        }
        let blk = blk % self.bbs;
        let first = n.min(self.bbs - blk);
        out.resize((n * BB) as usize, 0);
        let (a, b) = out.split_at_mut((first * BB) as usize);
        self.dev.read_exact_at(self.start + blk * BB, a)?;
        if !b.is_empty() {
            self.dev.read_exact_at(self.start, b)?;
        }
        Ok(())
    }

    /// A reader of this log that reads ahead from `origin` ([`Ahead`]).
    pub fn ahead(&self, origin: u64) -> Ahead<'_, 'a> {
        Ahead { log: self, origin: origin % self.bbs.max(1), at: 0, buf: Vec::new() }
    }

    /// Blocks from `from` forward to `to` (modulo the log).
    pub fn distance(&self, from: u64, to: u64) -> u64 {
        (to + self.bbs - from % self.bbs) % self.bbs
    }
}

/// Blocks read ahead in one go: 1 MiB, several dozen of a busy log's records.
const AHEAD_BLOCKS: u64 = 2048;

/// The log read forward from `origin` (the tail) a window at a time, as a
/// walk from tail to head asks for it: one read serves many small records,
/// where a read per header and per record cost more in system calls than in
/// copying. Blocks are handed out in place, so a record is checked and
/// unpacked where it was read.
pub(crate) struct Ahead<'l, 'a> {
    log: &'l Log<'a>,
    origin: u64,
    /// The window's first block, counted from `origin`.
    at: u64,
    buf: Vec<u8>,
}

impl Ahead<'_, '_> {
    /// `n` log blocks from block `blk`, which lies at or past the origin.
    pub fn blocks(&mut self, blk: u64, n: u64) -> io::Result<&mut [u8]> {
        let log = self.log;
        let rel = log.distance(self.origin, blk);
        let held = self.buf.len() as u64 / BB;
        if rel < self.at || rel + n > self.at + held {
            let len = n.max(AHEAD_BLOCKS).min(log.bbs);
            if n > len {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "read longer than the log"));
            }
            log.read_into(self.origin + rel, len, &mut self.buf)?;
            self.at = rel;
        }
        let from = ((rel - self.at) * BB) as usize;
        self.buf.get_mut(from..from + (n * BB) as usize).ok_or_else(|| io::Error::other("log window"))
    }
}

/// Formats an LSN as `cycle:block`.
pub fn lsn_str(lsn: u64) -> String {
    format!("{}:{}", lsn >> 32, lsn & 0xffff_ffff)
}

/// The log's geometry from the superblock, or why it cannot be read.
fn geometry<'a>(dev: &'a Source, sb: &Superblock) -> Result<Log<'a>, String> {
    let start = sb.linear_block(sb.log_start).map_err(|_| format!("the log's start block {} is outside the filesystem", sb.log_start))?;
    if sb.log_blocks == 0 {
        return Err("the superblock gives the log no blocks".into());
    }
    if start.saturating_add(sb.log_blocks) > sb.dblocks {
        return Err(format!(
            "log claims more blocks than the filesystem ({} blocks from block {start}, the filesystem has {})",
            sb.log_blocks, sb.dblocks
        ));
    }
    let bytes = sb.log_blocks * sb.block_size;
    if bytes > MAX_LOG_BYTES {
        return Err(format!("a log of {} MiB is larger than any mkfs.xfs makes ({} MiB)", bytes >> 20, MAX_LOG_BYTES >> 20));
    }
    if start.saturating_mul(sb.block_size).saturating_add(bytes) > dev.len() {
        return Err("the log runs past the end of the image".into());
    }
    Ok(Log { dev, start: start * sb.block_size, bbs: bytes / BB, v2: sb.has_logv2(), crc: sb.is_v5(), uuid: sb.uuid_bytes() })
}

/// Whether the internal log needs recovery; `Err` when it cannot tell.
pub fn needs_recovery(dev: &Source, sb: &Superblock) -> Result<bool, String> {
    let log = geometry(dev, sb)?;
    match head::find(&log)? {
        head::Ends::Empty | head::Ends::Clean => Ok(false),
        head::Ends::Dirty { .. } => Ok(true),
    }
}

/// Replays the internal log of `sb`'s filesystem. Never fails: a log that
/// cannot be replayed says why in the returned [`Replay`].
pub fn recover(dev: &Source, sb: &Superblock) -> Recovery {
    let mut replay = Replay { log: LOG, unit: BB, ..Replay::default() };
    let not = |mut replay: Replay, reason: String| {
        replay.status = Status::NotReplayed;
        replay.reason = Some(reason);
        Recovery { patches: BTreeMap::new(), replay, clean: false }
    };
    let log = match geometry(dev, sb) {
        Ok(l) => l,
        Err(e) => return not(replay, e),
    };
    let (head, tail, cycle) = match head::find(&log) {
        Ok(head::Ends::Empty) => {
            return not(replay, "the log is zeroed (no records): nothing can be replayed, and its state is unknown".into());
        }
        Ok(head::Ends::Clean) => return Recovery { patches: BTreeMap::new(), replay, clean: true },
        Ok(head::Ends::Dirty { head, tail, cycle }) => (head, tail, cycle),
        Err(e) => return not(replay, e),
    };
    // One pass first, as if no buffer were cancelled later in the log: exact
    // unless a buffer the pass looked up is cancelled after (rare: 4 of the
    // fixtures' and kernel cases' 31 cancels), or a transaction is refused
    // (the kernel's pass 1 would have gathered cancels beyond it). Then the
    // kernel's two passes, which read the whole log twice.
    let ends = (tail, cycle, head);
    let once = replay_pass(&log, dev, sb, ends, trans::Pass::Whole, buf::Cancels::optimistic());
    let (walked, mut r) = if once.cancels.conflict() || once.walked.refused {
        drop(once);
        // Pass 1: buffers cancelled anywhere in the log.
        let mut cancels = buf::Cancels::default();
        let walked = trans::walk(&log, tail, cycle, head, trans::Pass::Formats, &mut |t, spare| {
            for item in &t.items {
                if item.kind() == trans::LI_BUF
                    && let Ok(f) = buf::Format::parse(item)
                    && f.cancelled()
                {
                    cancels.add(f.blkno, f.len);
                }
            }
            spare.keep(&mut vec![t]);
            Ok(())
        });
        // Pass 2, over the records pass 1 read and checked.
        let again = trans::Pass::Again { checked: walked.records };
        (walked, replay_pass(&log, dev, sb, ends, again, cancels))
    } else {
        let mut r = once;
        (std::mem::take(&mut r.walked), r)
    };
    replay.notes.extend(walked.notes);
    replay.transactions = r.transactions;
    replay.first = r.first.take();
    replay.last = r.last.take();
    let stop = r.walked.stop.take().or(walked.stop);
    let mut store = r.store;
    store.finish();
    // (When the replay stopped early, the done items may lie beyond.)
    if let Some(n) = r.intents.unfinished().filter(|_| stop.is_none()) {
        replay.notes.push(n);
    }
    let patches: BTreeMap<u64, Patch> = store.patches.into_iter().map(|(k, (_, v))| (k, Patch::Bytes(v))).collect();
    replay.blocks = patches.len() as u64;
    if let Some(reason) = stop {
        replay.status = if replay.transactions == 0 { Status::NotReplayed } else { Status::Stopped };
        replay.reason = Some(reason);
        if replay.transactions == 0 {
            return Recovery { patches: BTreeMap::new(), replay: Replay { blocks: 0, ..replay }, clean: false };
        }
    }
    Recovery { patches, replay, clean: false }
}

/// What one replaying walk of the log did.
struct Replayed<'a> {
    store: Store<'a>,
    cancels: buf::Cancels,
    intents: Intents,
    walked: trans::Walked,
    transactions: u64,
    first: Option<String>,
    last: Option<String>,
}

/// Replays each committed transaction between tail and head, in order, all
/// or nothing; the walk stops at the first one that cannot be replayed.
fn replay_pass<'a>(
    log: &Log,
    dev: &'a Source,
    sb: &Superblock,
    (tail, cycle, head): (u64, u32, u64),
    pass: trans::Pass,
    mut cancels: buf::Cancels,
) -> Replayed<'a> {
    let mut store = Store::new(dev, sb);
    let mut intents = Intents::default();
    let (mut transactions, mut first, mut last) = (0, None, None);
    let mut done = Vec::with_capacity(1);
    let walked = trans::walk(log, tail, cycle, head, pass, &mut |t, spare| {
        store.group(t.lsn);
        let applied = apply(&mut store, sb, &mut cancels, &mut intents, &t);
        let lsn = t.lsn;
        done.push(t);
        spare.keep(&mut done);
        match applied {
            Ok(()) => {
                store.commit();
                transactions += 1;
                first.get_or_insert_with(|| lsn_str(lsn));
                last = Some(lsn_str(lsn));
                Ok(())
            }
            Err(e) => {
                store.rollback();
                Err(trans::Refused(format!("transaction at LSN {}: {e}", lsn_str(lsn))))
            }
        }
    });
    Replayed { store, cancels, intents, walked, transactions, first, last }
}

/// Replays one committed transaction's items in the kernel's order
/// (`xlog_recover_reorder_trans`): inode-create items and ordinary buffers
/// as logged, then inodes (and the items skipped), then inode-unlink
/// buffers, then cancelled buffers (nothing to replay).
fn apply(store: &mut Store, sb: &Superblock, cancels: &mut buf::Cancels, intents: &mut Intents, t: &trans::Trans) -> Result<(), String> {
    let mut first = Vec::new();
    let mut items = Vec::new();
    let mut inode_bufs = Vec::new();
    let mut cancelled = Vec::new();
    for item in &t.items {
        match item.kind() {
            trans::LI_BUF => {
                let f = buf::Format::parse(item)?;
                if f.cancelled() {
                    cancelled.push(f);
                } else if f.inode_buf() {
                    inode_bufs.insert(0, (f, item));
                } else {
                    first.push(Step::Buf(f, item));
                }
            }
            trans::LI_ICREATE => first.push(Step::Icreate(item)),
            trans::LI_INODE => items.push(Step::Inode(item)),
            k if trans::is_intent(k) => intents.see(k, item),
            // Quota: dquot and quotaoff items change quota accounting only,
            // which nothing here reads (the kernel skips them too when
            // quotas are off).
            trans::LI_DQUOT | trans::LI_QUOTAOFF => {}
            k => return Err(format!("unknown log item type {k:#x}")),
        }
    }
    for step in first.into_iter().chain(items) {
        match step {
            Step::Buf(f, item) => buf::replay(store, sb, cancels, &f, item, t.lsn)?,
            Step::Icreate(item) => icreate::replay(store, sb, cancels, item)?,
            Step::Inode(item) => inode::replay(store, sb, cancels, item, t.lsn)?,
        }
    }
    for (f, item) in inode_bufs {
        buf::replay(store, sb, cancels, &f, item, t.lsn)?;
    }
    for f in cancelled {
        cancels.put(f.blkno, f.len);
    }
    Ok(())
}

enum Step<'a> {
    Buf(buf::Format, &'a trans::Item),
    Icreate(&'a trans::Item),
    Inode(&'a trans::Item),
}

/// Intent items seen, by id, until their done item: what is left at the end
/// is deferred work the kernel would finish at mount.
#[derive(Default)]
struct Intents(HashMap<u64, u16>);

impl Intents {
    fn see(&mut self, kind: u16, item: &trans::Item) {
        if kind == trans::LI_IUNLINK {
            return;
        }
        // Every intent and done item carries its id (the intent's) at byte 8.
        let id = item.region(0).map(|r| crate::util::bytes::u64_at(r, 8)).unwrap_or(0);
        if trans::is_done(kind) {
            self.0.remove(&id);
        } else {
            self.0.insert(id, kind);
        }
    }

    fn unfinished(&self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for k in self.0.values() {
            *names.entry(trans::intent_name(*k)).or_default() += 1;
        }
        let list: Vec<String> = names.iter().map(|(n, c)| format!("{c} {n}")).collect();
        Some(format!(
            "{} unfinished intent item(s) ({}) not finished: the kernel would complete that deferred work \
             (freeing or remapping blocks) after replay; allocation metadata may show it undone",
            self.0.len(),
            list.join(", ")
        ))
    }
}

/// Sector number → bytes (in [`Store::patches`], with the transaction that
/// last changed them). Keys are sector numbers, not attacker-chosen
/// strings hashed in bulk, so a multiplicative hash does (SipHash took a
/// sixth of a full log's replay).
type Sectors<V = Box<[u8]>> = HashMap<u64, V, std::hash::BuildHasherDefault<SectorHash>>;

#[derive(Default)]
struct SectorHash(u64);

impl std::hash::Hasher for SectorHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The sectors a replay has rebuilt so far over the volume: committed ones,
/// and the current transaction's until it commits or rolls back.
pub(crate) struct Store<'a> {
    dev: &'a Source,
    /// Sectors in the filesystem (reads past it are refused).
    sectors: u64,
    /// Sectors replayed so far (looked up sector by sector: hashed, not
    /// ordered), each with the number of the transaction that last changed
    /// it; the current transaction writes here too, and `undo` holds what
    /// it replaced until it commits (a refused one is rolled back): the
    /// sector, and the serial and offset in `undo_bytes` of its old bytes
    /// (none when it was not replayed before).
    patches: Sectors<Held>,
    undo: Vec<(u64, Option<(u32, usize)>)>,
    undo_bytes: Vec<u8>,
    /// The current transaction's number.
    serial: u32,
    /// Replayed buffers `(sector, sectors)` whose LSN field is still to be
    /// stamped, with the LSN of the last transaction that replayed them.
    /// The kernel stamps a buffer when it writes it, at the end of each LSN
    /// group (`xfs_buf_delwri_submit` when the recovery LSN changes); a
    /// stamp only sets the LSN and checksum fields, and every later
    /// transaction has a larger LSN than a stamp, so the kernel's decisions
    /// never depend on it and one stamp at the end gives the same bytes.
    /// Except where another buffer, an inode or an inode chunk reuses some
    /// of those sectors in a later group: the stamp is made first, as the
    /// kernel would have made it.
    stamps: BTreeMap<(u64, u64), u64>,
    /// The most sectors of any buffer in `stamps`.
    longest: u64,
    new_stamps: Vec<((u64, u64), u64)>,
    group_lsn: u64,
    /// Sectors read from disk and never replayed: a buffer relogged in
    /// every transaction (a free-space btree root, an inode cluster) has
    /// sectors no transaction changes, and reading them again each time made
    /// most of a full log's replay. Emptied when it holds [`CLEAN_SECTORS`].
    clean: Sectors,
}

/// A replayed sector and the serial of the transaction that last changed it.
type Held = (u32, Box<[u8]>);

/// The serial of a stamp's change: transactions' have this bit clear.
const STAMPED: u32 = 1 << 31;

/// At most 16 MiB of on-disk sectors are kept.
const CLEAN_SECTORS: usize = 32 << 10;

impl<'a> Store<'a> {
    fn new(dev: &'a Source, sb: &Superblock) -> Store<'a> {
        Store::of_sectors(dev, sb.dblocks * (sb.block_size / BB))
    }

    fn of_sectors(dev: &'a Source, sectors: u64) -> Store<'a> {
        Store {
            dev,
            sectors,
            patches: Sectors::default(),
            undo: Vec::new(),
            undo_bytes: Vec::new(),
            serial: 0,
            stamps: BTreeMap::new(),
            longest: 0,
            new_stamps: Vec::new(),
            group_lsn: 0,
            clean: Sectors::default(),
        }
    }

    /// Checks that sectors `[blkno, blkno+len)` lie in the filesystem.
    pub fn check(&self, blkno: u64, len: u64) -> Result<(), String> {
        match blkno.checked_add(len) {
            Some(end) if len > 0 && end <= self.sectors => Ok(()),
            _ => Err(format!("sectors {blkno}+{len} are past the end of the filesystem ({} sectors)", self.sectors)),
        }
    }

    /// The replayed bytes of sector `s`, if it has been replayed.
    fn held(&self, s: u64) -> Option<&[u8]> {
        self.patches.get(&s).map(|(_, b)| &b[..])
    }

    /// Sectors `[first, last]` as they lie on disk (empty when all of them
    /// have been replayed): from the sectors read before, or read together.
    fn on_disk(&mut self, first: u64, last: u64) -> Result<Vec<u8>, String> {
        let missing = |s: &u64| self.held(*s).is_none();
        if !(first..=last).any(|s| missing(&s)) {
            return Ok(Vec::new());
        }
        let mut d = vec![0u8; ((last - first + 1) * BB) as usize];
        if (first..=last).filter(missing).all(|s| self.clean.contains_key(&s)) {
            for (s, dst) in (first..=last).zip(d.chunks_exact_mut(BB as usize)) {
                if let Some(b) = self.clean.get(&s) {
                    dst.copy_from_slice(b);
                }
            }
            return Ok(d);
        }
        self.dev.read_exact_at(first * BB, &mut d).map_err(|e| format!("cannot read sector {first}: {e}"))?;
        if self.clean.len() + d.len() / BB as usize > CLEAN_SECTORS {
            self.clean.clear();
        }
        for (s, src) in (first..=last).zip(d.chunks_exact(BB as usize)) {
            if self.held(s).is_none() {
                self.clean.insert(s, src.into());
            }
        }
        Ok(d)
    }

    /// Sector `s` as the replay has it so far, borrowed when it is held (the
    /// v5 LSN check of every buffer item reads its first sector).
    pub fn sector(&mut self, s: u64) -> Result<std::borrow::Cow<'_, [u8]>, String> {
        if self.patches.contains_key(&s) {
            return Ok(self.held(s).unwrap_or(&[]).into());
        }
        if self.clean.contains_key(&s) {
            return Ok(self.clean.get(&s).map_or(&[][..], |b| &b[..]).into());
        }
        Ok(self.read(s * BB, BB as usize)?.into())
    }

    /// `len` bytes at byte `off` as the replay has them so far (the item
    /// being replayed has called [`Store::settle`] on them).
    pub fn read(&mut self, off: u64, len: usize) -> Result<Vec<u8>, String> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let end = off + len as u64;
        let (first, last) = (off / BB, (end - 1) / BB);
        // A buffer relogged transaction after transaction (an AGF, an inode
        // cluster) is wholly replayed after its first time: no disk read.
        let disk = self.on_disk(first, last)?;
        let skip = (off - first * BB) as usize;
        let mut out = disk.get(skip..skip + len).map_or_else(|| vec![0u8; len], <[u8]>::to_vec);
        for s in first..=last {
            let Some(bytes) = self.held(s) else { continue };
            let (ss, se) = (s * BB, (s + 1) * BB);
            let (from, to) = (ss.max(off), se.min(end));
            if let (Some(dst), Some(src)) =
                (out.get_mut((from - off) as usize..(to - off) as usize), bytes.get((from - ss) as usize..(to - ss) as usize))
            {
                dst.copy_from_slice(src);
            }
        }
        Ok(out)
    }

    /// Puts `data` at byte `off` (in the current transaction; the item
    /// being replayed has called [`Store::settle`] on it).
    pub fn write(&mut self, off: u64, data: &[u8]) -> Result<(), String> {
        if data.is_empty() {
            return Ok(());
        }
        let end = off + data.len() as u64;
        let (first, last) = (off / BB, (end - 1) / BB);
        // Sectors never replayed are read from disk once, together.
        let disk = self.on_disk(first, last)?;
        for s in first..=last {
            let (ss, se) = (s * BB, (s + 1) * BB);
            let (from, to) = (ss.max(off), se.min(end));
            let part = &data[(from - off) as usize..(to - off) as usize];
            let at = (from - ss) as usize..(to - ss) as usize;
            match self.patches.get_mut(&s) {
                Some((serial, sector)) => {
                    if *serial != self.serial {
                        self.undo.push((s, Some((*serial, self.undo_bytes.len()))));
                        self.undo_bytes.extend_from_slice(sector);
                        *serial = self.serial;
                    }
                    sector[at].copy_from_slice(part);
                }
                None => {
                    let i = ((s - first) * BB) as usize;
                    let old = disk.get(i..i + BB as usize).ok_or("sector outside the read")?;
                    // Left as it lies on disk when the write changes nothing.
                    if &old[at.clone()] == part {
                        continue;
                    }
                    let mut sector: Box<[u8]> = old.into();
                    sector[at].copy_from_slice(part);
                    self.undo.push((s, None));
                    self.patches.insert(s, (self.serial, sector));
                }
            }
        }
        Ok(())
    }

    /// A buffer replayed at `lsn`: its LSN field is stamped later.
    pub fn replayed(&mut self, blkno: u64, len: u64, lsn: u64) {
        self.new_stamps.push(((blkno, len), lsn));
    }

    /// A transaction of start LSN `lsn` is about to be replayed.
    fn group(&mut self, lsn: u64) {
        self.group_lsn = lsn;
    }

    /// Before an item reads or writes sectors `[first, last]`: makes the
    /// stamps of earlier LSN groups on buffers other than `own` (the item's
    /// own buffer, if it is one) that share a sector with them (see `stamps`).
    pub fn settle(&mut self, first: u64, last: u64, own: Option<(u64, u64)>) {
        if self.stamps.is_empty() {
            return;
        }
        let from = (first.saturating_sub(self.longest), 0);
        let due: Vec<((u64, u64), u64)> = self
            .stamps
            .range(from..=(last, u64::MAX))
            .filter(|&(&key, &lsn)| key.0 + key.1 > first && Some(key) != own && lsn < self.group_lsn)
            .map(|(&k, &lsn)| (k, lsn))
            .collect();
        for (key, lsn) in due {
            self.stamps.remove(&key);
            self.stamp(key, lsn);
        }
    }

    /// Stamps a buffer's LSN into the sectors, as a change of its own,
    /// committed whatever happens to the transaction under way (which, if
    /// it changes them later, keeps the stamped bytes to roll back to).
    fn stamp(&mut self, (blkno, len): (u64, u64), lsn: u64) {
        let (undo, undo_bytes) = (std::mem::take(&mut self.undo), std::mem::take(&mut self.undo_bytes));
        let serial = self.serial;
        self.serial |= STAMPED;
        self.settle(blkno, blkno + len - 1, Some((blkno, len)));
        if let Ok(mut b) = self.read(blkno * BB, (len * BB) as usize)
            && buf::stamp(&mut b, lsn)
        {
            let _ = self.write(blkno * BB, &b);
        }
        (self.undo, self.undo_bytes) = (undo, undo_bytes);
        self.serial = serial;
    }

    /// The end of the replay: every stamp still to be made, oldest first.
    fn finish(&mut self) {
        self.commit();
        let mut left: Vec<((u64, u64), u64)> = std::mem::take(&mut self.stamps).into_iter().collect();
        left.sort_by_key(|&(_, lsn)| lsn);
        for (key, lsn) in left {
            self.stamp(key, lsn);
        }
    }

    fn commit(&mut self) {
        self.undo.clear();
        self.undo_bytes.clear();
        self.serial = (self.serial + 1) & !STAMPED;
        for (key, lsn) in self.new_stamps.drain(..) {
            self.longest = self.longest.max(key.1);
            self.stamps.insert(key, lsn);
        }
    }

    fn rollback(&mut self) {
        for (s, old) in self.undo.drain(..).rev() {
            match (old, self.patches.get_mut(&s)) {
                (Some((serial, at)), Some(held)) => {
                    held.0 = serial;
                    held.1.copy_from_slice(&self.undo_bytes[at..at + BB as usize]);
                }
                (Some(_), None) => {}
                (None, _) => {
                    self.patches.remove(&s);
                }
            }
        }
        self.undo_bytes.clear();
        self.serial = (self.serial + 1) & !STAMPED;
        self.new_stamps.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_transaction_leaves_the_sectors_as_the_last_commit_had_them() {
        let dev: Source = std::sync::Arc::new(vec![7u8; 8 * 512]);
        let mut st = Store::of_sectors(&dev, 8);
        st.write(512, &[1; 600]).unwrap();
        st.commit();
        let committed = st.read(0, 4 * 512).unwrap();
        assert!(committed[..512].iter().all(|&b| b == 7) && committed[512..1112].iter().all(|&b| b == 1));
        assert!(committed[1112..].iter().all(|&b| b == 7));
        // Changed twice in one transaction, and a sector never replayed.
        st.write(700, &[2; 100]).unwrap();
        st.write(710, &[3; 10]).unwrap();
        st.write(3 * 512, &[4; 10]).unwrap();
        assert_eq!(st.read(700, 20).unwrap()[..], [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3]);
        st.rollback();
        assert_eq!(st.read(0, 4 * 512).unwrap(), committed);
        assert!(st.held(3).is_none() && st.held(1).is_some());
        // A write that changes nothing on disk is not held.
        st.write(5 * 512, &[7; 512]).unwrap();
        st.commit();
        assert!(st.held(5).is_none());
    }

    fn intent(kind: u16, id: u64) -> trans::Item {
        let mut r = vec![0u8; 16];
        r[0..2].copy_from_slice(&kind.to_le_bytes());
        r[8..16].copy_from_slice(&id.to_le_bytes());
        let mut item = trans::Item::default();
        item.push(&r);
        item
    }

    #[test]
    fn intents_without_their_done_item_are_noted() {
        let mut i = Intents::default();
        i.see(0x1236, &intent(0x1236, 7)); // EFI 7
        i.see(0x1237, &intent(0x1237, 7)); // EFD 7
        assert!(i.unfinished().is_none());
        i.see(0x1236, &intent(0x1236, 8));
        i.see(0x1240, &intent(0x1240, 9));
        let n = i.unfinished().unwrap();
        assert!(n.starts_with("2 unfinished intent item(s) (1 EFI (extent free), 1 RUI (reverse map update))"), "{n}");
    }
}
