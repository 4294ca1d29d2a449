//! VHDX log replay ([MS-VHDX] 2.3), in memory only.
//!
//! A VHDX whose header carries a LogGuid was not closed cleanly: metadata
//! updates (region table, metadata, BAT) may sit in the log and not yet at
//! their place in the file. The specification has the log replayed into the
//! file before anything else is read; evidence is never written, so the
//! active sequence's writes become an overlay of file offsets → bytes that
//! every later read of the file goes through.

use super::vhdx::crc_ok;
use super::{ReadAt, Source};
use crate::util::bytes::{u16_at, u32_at, u64_at};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::Arc;

/// Log sectors, and the unit of every write in the log.
const SECTOR: u64 = 4096;
const MIB: u64 = 1 << 20;
/// Hyper-V and qemu make 1 MiB logs; the whole log is read into memory.
const MAX_LOG: u64 = 64 * MIB;
/// Bytes checksummed while searching: a hostile log can claim a log-sized
/// entry at every sector, which would otherwise cost (log size)² / 4 KiB.
const CRC_BUDGET: u64 = 256 * MIB;
/// Past any real VHDX (64 TiB of payload plus metadata): such offsets are damage.
const MAX_FILE_OFFSET: u64 = 1 << 52;

/// The VHDX file as it is after replaying its log.
pub struct Patched {
    file: Source,
    len: u64,
    /// Zeroed ranges, sorted and disjoint.
    zeros: Vec<(u64, u64)>,
    /// Written 4 KiB sectors by file offset; they win over `zeros`.
    sectors: BTreeMap<u64, Box<[u8]>>,
}

impl ReadAt for Patched {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.len - offset) as usize;
        let buf = &mut buf[..n];
        // The replay may have extended the file: what the file lacks is zeros.
        let got = self.file.read_at(offset, buf)?;
        buf[got..].fill(0);
        let end = offset + n as u64;
        let first = self.zeros.partition_point(|&(_, e)| e <= offset);
        for &(s, e) in self.zeros[first..].iter().take_while(|&&(s, _)| s < end) {
            buf[(s.max(offset) - offset) as usize..(e.min(end) - offset) as usize].fill(0);
        }
        for (&s, data) in self.sectors.range(offset - offset % SECTOR..end) {
            let (from, to) = (s.max(offset), (s + SECTOR).min(end));
            buf[(from - offset) as usize..(to - offset) as usize].copy_from_slice(&data[(from - s) as usize..(to - s) as usize]);
        }
        Ok(n)
    }

    fn len(&self) -> u64 {
        self.len
    }
}

/// The VHDX file to read (replayed if its log needs it) and a warning saying
/// what was done with the log, if there is one. `header` is the current header.
pub fn replay(file: Source, header: &[u8]) -> (Source, Option<String>) {
    let log_guid = &header[48..64];
    if log_guid.iter().all(|&b| b == 0) || u32_at(header, 68) == 0 {
        return (Arc::new(file), None);
    }
    match active_sequence(&file, header) {
        Ok(replayed) => {
            let note = format!(
                "the VHDX was not closed cleanly; its log was replayed in memory ({} entries, sequence numbers {}–{}); \
                 the evidence file was not modified",
                replayed.entries, replayed.first_seq, replayed.last_seq
            );
            (Arc::new(replayed.into_patched(file)), Some(note))
        }
        Err(why) => (
            Arc::new(file),
            Some(format!(
                "the VHDX was not closed cleanly but its log could not be replayed ({why}); read as on disk, \
                 so recent metadata updates may be missing"
            )),
        ),
    }
}

/// One valid log entry (header fields; its bytes stay in the ring).
#[derive(Clone)]
struct Entry {
    at: u64,
    len: u64,
    tail: u64,
    seq: u64,
    flushed: u64,
    last: u64,
}

enum Desc {
    Zero {
        offset: u64,
        len: u64,
    },
    /// `sector` is the index of the data sector in the entry.
    Data {
        offset: u64,
        leading: [u8; 8],
        trailing: [u8; 4],
        sector: u64,
    },
}

struct Log<'a> {
    ring: Vec<u8>,
    guid: &'a [u8],
    memo: HashMap<u64, Option<Entry>>,
    budget: u64,
    exhausted: bool,
}

