//! A data object's payload, decompressed with a bound on the output.
//!
//! systemd compresses a data object's payload (`FIELD=value`) when it is
//! larger than 512 bytes: XZ (an .xz stream), LZ4 (systemd's own framing:
//! the decompressed size as a little-endian u64, then one LZ4 block) or
//! ZSTD (one frame), as the object's flags say (compress.c). Whatever a
//! stream claims, at most `cap` bytes come out: a bomb stops there.

use super::format::{OBJECT_COMPRESSED_LZ4, OBJECT_COMPRESSED_XZ, OBJECT_COMPRESSED_ZSTD};
use std::io::{self, Read, Write};

pub enum Failure {
    /// The payload decompresses (or claims to) to more than the cap.
    TooLarge,
    Corrupt(String),
}

/// Decompresses `src` (compressed as `algo`, one of the object flags) into
/// `out` (cleared first).
pub fn decompress(algo: u8, src: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<(), Failure> {
    out.clear();
    match algo {
        OBJECT_COMPRESSED_LZ4 => {
            let (size, block) = src.split_at_checked(8).ok_or_else(|| Failure::Corrupt("LZ4 payload shorter than its size".into()))?;
            let size = u64::from_le_bytes(size.try_into().unwrap_or([0; 8]));
            if size > cap as u64 {
                return Err(Failure::TooLarge);
            }
            out.resize(size as usize, 0);
            match lz4_flex::block::decompress_into(block, out) {
                Ok(n) if n == out.len() => Ok(()),
                Ok(n) => Err(Failure::Corrupt(format!("LZ4 block gives {n} bytes, not {size}"))),
                Err(e) => Err(Failure::Corrupt(format!("LZ4: {e}"))),
            }
        }
        OBJECT_COMPRESSED_ZSTD => {
            let mut input = src;
            let d = ruzstd::decoding::StreamingDecoder::new(&mut input).map_err(|e| Failure::Corrupt(format!("ZSTD: {e}")))?;
            let mut bounded = d.take(cap as u64 + 1);
            bounded.read_to_end(out).map_err(|e| Failure::Corrupt(format!("ZSTD: {e}")))?;
            if out.len() > cap { Err(Failure::TooLarge) } else { Ok(()) }
        }
        OBJECT_COMPRESSED_XZ => {
            let mut w = Bounded { out, cap, over: false };
            let mut input = src;
            let r = lzma_rs::xz_decompress(&mut input, &mut w);
            if w.over {
                return Err(Failure::TooLarge);
            }
            r.map_err(|e| Failure::Corrupt(format!("XZ: {e:?}")))
        }
        other => Err(Failure::Corrupt(format!("compression flags {other:#x}"))),
    }
}

/// A writer that refuses to grow past `cap` bytes.
struct Bounded<'a> {
    out: &'a mut Vec<u8>,
    cap: usize,
    over: bool,
}

impl Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.len() + buf.len() > self.cap {
            self.over = true;
            return Err(io::Error::other("decompressed field over the cap"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
