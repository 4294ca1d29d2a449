//! jbd2 journal replay (ext3/ext4), read-only, in memory.
//!
//! Written from the kernel's fs/jbd2/recovery.c (the same code e2fsck runs,
//! e2fsck/recovery.c) and include/linux/jbd2.h; no crate reads jbd2. The
//! kernel's three passes over the log, from the journal superblock's
//! `s_start`/`s_sequence`:
//!
//! - scan: follow descriptor, revoke and commit blocks of consecutive
//!   sequence numbers until a block is not the next one; a commit block that
//!   fails its checksum ends the log there (async commit or not: the failed
//!   transaction and everything after it are left out); a descriptor or
//!   revoke block that fails its checksum, or a revoke block that claims more
//!   bytes than it has, makes the kernel refuse the whole journal (nothing
//!   is replayed) unless the commit time goes back, which marks a stale
//!   block from an earlier pass through the journal;
//! - revoke: every committed transaction's revoke records, newest wins;
//! - replay: every tagged block of every committed transaction, in order,
//!   unless revoked by the same or a later transaction; a block whose tag
//!   checksum (v2/v3) fails is skipped, as the kernel skips it.
//!
//! Nothing is written: each replayed filesystem block becomes a
//! [`Patch::Moved`] to its copy in the journal (escaped blocks get their
//! magic number back), so memory is a few dozen bytes a journal block.
//! Fast-commit blocks (ext4 `fast_commit`) are logical operations, not
//! blocks; they are detected and reported, not replayed.

use super::Ext;
use super::inode::Inode;
use crate::evidence::ReadAt;
use crate::fs::FileKind;
use crate::fs::extents::Extent;
use crate::fs::replay::{Patch, Replay, Status};
use crate::util::bytes::{be_u32_at, be_u64_at, u16_at, u32_at};
use crate::util::corrupt;
use crate::util::crc::{crc32_be_raw, crc32c_raw};
use std::collections::{BTreeMap, HashMap};
use std::io;

const MAGIC: u32 = 0xC03B_3998;
const DESCRIPTOR: u32 = 1;
const COMMIT: u32 = 2;
const SUPERBLOCK_V1: u32 = 3;
const SUPERBLOCK_V2: u32 = 4;
const REVOKE: u32 = 5;

const COMPAT_CHECKSUM: u32 = 0x1;
const INCOMPAT_REVOKE: u32 = 0x1;
const INCOMPAT_64BIT: u32 = 0x2;
const INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
const INCOMPAT_CSUM_V2: u32 = 0x8;
const INCOMPAT_CSUM_V3: u32 = 0x10;
const INCOMPAT_FAST_COMMIT: u32 = 0x20;
const KNOWN_INCOMPAT: u32 =
    INCOMPAT_REVOKE | INCOMPAT_64BIT | INCOMPAT_ASYNC_COMMIT | INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3 | INCOMPAT_FAST_COMMIT;

const FLAG_ESCAPE: u32 = 0x1;
const FLAG_SAME_UUID: u32 = 0x2;
const FLAG_LAST_TAG: u32 = 0x8;

/// `s_checksum_type` for CRC-32C, the only one v2/v3 journals use.
const CHECKSUM_CRC32C: u8 = 4;
/// jbd2 v1 commit checksums (`h_chksum_type`, `h_chksum_size`).
const CHECKSUM_CRC32: u8 = 1;
const CHECKSUM_CRC32_SIZE: u8 = 4;
/// Fast-commit blocks when the superblock does not say (JBD2_DEFAULT_FAST_COMMIT_BLOCKS).
const DEFAULT_FC_BLOCKS: u64 = 256;
/// ext4's fast-commit head tag (`EXT4_FC_TAG_HEAD`).
const FC_TAG_HEAD: u16 = 0x9;
/// mke2fs makes journals of at most 10,240,000 blocks; more is damage, and
/// what the replay holds grows with the journal.
const MAX_JOURNAL_BLOCKS: u64 = 1 << 24;
/// Journal blocks read at once while walking the log. The scan reads a
/// transaction's revoke, descriptor and commit blocks and skips the data
/// blocks between them, so its window holds one commit block and the next
/// transaction's first blocks; v1 checksums cover the data blocks too, so
/// those are read in large windows, as the replay reads its runs of blocks.
const SCAN_WINDOW: u64 = 4;
const DATA_WINDOW: u64 = 256;
/// Header of a descriptor or revoke block, and a v2/v3 block tail.
const HEADER: usize = 12;
const TAIL: usize = 4;
const REVOKE_HEADER: usize = 16;

