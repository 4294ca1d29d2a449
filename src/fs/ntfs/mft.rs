//! $MFT: finding records (through $MFT's own, possibly fragmented and
//! attribute-listed, runlist), and assembling a file from its base record
//! and extension records.

use super::filename::{self, FileName};
use super::record::{self, *};
use super::runlist::{Run, Stream};
use super::{Ntfs, corrupt};
use crate::fs::FileKind;
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

/// Extension records one file may use: an attribute list of 256 KiB (the
/// Windows limit) names at most about 8,000.
const MAX_EXTENSION_RECORDS: usize = 8192;
/// An attribute list larger than this is corrupt (Windows caps it at 256 KiB).
const MAX_ATTRIBUTE_LIST: u64 = 4 << 20;
/// Runs in one attribute, over all its pieces.
const MAX_RUNS: usize = 16 << 20;
/// The largest compression unit read (Windows: 16 clusters of 4 KiB).
const MAX_COMPRESSION_UNIT: u64 = 1 << 20;

/// Pieces of non-resident attributes by (type, name): (flags, piece).
type SplitAttrs = BTreeMap<(u32, Vec<u16>), Vec<(u16, NonResident)>>;

/// A file assembled from its base record and any extension records.
pub(super) struct File {
    pub flags: u16,
    pub seq: u16,
    pub si: Option<Vec<u8>>,
    pub names: Vec<FileName>,
    /// Non-resident pieces merged per (type, name), resident ones as found.
    pub attrs: Vec<Attr>,
}

impl File {
    pub fn attr(&self, typ: u32, name: &[u16]) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.typ == typ && a.name == name)
    }

    pub fn reparse(&self) -> Option<(u32, Option<Vec<u8>>)> {
        match &self.attr(AT_REPARSE_POINT, &[])?.body {
            Body::Resident(v) => Some(filename::reparse_target(v)),
            // Reparse data is at most 16 KiB and almost always resident;
            // a non-resident one is reported without its target.
            Body::NonResident(_) => Some((0, None)),
        }
    }

    /// The whole resident $REPARSE_POINT value (tag, length, data).
    pub fn reparse_data(&self) -> Option<&[u8]> {
        match &self.attr(AT_REPARSE_POINT, &[])?.body {
            Body::Resident(v) => Some(v),
            Body::NonResident(_) => None,
        }
    }

    pub fn kind(&self) -> FileKind {
        kind_of(self.flags, self.reparse().map(|r| r.0))
    }
}

/// A file's kind from its record flags and reparse tag: symlinks and
/// junctions are links (never descended into), whatever else they are.
pub(super) fn kind_of(flags: u16, reparse_tag: Option<u32>) -> FileKind {
    match reparse_tag {
        Some(filename::TAG_SYMLINK | filename::TAG_MOUNT_POINT) => FileKind::Symlink,
        _ if flags & FLAG_DIRECTORY != 0 => FileKind::Dir,
        _ => FileKind::File,
    }
}

impl Ntfs {
    /// $MFT's data runlist: record 0's unnamed $DATA, extended through its
    /// own attribute list one extension record at a time in VCN order (each
    /// piece found makes more of $MFT readable for the next).
    pub(super) fn bootstrap_mft(&mut self) -> io::Result<Stream> {
        let rec0 = Record::parse(0, &self.read_record_raw(0)?)?;
        let mut pieces: Vec<NonResident> = Vec::new();
        let mut list = None;
        for a in &rec0.attrs {
            match (&a.body, a.typ) {
                (Body::NonResident(nr), AT_DATA) if a.name.is_empty() => pieces.push(nr.clone()),
                (_, AT_ATTRIBUTE_LIST) => list = Some(a.clone()),
                _ => {}
            }
        }
        if !pieces.iter().any(|p| p.lowest_vcn == 0) {
            return Err(corrupt("unreadable: $MFT record 0 has no non-resident $DATA starting at VCN 0"));
        }
        self.mft = self.stream_of(&pieces, 0, false)?;
        if let Some(list) = list {
            let data = self.attr_bytes(&list, MAX_ATTRIBUTE_LIST)?;
            let mut ext: Vec<(u64, u64)> = record::attribute_list(&data)
                .into_iter()
                .filter(|(t, n, _, r)| *t == AT_DATA && n.is_empty() && *r != 0)
                .map(|(_, _, vcn, r)| (vcn, r))
                .collect();
            ext.sort();
            ext.dedup();
            for (_, r) in ext.into_iter().take(MAX_EXTENSION_RECORDS) {
                let rec = Record::parse(r, &self.read_record_raw(r)?)?;
                for a in rec.attrs {
                    if let (Body::NonResident(nr), AT_DATA, true) = (a.body, a.typ, a.name.is_empty())
                        && !pieces.iter().any(|p| p.lowest_vcn == nr.lowest_vcn)
                    {
                        pieces.push(nr);
                    }
                }
                self.mft = self.stream_of(&pieces, 0, false)?;
            }
        }
        self.stream_of(&pieces, 0, true)
    }

