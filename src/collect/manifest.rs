//! The per-run manifest: one CSV row per file considered.
// Reads untrusted bytes: no panicking shortcuts (see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
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
    let mut rows: Vec<Vec<String>> = Vec::new();
    let (mut row, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => field.push(c),
        }
    }
    let Some(header) = rows.first().cloned() else { return Vec::new() };
    rows.into_iter().skip(1).map(|r| header.iter().cloned().zip(r).collect()).collect()
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
