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
//! `initialized_size`, LZNT1 compression, WOF "system compression"
//! (`compact /exe:xpress4k|xpress8k|xpress16k|lzx`: `wof.rs` reads the
//! `WofCompressedData` stream chunk by chunk through our own XPRESS
//! Huffman and LZX decoders, `xpress.rs`, `lzx.rs`), alternate data streams (listed by
//! [`Ntfs::streams`]; a file's content is its unnamed stream), directory
//! B+trees of any size, the Win32/DOS/POSIX name spaces (a file shows once,
//! under its long name; hard links show in every directory), symlinks and
//! junctions (reparse points), the four $STANDARD_INFORMATION times,
//! index entries checked against the records' sequence numbers (a stale
//! entry left by a crash is skipped with a warning), names compared through
//! the volume's `$UpCase` (`upcase.rs`), and every directory at once from
//! one sequential pass over $MFT for sweeps (`scan.rs`).
//!
//! Node ids are MFT record numbers (the root is 5). Names are UTF-8, with
//! unpaired UTF-16 surrogates in WTF-8 form. Not covered: EFS-encrypted
//! files, WIMBoot files (WOF's WIM provider: the data is in a WIM file) and
//! deduplicated, cloud placeholder or HSM files whose data stream holds
//! nothing (all sparse: the data is in a chunk store or the cloud) — each an
//! error naming why, never zeros; such a reparse point with its data present
//! (a hydrated OneDrive file) is read as stored, with a warning. Nor is
//! `$LogFile` replayed (a dirty volume is reported).

mod boot;
mod filename;
mod huffman;
mod index;
mod lznt1;
mod lzx;
mod mft;
mod record;
mod runlist;
mod scan;
mod upcase;
mod wof;
mod xpress;

/// UTF-16 names as bytes and back, shared with the exFAT reader.
pub(super) use filename::{bytes_to_utf16, utf16_to_bytes};

use super::{DirEntry, FileKind, FileReader, FileSystem, Listing, Metadata, NodeId};
use crate::evidence::{ReadAt, Source};
use crate::util::cache::Cache;
use crate::util::corrupt;
use crate::util::time::Timestamp;
use boot::Boot;
use filename::NS_DOS;
use mft::File;
use record::*;
use runlist::{Run, Stream, StreamReader};
use std::collections::HashSet;
use std::io::{self, Cursor};
use std::sync::OnceLock;

const ROOT: u64 = 5;

pub struct Ntfs {
    dev: Source,
    boot: Boot,
    /// $MFT's own data stream: where every record is.
    mft: Stream,
    label: Option<String>,
    files: Cache<u64, File>,
    /// $UpCase, read on first use (None: unusable, ASCII folding).
    upcase: OnceLock<Option<Vec<u16>>>,
    warnings: crate::util::warnings::Warnings,
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
        let mut fs =
            Ntfs { dev, boot, mft: first, label: None, files: Cache::new(4096), upcase: OnceLock::new(), warnings: Default::default() };
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

    /// Records a problem found by the caller (e.g. probing used the backup
    /// boot sector); it shows with the reader's own warnings.
    pub fn note(&self, msg: String) {
        self.warn(msg)
    }

    pub(super) fn warn(&self, msg: String) {
        self.warnings.add(msg);
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
}

/// What a reparse tag whose data may live elsewhere stands for.
fn reparse_kind(tag: u32) -> &'static str {
    match tag {
        0x8000_0013 => "Data Deduplication: the data is in the volume's chunk store, System Volume Information\\Dedup",
        t if t & 0xFFFF_0FFF == 0x9000_001A => "cloud files placeholder (OneDrive and other sync engines)",
        0x8000_001E => "Azure File Sync tiered file",
        0xC000_0004 | 0x8000_0006 => "hierarchical storage management",
        0x8000_0012 => "DFS-R",
        _ => "a reparse point of another product",
    }
}

/// The name of the stream that holds a WOF-compressed file's data.
const WOF_STREAM: &str = "WofCompressedData";

