//! A raw (dd) image in one file, read with `pread`: no shared seek position.

use super::ReadAt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub struct RawFile {
    file: File,
    len: u64,
}

impl RawFile {
    /// Opens read-only: evidence is never opened for writing.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(RawFile { file, len })
    }

    pub fn from_file(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(RawFile { file, len })
    }
}

impl ReadAt for RawFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.len - offset) as usize;
        let mut done = 0;
        // pread may return short counts (signals, network filesystems).
        while done < want {
            match self.file.read_at(&mut buf[done..want], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
    fn len(&self) -> u64 {
        self.len
    }
}
