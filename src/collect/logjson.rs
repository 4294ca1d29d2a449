//! Which extracted files get a JSON-lines twin (`X.jsonl` beside `X`), read
//! by the converters in `crate::convert`: binary logs `grep` cannot read.

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
    /// The SQLite login databases: wtmpdb's `wtmp.db`, `lastlog2.db`.
    LoginDb,
}

impl Format {
    /// The format of a file named `name`; compressed rotations (`.gz`) are
    /// not converted (their plain copy from `--decompress` is read as text).
    pub fn of(name: &str) -> Option<Format> {
        let rotated = |base: &str| {
            name.strip_prefix(base).is_some_and(|rest| {
                rest.is_empty()
                    || rest.strip_prefix(['.', '-']).is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
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
        } else if name == "wtmp.db" || name == "lastlog2.db" {
            Some(Format::LoginDb)
        } else {
            None
        }
    }

    /// The manifest's `target` column for the twin.
    pub fn target(self) -> &'static str {
        match self {
            Format::Journal => "journal-json",
            Format::Utmp | Format::Lastlog | Format::LoginDb => "login-json",
            Format::Audit => "audit-json",
        }
    }

    /// What one line of the twin is, for the manifest's reason.
    pub fn unit(self) -> &'static str {
        match self {
            Format::Journal => "journal entries",
            Format::Utmp => "login records",
            Format::Lastlog => "last logins",
            Format::Audit => "audit events",
            Format::LoginDb => "database rows",
        }
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
            ("wtmp.db", Some(Format::LoginDb)),
            ("lastlog2.db", Some(Format::LoginDb)),
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
