//! Evidence layer: disk-image container formats behind one positional-read
//! trait. Everything above reads bytes only through [`ReadAt`], so many
//! threads can share one image without locks or seek positions.
//!
//! Formats are detected by content (magic numbers), never by extension alone;
//! the file name is only used to find the other segments of a split image.
// A parser of untrusted bytes: no panicking shortcuts (see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

mod archive;
mod detect;
mod error;
mod ewf;
mod mapped;
mod qcow2;
mod raw;
pub mod remote;
mod slice;
mod split;
mod vhd;
mod vhdx;
mod vhdx_log;
mod vmdk;

pub(crate) use detect::OpenChained;
pub use detect::{Evidence, OpenOptions, Progress, open};
pub use error::{OpenError, OpenErrorKind, Unsupported};
pub use raw::RawFile;
pub use slice::{Slice, SliceReader};
pub use split::SplitRaw;

use std::io;
use std::sync::Arc;

/// Positional, shared, read-only access to bytes.
pub trait ReadAt: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`. Returns the number read;
    /// fewer than asked only at the end of the data (0 past it).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// Total length in bytes.
    fn len(&self) -> u64;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` completely or fails with `UnexpectedEof` naming where the
    /// data ends, so a truncated image gives a message a responder understands.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.read_at(offset + done as u64, &mut buf[done..])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("truncated: wanted {} bytes at offset {}, data ends at {}", buf.len(), offset, self.len()),
                ));
            }
            done += n;
        }
        Ok(())
    }
}

/// The shared handle every layer passes around.
pub type Source = Arc<dyn ReadAt>;

/// One file of a piece of evidence, read-only: a local file or block
/// device, or an `https://` location read in place (remote.rs).
pub(crate) fn open_file(path: &std::path::Path) -> io::Result<Source> {
    if remote::is_url(path) {
        return Ok(remote::open(path)?);
    }
    Ok(Arc::new(RawFile::open(path)?))
}

/// What a disk format's `open` gives: the virtual disk, how to name its
/// format, every file it read (segments, extents, parents), and what the
/// run should say about it (`warnings`: damage worked around; `notes`:
/// case metadata such as an E01's examiner and stored hashes).
pub struct Opened {
    pub source: Source,
    pub format: String,
    pub files: Vec<std::path::PathBuf>,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
}

/// How long a chain of parents or backing files may be (a longer one is a
/// loop, or forged): every differencing format checks it where it opens
/// its parent.
pub const MAX_CHAIN: u32 = 32;

/// Checks `depth` against [`MAX_CHAIN`]: `what` is the chain ("VHD parent").
pub fn check_chain(depth: u32, what: &str, path: &std::path::Path) -> anyhow::Result<()> {
    if depth > MAX_CHAIN {
        anyhow::bail!("{what} chain deeper than {MAX_CHAIN} (a loop?) at {}", path.display());
    }
    Ok(())
}

/// The error for a parent or backing file that is not beside its child:
/// `Missing` (it may yet be copied), with `why` naming what to put where.
pub(crate) fn missing_parent(why: String) -> anyhow::Error {
    io::Error::new(io::ErrorKind::NotFound, why).into()
}

impl<T: ReadAt + ?Sized> ReadAt for Arc<T> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }
    fn len(&self) -> u64 {
        (**self).len()
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Ok(start) = usize::try_from(offset) else { return Ok(0) };
        let Some(rest) = self.get(start..) else { return Ok(0) };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.as_slice().read_at(offset, buf)
    }
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
}