impl Ntfs {
    /// A WOF-compressed (system-compressed) file's content, decoded.
    fn open_wof(&self, node: NodeId, f: &File) -> io::Result<FileReader<'_>> {
        let alg = match wof::Wof::parse(f.reparse_data().unwrap_or(&[])) {
            wof::Wof::File(a) => a,
            wof::Wof::Wim => {
                return Err(corrupt(format!(
                    "MFT record {node}: WIMBoot file (WOF provider 1): its data is in a WIM image outside this volume, not in the file"
                )));
            }
            wof::Wof::Unreadable(why) => return Err(corrupt(format!("MFT record {node}: WOF-compressed file: {why}"))),
        };
        let size = f.attr(AT_DATA, &[]).map_or(0, attr_size);
        let name: Vec<u16> = WOF_STREAM.encode_utf16().collect();
        let a = f
            .attr(AT_DATA, &name)
            .ok_or_else(|| corrupt(format!("MFT record {node}: WOF-compressed file ({}) without its {WOF_STREAM} stream", alg.name())))?;
        if a.flags & (ATTR_ENCRYPTED | ATTR_COMPRESSED) != 0 {
            return Err(corrupt(format!("MFT record {node}: the {WOF_STREAM} stream is itself encrypted or NTFS-compressed")));
        }
        let (read_at, len): (wof::ReadAt<'_>, u64) = match &a.body {
            Body::Resident(v) => {
                let v = v.clone();
                let len = v.len() as u64;
                let read_at = move |pos: u64, buf: &mut [u8]| {
                    let s = usize::try_from(pos).ok().and_then(|p| v.get(p..)).and_then(|s| s.get(..buf.len()));
                    buf.copy_from_slice(s.ok_or_else(|| corrupt(format!("unreadable: {WOF_STREAM} ends before byte {pos}")))?);
                    Ok(())
                };
                (Box::new(read_at), len)
            }
            Body::NonResident(nr) => {
                let s = self.stream_of(std::slice::from_ref(nr), 0, true)?;
                let len = s.data_size;
                (Box::new(move |pos: u64, buf: &mut [u8]| self.read_stream_exact(&s, pos, buf)), len)
            }
        };
        let r = wof::WofReader::new(read_at, len, size, alg).map_err(|e| corrupt(format!("MFT record {node}: {e}")))?;
        Ok(Box::new(r))
    }

    /// How a file's content is stored, when compressed (the manifest's
    /// `compression`): `wof-xpress4k`…, `wof-lzx`, `wof-wim`, `wof` (an
    /// unreadable WOF reparse point), `lznt1`.
    pub fn compression(&self, node: NodeId) -> Option<&'static str> {
        let f = self.file(node).ok()?;
        if let Some((filename::TAG_WOF, _)) = f.reparse() {
            return Some(match wof::Wof::parse(f.reparse_data().unwrap_or(&[])) {
                wof::Wof::File(a) => a.name(),
                wof::Wof::Wim => "wof-wim",
                wof::Wof::Unreadable(_) => "wof",
            });
        }
        match f.attr(AT_DATA, &[]) {
            Some(a @ Attr { body: Body::NonResident(nr), .. }) if a.flags & ATTR_COMPRESSED != 0 && nr.compression_unit != 0 => {
                Some("lznt1")
            }
            _ => None,
        }
    }
}

/// One WOF chunk decoded (benchmarks: examples/wof_chunks.rs): `lzx`, else
/// XPRESS Huffman; `out` ends up `out_len` bytes long.
#[doc(hidden)]
pub fn decode_wof_chunk(lzx: bool, src: &[u8], out: &mut Vec<u8>, out_len: usize) -> Result<(), String> {
    if lzx { lzx::decompress(src, out, out_len) } else { xpress::decompress(src, out, out_len) }
}

/// Fuzzing entry for the WOF decoders and chunk-table reader.
#[doc(hidden)]
pub fn fuzz_wof(data: &[u8]) {
    wof::fuzz(data)
}

