//! One reader for block-mapped files, shared by ext2/3/4 and XFS: a file is
//! a sorted list of runs of filesystem blocks, read straight from the
//! device, with zeros for holes and unwritten (preallocated) extents. An
//! unwritten extent's blocks hold whatever was on the disk before, which is
//! not the file's content.
//!
//! Each format builds the list its own way (ext4 extent trees and ext2/3
//! indirect blocks in `ext/blockmap.rs`, XFS bmap records and btrees in
//! `xfs/bmap.rs`); the bounds are checked once here, when the reader is
//! made, so the read path does no unchecked arithmetic. An extent that runs
//! past the end of the filesystem fails the read that reaches it, not the
//! ones before: what precedes it is still the file's.
//!
//! Btrfs has its own reader (`btrfs/file.rs`): its extents are byte ranges
//! of a logical address space mapped through chunks, possibly compressed,
//! and fetched from the tree a batch at a time rather than listed whole.

use crate::evidence::ReadAt;
use crate::util::corrupt;
use std::io::{self, Read};

/// A run of file blocks `[logical, logical+len)` stored from block
/// `physical` of the filesystem (counted from its start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub logical: u64,
    pub physical: u64,
    pub len: u64,
    pub unwritten: bool,
}

/// An extent with where its bytes are, checked against the filesystem.
#[derive(Clone, Copy, Debug)]
struct Run {
    /// First and end byte of the file it covers (saturating: a corrupt
    /// logical block far past any file size simply ends the file there).
    start: u64,
    end: u64,
    unwritten: bool,
    /// Byte offset of `start` on the device; None: the extent runs past
    /// the end of the filesystem (or overflows), `physical` and `len` kept
    /// for the message.
    at: Result<u64, (u64, u64)>,
}

/// Streams `size` bytes of a file through its extents.
pub struct MappedReader<'a> {
    dev: &'a dyn ReadAt,
    runs: Vec<Run>,
    /// Filesystem size in blocks, for the error message.
    fs_blocks: u64,
    size: u64,
    pos: u64,
    /// Index of the first run that may contain `pos`.
    next: usize,
}

impl<'a> MappedReader<'a> {
    /// `extents` sorted by `logical`; `fs_blocks` blocks of `block_size`
    /// bytes make the filesystem.
    pub fn new(dev: &'a dyn ReadAt, block_size: u64, fs_blocks: u64, extents: Vec<Extent>, size: u64) -> Self {
        let runs = extents
            .iter()
            .map(|e| {
                let at = e
                    .physical
                    .checked_add(e.len)
                    .filter(|&end| end <= fs_blocks)
                    .and_then(|_| e.physical.checked_mul(block_size))
                    .ok_or((e.physical, e.len));
                Run {
                    start: e.logical.saturating_mul(block_size),
                    end: e.logical.saturating_add(e.len).saturating_mul(block_size),
                    unwritten: e.unwritten,
                    at,
                }
            })
            .collect();
        MappedReader { dev, runs, fs_blocks, size, pos: 0, next: 0 }
    }

    /// Moves to byte `pos` of the file (forwards or backwards).
    pub fn seek_to(&mut self, pos: u64) {
        if pos < self.pos {
            self.next = 0;
        }
        self.pos = pos;
    }

    /// Up to `len` bytes at byte `pos` (fewer at the end of the file).
    pub fn read_range(&mut self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.seek_to(pos);
        let mut got = 0;
        while got < len {
            let n = self.read(&mut buf[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        buf.truncate(got);
        Ok(buf)
    }
}

impl Read for MappedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.size - self.pos);
        while self.runs.get(self.next).is_some_and(|r| r.end <= self.pos) {
            self.next += 1;
        }
        let n = match self.runs.get(self.next) {
            Some(r) if r.start <= self.pos => {
                let n = want.min(r.end - self.pos) as usize;
                if r.unwritten {
                    buf[..n].fill(0);
                } else {
                    let at = r.at.map_err(|(physical, len)| {
                        corrupt(format!(
                            "unreadable: extent at block {physical} of {len} blocks runs past the end of the filesystem ({} blocks)",
                            self.fs_blocks
                        ))
                    })?;
                    // at + (pos - start) stays within the filesystem, which
                    // the check above bounds.
                    self.dev.read_exact_at(at + (self.pos - r.start), &mut buf[..n])?;
                }
                n
            }
            // In a hole: zeros up to the next extent or the end of file.
            other => {
                let hole_end = other.map_or(self.size, |r| r.start).min(self.size);
                let n = want.min(hole_end - self.pos) as usize;
                buf[..n].fill(0);
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Vec<u8> {
        // 16 blocks of 4 bytes: block b holds the byte b + 1 four times.
        (0..16u8).flat_map(|b| [b + 1; 4]).collect()
    }

    fn read_all(r: &mut MappedReader) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        // Odd reads: runs and holes must be crossed mid-buffer.
        let mut buf = [0u8; 3];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    fn ext(logical: u64, physical: u64, len: u64, unwritten: bool) -> Extent {
        Extent { logical, physical, len, unwritten }
    }

    #[test]
    fn runs_holes_unwritten_and_the_size() {
        let d = dev();
        let extents = vec![ext(0, 2, 1, false), ext(2, 5, 2, false), ext(4, 9, 1, true)];
        let mut r = MappedReader::new(&d, 4, 16, extents, 26);
        let want = [&[3u8; 4][..], &[0; 4], &[6; 4], &[7; 4], &[0; 4], &[0; 6]].concat();
        assert_eq!(read_all(&mut r).unwrap(), want);
        assert_eq!(r.read_range(9, 6).unwrap(), [6, 6, 6, 7, 7, 7]);
        assert_eq!(r.read_range(1, 2).unwrap(), [3, 3]);
        assert_eq!(r.read_range(24, 10).unwrap(), [0, 0], "the size ends the file");
    }

    #[test]
    fn an_extent_past_the_end_fails_only_the_reads_that_reach_it() {
        let d = dev();
        let mut r = MappedReader::new(&d, 4, 16, vec![ext(0, 1, 1, false), ext(1, 15, 2, false)], 12);
        let mut buf = [0u8; 4];
        assert_eq!(r.read(&mut buf).unwrap(), 4);
        assert_eq!(buf, [2; 4]);
        let e = r.read(&mut buf).unwrap_err();
        assert!(e.to_string().contains("extent at block 15 of 2 blocks runs past the end of the filesystem (16 blocks)"), "{e}");
    }

    #[test]
    fn overflowing_extents_are_errors_or_the_end_never_a_panic() {
        let d = dev();
        let huge = vec![ext(1, u64::MAX, 2, false), ext(u64::MAX - 1, 0, 4, false)];
        let mut r = MappedReader::new(&d, 4, 16, huge, u64::MAX);
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).unwrap(), 4, "a hole up to the second extent");
        assert!(r.read(&mut buf).is_err());
        r.seek_to(u64::MAX - 2);
        assert!(r.read(&mut buf).is_ok());
    }
}
