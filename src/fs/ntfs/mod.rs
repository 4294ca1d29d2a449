//! Our own read-only NTFS reader.
//!
//! Written from the public format documentation (the Linux-NTFS project's
//! "NTFS Documentation" by Richard Russon and Yuval Fledel, and libfsntfs's
//! format notes) rather than taken from the `ntfs` crate, which truncates
//! data split over MFT records by `$ATTRIBUTE_LIST`, returns compressed
//! files raw, fails on 64 KiB clusters and cannot follow a fragmented $MFT.
//!
//! Covered: 512/4096-byte sectors, 512 B–2 MiB clusters, record and index
//! block sizes in either encoding, update sequence fixups (a torn record is
//! an error), a fragmented $MFT (its own runlist, through its own attribute
//! list), `$ATTRIBUTE_LIST` (attributes in extension records, non-resident
//! attributes split by VCN), resident and non-resident data, sparse runs,
//! `initialized_size`, LZNT1 compression, alternate data streams (listed by
//! [`Ntfs::streams`]; a file's content is its unnamed stream), directory
//! B+trees of any size, the Win32/DOS/POSIX name spaces (a file shows once,
//! under its long name; hard links show in every directory), symlinks and
//! junctions (reparse points), the four $STANDARD_INFORMATION times, and
//! index entries checked against the records' sequence numbers (a stale
//! entry left by a crash is skipped with a warning).
//!
//! Node ids are MFT record numbers (the root is 5). Names are UTF-8, with
//! unpaired UTF-16 surrogates in WTF-8 form. Not covered: EFS-encrypted
//! files (an error), WOF/system-compressed, deduplicated and cloud
//! placeholder files (read as stored, with a warning naming each), and
//! `$LogFile` replay (a dirty volume is reported).

mod boot;
mod filename;
mod index;
mod lznt1;
mod record;
mod runlist;

use super::{DirEntry, FileKind, FileReader, FileSystem, Metadata, NodeId};
use crate::evidence::{ReadAt, Source};
use crate::util::cache::Cache;
use crate::util::time::Timestamp;
use boot::Boot;
use filename::{FileName, NS_DOS};
use record::*;
use runlist::{Run, Stream, StreamReader};
use std::collections::{BTreeMap, HashSet};
use std::io::{self, Cursor};
use std::sync::{Arc, Mutex};

const ROOT: u64 = 5;
/// Extension records one file may use: an attribute list of 256 KiB (the
/// Windows limit) names at most about 8,000.
const MAX_EXTENSION_RECORDS: usize = 8192;
/// An attribute list larger than this is corrupt (Windows caps it at 256 KiB).
const MAX_ATTRIBUTE_LIST: u64 = 4 << 20;
/// Runs in one attribute, over all its pieces.
const MAX_RUNS: usize = 16 << 20;
/// Directory index allocations larger than this are refused.
const MAX_INDEX_BYTES: u64 = 1 << 30;
/// At most this many distinct warnings are kept; the rest are counted.
const MAX_WARNINGS: usize = 100;

/// Pieces of non-resident attributes by (type, name): (flags, piece).
type SplitAttrs = BTreeMap<(u32, Vec<u16>), Vec<(u16, NonResident)>>;

