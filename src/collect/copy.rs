//! Copying one file out of the evidence: streamed, hashed while copied,
//! created exclusively (never overwriting, never through a symlink), with the
//! original modification and access times.

use super::claims::Claims;
use super::outpath;
use crate::fs::{FileReader, Metadata};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const BUF: usize = 1 << 20;
/// A file name is tried with at most this many duplicate suffixes.
const MAX_DUPLICATES: u32 = 100_000;

pub struct Copied {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    pub md5: Option<String>,
    /// Set when reading stopped early: what was read is kept, this says why
    /// and which bytes are missing. Never padded: the copy ends there.
    pub partial: Option<String>,
    /// Set when the file is larger than `CopyOptions::max_size`: only the
    /// first `max_size` bytes were copied (and hashed).
    pub truncated: Option<String>,
    /// With a [`Prefix`] to compare: the hashes of the copy's first
    /// `Prefix::len` bytes, when they equal the prefix reader's.
    pub prefix: Option<Hashes>,
}

pub struct Hashes {
    pub sha256: String,
    pub md5: Option<String>,
}

/// Another version of the file (as it lies on disk, before a journal
/// replay) read alongside the copy: does the copy begin with its `len`
/// bytes? Costs one read of them, no write, no hash.
pub struct Prefix<'a> {
    reader: FileReader<'a>,
    len: u64,
    buf: Vec<u8>,
}

impl<'a> Prefix<'a> {
    pub fn new(reader: FileReader<'a>, len: u64) -> Prefix<'a> {
        Prefix { reader, len, buf: Vec::new() }
    }

    /// Whether `chunk`, the copy's bytes from `at`, matches the prefix
    /// where they overlap (a read error counts as a difference).
    fn matches(&mut self, at: u64, chunk: &[u8]) -> bool {
        let n = usize::try_from(self.len.saturating_sub(at)).unwrap_or(usize::MAX).min(chunk.len());
        if n == 0 {
            return true;
        }
        self.buf.resize(n, 0);
        self.reader.read_exact(&mut self.buf).is_ok() && self.buf[..] == chunk[..n]
    }
}

/// Reads a file and another version of it side by side (a shadow copy's
/// and the live volume's): their hashes when every byte and the length are
/// the same, None at the first difference (usually within the first
/// chunk: an event log's header changes with every record). Nothing is
/// written.
pub fn identical(mut a: FileReader<'_>, mut b: FileReader<'_>, md5: bool, progress: &dyn Fn(u64)) -> io::Result<Option<Hashes>> {
    let mut sha = Sha256::new();
    let mut md5 = md5.then(Md5::new);
    let (mut x, mut y) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let n = crate::util::read_full(&mut a, &mut x)?;
        let m = crate::util::read_full(&mut b, &mut y)?;
        if n != m || x[..n] != y[..n] {
            return Ok(None);
        }
        if n == 0 {
            return Ok(Some(Hashes { sha256: hex(&sha.finalize()), md5: md5.map(|m| hex(&m.finalize())) }));
        }
        sha.update(&x[..n]);
        if let Some(m) = md5.as_mut() {
            m.update(&x[..n]);
        }
        progress(n as u64);
    }
}

/// How files are copied.
#[derive(Clone, Copy)]
pub struct CopyOptions<'a> {
    pub md5: bool,
    /// At most this many bytes of one file are copied (`--max-file-size`).
    pub max_size: u64,
    /// The run's claim log, where each name taken is written down.
    pub claims: Option<&'a Claims>,
}

/// Directories already created (or checked) by this run.
#[derive(Default)]
pub struct DirCache(Mutex<HashSet<PathBuf>>);

impl DirCache {
    /// Creates `base/comps…`, refusing to pass through anything that is not a
    /// real directory (a symlink planted in the case folder, a file).
    pub fn ensure(&self, base: &Path, comps: &[String]) -> io::Result<PathBuf> {
        let mut p = base.to_path_buf();
        for c in comps {
            p.push(c);
            if self.0.lock().unwrap_or_else(|e| e.into_inner()).contains(&p) {
                continue;
            }
            match fs::create_dir(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !fs::symlink_metadata(&p)?.file_type().is_dir() {
                        return Err(io::Error::other(format!("{} exists in the case folder and is not a directory", p.display())));
                    }
                }
                Err(e) => return Err(e),
            }
            self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(p.clone());
        }
        Ok(p)
    }
}

