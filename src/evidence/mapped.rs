//! The shared engine of block-mapped image formats (VHD, VHDX, VMDK, QCOW2).
//!
//! A format only answers "what is at virtual offset X, and for how many
//! bytes?" ([`Mapper::map`]); this module turns that into `read_at`: zeros,
//! a fall-through to the parent (backing) disk, a positional read from an
//! image file, or a decompressed grain. Compressed grains are kept in a
//! bounded cache, and a large read spanning many of them decompresses them
//! on all cores.

use super::{ReadAt, Source};
use crate::util::cache::Cache;
use crate::util::corrupt;
use rayon::prelude::*;
use std::io::{self, Read};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// RFC 1950 zlib stream (VMDK grains).
    Zlib,
    /// Raw RFC 1951 deflate (QCOW2 clusters).
    Deflate,
    Zstd,
}

/// What backs a run of virtual bytes.
pub enum Run<'a> {
    /// Reads as zeros (unallocated in a disk with no parent, or a zero block).
    Zero,
    /// Not in this image: read the parent (backing) disk, or zeros if none.
    Parent,
    /// Stored as is at `offset` in `file`.
    Data { file: &'a dyn ReadAt, offset: u64 },
    /// Part of a compressed grain: the grain's `len` compressed bytes are at
    /// `offset` in `file`; it inflates to `size` bytes, of which this run
    /// starts at `skip`.
    Compressed { file: &'a dyn ReadAt, offset: u64, len: usize, size: usize, skip: usize, codec: Codec },
}

pub trait Mapper: Send + Sync {
    /// Virtual disk size.
    fn size(&self) -> u64;
    /// The run at `offset` (< size) and its length in bytes (> 0).
    fn map(&self, offset: u64) -> io::Result<(Run<'_>, u64)>;
}

/// Compressed grains larger than this are refused (VMDK grains are 64 KiB,
/// QCOW2 clusters at most 2 MiB).
const MAX_GRAIN: usize = 4 << 20;
/// Decompressed grains kept: 256 × 64 KiB = 16 MiB for VMDK.
const CACHE_ENTRIES: usize = 256;

pub struct Mapped<M> {
    mapper: M,
    parent: Option<Source>,
    cache: Cache<u64, Vec<u8>>,
}

impl<M: Mapper> Mapped<M> {
    pub fn new(mapper: M, parent: Option<Source>) -> Self {
        Mapped { mapper, parent, cache: Cache::new(CACHE_ENTRIES) }
    }

    fn grain(&self, file: &dyn ReadAt, offset: u64, len: usize, size: usize, codec: Codec) -> io::Result<Arc<Vec<u8>>> {
        self.cache.get_or_try(offset, || {
            if len > MAX_GRAIN || size > MAX_GRAIN {
                return Err(corrupt(format!("compressed grain of {len} bytes at {offset} is implausibly large")));
            }
            let mut packed = vec![0u8; len];
            let got = file.read_at(offset, &mut packed)?;
            if got < len && codec != Codec::Deflate {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("truncated: compressed grain at {offset} ends past the end of the image"),
                ));
            }
            // QCOW2's length is an upper bound (sector-rounded): a short read
            // at the end of the file is fine if the stream itself is complete.
            packed.truncate(got);
            inflate(&packed, size, codec).map_err(|e| corrupt(format!("compressed grain at offset {offset} is damaged: {e}")))
        })
    }

    fn fill(&self, pos: u64, run: &Run<'_>, out: &mut [u8]) -> io::Result<()> {
        match run {
            Run::Zero => out.fill(0),
            Run::Parent => match &self.parent {
                None => out.fill(0),
                Some(p) => {
                    // A parent smaller than the child reads as zeros past its end.
                    let n = p.read_at(pos, out)?;
                    out[n..].fill(0);
                }
            },
            Run::Data { file, offset } => file.read_exact_at(*offset, out)?,
            Run::Compressed { file, offset, len, size, skip, codec } => {
                let g = self.grain(*file, *offset, *len, *size, *codec)?;
                let src = g
                    .get(*skip..*skip + out.len())
                    .ok_or_else(|| corrupt(format!("compressed grain at {offset} inflates to {} bytes, fewer than its size", g.len())))?;
                out.copy_from_slice(src);
            }
        }
        Ok(())
    }
}

/// Inflates one grain to at most `size` bytes (a short grain is padded with
/// zeros by the caller's bounds check failing, never silently).
fn inflate(packed: &[u8], size: usize, codec: Codec) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size);
    match codec {
        Codec::Zlib => {
            flate2::read::ZlibDecoder::new(packed).take(size as u64).read_to_end(&mut out)?;
        }
        Codec::Deflate => {
            flate2::read::DeflateDecoder::new(packed).take(size as u64).read_to_end(&mut out)?;
        }
        Codec::Zstd => {
            let mut d = ruzstd::decoding::StreamingDecoder::new(packed).map_err(io::Error::other)?;
            (&mut d).take(size as u64).read_to_end(&mut out)?;
        }
    }
    Ok(out)
}

impl<M: Mapper> ReadAt for Mapped<M> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.mapper.size();
        if offset >= size {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(size - offset) as usize;
        // Cut the request into runs first, so compressed grains can be
        // inflated in parallel.
        let mut pieces: Vec<(u64, Run<'_>, &mut [u8])> = Vec::new();
        let mut rest = &mut buf[..want];
        let mut pos = offset;
        while !rest.is_empty() {
            let (run, len) = self.mapper.map(pos)?;
            if len == 0 {
                return Err(corrupt(format!("image map returned an empty run at {pos}")));
            }
            let n = (len.min(rest.len() as u64)) as usize;
            let (head, tail) = rest.split_at_mut(n);
            pieces.push((pos, run, head));
            rest = tail;
            pos += n as u64;
        }
        let compressed = pieces.iter().filter(|p| matches!(p.1, Run::Compressed { .. })).count();
        if compressed >= 4 {
            pieces.into_par_iter().try_for_each(|(pos, run, out)| self.fill(pos, &run, out))?;
        } else {
            for (pos, run, out) in pieces {
                self.fill(pos, &run, out)?;
            }
        }
        Ok(want)
    }

    fn len(&self) -> u64 {
        self.mapper.size()
    }
}