fn corrupt(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

pub struct Ntfs {
    dev: Source,
    boot: Boot,
    /// $MFT's own data stream: where every record is.
    mft: Stream,
    label: Option<String>,
    files: Cache<u64, File>,
    warnings: Mutex<(Vec<String>, usize)>,
}

/// A file assembled from its base record and any extension records.
struct File {
    flags: u16,
    seq: u16,
    si: Option<Vec<u8>>,
    names: Vec<FileName>,
    /// Non-resident pieces merged per (type, name), resident ones as found.
    attrs: Vec<Attr>,
}

impl File {
    fn attr(&self, typ: u32, name: &[u16]) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.typ == typ && a.name == name)
    }

    fn reparse(&self) -> Option<(u32, Option<Vec<u8>>)> {
        match &self.attr(AT_REPARSE_POINT, &[])?.body {
            Body::Resident(v) => Some(filename::reparse_target(v)),
            // Reparse data is at most 16 KiB and almost always resident;
            // a non-resident one is reported without its target.
            Body::NonResident(_) => Some((0, None)),
        }
    }

    fn kind(&self) -> FileKind {
        if let Some((tag, _)) = self.reparse()
            && (tag == filename::TAG_SYMLINK || tag == filename::TAG_MOUNT_POINT)
        {
            return FileKind::Symlink;
        }
        if self.flags & FLAG_DIRECTORY != 0 { FileKind::Dir } else { FileKind::File }
    }
}

impl Ntfs {
    pub fn open(dev: Source) -> io::Result<Ntfs> {
        let mut raw = [0u8; 512];
        dev.read_exact_at(0, &mut raw)?;
        let boot = match Boot::parse(&raw) {
            Ok(b) => b,
            Err(e) => {
                // The backup boot sector is the volume's last sector (512
                // bytes, or 4096 on a 4Kn disk).
                let backup = [512u64, 4096].iter().find_map(|&s| {
                    let at = dev.len().checked_sub(s)?;
                    dev.read_exact_at(at, &mut raw).ok()?;
                    Boot::parse(&raw).ok()
                });
                backup.ok_or(e)?
            }
        };
        let rs = boot.record_size;
        // Bootstrap: record 0 at the boot sector's LCN gives the start of
        // $MFT's runlist, enough to find the rest of it.
        let first = Stream {
            runs: vec![Run { vcn: 0, len: rs.div_ceil(boot.cluster_size), lcn: Some(boot.mft_lcn) }],
            data_size: rs,
            initialized_size: rs,
            cu_clusters: 0,
        };
        let mut fs = Ntfs {
            dev,
            boot,
            mft: first,
            label: None,
            files: Cache::new(4096),
            warnings: Mutex::new((Vec::new(), 0)),
        };
        fs.mft = fs.bootstrap_mft()?;
        let volume = fs.file(3).ok();
        if let Some(v) = volume {
            if let Some(Attr { body: Body::Resident(n), .. }) = v.attr(AT_VOLUME_NAME, &[]) {
                let units: Vec<u16> = n.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
                let l = String::from_utf8_lossy(&filename::utf16_to_bytes(&units)).into_owned();
                fs.label = (!l.is_empty()).then_some(l);
            }
            if let Some(Attr { body: Body::Resident(i), .. }) = v.attr(AT_VOLUME_INFORMATION, &[])
                && crate::util::bytes::u16_at(i, 10) & 0x0001 != 0
            {
                fs.warn(
                    "the volume is marked dirty (not cleanly unmounted); files are read as they are on disk, \
                     without replaying $LogFile"
                        .into(),
                );
            }
        }
        Ok(fs)
    }

