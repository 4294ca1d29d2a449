//! Positional reads of the journal file through a small block cache.
//!
//! journalctl maps the file; snapsift reads it with `pread` so memory stays
//! bounded whatever the file's size. An entry's objects are near each other
//! but its shared data objects (`_HOSTNAME=`, `_SYSTEMD_UNIT=`) are far back
//! in the file, hence a direct-mapped cache of 64 KiB blocks (16 MiB in
//! all) rather than one read-ahead window. A read past the end of the file
//! is an `UnexpectedEof`, never a short slice.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

const BLOCK: u64 = 64 * 1024;
const SLOTS: usize = 256;

struct Slot {
    block: u64,
    data: Vec<u8>,
}

pub(super) struct Reader {
    file: File,
    /// The file's length: nothing at or past it exists.
    pub len: u64,
    slots: Vec<Slot>,
    scratch: Vec<u8>,
    /// Bytes actually read from the file (for the benchmark's curiosity
    /// and the tests' bound on work).
    pub read_bytes: u64,
}

impl Reader {
    pub fn new(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        let slots = (0..SLOTS).map(|_| Slot { block: u64::MAX, data: Vec::new() }).collect();
        Ok(Reader { file, len, slots, scratch: Vec::new(), read_bytes: 0 })
    }

    /// `len` bytes at `off`, all of them or an error.
    pub fn get(&mut self, off: u64, len: usize) -> io::Result<&[u8]> {
        let end = off
            .checked_add(len as u64)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, format!("{len} bytes at {off:#x} are past the end of the file")))?;
        if len == 0 {
            return Ok(&[]);
        }
        let block = off / BLOCK;
        if (end - 1) / BLOCK != block {
            // Straddles two blocks or is larger than one: read it directly.
            self.scratch.clear();
            self.scratch.resize(len, 0);
            self.file.read_exact_at(&mut self.scratch, off)?;
            self.read_bytes += len as u64;
            return Ok(&self.scratch);
        }
        let slot_no = (block % SLOTS as u64) as usize;
        let file_len = self.len;
        let Some(slot) = self.slots.get_mut(slot_no) else { return Err(super::corrupt_at(off, "cache slot")) };
        if slot.block != block {
            let start = block * BLOCK;
            let n = (file_len - start).min(BLOCK) as usize;
            slot.block = u64::MAX;
            slot.data.resize(n, 0);
            self.file.read_exact_at(&mut slot.data, start)?;
            slot.block = block;
            self.read_bytes += n as u64;
        }
        let at = (off - block * BLOCK) as usize;
        slot.data.get(at..at + len).ok_or_else(|| super::corrupt_at(off, "cache block"))
    }
}
