//! Findings from what was copied and converted (see `targets::finding`):
//! a shell history linked to /dev/null, login records emptied or zeroed,
//! event logs cleared or audit policy changed, a log silent for a day in
//! the middle of otherwise steady entries, a log whose last-change time is
//! before its newest entry. Each says what the evidence shows, no more.

use super::logjson::Format;
use crate::targets::Finding;
use crate::util::time::Hourly;

/// A silence at least this long in a log that is otherwise busy is a gap.
pub const GAP_HOURS: i64 = 24;

/// Shell histories by name (the history files the shell-history target takes).
fn is_history(path: &str) -> bool {
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
        format!("{}Z", iso.get(..19).unwrap_or(&iso))
    };
    let meaning = format!(
        "no entry for {silent} hours ({} to {}) in a log with entries in {} of its other {elsewhere} hours: the machine was off, the service stopped, or entries were removed",
        at(from + 1),
        at(to),
        h.len()
    );
    Some(Finding::new("log-gap", path, format!("between {} and {}", at(from), at(to)), meaning))
}

/// A log appended to as events happen (login records, audit) whose
/// last-change time is before its newest entry: the time was set back.
/// (Not for event logs and journals: Windows and journald update their
/// files' times lazily, so an older time there says nothing.)
pub fn mtime_before_last_entry(path: &str, mtime: &str, last: Option<&str>) -> Option<Finding> {
    let (m, l) = (crate::util::time::parse_iso(mtime)?, crate::util::time::parse_iso(last?)?);
    (l > m + 60).then(|| {
        let meaning = format!(
            "the file's last-change time ({mtime}) is before its newest entry ({}): its timestamps were set back after it was written",
            last.unwrap_or("")
        );
        Finding::new("mtime-before-last-entry", path, String::new(), meaning)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(history_link("/root/notes", b"/dev/null").is_none());
    }
}