    /// $MFT's data runlist: record 0's unnamed $DATA, extended through its
    /// own attribute list one extension record at a time in VCN order (each
    /// piece found makes more of $MFT readable for the next).
    fn bootstrap_mft(&mut self) -> io::Result<Stream> {
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

    /// Records a problem found by the caller (e.g. probing used the backup
    /// boot sector); it shows with the reader's own warnings.
    pub fn note(&self, msg: String) {
        self.warn(msg)
    }

    fn warn(&self, msg: String) {
        let mut w = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
        if w.0.len() < MAX_WARNINGS {
            if !w.0.contains(&msg) {
                w.0.push(msg);
            }
        } else {
            w.1 += 1;
        }
    }

    /// Reads `buf.len()` bytes at `pos` of a stream, all of them or an error.
    fn read_stream_exact(&self, s: &Stream, mut pos: u64, buf: &mut [u8]) -> io::Result<()> {
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
    fn read_record_raw(&self, num: u64) -> io::Result<Vec<u8>> {
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
    fn stream_of(&self, pieces: &[NonResident], cu: u8, complete: bool) -> io::Result<Stream> {
        let mut ps: Vec<&NonResident> = pieces.iter().collect();
        ps.sort_by_key(|p| p.lowest_vcn);
        let first = ps.first().filter(|p| p.lowest_vcn == 0).ok_or_else(|| corrupt("unreadable: attribute has no piece at VCN 0"))?;
        let mut runs: Vec<Run> = Vec::new();
        let mut next = 0u64;
        for p in &ps {
            if p.lowest_vcn != next {
                return Err(corrupt(format!(
                    "unreadable: attribute pieces leave a gap (VCN {next} expected, {} found)",
                    p.lowest_vcn
                )));
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
    fn attr_bytes(&self, a: &Attr, max: u64) -> io::Result<Vec<u8>> {
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

    fn file(&self, num: u64) -> io::Result<Arc<File>> {
        self.files.get_or_try(num, || self.load_file(num))
    }

    fn load_file(&self, num: u64) -> io::Result<File> {
        let base = Record::parse(num, &self.read_record_raw(num)?)?;
        if base.flags & FLAG_IN_USE == 0 {
            return Err(corrupt(format!("MFT record {num} is not in use (deleted)")));
        }
        let mut all = base.attrs;
        if let Some(list) = all.iter().find(|a| a.typ == AT_ATTRIBUTE_LIST).cloned() {
            let data = self.attr_bytes(&list, MAX_ATTRIBUTE_LIST)?;
            let mut recs: Vec<u64> =
                record::attribute_list(&data).into_iter().map(|e| e.3).filter(|r| *r != num).collect();
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
    fn record_header(&self, num: u64) -> Option<(u16, u16)> {
        if let Some(f) = self.files.get(&num) {
            return Some((f.seq, f.flags));
        }
        let mut h = [0u8; 24];
        let pos = num.checked_mul(self.boot.record_size)?;
        self.read_stream_exact(&self.mft, pos, &mut h).ok()?;
        (&h[0..4] == b"FILE").then(|| (u16::from_le_bytes([h[16], h[17]]), u16::from_le_bytes([h[22], h[23]])))
    }

    /// A stream (content) of a file as a reader.
    fn stream_reader(&self, num: u64, a: &Attr) -> io::Result<FileReader<'_>> {
        if a.flags & ATTR_ENCRYPTED != 0 {
            return Err(corrupt(format!("MFT record {num}: the file is encrypted (EFS)")));
        }
        match &a.body {
            Body::Resident(v) => Ok(Box::new(Cursor::new(v.clone()))),
            Body::NonResident(nr) => {
                let cu = if a.flags & ATTR_COMPRESSED != 0 { nr.compression_unit } else { 0 };
                if cu != 0 && self.boot.cluster_size > 4096 {
                    return Err(corrupt(format!(
                        "unreadable: MFT record {num}: compressed with {}-byte clusters (NTFS compresses only up to 4 KiB)",
                        self.boot.cluster_size
                    )));
                }
                if cu > 8 {
                    return Err(corrupt(format!("unreadable: MFT record {num}: compression unit 2^{cu} clusters")));
                }
                let s = self.stream_of(std::slice::from_ref(nr), cu, true)?;
                Ok(Box::new(StreamReader::new(self, s)))
            }
        }
    }

    /// The named data streams (alternate data streams) of a file.
    pub fn streams(&self, node: NodeId) -> io::Result<Vec<(Vec<u8>, u64)>> {
        let f = self.file(node)?;
        Ok(f.attrs
            .iter()
            .filter(|a| a.typ == AT_DATA && !a.name.is_empty())
            .map(|a| (filename::utf16_to_bytes(&a.name), attr_size(a)))
            .collect())
    }

    /// Opens a named data stream (`Zone.Identifier`, …) of a file.
    pub fn open_stream(&self, node: NodeId, name: &[u8]) -> io::Result<FileReader<'_>> {
        let f = self.file(node)?;
        let a = f
            .attrs
            .iter()
            .find(|a| a.typ == AT_DATA && !a.name.is_empty() && filename::utf16_to_bytes(&a.name) == name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such stream"))?;
        self.stream_reader(node, a)
    }

    fn index_entries(&self, dir: u64, f: &File) -> io::Result<Vec<index::IndexEntry>> {
        let i30: Vec<u16> = "$I30".encode_utf16().collect();
        let root = f
            .attr(AT_INDEX_ROOT, &i30)
            .ok_or_else(|| corrupt(format!("unreadable: directory {dir} has no $I30 index root")))?;
        let root = self.attr_bytes(root, 1 << 20)?;
        let mut out = Vec::new();
        if !index::entries(&root, 16, &mut out) {
            self.warn(format!("directory {dir}: damaged index root"));
        }
        let Some(alloc) = f.attr(AT_INDEX_ALLOCATION, &i30) else {
            return Ok(out);
        };
        let Body::NonResident(nr) = &alloc.body else {
            return Err(corrupt(format!("unreadable: directory {dir}: resident $INDEX_ALLOCATION")));
        };
        let s = self.stream_of(std::slice::from_ref(nr), 0, true)?;
        if s.data_size > MAX_INDEX_BYTES {
            return Err(corrupt(format!("unreadable: directory {dir}: index of {} bytes", s.data_size)));
        }
        let bitmap = f.attr(AT_BITMAP, &i30).and_then(|b| self.attr_bytes(b, 1 << 20).ok());
        let bs = self.boot.index_block_size;
        let mut buf = vec![0u8; bs as usize];
        let mut damaged = 0;
        for i in 0..s.data_size / bs {
            if let Some(bm) = &bitmap
                && bm.get((i / 8) as usize).is_none_or(|b| b >> (i % 8) & 1 == 0)
            {
                continue;
            }
            let ok = self.read_stream_exact(&s, i * bs, &mut buf).is_ok()
                && apply_fixups(&mut buf, b"INDX", "index block").is_ok()
                && index::entries(&buf, 24, &mut out);
            if !ok {
                damaged += 1;
            }
        }
        if damaged > 0 {
            self.warn(format!("directory {dir}: {damaged} damaged index block(s) skipped"));
        }
        Ok(out)
    }
}

fn attr_size(a: &Attr) -> u64 {
    match &a.body {
        Body::Resident(v) => v.len() as u64,
        Body::NonResident(nr) => nr.data_size,
    }
}

impl FileSystem for Ntfs {
    fn kind(&self) -> &'static str {
        "ntfs"
    }
    fn label(&self) -> Option<String> {
        self.label.clone()
    }
    fn uuid(&self) -> Option<String> {
        Some(format!("{:016X}", self.boot.serial))
    }
    fn root(&self) -> NodeId {
        ROOT
    }

    fn read_dir(&self, dir: NodeId) -> io::Result<Vec<DirEntry>> {
        let f = self.file(dir)?;
        if f.flags & FLAG_DIRECTORY == 0 {
            return Err(corrupt(format!("MFT record {dir} is not a directory")));
        }
        let entries = self.index_entries(dir, &f)?;
        // A file with a long name also has a DOS 8.3 entry; show it once.
        let long: HashSet<u64> =
            entries.iter().filter(|e| e.name.namespace != NS_DOS).map(|e| e.record).collect();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut stale = 0;
        for e in entries {
            if (e.name.namespace == NS_DOS && long.contains(&e.record))
                || e.name.name == b"."
                || e.name.name == b".."
                || e.record == dir
                || !seen.insert((e.record, e.name.name.clone()))
            {
                continue;
            }
            // $LogFile is not replayed, so after a crash an entry may still
            // name a record that was freed or reused for another file: the
            // sequence number in the entry tells.
            if let Some((seq, flags)) = self.record_header(e.record)
                && (flags & FLAG_IN_USE == 0 || (e.seq != 0 && seq != e.seq))
            {
                stale += 1;
                continue;
            }
            let a = e.name.attributes;
            // The index copy of the attributes can lag behind the record;
            // reparse points are checked in the record by `metadata`.
            let kind = if a & filename::FILE_ATTR_REPARSE != 0 {
                FileKind::Unknown
            } else if a & filename::FILE_ATTR_DIR_INDEX != 0 {
                FileKind::Dir
            } else {
                FileKind::File
            };
            out.push(DirEntry { name: e.name.name, node: e.record, kind });
        }
        if stale > 0 {
            self.warn(format!(
                "directory {dir}: {stale} stale index entr{} (record deleted or reused) skipped",
                if stale == 1 { "y" } else { "ies" }
            ));
        }
        Ok(out)
    }

    fn metadata(&self, node: NodeId) -> io::Result<Metadata> {
        let f = self.file(node)?;
        let kind = f.kind();
        let si = f.si.as_deref().unwrap_or(&[]);
        let t = |off: usize| -> Option<Timestamp> {
            (si.len() >= off + 8).then(|| filename::filetime(crate::util::bytes::u64_at(si, off)))
        };
        let attrs = crate::util::bytes::u32_at(si, 32);
        let size = match kind {
            FileKind::File => f.attr(AT_DATA, &[]).map_or(0, attr_size),
            _ => 0,
        };
        let mode = match kind {
            FileKind::Dir => 0o040755,
            FileKind::Symlink => 0o120777,
            _ if attrs & filename::FILE_ATTR_READONLY != 0 => 0o100444,
            _ => 0o100644,
        };
        let nlink = f.names.iter().filter(|n| n.namespace != NS_DOS).count().max(1) as u32;
        Ok(Metadata {
            node,
            kind: Some(kind),
            size,
            mode,
            uid: 0,
            gid: 0,
            nlink,
            mtime: t(8),
            atime: t(24),
            ctime: t(16),
            btime: t(0),
        })
    }

    fn open(&self, node: NodeId) -> io::Result<FileReader<'_>> {
        let f = self.file(node)?;
        match f.kind() {
            FileKind::File => {}
            FileKind::Dir => return Err(corrupt("is a directory")),
            other => return Err(corrupt(format!("not a regular file ({other:?})"))),
        }
        match f.reparse() {
            // Windows 10 "system compression" (compact.exe /exe): the real
            // data is in the WofCompressedData stream (XPRESS/LZX).
            Some((filename::TAG_WOF, _)) => self.warn(format!(
                "MFT record {node}: WOF-compressed (system compression) file read as stored, not decompressed"
            )),
            // Data deduplication, cloud placeholders (OneDrive, Azure
            // File Sync), HSM: the unnamed stream may be empty or sparse and
            // the data elsewhere (a chunk store, the cloud).
            Some((tag, _)) => self.warn(format!(
                "MFT record {node}: reparse point {tag:#010x} (deduplication, cloud placeholder, …): \
                 content read as stored, which may not be the file's data"
            )),
            None => {}
        }
        match f.attr(AT_DATA, &[]) {
            Some(a) => self.stream_reader(node, a),
            None => Ok(Box::new(Cursor::new(Vec::new()))),
        }
    }

    fn read_link(&self, node: NodeId) -> io::Result<Vec<u8>> {
        let f = self.file(node)?;
        match f.reparse() {
            Some((_, Some(target))) if f.kind() == FileKind::Symlink => Ok(target),
            _ => Err(corrupt("not a symbolic link or junction")),
        }
    }

    fn warnings(&self) -> Vec<String> {
        let w = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = w.0.clone();
        if w.1 > 0 {
            out.push(format!("… and {} more warnings", w.1));
        }
        out
    }
}
