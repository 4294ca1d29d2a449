//! Findings from what was copied and converted (see `targets::finding`):
//! a shell history linked to /dev/null, login records emptied or zeroed,
//! event logs cleared or audit policy changed, a log silent for a day in
//! the middle of otherwise steady entries, a log whose last-change time is
//! before its newest entry. Each says what the evidence shows, no more.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

use super::logjson::Format;
use crate::targets::Finding;
use crate::util::time::Hourly;

/// A silence at least this long in a log that is otherwise busy is a gap.
pub const GAP_HOURS: i64 = 24;

/// Shell histories by name (the history files the shell-history target takes).
pub fn is_history(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    matches!(name, ".bash_history" | ".zsh_history" | ".zhistory" | ".sh_history" | ".ash_history" | ".history")
}

/// A history file that is a symbolic link to /dev/null keeps nothing.
pub fn history_link(path: &str, target: &[u8]) -> Option<Finding> {
    (is_history(path) && target == b"/dev/null").then(|| {
        Finding::new(
            "history-off",
            path,
            String::new(),
            "the shell history is a link to /dev/null: nothing typed in this account's shells was kept".into(),
        )
    })
}

/// Login records (`wtmp`, `btmp`, `lastlog`) that are empty, or whose
/// `entries` records are all `blank` (every byte zero).
pub fn login_records(format: Format, path: &str, size: u64, entries: u64, blank: u64) -> Option<Finding> {
    if !matches!(format, Format::Utmp | Format::Lastlog) {
        return None;
    }
    let name = path.rsplit('/').next().unwrap_or("");
    let what = if name.starts_with("btmp") { "failed logins" } else { "logins" };
    if size == 0 {
        let meaning =
            format!("the {what} file is empty (0 bytes): its records were cleared, or it was created anew since the last rotation");
        return Some(Finding::new("login-records-empty", path, String::new(), meaning));
    }
    (entries > 0 && blank == entries).then(|| {
        let meaning = format!("the {what} file has {size} bytes, all zeros: its {entries} records were overwritten");
        Finding::new("login-records-zeroed", path, String::new(), meaning)
    })
}

/// An empty shell history of an account that logged in (its name among
/// the users of the login records' sessions): its commands were removed,
/// or never written.
pub fn empty_history(path: &str, logged_in: &std::collections::BTreeSet<String>) -> Option<Finding> {
    let user = match path.strip_prefix("/root/") {
        Some(_) => "root",
        None => path.strip_prefix("/home/")?.split('/').next()?,
    };
    logged_in.contains(user).then(|| {
        let meaning = format!(
            "the shell history is empty while the login records show sessions of {user}: what was typed was removed or never written"
        );
        Finding::new("history-empty", path, String::new(), meaning)
    })
}

/// A plain-text log (not binary, not compressed, not a shell history):
/// its lines' times are read as it is copied.
pub fn is_text_log(name: &str) -> bool {
    !super::logjson::is_binary(name) && super::decompress::plain_name(name).is_none() && !is_history(name)
}

/// What a text log's line times say: a silence of a day or more in an
/// otherwise steady log, and a newest line (one that gives its zone: ISO
/// 8601 with `Z` or an offset, an access log's `[01/May/2024:12:00:00
/// +0000]`) after the file's last change, meaning its times were set back
/// (or that clock ran ahead). Classic syslog lines carry no zone and are
/// not compared with the file's time.
pub fn text_log(path: &str, lines: &super::textlog::LineHours, mtime: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    if let (Some(newest), Some(m)) = (lines.newest_zoned, crate::util::time::parse_iso(mtime))
        && newest > m + 60
    {
        let at = crate::util::time::Timestamp::new(newest, 0).iso8601();
        let meaning = format!(
            "the file's last-change time ({mtime}) is before its newest line ({}): its times were set back after that was written, or the clock that stamped the entry ran ahead",
            at.get(..19).map_or(at.clone(), |a| format!("{a}Z"))
        );
        out.push(Finding::new("mtime-before-last-entry", path, String::new(), meaning));
    }
    // Most lines without a zone: the hours are the machine's local time.
    let local = lines.local * 2 > lines.lines;
    out.extend(gap_in(path, &lines.hours, local));
    out
}