    /// Reads `buf.len()` bytes at `pos` of a stream, all of them or an error.
    pub(super) fn read_stream_exact(&self, s: &Stream, mut pos: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = s.read_at(self, pos, &mut buf[done..])?;
            if n == 0 {
                return Err(corrupt(format!("unreadable: stream ends at {pos}")));
            }
            done += n;
            pos += n as u64;
        }
        Ok(())
    }

    /// One MFT record with its fixups applied.
    pub(super) fn read_record_raw(&self, num: u64) -> io::Result<Vec<u8>> {
        let rs = self.boot.record_size;
        let pos = num.checked_mul(rs).filter(|p| p.saturating_add(rs) <= self.mft.data_size).ok_or_else(|| {
            corrupt(format!("unreadable: MFT record {num} is past the end of $MFT ({} records)", self.mft.data_size / rs))
        })?;
        let mut buf = vec![0u8; rs as usize];
        self.read_stream_exact(&self.mft, pos, &mut buf)?;
        apply_fixups(&mut buf, b"FILE", "MFT record").map_err(|e| corrupt(format!("{e} (record {num})")))?;
        Ok(buf)
    }

    /// A stream from the pieces of one non-resident attribute: runs in VCN
    /// order, sizes from the piece at VCN 0. `complete`: all pieces are
    /// there, so the runs must cover the data size (false only while
    /// $MFT's own runlist is being assembled).
    pub(super) fn stream_of(&self, pieces: &[NonResident], cu: u8, complete: bool) -> io::Result<Stream> {
        let mut ps: Vec<&NonResident> = pieces.iter().collect();
        ps.sort_by_key(|p| p.lowest_vcn);
        let first = ps.first().filter(|p| p.lowest_vcn == 0).ok_or_else(|| corrupt("unreadable: attribute has no piece at VCN 0"))?;
        let mut runs: Vec<Run> = Vec::new();
        let mut next = 0u64;
        for p in &ps {
            if p.lowest_vcn != next {
                return Err(corrupt(format!("unreadable: attribute pieces leave a gap (VCN {next} expected, {} found)", p.lowest_vcn)));
            }
            if runs.len() + p.runs.len() > MAX_RUNS {
                return Err(corrupt(format!("unreadable: more than {MAX_RUNS} runs")));
            }
            runs.extend_from_slice(&p.runs);
            next = runs.last().map_or(next, |r| r.vcn + r.len);
            // A piece with no runs (or a highest VCN that disagrees) adds
            // nothing; the next piece must still continue where runs end.
            let _ = p.highest_vcn;
        }
        let cu_clusters = if cu == 0 { 0 } else { 1u64 << cu.min(16) };
        // Windows compresses in units of 16 clusters of at most 4 KiB; a unit
        // is decompressed whole in memory, so a forged one must stay small.
        if cu_clusters * self.boot.cluster_size > MAX_COMPRESSION_UNIT {
            return Err(corrupt(format!(
                "unreadable: compression unit of {cu_clusters} clusters of {} bytes (Windows writes 64 KiB units)",
                self.boot.cluster_size
            )));
        }
        let data_size = first.data_size;
        // Sparse and compressed runs are explicit too, so the runs span the
        // whole allocation; a larger size is corrupt (and would otherwise
        // stream up to exabytes of zeros).
        let spanned = next.saturating_mul(self.boot.cluster_size);
        if complete && data_size > spanned {
            return Err(corrupt(format!("unreadable: data size {data_size} but the runs cover only {spanned} bytes")));
        }
        Ok(Stream { runs, data_size, initialized_size: first.initialized_size.min(data_size), cu_clusters })
    }

    /// The whole value of a small attribute (attribute lists, index roots,
    /// bitmaps), resident or not.
    pub(super) fn attr_bytes(&self, a: &Attr, max: u64) -> io::Result<Vec<u8>> {
        match &a.body {
            Body::Resident(v) => Ok(v.clone()),
            Body::NonResident(nr) => {
                let s = self.stream_of(std::slice::from_ref(nr), 0, true)?;
                if s.data_size > max {
                    return Err(corrupt(format!("unreadable: attribute {:#x} of {} bytes (at most {max})", a.typ, s.data_size)));
                }
                let mut buf = vec![0u8; s.data_size as usize];
                self.read_stream_exact(&s, 0, &mut buf)?;
                Ok(buf)
            }
        }
    }

    pub(super) fn file(&self, num: u64) -> io::Result<Arc<File>> {
        self.files.get_or_try(num, || self.load_file(num))
    }

    pub(super) fn load_file(&self, num: u64) -> io::Result<File> {
        let base = Record::parse(num, &self.read_record_raw(num)?)?;
        if base.flags & FLAG_IN_USE == 0 {
            return Err(corrupt(format!("MFT record {num} is not in use (deleted)")));
        }
        let mut all = base.attrs;
        if let Some(list) = all.iter().find(|a| a.typ == AT_ATTRIBUTE_LIST).cloned() {
            let data = self.attr_bytes(&list, MAX_ATTRIBUTE_LIST)?;
            let mut recs: Vec<u64> = record::attribute_list(&data).into_iter().map(|e| e.3).filter(|r| *r != num).collect();
            recs.sort_unstable();
            recs.dedup();
            if recs.len() > MAX_EXTENSION_RECORDS {
                return Err(corrupt(format!("unreadable: MFT record {num}: {} extension records", recs.len())));
            }
            for r in recs {
                let ext = Record::parse(r, &self.read_record_raw(r)?)?;
                if ext.base != num || ext.flags & FLAG_IN_USE == 0 {
                    self.warn(format!("MFT record {num}: extension record {r} belongs to record {}", ext.base));
                    continue;
                }
                all.extend(ext.attrs.into_iter().filter(|a| a.typ != AT_ATTRIBUTE_LIST));
            }
        }
        // Merge split non-resident attributes: the piece at VCN 0 carries
        // the sizes; the others only add runs.
        let mut merged: Vec<Attr> = Vec::new();
        let mut split: SplitAttrs = BTreeMap::new();
        let (mut si, mut names) = (None, Vec::new());
        for a in all {
            match a.body {
                Body::NonResident(nr) => split.entry((a.typ, a.name)).or_default().push((a.flags, nr)),
                Body::Resident(ref v) => {
                    if a.typ == AT_STANDARD_INFORMATION {
                        si = Some(v.clone());
                    } else if a.typ == AT_FILE_NAME
                        && let Some(n) = FileName::parse(v)
                    {
                        names.push(n);
                    }
                    merged.push(a);
                }
            }
        }
        for ((typ, name), mut pieces) in split {
            pieces.sort_by_key(|p| p.1.lowest_vcn);
            // A piece found twice (a stale copy) must not repeat its runs.
            pieces.dedup_by_key(|p| p.1.lowest_vcn);
            let flags = pieces[0].0;
            let mut runs: Vec<Run> = Vec::new();
            for (_, p) in &pieces {
                let end = runs.last().map_or(0, |r| r.vcn + r.len);
                if p.lowest_vcn != end {
                    // A missing extension record: refuse rather than read
                    // the gap as zeros.
                    return Err(corrupt(format!(
                        "unreadable: MFT record {num}: attribute {typ:#x} continues at VCN {} after VCN {end}",
                        p.lowest_vcn
                    )));
                }
                if runs.len() + p.runs.len() > MAX_RUNS {
                    return Err(corrupt(format!("unreadable: MFT record {num}: more than {MAX_RUNS} runs")));
                }
                runs.extend_from_slice(&p.runs);
            }
            let mut nr = pieces.swap_remove(0).1;
            nr.runs = runs;
            nr.highest_vcn = nr.runs.last().map_or(0, |r| r.vcn + r.len).saturating_sub(1);
            merged.push(Attr { typ, name, flags, body: Body::NonResident(nr) });
        }
        Ok(File { flags: base.flags, seq: base.seq, si, names, attrs: merged })
    }

    /// A record's sequence number and flags, from the cache or its header
    /// (no fixups needed: both lie in the first 510 bytes).
    pub(super) fn record_header(&self, num: u64) -> Option<(u16, u16)> {
        if let Some(f) = self.files.get(&num) {
            return Some((f.seq, f.flags));
        }
        let mut h = [0u8; 24];
        let pos = num.checked_mul(self.boot.record_size)?;
        self.read_stream_exact(&self.mft, pos, &mut h).ok()?;
        (&h[0..4] == b"FILE").then(|| Header::parse(&h)).map(|h| (h.seq, h.flags))
    }
}
