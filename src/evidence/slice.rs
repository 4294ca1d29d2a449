//! A window onto another source: a partition of a disk, a disk inside a
//! container. Reads never cross the window's end.

use super::{ReadAt, Source};
use std::io;

pub struct Slice {
    inner: Source,
    start: u64,
    len: u64,
}

impl Slice {
    /// The window `[start, start+len)`. It may extend past the end of
    /// `inner` (a partition table describing more than a truncated image
    /// holds): reads there come back short, and `read_exact_at` says where
    /// the image ends.
    pub fn new(inner: Source, start: u64, len: u64) -> Self {
        Slice { inner, start, len }
    }
}

impl ReadAt for Slice {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.len - offset) as usize;
        let Some(abs) = self.start.checked_add(offset) else { return Ok(0) };
        self.inner.read_at(abs, &mut buf[..want])
    }
    fn len(&self) -> u64 {
        self.len
    }
}

/// A window read front to back as a stream (a file stored contiguously in
/// an archive). A window that ends early is an error, not a short file.
pub struct SliceReader {
    slice: Slice,
    pos: u64,
}

impl Slice {
    pub fn reader(self) -> SliceReader {
        SliceReader { slice: self, pos: 0 }
    }
}

impl io::Read for SliceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.slice.len || buf.is_empty() {
            return Ok(0);
        }
        let n = self.slice.read_at(self.pos, buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("truncated: the data ends after {} of {} bytes", self.pos, self.slice.len),
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}
