//! A file's content through its EXTENT_DATA items, fetched a batch at a
//! time as the read advances (a file of a million extents never has them
//! all in memory): inline data, regular extents read in place, holes
//! (missing items, or `disk_bytenr` 0) and preallocated extents as zeros
//! (allocated but never written, as ext's unwritten extents: what the
//! blocks hold is not the file's), and compressed extents decompressed one
//! at a time, never past their `ram_bytes`.

use super::compress;
use super::items::{Compression, Data, EXTENT_DATA, Extent};
use super::tree::{Key, Meta, Root};
use crate::util::corrupt;
use std::collections::VecDeque;
use std::io::{self, Read};

/// Extent items fetched per tree search.
const BATCH: usize = 256;
/// Btrfs compresses at most 128 KiB into one extent (BTRFS_MAX_UNCOMPRESSED,
/// and BTRFS_MAX_COMPRESSED for what it takes on disk).
pub const MAX_COMPRESSED: u64 = 128 << 10;

/// Where compressed bytes come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Packed {
    Disk(u64),
    Inline(u64),
}

pub struct ExtentReader<'a> {
    meta: &'a Meta,
    root: Root,
    ino: u64,
    size: u64,
    pos: u64,
    queue: VecDeque<Extent>,
    /// The file offset to fetch items from next; None: all fetched.
    next: Option<u64>,
    /// The last decompressed extent: (where it is: `Disk(disk_bytenr)` or
    /// `Inline(file offset)`; its bytes).
    unpacked: Option<(Packed, Vec<u8>)>,
}

impl<'a> ExtentReader<'a> {
    pub fn new(meta: &'a Meta, root: Root, ino: u64, size: u64) -> Self {
        ExtentReader { meta, root, ino, size, pos: 0, queue: VecDeque::new(), next: Some(0), unpacked: None }
    }

    /// Where the file's last extent ends (0: none), for a size that a
    /// damaged inode may have wrong.
    pub fn mapped_end(meta: &Meta, root: Root, ino: u64) -> io::Result<u64> {
        let mut end = 0u64;
        let mut from = 0u64;
        loop {
            let items = meta.search(root, Key::new(ino, EXTENT_DATA, from), Key::new(ino, EXTENT_DATA, u64::MAX), BATCH, None)?;
            for (k, d) in &items {
                let e = Extent::parse(k.offset, d)?;
                end = end.max(e.file_offset.saturating_add(e.len));
            }
            match items.last().and_then(|(k, _)| k.offset.checked_add(1)) {
                Some(next) if items.len() == BATCH => from = next,
                _ => return Ok(end),
            }
        }
    }

    /// The first `max` extents of a file (for what it is compressed with).
    pub fn first_extents(meta: &Meta, root: Root, ino: u64, max: usize) -> io::Result<Vec<Extent>> {
        let items = meta.search(root, Key::new(ino, EXTENT_DATA, 0), Key::new(ino, EXTENT_DATA, u64::MAX), max, None)?;
        items.iter().map(|(k, d)| Extent::parse(k.offset, d)).collect()
    }

    fn fetch(&mut self) -> io::Result<()> {
        let Some(from) = self.next else { return Ok(()) };
        let items =
            self.meta.search(self.root, Key::new(self.ino, EXTENT_DATA, from), Key::new(self.ino, EXTENT_DATA, u64::MAX), BATCH, None)?;
        self.next = if items.len() < BATCH { None } else { items.last().and_then(|(k, _)| k.offset.checked_add(1)) };
        for (k, d) in &items {
            self.queue.push_back(Extent::parse(k.offset, d).map_err(|e| corrupt(format!("inode {}: {e}", self.ino)))?);
        }
        Ok(())
    }