/// A replay's overlay and its account.
pub struct Outcome {
    pub patches: BTreeMap<u64, Patch>,
    pub replay: Replay,
}

/// Replays `fs`'s journal (fs is the on-disk view). Never fails: a journal
/// that cannot be replayed says why in the returned [`Replay`].
pub fn replay(fs: &Ext) -> Outcome {
    let not = |status: Status, reason: String| Outcome {
        patches: BTreeMap::new(),
        replay: Replay { log: "jbd2 journal", status, reason: Some(reason), ..Replay::default() },
    };
    let sb = &fs.sb;
    if sb.journal_inum == 0 {
        let uuid = sb.journal_uuid.iter().map(|b| format!("{b:02x}")).collect::<String>();
        return not(
            Status::External,
            format!(
                "the journal is on a separate device (device {:#x}, UUID {uuid}); snapsift reads internal journals only",
                sb.journal_dev
            ),
        );
    }
    let mut j = match Journal::open(fs) {
        Ok(j) => j,
        Err(e) => return not(Status::NotReplayed, e.to_string()),
    };
    if j.start == 0 {
        return Outcome {
            patches: BTreeMap::new(),
            replay: Replay { log: "jbd2 journal", status: Status::Replayed, unit: j.bs, ..Replay::default() },
        };
    }
    let scan = j.scan();
    let mut replay = Replay { log: "jbd2 journal", status: Status::Replayed, unit: j.bs, ..Replay::default() };
    if let Some(fatal) = scan.fatal {
        return not(Status::NotReplayed, fatal);
    }
    let (patches, notes) = j.apply(&scan.committed);
    replay.transactions = scan.committed.len() as u64;
    replay.first = scan.committed.first().map(|t| t.tid.to_string());
    replay.last = scan.committed.last().map(|t| t.tid.to_string());
    replay.blocks = patches.len() as u64;
    replay.notes = notes;
    if let Some(why) = scan.stopped {
        replay.status = Status::Stopped;
        replay.reason = Some(why);
    }
    if let Some(fc) = j.fast_commits(scan.next_tid) {
        replay.notes.push(fc);
    }
    Outcome { patches, replay }
}

struct Tag {
    fs_block: u64,
    /// Journal block holding the new contents.
    log_block: u64,
    escaped: bool,
    checksum: u32,
}

struct Transaction {
    tid: u32,
    tags: Vec<Tag>,
    revoked: Vec<u64>,
}

#[derive(Default)]
struct Scan {
    committed: Vec<Transaction>,
    /// The sequence number after the last committed transaction.
    next_tid: u32,
    /// Why the log ended before its last written transaction.
    stopped: Option<String>,
    /// Why the kernel would refuse the whole journal.
    fatal: Option<String>,
}

struct Journal<'a> {
    fs: &'a Ext,
    map: Vec<Extent>,
    bs: u64,
    /// The log occupies journal blocks `[first, last)`.
    first: u64,
    last: u64,
    maxlen: u64,
    start: u64,
    sequence: u32,
    compat: u32,
    incompat: u32,
    num_fc: u64,
    seed: u32,
    window: (u64, Vec<u8>),
}

/// The kernel refuses journals shorter than this (JBD2_MIN_JOURNAL_BLOCKS).
const MIN_JOURNAL_BLOCKS: u64 = 1024;

/// The journal inode rebuilt from the superblock's backup of its block map
/// (`s_jnl_blocks`), as e2fsck's `try_backup_journal` does.
fn backup_inode(fs: &Ext, ino: u64) -> Option<Inode> {
    let b = fs.sb.journal_backup?;
    let mut raw = vec![0u8; 128];
    raw[0..2].copy_from_slice(&0o100600u16.to_le_bytes());
    raw[0x1A..0x1C].copy_from_slice(&1u16.to_le_bytes());
    raw[0x28..0x64].copy_from_slice(&b[..60]);
    raw[0x6C..0x70].copy_from_slice(&b[60..64]);
    raw[0x04..0x08].copy_from_slice(&b[64..68]);
    if u16_at(&b, 0) == 0xF30A {
        raw[0x20..0x24].copy_from_slice(&0x80000u32.to_le_bytes());
    }
    Some(Inode::parse(ino, raw))
}

