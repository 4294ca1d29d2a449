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
