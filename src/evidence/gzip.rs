//! gzip-compressed raw images (`disk.raw.gz`, `disk.img.gz`).
//!
//! gzip cannot be read at random offsets, so the stream is inflated once into
//! a sparse temporary file (all-zero chunks become holes), which is unlinked
//! as soon as it is open: it disappears when snapsift exits, even on a crash.

use super::RawFile;
use flate2::read::MultiGzDecoder;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

const CHUNK: usize = 1 << 20;

/// Inflates `path` into an unlinked temporary file in `temp_dir`.
/// `progress(compressed_bytes_read)` is called as it goes.
pub fn inflate_to_temp(
    path: &Path,
    temp_dir: &Path,
    progress: &dyn Fn(u64),
) -> io::Result<RawFile> {
    let src = File::open(path)?;
    let counted = Counted { inner: src, read: 0 };
    let mut dec = MultiGzDecoder::new(io::BufReader::with_capacity(CHUNK, counted));
    std::fs::create_dir_all(temp_dir)?;
    let tmp_path = temp_dir.join(format!(".snapsift-inflate-{}.raw", std::process::id()));
    let mut out = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&tmp_path)?;
    std::fs::remove_file(&tmp_path)?;

    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = read_full(&mut dec, &mut buf).map_err(|e| {
            io::Error::new(e.kind(), format!("gzip stream damaged after {total} bytes: {e}"))
        })?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|&b| b == 0) {
            out.seek(SeekFrom::Current(n as i64))?;
        } else {
            out.write_all(&buf[..n])?;
        }
        total += n as u64;
        progress(dec.get_ref().get_ref().read);
    }
    out.set_len(total)?;
    RawFile::from_file(out)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

struct Counted<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}
