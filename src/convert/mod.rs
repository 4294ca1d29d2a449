//! Binary logs made greppable: readers of the Linux log formats `grep`
//! cannot read, each turning one extracted file into JSON lines.
//!
//! A converter reads a copy in the case folder (never the evidence), streams
//! it entry by entry (memory bounded whatever the file's size) and writes one
//! JSON object a line to `out`; `collect` creates `X.jsonl` beside `X`,
//! hashes it and lists it in the manifest. Damaged input is converted as far
//! as it can be read; what could not be is said in [`Converted::problem`].
//!
//! Every line starts with the fields snapsift adds to every converted log,
//! in this order and always with these JSON types (a SIEM's index mapping
//! must never flip): `host` (string), `source_path` (string, the path on the
//! machine), `datetime` (string, ISO 8601 UTC with microseconds, or null),
//! `timestamp_desc` (string), `message` (string): the Timesketch fields.
//! The format's own fields follow.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

pub mod audit;
pub mod lastlog;
pub mod logindb;
pub mod utmp;

pub use crate::util::corrupt;

pub mod journal;

/// What every line of one converted file shares.
pub struct Context<'a> {
    /// The host's name, as in the grep folder.
    pub host: &'a str,
    /// The file's path on the machine (`/var/log/journal/…/system.journal`).
    pub source_path: &'a str,
}

/// What a conversion did, for the manifest row and the report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Converted {
    /// Entries written (one a line).
    pub entries: u64,
    /// The first and last entry's time, ISO 8601 UTC, if any had one.
    pub first: Option<String>,
    pub last: Option<String>,
    /// Entries whose bytes are all zeros (fixed-size records: utmp).
    pub blank: u64,
    /// Users of the login sessions recorded (utmp `USER_PROCESS`), at most 1,000.
    pub users: std::collections::BTreeSet<String>,
    /// Entries per hour (the report's activity chart).
    pub hours: crate::util::time::Hourly,
    /// Where and why reading stopped early, or what was skipped (damaged
    /// objects, a truncated tail); None when the whole file was read.
    pub problem: Option<String>,
}

/// `s` as the inside of a JSON string (no quotes): one escaping path for
/// every converter.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's escaping: `"`, `\\` and control characters (`\u00XX`).
    let quoted = serde_json::to_string(s).unwrap_or_default();
    out.extend_from_slice(quoted.as_bytes().get(1..quoted.len().saturating_sub(1)).unwrap_or_default());
}

/// The common head of a line: `{"host":…,"source_path":…,` (the per-file
/// part, escaped once).
pub fn line_head(ctx: &Context) -> Vec<u8> {
    let mut head = b"{\"host\":\"".to_vec();
    push_json_str(&mut head, ctx.host);
    head.extend_from_slice(b"\",\"source_path\":\"");
    push_json_str(&mut head, ctx.source_path);
    head.extend_from_slice(b"\",");
    head
}

/// Microseconds since the Unix epoch as ISO 8601 UTC
/// (`2024-06-01T12:00:00.123456Z`).
pub fn iso_micros(usec: u64) -> String {
    let secs = (usec / 1_000_000) as i64;
    let t = crate::util::time::Timestamp { secs, nanos: ((usec % 1_000_000) * 1000) as u32 };
    let s = t.iso8601();
    // iso8601() gives nanoseconds; Timesketch and journalctl use microseconds.
    match s.find('.') {
        Some(dot) if s.len() >= dot + 7 => format!("{}Z", &s[..dot + 7]),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_strings() {
        assert_eq!(iso_micros(1_717_232_400_123_456), "2024-06-01T09:00:00.123456Z");
        let mut v = Vec::new();
        push_json_str(&mut v, "a\"b\\c\nd\u{1}");
        assert_eq!(v, br#"a\"b\\c\nd\u0001"#);
        let ctx = Context { host: "h\"1", source_path: "/var/log/x" };
        assert_eq!(line_head(&ctx), br#"{"host":"h\"1","source_path":"/var/log/x","#);
    }
}