/// `tid_gt`: sequence numbers wrap at 2^32.
fn tid_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl<'a> Journal<'a> {
    fn open(fs: &'a Ext) -> io::Result<Journal<'a>> {
        let bs = fs.block_size();
        let ino = u64::from(fs.sb.journal_inum);
        let map = match fs.inode(ino) {
            Ok(i) if i.kind() == FileKind::File && i.size / bs >= MIN_JOURNAL_BLOCKS => fs.extents(&i),
            _ => Err(corrupt(format!("journal inode {ino} is not a journal"))),
        };
        // e2fsck falls back on the superblock's copy of the journal inode's
        // block map; so do we (the kernel would refuse to mount).
        let map = match (map, backup_inode(fs, ino)) {
            (Ok(m), _) => m,
            (Err(_), Some(i)) => fs.extents(&i).map_err(|e| corrupt(format!("journal inode {ino} (backup in the superblock): {e}")))?,
            (Err(e), None) => return Err(e),
        };
        let mut j = Journal {
            fs,
            map,
            bs,
            first: 0,
            last: 0,
            maxlen: 0,
            start: 0,
            sequence: 0,
            compat: 0,
            incompat: 0,
            num_fc: 0,
            seed: 0,
            window: (u64::MAX, Vec::new()),
        };
        let sb = j.block(0, 1)?.to_vec();
        if be_u32_at(&sb, 0) != MAGIC {
            return Err(corrupt("the journal superblock has a bad magic number; the kernel would not mount this"));
        }
        let version = be_u32_at(&sb, 4);
        if version != SUPERBLOCK_V1 && version != SUPERBLOCK_V2 {
            return Err(corrupt(format!("the journal superblock has unknown block type {version}")));
        }
        if u64::from(be_u32_at(&sb, 0xC)) != bs {
            return Err(corrupt(format!("the journal's block size {} differs from the filesystem's {bs}", be_u32_at(&sb, 0xC))));
        }
        j.maxlen = u64::from(be_u32_at(&sb, 0x10));
        j.first = u64::from(be_u32_at(&sb, 0x14));
        j.sequence = be_u32_at(&sb, 0x18);
        j.start = u64::from(be_u32_at(&sb, 0x1C));
        let mapped = j.map.iter().map(|e| e.logical + e.len).max().unwrap_or(0);
        if j.maxlen > MAX_JOURNAL_BLOCKS || j.maxlen > mapped {
            return Err(corrupt(format!("the journal claims {} blocks but its inode maps {mapped}", j.maxlen)));
        }
        if version == SUPERBLOCK_V2 {
            j.compat = be_u32_at(&sb, 0x24);
            j.incompat = be_u32_at(&sb, 0x28);
            let unknown = j.incompat & !KNOWN_INCOMPAT;
            if unknown != 0 {
                return Err(corrupt(format!("the journal uses unknown features ({unknown:#x})")));
            }
            if j.csum() {
                if sb.get(0x50) != Some(&CHECKSUM_CRC32C) {
                    return Err(corrupt("the journal's checksum type is not CRC-32C"));
                }
                let mut copy = sb[..1024].to_vec();
                copy[0xFC..0x100].fill(0);
                if crc32c_raw(!0, &copy) != be_u32_at(&sb, 0xFC) {
                    return Err(corrupt("the journal superblock fails its checksum; the kernel would not mount this"));
                }
                j.seed = crc32c_raw(!0, &sb[0x30..0x40]);
            }
            if j.incompat & INCOMPAT_FAST_COMMIT != 0 {
                let n = u64::from(be_u32_at(&sb, 0x54));
                j.num_fc = if n == 0 { DEFAULT_FC_BLOCKS } else { n };
            }
        } else if j.maxlen > 0 {
            // A v1 superblock has no feature fields.
        }
        j.last = j.maxlen.saturating_sub(j.num_fc);
        if j.first == 0 || j.first >= j.last {
            return Err(corrupt(format!("the journal's log area [{}, {}) is empty or invalid", j.first, j.last)));
        }
        if j.start != 0 && (j.start < j.first || j.start >= j.last) {
            return Err(corrupt(format!("the journal's log starts at block {}, outside its log area", j.start)));
        }
        Ok(j)
    }

    fn csum(&self) -> bool {
        self.incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) != 0
    }

    fn tag_bytes(&self) -> usize {
        if self.incompat & INCOMPAT_CSUM_V3 != 0 {
            return 16;
        }
        let mut sz = 12;
        if self.incompat & INCOMPAT_CSUM_V2 != 0 {
            sz += 2;
        }
        if self.incompat & INCOMPAT_64BIT != 0 { sz } else { sz - 4 }
    }

    fn wrap(&self, b: u64) -> u64 {
        if b >= self.last { b - (self.last - self.first) } else { b }
    }

    /// The filesystem block holding journal block `b`, and how many
    /// journal blocks follow it contiguously.
    fn physical(&self, b: u64) -> Option<(u64, u64)> {
        let i = self.map.partition_point(|e| e.logical + e.len <= b);
        let e = self.map.get(i).filter(|e| e.logical <= b && !e.unwritten)?;
        Some((e.physical + (b - e.logical), e.logical + e.len - b))
    }

    /// One journal block, read through a window of up to `window`
    /// consecutive blocks.
    fn block(&mut self, b: u64, window: u64) -> io::Result<&[u8]> {
        let bs = self.bs as usize;
        let (start, ref data) = self.window;
        if b < start || b >= start + (data.len() / bs) as u64 {
            let (phys, run) = self.physical(b).ok_or_else(|| corrupt(format!("journal block {b} is not mapped")))?;
            let upto = if self.last > b { self.last - b } else { 1 };
            let n = run.min(window).min(upto).max(1);
            if phys.saturating_add(n) > self.fs.sb.blocks_count {
                return Err(corrupt(format!("journal block {b} lies past the end of the filesystem")));
            }
            let mut buf = std::mem::take(&mut self.window.1);
            buf.resize(n as usize * bs, 0);
            self.fs.dev.read_exact_at(phys * self.bs, &mut buf)?;
            self.window = (b, buf);
        }
        let off = (b - self.window.0) as usize * bs;
        Ok(&self.window.1[off..off + bs])
    }

    /// Checksum of a descriptor or revoke block (its tail holds it).
    fn tail_ok(&self, block: &[u8]) -> bool {
        if !self.csum() {
            return true;
        }
        let n = block.len() - TAIL;
        let c = crc32c_raw(self.seed, &block[..n]);
        crc32c_raw(c, &[0; TAIL]) == be_u32_at(block, n)
    }

    fn commit_ok(&self, block: &[u8]) -> bool {
        if !self.csum() {
            return true;
        }
        let c = crc32c_raw(self.seed, &block[..16]);
        let c = crc32c_raw(c, &[0; 4]);
        crc32c_raw(c, &block[20..]) == be_u32_at(block, 16)
    }

    /// The kernel's PASS_SCAN, keeping what the other two passes need.
    fn scan(&mut self) -> Scan {
        let mut s = Scan { next_tid: self.sequence, ..Scan::default() };
        let mut at = self.start;
        let mut open = Transaction { tid: s.next_tid, tags: Vec::new(), revoked: Vec::new() };
        let mut crc_v1 = !0u32;
        let mut last_commit_time = 0u64;
        let mut suspect: Option<String> = None;
        let mut bad_revoke: Option<String> = None;
        // Every block of the log is visited at most once a pass.
        let mut budget = self.last - self.first;
        let tag_bytes = self.tag_bytes();
        let v1 = self.compat & COMPAT_CHECKSUM != 0 && !self.csum();
        let window = if v1 { DATA_WINDOW } else { SCAN_WINDOW };
        while budget > 0 {
            budget -= 1;
            let block = match self.block(at, window) {
                Ok(b) => b.to_vec(),
                Err(e) => {
                    s.stopped = Some(format!("journal block {at} unreadable: {e}"));
                    break;
                }
            };
            let here = at;
            at = self.wrap(at + 1);
            if be_u32_at(&block, 0) != MAGIC || be_u32_at(&block, 8) != s.next_tid {
                break;
            }
            match be_u32_at(&block, 4) {
                DESCRIPTOR => {
                    if !self.tail_ok(&block) && suspect.is_none() {
                        suspect = Some(format!("descriptor block {here} of transaction {} fails its checksum", s.next_tid));
                    }
                    if v1 {
                        crc_v1 = crc32_be_raw(crc_v1, &block);
                    }
                    let limit = block.len() - if self.csum() { TAIL } else { 0 };
                    let mut off = HEADER;
                    while off + tag_bytes <= limit && budget > 0 {
                        let t = &block[off..off + tag_bytes];
                        let v3 = self.incompat & INCOMPAT_CSUM_V3 != 0;
                        let flags = if v3 { be_u32_at(t, 4) } else { u32::from(u16::from_be_bytes([t[6], t[7]])) };
                        let mut fs_block = u64::from(be_u32_at(t, 0));
                        if self.incompat & INCOMPAT_64BIT != 0 {
                            fs_block |= u64::from(be_u32_at(t, 8)) << 32;
                        }
                        let checksum = if v3 { be_u32_at(t, 12) } else { u32::from(u16::from_be_bytes([t[4], t[5]])) };
                        open.tags.push(Tag { fs_block, log_block: at, escaped: flags & FLAG_ESCAPE != 0, checksum });
                        if v1 {
                            match self.block(at, window) {
                                Ok(data) => crc_v1 = crc32_be_raw(crc_v1, data),
                                Err(e) => {
                                    s.stopped = Some(format!("journal block {at} unreadable: {e}"));
                                    return s;
                                }
                            }
                        }
                        at = self.wrap(at + 1);
                        budget -= 1;
                        off += tag_bytes;
                        if flags & FLAG_SAME_UUID == 0 {
                            off += 16;
                        }
                        if flags & FLAG_LAST_TAG != 0 {
                            break;
                        }
                    }
                }
                REVOKE => {
                    if !self.tail_ok(&block) && suspect.is_none() {
                        suspect = Some(format!("revoke block {here} of transaction {} fails its checksum", s.next_tid));
                    }
                    let count = be_u32_at(&block, 12) as usize;
                    if count > block.len() - if self.csum() { TAIL } else { 0 } {
                        // Fatal once the transaction commits: the kernel
                        // reads revoke records of committed ones only.
                        bad_revoke.get_or_insert(format!(
                            "revoke block {here} of transaction {} claims {count} bytes; the kernel refuses such \
                             a journal, so nothing is replayed",
                            s.next_tid
                        ));
                        continue;
                    }
                    let rec = if self.incompat & INCOMPAT_64BIT != 0 { 8 } else { 4 };
                    let mut off = REVOKE_HEADER;
                    while off + rec <= count {
                        open.revoked.push(if rec == 8 { be_u64_at(&block, off) } else { u64::from(be_u32_at(&block, off)) });
                        off += rec;
                    }
                }
                COMMIT => {
                    let time = be_u64_at(&block, 0x30);
                    let v1_ok = !v1 || {
                        let (kind, size, found) = (block[12], block[13], be_u32_at(&block, 16));
                        (kind == CHECKSUM_CRC32 && size == CHECKSUM_CRC32_SIZE && found == crc_v1) || (kind == 0 && size == 0 && found == 0)
                    };
                    crc_v1 = !0;
                    if !v1_ok || !self.commit_ok(&block) {
                        if time < last_commit_time {
                            // A block left from an earlier lap of the journal.
                            break;
                        }
                        s.stopped = Some(format!("the commit block of transaction {} ({here}) fails its checksum", s.next_tid));
                        break;
                    }
                    if let Some(why) = bad_revoke.take() {
                        s.fatal = Some(why);
                        return s;
                    }
                    if let Some(why) = suspect.take() {
                        if time >= last_commit_time {
                            s.fatal = Some(format!("{why}; the kernel refuses such a journal, so nothing is replayed"));
                            return s;
                        }
                        // Stale: the kernel ends the log quietly here.
                        break;
                    }
                    last_commit_time = time;
                    let next = Transaction { tid: s.next_tid.wrapping_add(1), tags: Vec::new(), revoked: Vec::new() };
                    s.committed.push(std::mem::replace(&mut open, next));
                    s.next_tid = s.next_tid.wrapping_add(1);
                }
                other => {
                    s.stopped = Some(format!("journal block {here} has unknown type {other}"));
                    break;
                }
            }
        }
        if budget == 0 && s.stopped.is_none() {
            s.stopped = Some("the log runs round the whole journal without ending".into());
        }
        s
    }

    /// The revoke and replay passes: the overlay of the committed
    /// transactions, and notes on blocks left out.
    ///
    /// The kernel writes every tagged version of a block in turn, skipping
    /// those that fail their tag checksum; what stays is the newest version
    /// that passes. So only that one is read: newest first, an older one only
    /// when a newer fails (a busy log rewrites its last block in every
    /// transaction, and the journal is read once, by the scan, not twice).
    fn apply(&mut self, committed: &[Transaction]) -> (BTreeMap<u64, Patch>, Vec<String>) {
        let mut revoked: HashMap<u64, u32> = HashMap::new();
        for t in committed {
            for &b in &t.revoked {
                let e = revoked.entry(b).or_insert(t.tid);
                if tid_gt(t.tid, *e) {
                    *e = t.tid;
                }
            }
        }
        let (mut bad_sum, mut outside, mut unreadable) = (Vec::new(), 0u64, 0u64);
        // Each filesystem block's versions, oldest first.
        let mut versions: HashMap<u64, Vec<(u32, &Tag)>> = HashMap::new();
        for t in committed {
            for tag in &t.tags {
                if revoked.get(&tag.fs_block).is_some_and(|&r| !tid_gt(t.tid, r)) {
                    continue;
                }
                if tag.fs_block >= self.fs.sb.blocks_count {
                    outside += 1;
                    continue;
                }
                versions.entry(tag.fs_block).or_default().push((t.tid, tag));
            }
        }
        let mut patches = BTreeMap::new();
        // Each round tries every pending block's newest untried version, in
        // journal order so that runs of them are read at once.
        let mut pending: Vec<(u64, usize)> = versions.iter().map(|(&b, list)| (b, list.len())).collect();
        while !pending.is_empty() {
            let mut round: Vec<(u64, u64, usize)> = pending.iter().map(|&(b, n)| (versions[&b][n - 1].1.log_block, b, n - 1)).collect();
            round.sort_unstable();
            let mut runs = vec![1u64; round.len()];
            for k in (0..round.len().saturating_sub(1)).rev() {
                if round[k + 1].0 == round[k].0 + 1 {
                    runs[k] = runs[k + 1] + 1;
                }
            }
            pending.clear();
            for (&(_, fs_block, i), &run) in round.iter().zip(&runs) {
                let (tid, tag) = versions[&fs_block][i];
                match self.physical(tag.log_block).map(|(phys, _)| (phys, self.tag_ok(tid, tag, run.min(DATA_WINDOW)))) {
                    Some((phys, Ok(true))) => {
                        let unescape = tag.escaped.then(|| MAGIC.to_be_bytes());
                        patches.insert(fs_block, Patch::Moved { from: phys * self.bs, unescape });
                        continue;
                    }
                    Some((_, Ok(false))) => bad_sum.push(fs_block),
                    None | Some((_, Err(_))) => unreadable += 1,
                }
                if i > 0 {
                    pending.push((fs_block, i));
                }
            }
        }
        bad_sum.sort_unstable();
        let mut notes = Vec::new();
        if !bad_sum.is_empty() {
            let list: Vec<String> = bad_sum.iter().take(5).map(u64::to_string).collect();
            notes.push(format!(
                "{} journaled block(s) failed their checksum and were not replayed (filesystem block {}{}), as the kernel skips them",
                bad_sum.len(),
                list.join(", "),
                if bad_sum.len() > 5 { ", …" } else { "" }
            ));
        }
        if outside > 0 {
            notes.push(format!("{outside} journaled block(s) lie past the end of the filesystem and were skipped"));
        }
        if unreadable > 0 {
            notes.push(format!("{unreadable} journal block(s) could not be read and were skipped"));
        }
        (patches, notes)
    }

    /// Whether a tagged block's contents pass its v2/v3 tag checksum
    /// (`window`: the blocks to read with it, when they are not at hand).
    fn tag_ok(&mut self, tid: u32, tag: &Tag, window: u64) -> io::Result<bool> {
        if !self.csum() {
            return Ok(true);
        }
        let v3 = self.incompat & INCOMPAT_CSUM_V3 != 0;
        let seed = crc32c_raw(self.seed, &tid.to_be_bytes());
        let c = crc32c_raw(seed, self.block(tag.log_block, window)?);
        Ok(if v3 { c == tag.checksum } else { c & 0xFFFF == tag.checksum })
    }

    /// A note when the fast-commit area holds commits after `next_tid - 1`.
    fn fast_commits(&mut self, next_tid: u32) -> Option<String> {
        if self.num_fc == 0 {
            return None;
        }
        let first = self.last + 1;
        let block = self.block(first, 1).ok()?;
        // ext4_fc_tl: le16 tag, le16 len; the head's value: le32 features, le32 tid.
        if u16_at(block, 0) != FC_TAG_HEAD {
            return None;
        }
        let tid = u32_at(block, 8);
        (!tid_gt(next_tid, tid)).then(|| {
            format!(
                "the fast-commit area holds changes of transaction {tid} that are not replayed (ext4 fast commits are \
                 not supported yet): files fsync'ed in the last moments may be shown older or missing"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_wrap() {
        assert!(tid_gt(1, 0) && tid_gt(0, u32::MAX) && !tid_gt(u32::MAX, 0) && !tid_gt(5, 5));
    }
}