/// Creates `dir/name`, or `dir/name__2`… when taken. Never follows a
/// symlink, never truncates an existing file: `O_EXCL` makes the name this
/// process's alone even when other processes (on this machine or, over
/// NFS, on others) create files in the same folder at once. Each name is
/// written down in `claims` before it is tried and once it is taken.
pub fn create_unique(dir: &Path, name: &str, claims: Option<&Claims>) -> io::Result<(File, PathBuf)> {
    for n in 1..=MAX_DUPLICATES {
        let candidate = if n == 1 { name.to_string() } else { outpath::duplicate(name, n) };
        let p = dir.join(&candidate);
        if let Some(c) = claims {
            c.note("try", &p)?;
        }
        match OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_NOFOLLOW).open(&p) {
            Ok(f) => {
                if let Some(c) = claims
                    && let Err(e) = c.note("got", &p)
                {
                    let _ = fs::remove_file(&p);
                    return Err(e);
                }
                return Ok((f, p));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!("more than {MAX_DUPLICATES} files named {name} in one folder")))
}

/// Copies `reader` (a file, or one of its streams) to a new file in `dir`.
pub fn copy_file(
    reader: FileReader<'_>,
    meta: &Metadata,
    dir: &Path,
    name: &str,
    opts: CopyOptions,
    progress: &dyn Fn(u64),
) -> io::Result<Copied> {
    copy_checking(reader, meta, dir, name, opts, progress, None, None)
}

/// [`copy_file`], also comparing the copy's first bytes with `prefix`, and
/// reading the times of a text log's lines into `lines` on the way.
#[allow(clippy::too_many_arguments)]
pub fn copy_checking(
    mut reader: FileReader<'_>,
    meta: &Metadata,
    dir: &Path,
    name: &str,
    opts: CopyOptions,
    progress: &dyn Fn(u64),
    mut prefix: Option<Prefix<'_>>,
    mut lines: Option<&mut super::textlog::LineHours>,
) -> io::Result<Copied> {
    let (mut out, path) = create_unique(dir, name, opts.claims)?;
    let mut sha = Sha256::new();
    let mut md5 = opts.md5.then(Md5::new);
    let mut buf = vec![0u8; BUF.min(meta.size.max(1) as usize).max(64 << 10)];
    let mut total = 0u64;
    let mut partial = None;
    let missing = |from: u64| format!("bytes {from}-{} missing", meta.size);
    let mut prefix_hashes = None;
    let snapshot = |sha: &Sha256, md5: &Option<Md5>| Hashes {
        sha256: hex(&sha.clone().finalize()),
        md5: md5.as_ref().map(|m| hex(&m.clone().finalize())),
    };
    if prefix.as_ref().is_some_and(|p| p.len == 0) {
        prefix_hashes = Some(snapshot(&sha, &md5));
        prefix = None;
    }
    while total < opts.max_size {
        let want = buf.len().min(usize::try_from(opts.max_size - total).unwrap_or(usize::MAX));
        let n = match reader.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                partial = Some(format!("read error at byte {total} of {} ({}): {e}", meta.size, missing(total)));
                break;
            }
        };
        let chunk = &buf[..n];
        // Hashed in two parts where the prefix ends, to keep its hashes.
        let mut split = 0;
        if let Some(p) = prefix.as_mut() {
            if !p.matches(total, chunk) {
                prefix = None;
            } else if p.len <= total + n as u64 {
                split = (p.len - total) as usize;
                sha.update(&chunk[..split]);
                if let Some(m) = md5.as_mut() {
                    m.update(&chunk[..split]);
                }
                prefix_hashes = Some(snapshot(&sha, &md5));
                prefix = None;
            }
        }
        sha.update(&chunk[split..]);
        if let Some(m) = md5.as_mut() {
            m.update(&chunk[split..]);
        }
        if let Some(l) = lines.as_deref_mut() {
            l.feed(chunk);
        }
        // Holes stay holes: a 100 GiB sparse log must not take 100 GiB.
        if is_zero(chunk) {
            out.seek(SeekFrom::Current(n as i64))?;
        } else {
            out.write_all(chunk)?;
        }
        total += n as u64;
        progress(n as u64);
    }
    if let Some(l) = lines {
        l.finish();
    }
    let truncated = (partial.is_none() && total == opts.max_size && meta.size > total)
        .then(|| format!("only the first {total} of {} bytes copied (--max-file-size); the hashes are of that part", meta.size));
    if partial.is_none() && truncated.is_none() && total != meta.size {
        let end = if total < meta.size { missing(total) } else { format!("{} more than its size", total - meta.size) };
        partial = Some(format!("read {total} bytes but the file size is {} ({end})", meta.size));
    }
    out.set_len(total)?;
    out.flush()?;
    let ft = |t: Option<crate::util::time::Timestamp>| t.map(|t| filetime::FileTime::from_unix_time(t.secs, t.nanos));
    if let (Some(a), Some(m)) = (ft(meta.atime), ft(meta.mtime)) {
        filetime::set_file_handle_times(&out, Some(a), Some(m))?;
    } else if let Some(m) = ft(meta.mtime) {
        filetime::set_file_handle_times(&out, None, Some(m))?;
    }
    Ok(Copied {
        path,
        bytes: total,
        sha256: hex(&sha.finalize()),
        md5: md5.map(|m| hex(&m.finalize())),
        prefix: prefix_hashes,
        partial,
        truncated,
    })
}

