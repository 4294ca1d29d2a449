//! `--decompress`: a plain copy beside each compressed log
//! (`auth.log.2.gz` → `auth.log.2`; `.gz`, `.xz`, `.zst`, `.bz2`), so plain
//! `grep -r` and SIEM file inputs see the text. The compressed original is
//! always kept. Bounded: a small archive that inflates without end (a gzip
//! bomb named like a rotated log) is stopped and reported, its partial copy
//! removed.
// Reads untrusted bytes: no panicking shortcuts (see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

use super::copy::create_unique;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Inflate to at most this many times the compressed size…
const MAX_RATIO: u64 = 100;
/// …but always allow this much (small files compress extremely well)…
const MIN_ALLOWANCE: u64 = 64 << 20;
/// …and never more than this.
const MAX_OUTPUT: u64 = 4 << 30;

pub enum Outcome {
    Written {
        path: PathBuf,
        bytes: u64,
        sha256: String,
    },
    /// Stopped at the limit (or the stream was damaged): nothing kept.
    Refused(String),
}

/// The name without its compression suffix, if it has one we read.
pub fn plain_name(name: &str) -> Option<&str> {
    let lower = name.to_ascii_lowercase();
    [".gz", ".xz", ".zst", ".bz2"].iter().find(|e| lower.ends_with(*e) && name.len() > e.len()).map(|e| &name[..name.len() - e.len()])
}

/// A writer that hashes and refuses to pass `limit` bytes.
struct Bounded<W> {
    inner: W,
    written: u64,
    limit: u64,
    sha: Sha256,
}

impl<W: Write> Write for Bounded<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.written + b.len() as u64 > self.limit {
            return Err(io::Error::other(format!("inflates past {} bytes", self.limit)));
        }
        let n = self.inner.write(b)?;
        self.sha.update(&b[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub fn decompress(src: &Path, name: &str, claims: Option<&super::claims::Claims>) -> io::Result<Outcome> {
    let Some(plain) = plain_name(name) else {
        return Ok(Outcome::Refused("not a compressed file".into()));
    };
    let packed = File::open(src)?;
    let size = packed.metadata()?.len();
    let limit = size.saturating_mul(MAX_RATIO).clamp(MIN_ALLOWANCE, MAX_OUTPUT);
    let dir = src.parent().unwrap_or(Path::new("."));
    let (out, path) = create_unique(dir, plain, claims)?;
    let mut w = Bounded { inner: BufWriter::with_capacity(1 << 20, out), written: 0, limit, sha: Sha256::new() };
    let mut r = BufReader::with_capacity(1 << 20, packed);
    let lower = name.to_ascii_lowercase();
    let result: io::Result<()> = if lower.ends_with(".gz") {
        io::copy(&mut flate2::read::MultiGzDecoder::new(r), &mut w).map(|_| ())
    } else if lower.ends_with(".zst") {
        ruzstd::decoding::StreamingDecoder::new(&mut r)
            .map_err(|e| io::Error::other(e.to_string()))
            .and_then(|mut d| io::copy(&mut d, &mut w).map(|_| ()))
    } else if lower.ends_with(".bz2") {
        io::copy(&mut bzip2::read::MultiBzDecoder::new(r), &mut w).map(|_| ())
    } else {
        lzma_rs::xz_decompress(&mut r, &mut w).map_err(|e| match e {
            lzma_rs::error::Error::IoError(e) => e,
            other => io::Error::other(format!("{other:?}")),
        })
    };
    let flushed = result.and_then(|_| w.flush());
    match flushed {
        Ok(()) => {
            let sha256 = super::copy::hex(&w.sha.finalize());
            Ok(Outcome::Written { path, bytes: w.written, sha256 })
        }
        Err(e) => {
            drop(w);
            std::fs::remove_file(&path)?;
            Ok(Outcome::Refused(format!("not decompressed ({e}); the compressed original is kept")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names() {
        assert_eq!(plain_name("auth.log.2.gz"), Some("auth.log.2"));
        assert_eq!(plain_name("x.LOG.XZ"), Some("x.LOG"));
        assert_eq!(plain_name(".gz"), None);
        assert_eq!(plain_name("access.log"), None);
    }
}
