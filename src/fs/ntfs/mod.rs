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
//! junctions (reparse points), the four $STANDARD_INFORMATION times,
//! index entries checked against the records' sequence numbers (a stale
//! entry left by a crash is skipped with a warning), names compared through
//! the volume's `$UpCase` (`upcase.rs`), and every directory at once from
//! one sequential pass over $MFT for sweeps (`scan.rs`).
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
mod mft;
mod record;
mod runlist;
mod scan;
mod upcase;

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
            Some((filename::TAG_WOF, _)) => {
                self.warn(format!("MFT record {node}: WOF-compressed (system compression) file read as stored, not decompressed"))
            }
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

    fn streams(&self, node: NodeId) -> io::Result<Vec<(Vec<u8>, u64)>> {
        Ntfs::streams(self, node)
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