/// Login records the machine's last writes (a journal replayed) emptied,
/// cut or removed: `now` is the replayed size (None: the replay removed the
/// file), `before` the size on disk.
pub fn login_records_cut(path: &str, now: Option<u64>, before: u64, tag: &str) -> Option<Finding> {
    let name = path.rsplit('/').next().unwrap_or("");
    // wtmp, btmp (and rotations), lastlog: not utmp, rewritten in place as sessions come and go.
    let login = matches!(Format::of(name), Some(Format::Utmp | Format::Lastlog)) && !name.starts_with("utmp");
    if !login || now.is_some_and(|n| n >= before) || tag.is_empty() {
        return None;
    }
    let meaning = match now {
        Some(n) => format!(
            "in the machine's last seconds (its journal, replayed) the file went from {before} bytes on disk to {n}: records were removed just before the snapshot; _before-journal/ holds them"
        ),
        None => {
            format!("in the machine's last seconds (its journal, replayed) the file was removed; _before-journal/ holds its {before} bytes")
        }
    };
    Some(Finding::new("login-records-cut", path, String::new(), meaning))
}

/// Records of a Windows event log that say a log was cleared or the audit
/// policy changed: `(event id, channel, record id, time)`.
pub fn event(event_id: u32, channel: &str, path: &str, record: u64, time: Option<String>) -> Option<Finding> {
    let (kind, meaning) = match (event_id, channel) {
        (1102, "Security") => {
            ("security-log-cleared", "the Security event log was cleared (event 1102): records before this one were deleted")
        }
        (104, "System") => {
            ("event-log-cleared", "an event log was cleared (event 104; its EventData names which): its earlier records were deleted")
        }
        (4719, "Security") => {
            ("audit-policy-changed", "the system audit policy was changed (event 4719): what Windows records from here on may differ")
        }
        _ => return None,
    };
    let mut f = Finding::new(kind, path, format!("record {record}"), meaning.into());
    f.time = time;
    Some(f)
}

/// The longest silence in a log whose entries otherwise come in most hours:
/// at least [`GAP_HOURS`] without an entry, between hours that have them,
/// in a log with entries in at least half of the hours of its span outside
/// that silence.
pub fn gap(path: &str, hours: &Hourly) -> Option<Finding> {
    gap_in(path, hours, false)
}

/// [`gap`], for hours in UTC or (`local`) the machine's local time.
fn gap_in(path: &str, hours: &Hourly, local: bool) -> Option<Finding> {
    let h: Vec<i64> = hours.0.keys().copied().collect();
    let (&first, &last) = (h.first()?, h.last()?);
    if h.len() < 24 {
        return None;
    }
    let (from, to) = h.windows(2).map(|w| (w[0], w[1])).max_by_key(|(a, b)| (b - a, -a))?;
    let silent = to - from - 1;
    let elsewhere = (last - first + 1) - silent;
    if silent < GAP_HOURS || (h.len() as i64) * 2 < elsewhere {
        return None;
    }
    let at = |hour: i64| {
        let iso = crate::util::time::Timestamp::new(hour * 3600, 0).iso8601();
        let t = iso.get(..19).unwrap_or(&iso);
        if local { t.to_string() } else { format!("{t}Z") }
    };
    let clock = if local { " (the machine's local time: its lines give no zone)" } else { "" };
    let meaning = format!(
        "no entry for {silent} hours ({} to {}{clock}) in a log with entries in {} of its other {elsewhere} hours: the machine was off, the service stopped, or entries were removed",
        at(from + 1),
        at(to),
        h.len()
    );
    Some(Finding::new("log-gap", path, format!("between {} and {}", at(from), at(to)), meaning))
}