impl Log<'_> {
    fn size(&self) -> u64 {
        self.ring.len() as u64
    }

    /// `len` bytes at `at`, wrapping around the end of the ring.
    fn bytes(&self, at: u64, len: u64) -> Vec<u8> {
        let (at, len) = (at as usize, len as usize);
        let first = len.min(self.ring.len() - at);
        let mut v = self.ring[at..at + first].to_vec();
        v.extend_from_slice(&self.ring[..len - first]);
        v
    }

    fn entry(&mut self, at: u64) -> Option<Entry> {
        if let Some(e) = self.memo.get(&at) {
            return e.clone();
        }
        let e = self.check(at);
        self.memo.insert(at, e.clone());
        e
    }

    /// The entry at `at` if every check of [MS-VHDX] 2.3.1 passes.
    fn check(&mut self, at: u64) -> Option<Entry> {
        let h = self.bytes(at, 64);
        let e = Entry {
            at,
            len: u64::from(u32_at(&h, 8)),
            tail: u64::from(u32_at(&h, 12)),
            seq: u64_at(&h, 16),
            flushed: u64_at(&h, 48),
            last: u64_at(&h, 56),
        };
        let count = u64::from(u32_at(&h, 24));
        if &h[0..4] != b"loge"
            || &h[32..48] != self.guid
            || e.seq == 0
            || e.len == 0
            || !e.len.is_multiple_of(SECTOR)
            || e.len > self.size()
            || !e.tail.is_multiple_of(SECTOR)
            || e.tail >= self.size()
            || e.flushed > MAX_FILE_OFFSET
            || e.last > MAX_FILE_OFFSET
            || descriptor_sectors(count) * SECTOR > e.len
        {
            return None;
        }
        if self.budget < e.len {
            self.exhausted = true;
            return None;
        }
        self.budget -= e.len;
        let bytes = self.bytes(at, e.len);
        if !crc_ok(&bytes, 4) {
            return None;
        }
        descriptors(&bytes, e.seq).map(|_| e)
    }

    /// [MS-VHDX] 2.3.3: the newest valid and complete sequence, from its tail
    /// entry to its head.
    fn search(&mut self) -> Option<Vec<Entry>> {
        let size = self.size();
        let mut best: Option<Vec<Entry>> = None;
        let (mut current, mut old) = (0u64, 0u64);
        // Every round moves `current` on by at least one sector.
        for _ in 0..=size / SECTOR {
            let mut seq: Vec<Entry> = Vec::new();
            let mut head = current;
            while (seq.len() as u64) < size / SECTOR {
                match self.entry(head) {
                    Some(e) if seq.last().is_none_or(|p| e.seq == p.seq + 1) => {
                        head = (head + e.len) % size;
                        seq.push(e);
                    }
                    _ => break,
                }
            }
            // Complete: the head's tail is an entry of this sequence.
            let tail = seq.last().and_then(|h| seq.iter().position(|e| e.at == h.tail));
            if let Some(t) = tail {
                let newest = seq.last().map_or(0, |h| h.seq);
                if best.as_ref().is_none_or(|b| b.last().is_some_and(|h| h.seq < newest)) {
                    best = Some(seq[t..].to_vec());
                }
                current = head;
            } else {
                current = (current + SECTOR) % size;
            }
            if current < old {
                break;
            }
            old = current;
        }
        best
    }
}

/// Descriptor sectors of an entry: a 64-byte header, then 32-byte descriptors.
fn descriptor_sectors(count: u64) -> u64 {
    (64 + count * 32).div_ceil(SECTOR)
}