/// A file's unnamed stream for positional reads.
struct FileAt<'a> {
    fs: &'a Ntfs,
    s: Stream,
}

impl ReadAt for FileAt<'_> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.s.read_at(self.fs, offset, buf)
    }
    fn len(&self) -> u64 {
        self.s.data_size
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
        let (entries, damage) = self.read_dir_checked(dir)?;
        if let Some(d) = damage {
            self.warn(format!("directory {dir}: {d}"));
        }
        Ok(entries)
    }

    fn read_dir_checked(&self, dir: NodeId) -> io::Result<(Vec<DirEntry>, Option<String>)> {
        let f = self.file(dir)?;
        if f.flags & FLAG_DIRECTORY == 0 {
            return Err(corrupt(format!("MFT record {dir} is not a directory")));
        }
        let (entries, damage) = self.index_entries(dir, &f)?;
        // A file with a long name also has a DOS 8.3 entry; show it once.
        let long: HashSet<u64> = entries.iter().filter(|e| e.name.namespace != NS_DOS).map(|e| e.record).collect();
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
        Ok((out, damage))
    }

    fn metadata(&self, node: NodeId) -> io::Result<Metadata> {
        let f = self.file(node)?;
        let kind = f.kind();
        let si = f.si.as_deref().unwrap_or(&[]);
        let t =
            |off: usize| -> Option<Timestamp> { (si.len() >= off + 8).then(|| filename::filetime(crate::util::bytes::u64_at(si, off))) };
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
            rdev: None,
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
            Some((filename::TAG_WOF, _)) => return self.open_wof(node, &f),
            // Data deduplication, cloud placeholders (OneDrive, Azure
            // File Sync), HSM: the unnamed stream may be empty or sparse and
            // the data elsewhere (a chunk store, the cloud). A hydrated
            // placeholder keeps its tag and has its data.
            Some((tag, _)) => {
                if let Some(Attr { body: Body::NonResident(nr), .. }) = f.attr(AT_DATA, &[])
                    && nr.data_size > 0
                    && nr.runs.iter().all(|r| r.lcn.is_none())
                {
                    return Err(corrupt(format!(
                        "MFT record {node}: reparse point {tag:#010x} ({}): the file's {} bytes are not on this volume \
                         (its data stream is all sparse); the content lives elsewhere",
                        reparse_kind(tag),
                        nr.data_size
                    )));
                }
                self.warn(format!(
                    "MFT record {node}: reparse point {tag:#010x} ({}): content read as stored, which may not be the file's data",
                    reparse_kind(tag)
                ))
            }
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

    fn streams(&self, node: NodeId) -> io::Result<Vec<(Vec<u8>, u64)>> {
        Ntfs::streams(self, node)
    }

    fn compression(&self, node: NodeId) -> Option<&'static str> {
        Ntfs::compression(self, node)
    }

    fn file_at(&self, node: NodeId) -> Option<io::Result<Box<dyn ReadAt + '_>>> {
        let f = match self.file(node) {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        // Compressed, encrypted or reparse-point data: through `open`.
        let a = f.attr(AT_DATA, &[]).filter(|a| a.flags & (ATTR_ENCRYPTED | ATTR_COMPRESSED) == 0 && f.reparse().is_none())?;
        Some(match &a.body {
            Body::Resident(v) => Ok(Box::new(v.clone())),
            Body::NonResident(nr) => self.stream_of(std::slice::from_ref(nr), 0, true).map(|s| Box::new(FileAt { fs: self, s }) as _),
        })
    }

    fn open_stream(&self, node: NodeId, name: &[u8]) -> io::Result<FileReader<'_>> {
        Ntfs::open_stream(self, node, name)
    }

    fn fold_case(&self, name: &[u8]) -> Option<Vec<u8>> {
        Ntfs::fold_case(self, name)
    }

    fn list_all(&self) -> Option<io::Result<Listing>> {
        Some(
            Ntfs::list_all(self)
                .inspect_err(|e| self.warn(format!("$MFT could not be read in one pass ({e}); directories are read one by one"))),
        )
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.list()
    }
}
