//! The case's TSK body file (`<case>/snapsift/bodyfile.txt`, mactime
//! format 3.x): one line per extracted file or recorded link, appended to by
//! every run, so `mactime -b`, plaso and `snapsift timeline` can build a
//! timeline of everything in the case folder.
//!
//! `MD5|name|inode|mode|UID|GID|size|atime|mtime|ctime|crtime`; the name is
//! the file's place in the grep folder, `<host>/<path on the machine>`.

use crate::fs::{FileKind, Metadata};
use crate::util::time::Timestamp;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

pub struct BodyFile {
    out: Mutex<BufWriter<File>>,
}

/// `ls -l`-style mode with TSK's type prefix: `r/rrw-r--r--`.
fn mode_string(kind: FileKind, mode: u32) -> String {
    let t = match kind {
        FileKind::Dir => 'd',
        FileKind::Symlink => 'l',
        FileKind::CharDevice => 'c',
        FileKind::BlockDevice => 'b',
        FileKind::Fifo => 'p',
        FileKind::Socket => 'h',
        _ => 'r',
    };
    let bits: String = (0..9).map(|i| if mode & (0o400 >> i) != 0 { ['r', 'w', 'x'][i % 3] } else { '-' }).collect();
    format!("{t}/{t}{bits}")
}

impl BodyFile {
    pub fn open(path: &Path) -> io::Result<BodyFile> {
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(BodyFile { out: Mutex::new(BufWriter::new(f)) })
    }

    pub fn add(&self, name: &str, inode: u64, kind: FileKind, m: &Metadata, md5: &str) -> io::Result<()> {
        let secs = |t: Option<Timestamp>| t.map_or(0, |t| t.secs);
        // `|` separates fields: a name holding one is written as %7C.
        let name = name.replace('|', "%7C").replace('\n', "%0A");
        let line = format!(
            "{}|{name}|{inode}|{}|{}|{}|{}|{}|{}|{}|{}\n",
            if md5.is_empty() { "0" } else { md5 },
            mode_string(kind, m.mode),
            m.uid,
            m.gid,
            m.size,
            secs(m.atime),
            secs(m.mtime),
            secs(m.ctime),
            secs(m.btime),
        );
        self.out.lock().unwrap_or_else(|p| p.into_inner()).write_all(line.as_bytes())
    }

    pub fn finish(&self) -> io::Result<()> {
        self.out.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_look_like_tsk() {
        assert_eq!(mode_string(FileKind::File, 0o100644), "r/rrw-r--r--");
        assert_eq!(mode_string(FileKind::Symlink, 0o120777), "l/lrwxrwxrwx");
    }
}