/// Lower-case hex, as `sha256sum` prints digests.
pub fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `b` is all zeros, looked at 4 KiB at a time: a chunk of a log
/// is then told from a hole by its first page, not by a pass over it all.
fn is_zero(b: &[u8]) -> bool {
    b.chunks(4096).all(|page| {
        let words = page.chunks_exact(8);
        let tail = words.remainder();
        words.fold(0u64, |acc, w| acc | u64::from_ne_bytes(w.try_into().unwrap_or_default())) == 0 && tail.iter().all(|&x| x == 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(size: u64) -> Metadata {
        Metadata { size, ..Metadata::default() }
    }

    /// Copies `data` while comparing it with `disk`: the prefix's sha256.
    fn prefix_of(data: &[u8], disk: &[u8]) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let opts = CopyOptions { md5: true, max_size: u64::MAX, claims: None };
        let check = Prefix::new(Box::new(io::Cursor::new(disk.to_vec())), disk.len() as u64);
        let done = copy_checking(
            Box::new(io::Cursor::new(data.to_vec())),
            &meta(data.len() as u64),
            dir.path(),
            "f",
            opts,
            &|_| {},
            Some(check),
            None,
        )
        .unwrap();
        assert_eq!(done.sha256, hex(&Sha256::digest(data)), "the copy's own hash is unaffected");
        assert_eq!(std::fs::read(&done.path).unwrap(), data);
        done.prefix.map(|h| {
            assert_eq!(h.md5, Some(hex(&Md5::digest(disk))));
            h.sha256
        })
    }

    #[test]
    fn a_grown_file_keeps_the_hash_of_its_first_bytes() {
        let data: Vec<u8> = (0..3 * BUF + 17).map(|i| (i * 7 % 251) as u8).collect();
        for n in [0, 1, 4095, BUF - 1, BUF, BUF + 1, 2 * BUF + 5, data.len()] {
            let want = hex(&Sha256::digest(&data[..n]));
            assert_eq!(prefix_of(&data, &data[..n]), Some(want), "prefix of {n} bytes");
        }
        let mut other = data[..BUF + 10].to_vec();
        other[BUF + 3] ^= 1;
        assert_eq!(prefix_of(&data, &other), None, "a byte differs past the first buffer");
        assert_eq!(prefix_of(&data[..100], &data[..200]), None, "longer than the copy");
        assert_eq!(prefix_of(b"", b""), Some(hex(&Sha256::digest(b""))));
    }
}