/// The descriptors of a checksummed entry, or None if one of them, or the
/// data sector it names, is invalid.
fn descriptors(entry: &[u8], seq: u64) -> Option<Vec<Desc>> {
    let count = u64::from(u32_at(entry, 24));
    let mut sector = descriptor_sectors(count);
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        let d = entry.get(64 + i * 32..96 + i * 32)?;
        let offset = u64_at(d, 16);
        if u64_at(d, 24) != seq || !offset.is_multiple_of(SECTOR) {
            return None;
        }
        match &d[0..4] {
            b"zero" => {
                let len = u64_at(d, 8);
                if !len.is_multiple_of(SECTOR) || offset.checked_add(len).is_none_or(|end| end > MAX_FILE_OFFSET) {
                    return None;
                }
                out.push(Desc::Zero { offset, len });
            }
            b"desc" => {
                let start = (sector * SECTOR) as usize;
                let data = entry.get(start..start + SECTOR as usize)?;
                let data_seq = (u64::from(u32_at(data, 4)) << 32) | u64::from(u32_at(data, 4092));
                if &data[0..4] != b"data" || data_seq != seq || offset > MAX_FILE_OFFSET {
                    return None;
                }
                let mut leading = [0u8; 8];
                leading.copy_from_slice(&d[8..16]);
                let mut trailing = [0u8; 4];
                trailing.copy_from_slice(&d[4..8]);
                out.push(Desc::Data { offset, leading, trailing, sector });
                sector += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

struct Replayed {
    entries: usize,
    first_seq: u64,
    last_seq: u64,
    len: u64,
    zeros: Vec<(u64, u64)>,
    sectors: BTreeMap<u64, Box<[u8]>>,
}

impl Replayed {
    fn into_patched(self, file: Source) -> Patched {
        Patched { file, len: self.len, zeros: self.zeros, sectors: self.sectors }
    }
}

/// Finds the active sequence and turns its writes, in order, into an overlay.
fn active_sequence(file: &Source, header: &[u8]) -> Result<Replayed, String> {
    let (log_off, log_len) = (u64_at(header, 72), u64::from(u32_at(header, 68)));
    if u16_at(header, 64) != 0 {
        return Err("its log version is not 0".into());
    }
    if !log_len.is_multiple_of(MIB) || log_len > MAX_LOG || log_off < MIB || !log_off.is_multiple_of(MIB) {
        return Err(format!("the log's place in the file is invalid ({log_len} bytes at offset {log_off})"));
    }
    let mut ring = vec![0u8; log_len as usize];
    file.read_exact_at(log_off, &mut ring).map_err(|e| format!("the log cannot be read: {e}"))?;
    let mut log = Log { ring, guid: &header[48..64], memo: HashMap::new(), budget: CRC_BUDGET, exhausted: false };
    let seq = log.search().ok_or(if log.exhausted {
        "the log is too damaged to search"
    } else {
        "no valid, complete sequence of log entries"
    })?;
    let head = seq.last().ok_or("empty log sequence")?;
    if head.flushed > file.len() {
        return Err(format!(
            "the log's newest entry needs the file to be at least {} bytes, it is {}: the file was truncated",
            head.flushed,
            file.len()
        ));
    }
    let mut len = file.len().max(head.last);
    let mut zeros = Vec::new();
    let mut sectors: BTreeMap<u64, Box<[u8]>> = BTreeMap::new();
    for e in &seq {
        let bytes = log.bytes(e.at, e.len);
        for d in descriptors(&bytes, e.seq).ok_or("a log entry's descriptors are invalid")? {
            match d {
                Desc::Zero { offset, len: n } => {
                    let stale: Vec<u64> = sectors.range(offset..offset + n).map(|(&k, _)| k).collect();
                    for k in stale {
                        sectors.remove(&k);
                    }
                    zeros.push((offset, offset + n));
                    len = len.max(offset + n);
                }
                Desc::Data { offset, leading, trailing, sector } => {
                    let at = (sector * SECTOR) as usize;
                    let mut s = bytes[at..at + SECTOR as usize].to_vec().into_boxed_slice();
                    s[..8].copy_from_slice(&leading);
                    s[4092..].copy_from_slice(&trailing);
                    sectors.insert(offset, s);
                    len = len.max(offset + SECTOR);
                }
            }
        }
    }
    Ok(Replayed { entries: seq.len(), first_seq: seq[0].seq, last_seq: head.seq, len, zeros: merge(zeros), sectors })
}

/// Sorted, disjoint ranges covering the same bytes.
fn merge(mut r: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    r.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(r.len());
    for (s, e) in r {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ if s < e => out.push((s, e)),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::merge;

    #[test]
    fn ranges_merge() {
        assert_eq!(merge(vec![(8, 12), (0, 4), (4, 6), (10, 20), (30, 30)]), vec![(0, 6), (8, 20)]);
    }
}