/// A log appended to as events happen (login records, audit) whose
/// last-change time is before its newest entry: its times were set back (or
/// the clock that stamped the entry ran ahead).
/// (Not for event logs and journals: Windows and journald update their
/// files' times lazily, so an older time there says nothing.)
pub fn mtime_before_last_entry(path: &str, mtime: &str, last: Option<&str>) -> Option<Finding> {
    let (m, l) = (crate::util::time::parse_iso(mtime)?, crate::util::time::parse_iso(last?)?);
    (l > m + 60).then(|| {
        let meaning = format!(
            "the file's last-change time ({mtime}) is before its newest entry ({}): its times were set back after that was written, or the clock that stamped the entry ran ahead",
            last.unwrap_or("")
        );
        Finding::new("mtime-before-last-entry", path, String::new(), meaning)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_times_with_their_zone() {
        let t = |l: &str| {
            let zoned = crate::collect::textlog::line_time(l.as_bytes(), 2024, 6).filter(|t| t.zoned);
            zoned.map(|t| crate::util::time::Timestamp::new(t.secs, 0).iso8601()[..19].to_string())
        };
        assert_eq!(t("2024-05-01T12:00:00.123456+02:00 web01 sshd[1]: x").as_deref(), Some("2024-05-01T10:00:00"));
        assert_eq!(t("2024-05-01T12:00:00Z app started").as_deref(), Some("2024-05-01T12:00:00"));
        assert_eq!(t("203.0.113.7 - - [01/May/2024:12:00:00 -0500] \"GET / HTTP/1.1\" 200 1").as_deref(), Some("2024-05-01T17:00:00"));
        assert_eq!(t("May  1 12:00:00 web01 sshd[1]: no year, no zone"), None);
        assert_eq!(t("2024-05-01 12:00:00 local time, no zone"), None);
        assert_eq!(t("[99/Zzz/2024:12:00:00 +0000]"), None);
    }

    #[test]
    fn gaps_only_in_otherwise_steady_logs() {
        let mut steady = Hourly::default();
        for h in (0..48).chain(80..130) {
            steady.see(h * 3600 + 476_000 * 3600);
        }
        let f = gap("/var/log/audit/audit.log", &steady).unwrap();
        assert!(f.meaning.starts_with("no entry for 32 hours (2024-04-22T08:00:00Z to 2024-04-23T16:00:00Z)"), "{}", f.meaning);
        // Sparse logs (an entry a day) have no gaps to speak of.
        let mut sparse = Hourly::default();
        for d in 0..60 {
            sparse.see(d * 86_400);
        }
        assert!(gap("/var/log/x", &sparse).is_none());
    }

    #[test]
    fn times_set_back_and_cleared_records() {
        assert!(mtime_before_last_entry("/var/log/wtmp", "2024-05-01T10:00:00Z", Some("2024-05-01T12:00:00Z")).is_some());
        assert!(mtime_before_last_entry("/var/log/wtmp", "2024-05-01T12:00:30Z", Some("2024-05-01T12:00:00Z")).is_none());
        assert!(login_records(Format::Utmp, "/var/log/wtmp", 0, 0, 0).is_some_and(|f| f.kind == "login-records-empty"));
        assert!(login_records(Format::Utmp, "/var/log/btmp", 768, 2, 2).is_some_and(|f| f.meaning.contains("failed logins")));
        assert!(login_records(Format::Utmp, "/var/log/wtmp", 768, 2, 1).is_none());
        assert!(event(1102, "Security", "/x/Security.evtx", 7, None).is_some());
        assert!(event(1102, "Application", "/x/App.evtx", 7, None).is_none());
        assert!(history_link("/root/.bash_history", b"/dev/null").is_some());
        assert!(
            login_records_cut("/var/log/wtmp", Some(0), 1536, "changed")
                .is_some_and(|f| f.meaning.contains("from 1536 bytes on disk to 0"))
        );
        assert!(login_records_cut("/var/log/wtmp.1", None, 384, "removed").is_some());
        assert!(login_records_cut("/var/log/wtmp", Some(2000), 1536, "changed").is_none());
        assert!(login_records_cut("/var/log/syslog", Some(0), 1536, "changed").is_none());
        let users: std::collections::BTreeSet<String> = ["alice".to_string(), "root".to_string()].into();
        assert!(empty_history("/home/alice/.bash_history", &users).is_some());
        assert!(empty_history("/root/.bash_history", &users).is_some());
        assert!(empty_history("/home/bob/.bash_history", &users).is_none());
        assert!(history_link("/root/notes", b"/dev/null").is_none());
    }
}
