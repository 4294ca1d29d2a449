//! Which extracted files get a JSON-lines twin (`X.jsonl` beside `X`), read
//! by the converters in `crate::convert`: binary logs `grep` cannot read.
//! The twin is made from the copy in the case folder, never the evidence.
// Reads untrusted bytes: no panicking shortcuts (see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

use super::copy::{create_unique, hex};
use crate::convert::{self, Context, Converted};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A binary log format, known by the file's name as the machine wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// systemd journal: `*.journal`, and `*.journal~` left by an unclean
    /// shutdown.
    Journal,
    /// `wtmp`, `btmp`, `utmp` and rotated copies (`wtmp.1`, `btmp-20240601`).
    Utmp,
    /// `/var/log/lastlog`.
    Lastlog,
    /// `audit.log`, `audit.log.1` …
    Audit,
    /// wtmpdb's SQLite `wtmp.db`.
    WtmpDb,
    /// util-linux's SQLite `lastlog2.db`.
    Lastlog2,
}

impl Format {
    /// The format of a file named `name`; compressed rotations (`.gz`) are
    /// not converted (their plain copy from `--decompress` is read as text).
    pub fn of(name: &str) -> Option<Format> {
        let rotated = |base: &str| {
            name.strip_prefix(base).is_some_and(|rest| {
                rest.is_empty() || rest.strip_prefix(['.', '-']).is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            })
        };
        if name.ends_with(".journal") || name.ends_with(".journal~") {
            Some(Format::Journal)
        } else if rotated("wtmp") || rotated("btmp") || rotated("utmp") {
            Some(Format::Utmp)
        } else if name == "lastlog" {
            Some(Format::Lastlog)
        } else if rotated("audit.log") {
            Some(Format::Audit)
        } else if name == "wtmp.db" {
            Some(Format::WtmpDb)
        } else if name == "lastlog2.db" {
            Some(Format::Lastlog2)
        } else {
            None
        }
    }

    /// The manifest's `target` column for the twin.
    pub fn target(self) -> &'static str {
        match self {
            Format::Journal => "journal-json",
            Format::Utmp | Format::Lastlog | Format::WtmpDb | Format::Lastlog2 => "login-json",
            Format::Audit => "audit-json",
        }
    }

    /// What one line of the twin is, for the manifest's reason.
    pub fn unit(self) -> &'static str {
        match self {
            Format::Journal => "journal entries",
            Format::Utmp => "login records",
            Format::Lastlog | Format::Lastlog2 => "last logins",
            Format::Audit => "audit events",
            Format::WtmpDb => "logins",
        }
    }
}

/// A binary log by its name: an event log, or one of the [`Format`]s (what
/// has a `.jsonl` twin rather than lines of its own).
pub fn is_binary(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".evtx") || Format::of(name).is_some()
}

/// A written twin.
pub struct Twin {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    pub converted: Converted,
}

/// Writes `X.jsonl` beside the extracted `log` (never over an existing
/// file). `users` maps UIDs to names from the same host's `/etc/passwd`
/// (lastlog is indexed by UID). A file the converter refuses leaves no twin.
pub fn write_twin(
    log: &Path,
    format: Format,
    ctx: &Context,
    users: &HashMap<u32, String>,
    claims: Option<&super::claims::Claims>,
) -> io::Result<Twin> {
    let dir = log.parent().unwrap_or(Path::new("."));
    let name = format!("{}.jsonl", log.file_name().unwrap_or_default().to_string_lossy());
    let (file, path) = create_unique(dir, &name, claims)?;
    let mut out = Hashing { inner: BufWriter::with_capacity(1 << 20, file), sha: Sha256::new(), bytes: 0 };
    let done = match format {
        Format::Journal => convert::journal::convert(log, ctx, &mut out),
        Format::Utmp => convert::utmp::convert(log, ctx, &mut out),
        Format::Lastlog => convert::lastlog::convert(log, ctx, users, &mut out),
        Format::Audit => convert::audit::convert(log, ctx, &mut out),
        Format::WtmpDb => convert::logindb::convert_wtmpdb(log, ctx, &mut out),
        Format::Lastlog2 => convert::logindb::convert_lastlog2(log, ctx, &mut out),
    }
    .and_then(|c| out.flush().map(|()| c));
    match done {
        Ok(converted) => Ok(Twin { path, bytes: out.bytes, sha256: hex(&out.sha.finalize()), converted }),
        Err(e) => {
            drop(out);
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    }
}

/// The manifest's reason for a twin: what was converted, the time range,
/// and what could not be read.
pub fn reason(format: Format, c: &Converted, from: &str) -> String {
    let mut r = format!("{} {} converted from {from}", c.entries, format.unit());
    if let (Some(f), Some(l)) = (&c.first, &c.last) {
        r += &format!("; from {f} to {l}");
    }
    if let Some(p) = &c.problem {
        r += &format!("; {p}");
    }
    r
}

/// Hashes what passes through, and counts it.
struct Hashing<W: Write> {
    inner: W,
    sha: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_name() {
        for (name, f) in [
            ("system.journal", Some(Format::Journal)),
            ("system@0005f1a2b3c4d5e6-0123456789abcdef.journal~", Some(Format::Journal)),
            ("user-1000@abc-def.journal", Some(Format::Journal)),
            ("wtmp", Some(Format::Utmp)),
            ("wtmp.1", Some(Format::Utmp)),
            ("btmp-20240601", Some(Format::Utmp)),
            ("wtmp.1.gz", None),
            ("wtmp.db", Some(Format::WtmpDb)),
            ("lastlog2.db", Some(Format::Lastlog2)),
            ("lastlog", Some(Format::Lastlog)),
            ("audit.log", Some(Format::Audit)),
            ("audit.log.4", Some(Format::Audit)),
            ("audit.log.4.gz", None),
            ("wtmpx", None),
            ("syslog", None),
            ("journal", None),
        ] {
            assert_eq!(Format::of(name), f, "{name}");
        }
    }
}
