//! Files written by many processes at once: an exclusive lock held while a
//! shared file is rebuilt, and a write that readers see whole or not at all.
//!
//! Locks are `flock(2)` on a lock file: released by the kernel when the
//! process ends, however it ends (a SIGKILL included), so a killed worker
//! never leaves a case locked. On NFS the Linux client turns `flock` into
//! POSIX byte-range locks the server arbitrates (NLM or NFSv4), so workers
//! on several machines exclude each other too.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// An exclusive lock on a file, held until dropped.
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Waits for the exclusive lock on `path` (created if missing).
    pub fn exclusive(path: &Path) -> io::Result<Lock> {
        let file = open(path)?;
        loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Lock { _file: file });
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(io::Error::new(e.kind(), format!("cannot lock {}: {e}", path.display())));
            }
        }
    }

    /// The lock on `path` if no other process holds it, else None.
    pub fn try_exclusive(path: &Path) -> io::Result<Option<Lock>> {
        let file = open(path)?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Some(Lock { _file: file }));
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock { Ok(None) } else { Err(e) }
    }
}

/// The lock file, made if missing, never through a symlink.
fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).custom_flags(libc::O_NOFOLLOW).open(path)
}

/// Writes `path` whole: into a temporary file beside it, then renamed over
/// it, so a reader (or a process killed halfway) never sees half of it.
/// Not synced to the disk: what it guards against is other processes and
/// killed ones, not a power cut (the case-level files are rebuilt by
/// `snapsift report`), and an fsync per file costs more than a small job.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`], the content streamed by `fill`.
pub fn write_atomic_with(path: &Path, fill: impl FnOnce(&mut io::BufWriter<File>) -> io::Result<()>) -> io::Result<()> {
    let tmp = temp_beside(path);
    let result = (|| {
        let f = OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_NOFOLLOW).open(&tmp)?;
        let mut w = io::BufWriter::with_capacity(1 << 20, f);
        fill(&mut w)?;
        drop(w.into_inner().map_err(|e| e.into_error())?);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `.<name>.<pid>-<nanoseconds>-<n>.tmp` beside `path`: unique to this
/// process and call, and (by the clock) to processes on other machines
/// sharing the folder.
pub fn temp_beside(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    path.with_file_name(format!(".{name}.{}-{nanos}-{n}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_excludes_and_an_atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.lock");
        let held = Lock::exclusive(&p).unwrap();
        assert!(Lock::try_exclusive(&p).unwrap().is_none(), "flock excludes another open file description");
        drop(held);
        assert!(Lock::try_exclusive(&p).unwrap().is_some());
        let f = d.path().join("f.txt");
        write_atomic(&f, b"one").unwrap();
        write_atomic(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2, "no temporary file left");
    }
}
