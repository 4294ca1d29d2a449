//! The per-run manifest: one CSV row per file considered.
// Reads untrusted bytes: no panicking shortcuts (see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

pub const COLUMNS: &[&str] = &[
    "evidence",
    "volume",
    "filesystem",
    "layer",
    "view",
    "journal",
    "inode",
    "target",
    "image_path",
    "output_path",
    "type",
    "size",
    "compression",
    "sha256",
    "md5",
    "mtime",
    "atime",
    "ctime",
    "btime",
    "status",
    "reason",
];

/// Reads a manifest back (quoted fields, `""`): rows as column → value.
pub fn parse(text: &str) -> Vec<BTreeMap<String, String>> {
    records(text.as_bytes()).map_while(Result::ok).collect()
}

/// Reads a manifest back one record at a time: memory does not grow with
/// the manifest (a case of hundreds of runs, each of thousands of rows).
pub fn records<R: BufRead>(r: R) -> Records<R> {
    Records { r, header: None, line: Vec::new() }
}

pub struct Records<R> {
    r: R,
    header: Option<Vec<String>>,
    line: Vec<u8>,
}

/// The next record's fields: lines are joined while a quoted field is open
/// (a line break in a name); `""` is a quote. A last record without its
/// line break (a run killed while writing it) is not one.
fn fields(r: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<Option<Vec<String>>> {
    let (mut row, mut field, mut quoted) = (Vec::new(), Vec::new(), false);
    loop {
        line.clear();
        if r.read_until(b'\n', line)? == 0 {
            return Ok(None);
        }
        let mut bytes = line.iter().copied().peekable();
        while let Some(c) = bytes.next() {
            match (c, quoted) {
                (b'"', true) if bytes.peek() == Some(&b'"') => {
                    bytes.next();
                    field.push(b'"');
                }
                (b'"', true) => quoted = false,
                (b'"', false) if field.is_empty() => quoted = true,
                (b',', false) => row.push(String::from_utf8_lossy(&std::mem::take(&mut field)).into_owned()),
                (b'\n', false) => {
                    row.push(String::from_utf8_lossy(&field).into_owned());
                    return Ok(Some(row));
                }
                (c, _) => field.push(c),
            }
        }
    }
}

impl<R: BufRead> Iterator for Records<R> {
    type Item = io::Result<BTreeMap<String, String>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.header.is_none() {
            match fields(&mut self.r, &mut self.line) {
                Ok(Some(h)) => self.header = Some(h),
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
        let header = self.header.as_ref()?;
        match fields(&mut self.r, &mut self.line) {
            Ok(Some(row)) => Some(Ok(header.iter().cloned().zip(row).collect())),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

#[derive(Default, Clone)]
pub struct Row {
    pub evidence: String,
    pub volume: String,
    pub filesystem: String,
    /// The container layer a file came from (union views only).
    pub layer: String,
    /// Which view of a volume whose journal needed replay the row comes
    /// from: `replayed`, `before-journal` (on disk, under `_before-journal/`)
    /// or `on-disk` (not replayed); empty for a volume that needed none.
    pub view: &'static str,
    /// What the replay did to the path: `unchanged`, `changed`, `appended`,
    /// `new`, `removed` (empty where nothing was replayed).
    pub journal: &'static str,
    pub inode: String,
    pub target: String,
    pub image_path: String,
    pub output_path: String,
    pub kind: String,
    pub size: String,
    /// How the filesystem stored the content (NTFS: `lznt1`, `wof-lzx`,
    /// `wof-xpress4k`…); empty when stored plainly.
    pub compression: &'static str,
    pub sha256: String,
    pub md5: String,
    pub mtime: String,
    pub atime: String,
    pub ctime: String,
    pub btime: String,
    pub status: Status,
    pub reason: String,
}

/// A row's `status`: what became of the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Status {
    /// Copied whole.
    #[default]
    Ok,
    /// Cut short by a read error (`reason` gives the missing range).
    Partial,
    /// Cut at `--max-file-size`.
    Truncated,
    Error,
    /// A symbolic link, listed with its target, not followed.
    Symlink,
    /// Not copied (a limit, an excluded kind, `--max-output`).
    Skipped,
    /// An on-disk version that is the first `size` bytes of `output_path`.
    Prefix,
    /// A shadow copy's file with the same bytes as the live volume's:
    /// listed with its hash, not written again.
    Identical,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Partial => "partial",
            Status::Truncated => "truncated",
            Status::Error => "error",
            Status::Symlink => "symlink",
            Status::Skipped => "skipped",
            Status::Prefix => "prefix",
            Status::Identical => "identical",
        }
    }
}

/// Rows are written as they come (a crash leaves a usable manifest of what
/// was done), from many threads.
pub struct Manifest {
    out: Mutex<BufWriter<File>>,
}

/// One CSV field, quoted when it must be.
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

impl Manifest {
    pub fn create(path: &Path) -> io::Result<Manifest> {
        let f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
        let mut w = BufWriter::new(f);
        writeln!(w, "{}", COLUMNS.join(","))?;
        Ok(Manifest { out: Mutex::new(w) })
    }

    pub fn write(&self, r: &Row) -> io::Result<()> {
        let cols: [&str; 19] = [
            &r.evidence,
            &r.volume,
            &r.filesystem,
            &r.layer,
            r.view,
            r.journal,
            &r.inode,
            &r.target,
            &r.image_path,
            &r.output_path,
            &r.kind,
            &r.size,
            r.compression,
            &r.sha256,
            &r.md5,
            &r.mtime,
            &r.atime,
            &r.ctime,
            &r.btime,
        ];
        let mut line: Vec<String> = cols.iter().map(|c| field(c)).collect();
        line.push(r.status.as_str().to_string());
        line.push(field(&r.reason));
        let mut w = self.out.lock().unwrap_or_else(|p| p.into_inner());
        writeln!(w, "{}", line.join(","))
    }

    pub fn finish(&self) -> io::Result<()> {
        self.out.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_what_field_wrote_one_at_a_time() {
        let odd = "a,\"b\"\nc";
        let text = format!("x,y\n1,{}\n2,plain\n3,torn", field(odd));
        let rows: Vec<_> = records(text.as_bytes()).map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2, "the last record lacks its line break: a run killed while writing it");
        assert_eq!(rows[0]["x"], "1");
        assert_eq!(rows[0]["y"], odd);
        assert_eq!(rows[1]["y"], "plain");
        assert_eq!(parse(&text), rows);
        assert!(parse("").is_empty());
    }
}