    /// The first extent that ends after `pos` (it may start after it).
    fn front(&mut self) -> io::Result<Option<Extent>> {
        loop {
            while self.queue.front().is_some_and(|e| e.file_offset.saturating_add(e.len) <= self.pos) {
                self.queue.pop_front();
            }
            if !self.queue.is_empty() || self.next.is_none() {
                return Ok(self.queue.front().cloned());
            }
            self.fetch()?;
        }
    }

    /// A compressed extent's (or inline item's) decompressed bytes.
    fn unpack(&mut self, key: Packed, c: Compression, packed: &[u8], ram: u64) -> io::Result<&[u8]> {
        if self.unpacked.as_ref().is_none_or(|(k, _)| *k != key) {
            if ram > MAX_COMPRESSED {
                return Err(corrupt(format!("inode {}: a compressed extent of {ram} bytes (at most {MAX_COMPRESSED})", self.ino)));
            }
            let out = compress::decompress(c, packed, ram as usize, self.meta.sb.sectorsize as usize)
                .map_err(|e| corrupt(format!("inode {}: compressed extent ({key:?}): {e}", self.ino)))?;
            self.unpacked = Some((key, out));
        }
        Ok(self.unpacked.as_ref().map(|(_, v)| v.as_slice()).unwrap_or(&[]))
    }

    /// Copies `bytes[from..]` into `buf`, zeros past their end.
    fn copy_from(bytes: &[u8], from: u64, buf: &mut [u8]) {
        let src = usize::try_from(from).ok().and_then(|f| bytes.get(f..)).unwrap_or(&[]);
        let k = src.len().min(buf.len());
        buf[..k].copy_from_slice(&src[..k]);
        buf[k..].fill(0);
    }
}

impl Read for ExtentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.size - self.pos);
        let n = match self.front()? {
            // A hole: zeros up to the next extent or the end of the file.
            None => {
                buf[..want as usize].fill(0);
                want
            }
            Some(e) if e.file_offset > self.pos => {
                let n = want.min(e.file_offset - self.pos);
                buf[..n as usize].fill(0);
                n
            }
            Some(e) => {
                let within = self.pos - e.file_offset;
                let n = want.min(e.len - within);
                let out = &mut buf[..n as usize];
                match &e.data {
                    Data::Prealloc => out.fill(0),
                    Data::Inline(d) if e.compression == Compression::None => Self::copy_from(d, within, out),
                    Data::Inline(d) => {
                        let bytes = self.unpack(Packed::Inline(e.file_offset), e.compression, d, e.ram_bytes)?;
                        Self::copy_from(bytes, within, out);
                    }
                    Data::Regular { disk_bytenr: 0, .. } => out.fill(0),
                    Data::Regular { disk_bytenr, offset, .. } if e.compression == Compression::None => {
                        let at = disk_bytenr
                            .checked_add(*offset)
                            .and_then(|a| a.checked_add(within))
                            .ok_or_else(|| corrupt(format!("inode {}: extent address overflows", self.ino)))?;
                        self.meta.read_logical(at, out)?;
                    }
                    Data::Regular { disk_bytenr, disk_num_bytes, offset } => {
                        if *disk_num_bytes > MAX_COMPRESSED {
                            return Err(corrupt(format!(
                                "inode {}: compressed extent at {disk_bytenr} of {disk_num_bytes} bytes on disk (at most {MAX_COMPRESSED})",
                                self.ino
                            )));
                        }
                        let mut packed = Vec::new();
                        if self.unpacked.as_ref().is_none_or(|(k, _)| *k != Packed::Disk(*disk_bytenr)) {
                            packed = vec![0u8; *disk_num_bytes as usize];
                            self.meta.read_logical(*disk_bytenr, &mut packed)?;
                        }
                        let bytes = self.unpack(Packed::Disk(*disk_bytenr), e.compression, &packed, e.ram_bytes)?;
                        Self::copy_from(bytes, offset.saturating_add(within), out);
                    }
                }
                n
            }
        };
        self.pos += n;
        Ok(n as usize)
    }
}
