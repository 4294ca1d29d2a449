//! A raw (dd) image in one file, read with `pread`: no shared seek position.

use super::ReadAt;
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;

pub struct RawFile {
    file: File,
    len: u64,
}

impl RawFile {
    /// Opens read-only: evidence is never opened for writing. A regular
    /// file or a block device (an attached disk); anything else — a FIFO, a
    /// character device, a socket, which a forged VMDK extent or VHD parent
    /// name could point at — is refused, and opening one never blocks
    /// (O_NONBLOCK has no effect on reading files and disks).
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
        Self::from_file(file).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    pub fn from_file(mut file: File) -> io::Result<Self> {
        let t = file.metadata()?.file_type();
        let len = if t.is_file() {
            file.metadata()?.len()
        } else if t.is_block_device() {
            file.seek(SeekFrom::End(0))?
        } else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file or a block device"));
        };
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
