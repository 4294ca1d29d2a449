//! The times of a plain-text log's lines, read as the file is copied: the
//! hours that have lines (for silences in an otherwise steady log) and the
//! newest time a line gives with its zone (against the file's last change).
//!
//! Only the first bytes of each line are looked at, and a line whose
//! timestamp has the same hour as the line before is counted without being
//! parsed, so the scan costs a newline search and a short compare per line.
//!
//! Line starts read: ISO 8601 (`2024-05-01T12:00:00`, `2024-05-01 12:00:00`,
//! with `Z` or an offset, or none: then the machine's local time), an
//! access log's `[01/May/2024:12:00:00 +0000]`, and classic syslog's
//! `May  1 12:00:00` (no year, no zone: the year is the file's last
//! change's, the year before for months after it).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::util::newlines::newlines;
use crate::util::time::{Hourly, days_from_civil, digits};

/// The first bytes of a line that are looked at.
const HEAD: usize = 48;
const MONTHS: [&[u8; 3]; 12] = [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// A line's time: UTC seconds when it gives its zone, local otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineTime {
    pub secs: i64,
    pub zoned: bool,
}

/// Fed the bytes of a log in order, chunk by chunk.
pub struct LineHours {
    /// Lines per hour (UTC for zoned lines, local for the others).
    pub hours: Hourly,
    /// Lines whose time was read, and how many of them gave no zone.
    pub lines: u64,
    pub local: u64,
    /// The newest time a line gave with its zone.
    pub newest_zoned: Option<i64>,
    /// Year and month of the file's last change, for syslog lines.
    year: i64,
    month: i64,
    /// Where the last chunk left off.
    pending: Pending,
    /// The hour part of the last line read, its time, and the lines in a
    /// row that had it (counted into `hours` when the hour changes).
    last: Option<Last>,
    /// The first bytes of the latest line of a zoned run, whose time is
    /// read when the run ends (the newest time is a line's, not its hour's).
    tail: Vec<u8>,
    /// Lines counted here first, put in `hours` when the scan finishes.
    window: Window,
}

/// Line counts of the hours near the first one seen, one slot an hour: a
/// log whose times jump about (lines merged from several sources, or the
/// benchmark's shuffled ones) ends a run at every line, and a map lookup a
/// line was a tenth of an extraction's CPU. Hours outside go to the map.
#[derive(Default)]
struct Window {
    first: i64,
    counts: Vec<u64>,
}

/// Hours in the window (about 170 days; 32 KiB).
const WINDOW: usize = 4096;

impl Window {
    fn add(&mut self, hours: &mut Hourly, secs: i64, n: u64) {
        let hour = secs.div_euclid(3600);
        if self.counts.is_empty() {
            self.counts = vec![0; WINDOW];
            self.first = hour - (WINDOW / 2) as i64;
        }
        match usize::try_from(hour.wrapping_sub(self.first)).ok().and_then(|i| self.counts.get_mut(i)) {
            Some(c) => *c += n,
            None => hours.add(secs, n),
        }
    }

    fn drain_into(&mut self, hours: &mut Hourly) {
        let counted = self.counts.iter().enumerate().filter(|(_, n)| **n > 0).map(|(i, &n)| (self.first + i as i64, n));
        if hours.0.is_empty() {
            // In order: the map is built in one pass, not key by key.
            hours.0 = counted.collect();
        } else {
            counted.for_each(|(hour, n)| hours.add(hour * 3600, n));
        }
        self.counts = Vec::new();
    }
}

enum Pending {
    /// At the start of a line.
    LineStart,
    /// Inside the first bytes of a line.
    Head(Vec<u8>),
    /// Past the first bytes: skipping to the line's end.
    Skip,
}

struct Last {
    key: [u8; 16],
    len: usize,
    time: LineTime,
    run: u64,
}

impl LineHours {
    /// `mtime`: the file's last change (Unix seconds), for syslog's years.
    pub fn new(mtime: Option<i64>) -> LineHours {
        let (year, month) = crate::util::time::year_month(mtime.unwrap_or(0));
        LineHours {
            hours: Hourly::default(),
            lines: 0,
            local: 0,
            newest_zoned: None,
            year,
            month,
            pending: Pending::LineStart,
            last: None,
            tail: Vec::with_capacity(HEAD),
            window: Window::default(),
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        match std::mem::replace(&mut self.pending, Pending::LineStart) {
            Pending::LineStart => {}
            Pending::Head(mut head) => {
                let nl = memchr::memchr(b'\n', rest);
                let take = nl.unwrap_or(rest.len()).min(HEAD - head.len());
                head.extend_from_slice(rest.get(..take).unwrap_or_default());
                match nl {
                    Some(p) => {
                        self.line(&head);
                        rest = rest.get(p + 1..).unwrap_or_default();
                    }
                    None if head.len() < HEAD => {
                        self.pending = Pending::Head(head);
                        return;
                    }
                    None => {
                        self.line(&head);
                        self.pending = Pending::Skip;
                        return;
                    }
                }
            }
            Pending::Skip => match memchr::memchr(b'\n', rest) {
                Some(p) => rest = rest.get(p + 1..).unwrap_or_default(),
                None => {
                    self.pending = Pending::Skip;
                    return;
                }
            },
        }
        // At a line start: the newlines found 64 bytes at a time, and a
        // short compare a line.
        let mut start = 0;
        for p in newlines(rest) {
            self.line(rest.get(start..p.min(start + HEAD)).unwrap_or_default());
            start = p + 1;
        }
        let rest = rest.get(start..).unwrap_or_default();
        if rest.len() >= HEAD {
            self.line(rest.get(..HEAD).unwrap_or_default());
            self.pending = Pending::Skip;
        } else if !rest.is_empty() {
            self.pending = Pending::Head(rest.to_vec());
        }
    }

    /// The last line, when the file does not end with a newline; and the
    /// last run of lines into `hours`.
    pub fn finish(&mut self) {
        if let Pending::Head(head) = std::mem::replace(&mut self.pending, Pending::LineStart)
            && !head.is_empty()
        {
            self.line(&head);
        }
        if let Some(l) = self.last.take() {
            self.flush(&l);
        }
        self.window.drain_into(&mut self.hours);
    }

    fn flush(&mut self, l: &Last) {
        self.window.add(&mut self.hours, l.time.secs, l.run);
        if !self.tail.is_empty() {
            if let Some(t) = line_time(&self.tail, self.year, self.month).filter(|t| t.zoned) {
                self.newest_zoned = Some(self.newest_zoned.map_or(t.secs, |n| n.max(t.secs)));
            }
            self.tail.clear();
        }
    }

    fn line(&mut self, head: &[u8]) {
        // The common case: the same hour as the line before.
        if let Some(l) = self.last.as_mut()
            && l.key.get(..l.len).is_some_and(|k| head.starts_with(k))
        {
            l.run += 1;
            self.lines += 1;
            if l.time.zoned {
                self.tail.clear();
                self.tail.extend_from_slice(head);
            } else {
                self.local += 1;
            }
            return;
        }
        let Some(key) = hour_key(head) else { return };
        let Some(time) = line_time(head, self.year, self.month) else { return };
        let mut k = [0u8; 16];
        let len = key.len().min(16);
        if let (Some(dst), Some(src)) = (k.get_mut(..len), key.get(..len)) {
            dst.copy_from_slice(src);
        }
        if let Some(prev) = self.last.take() {
            self.flush(&prev);
        }
        self.last = Some(Last { key: k, len, time, run: 1 });
        self.lines += 1;
        if time.zoned {
            self.newest_zoned = Some(self.newest_zoned.map_or(time.secs, |n| n.max(time.secs)));
        } else {
            self.local += 1;
        }
    }
}

/// The bytes of a line's start up to its hour: lines with the same key
/// are in the same hour (zone included: it follows the time).
fn hour_key(b: &[u8]) -> Option<&[u8]> {
    if b.get(4) == Some(&b'-') && b.first().is_some_and(u8::is_ascii_digit) {
        return b.get(..13);
    }
    if syslog_month(b).is_some() {
        return b.get(..9);
    }
    // `[01/May/2024:12`: an access log's bracket comes after the client.
    let open = memchr::memchr(b'[', b)?;
    b.get(open..open + 15)
}

/// `May  1 …`: the month of a classic syslog line, 1…12.
fn syslog_month(b: &[u8]) -> Option<i64> {
    (b.get(3) == Some(&b' ')).then_some(())?;
    Some(MONTHS.iter().position(|m| b.get(..3) == Some(&m[..]))? as i64 + 1)
}

/// A line's time from its first bytes.
pub fn line_time(b: &[u8], year: i64, month: i64) -> Option<LineTime> {
    let civil = |y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64| -> Option<i64> {
        ((1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && s < 61)
            .then(|| days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + s)
    };
    let d = |r| digits(b, r);
    // 2024-05-01T12:00:00[.fff](Z|±hh:mm|±hhmm| )
    if b.get(4) == Some(&b'-') && matches!(b.get(10), Some(b'T' | b' ')) {
        let t = civil(d(0..4)?, d(5..7)?, d(8..10)?, d(11..13)?, d(14..16)?, d(17..19)?)?;
        let mut z = 19;
        if matches!(b.get(z), Some(b'.' | b',')) {
            z += 1 + b.get(20..)?.iter().take_while(|c| c.is_ascii_digit()).count();
        }
        // `12:00:00 -0500`: an offset after one space.
        if b.get(z) == Some(&b' ') && matches!(b.get(z + 1), Some(b'+' | b'-')) {
            z += 1;
        }
        return Some(match zone(b.get(z..).unwrap_or_default()) {
            Some(off) => LineTime { secs: t - off, zoned: true },
            None => LineTime { secs: t, zoned: false },
        });
    }
    // May  1 12:00:00 (day space- or zero-padded)
    if let Some(mo) = syslog_month(b) {
        let day = match b.get(4)? {
            b' ' => d(5..6)?,
            _ => d(4..6)?,
        };
        if b.get(6) != Some(&b' ') || b.get(9) != Some(&b':') || b.get(12) != Some(&b':') {
            return None;
        }
        let y = if mo > month { year - 1 } else { year };
        return Some(LineTime { secs: civil(y, mo, day, d(7..9)?, d(10..12)?, d(13..15)?)?, zoned: false });
    }
    // [01/May/2024:12:00:00 +0000]
    let s = b.get(memchr::memchr(b'[', b)? + 1..)?;
    let mo = MONTHS.iter().position(|m| s.get(3..6) == Some(&m[..]))? as i64 + 1;
    let n = |r| digits(s, r);
    let t = civil(n(7..11)?, mo, n(0..2)?, n(12..14)?, n(15..17)?, n(18..20)?)?;
    Some(LineTime { secs: t - zone(s.get(21..26)?)?, zoned: true })
}

/// `Z`, `+02:00`, `-0500`: seconds east of UTC.
fn zone(z: &[u8]) -> Option<i64> {
    match z.first()? {
        b'Z' => Some(0),
        s @ (b'+' | b'-') => {
            let h = digits(z, 1..3)?;
            let m = if z.get(3) == Some(&b':') { digits(z, 4..6)? } else { digits(z, 3..5)? };
            let off = h * 3600 + m * 60;
            Some(if *s == b'+' { off } else { -off })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str, chunk: usize, mtime: i64) -> LineHours {
        let mut l = LineHours::new(Some(mtime));
        for c in text.as_bytes().chunks(chunk) {
            l.feed(c);
        }
        l.finish();
        l
    }

    #[test]
    fn each_kind_of_line_start() {
        let t = |s: &str| line_time(s.as_bytes(), 2024, 6);
        let noon = days_from_civil(2024, 5, 1) * 86_400 + 12 * 3600;
        assert_eq!(t("2024-05-01T12:00:00Z x"), Some(LineTime { secs: noon, zoned: true }));
        assert_eq!(t("2024-05-01T14:00:00.123+02:00 x"), Some(LineTime { secs: noon, zoned: true }));
        assert_eq!(t("2024-05-01 07:00:00,5 -0500 x"), Some(LineTime { secs: noon, zoned: true }));
        assert_eq!(t("2024-05-01 12:00:00 INFO x"), Some(LineTime { secs: noon, zoned: false }));
        assert_eq!(t("10.0.0.1 - - [01/May/2024:12:00:00 +0000] \"GET /\""), Some(LineTime { secs: noon, zoned: true }));
        assert_eq!(t("May  1 12:00:00 web01 sshd[1]: x"), Some(LineTime { secs: noon, zoned: false }));
        assert_eq!(t("May 01 12:00:00 web01 x"), Some(LineTime { secs: noon, zoned: false }));
        // A month after the file's last change is from the year before.
        assert_eq!(line_time(b"Dec 31 23:00:00 h x", 2025, 1).map(|l| l.secs), Some(days_from_civil(2024, 12, 31) * 86_400 + 23 * 3600));
        for bad in ["2024-13-01T00:00:00Z", "May 32 12:00:00 x", "hello world", "", "May  1 25:00:00 x", "[01/Foo/2024:12:00:00 +0000]"] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn lines_split_across_chunks_count_once() {
        let mut text = String::new();
        for h in 0..30 {
            for m in [0, 20, 40] {
                text.push_str(&format!("2024-05-01T{:02}:{m:02}:00Z host app: event\n", h % 24));
            }
        }
        for chunk in [1, 7, 64, 1 << 20] {
            let l = scan(&text, chunk, 0);
            assert_eq!(l.lines, 90, "chunk {chunk}");
            assert_eq!(l.hours.total(), 90);
            assert_eq!(l.hours.0.len(), 24);
            assert_eq!(l.local, 0);
        }
        // A line longer than the head, and one without a newline at the end.
        let l = scan(&format!("2024-05-01T00:00:00Z {}\n2024-05-01T01:00:00Z end", "x".repeat(500)), 13, 0);
        assert_eq!((l.lines, l.hours.0.len()), (2, 2));
        assert_eq!(l.newest_zoned, Some(days_from_civil(2024, 5, 1) * 86_400 + 3600));
        // The newest time is the last line's, not its hour's.
        let l = scan("2024-05-01T00:00:00Z a\n2024-05-01T00:59:30Z b\n", 5, 0);
        assert_eq!(l.newest_zoned, Some(days_from_civil(2024, 5, 1) * 86_400 + 3570));
        assert_eq!(l.hours.total(), 2);
    }

    #[test]
    fn lines_whose_times_jump_about_are_counted_in_their_hours() {
        // Years apart (outside the window around the first hour) and
        // back and forth within it, a few lines a run.
        let days = [(2024, 5, 1), (2019, 1, 2), (2024, 5, 3), (2031, 12, 31), (2024, 4, 30), (2024, 11, 20)];
        let (mut text, mut want) = (String::new(), std::collections::BTreeMap::new());
        for i in 0..600usize {
            let (y, m, d) = days.iter().cycle().nth(i * 7).copied().unwrap();
            let h = i * 5 % 24;
            for _ in 0..1 + i % 3 {
                text.push_str(&format!("{y}-{m:02}-{d:02}T{h:02}:30:00Z host app: event {i}\n"));
                *want.entry(days_from_civil(y, m, d) * 24 + h as i64).or_insert(0u64) += 1;
            }
        }
        for chunk in [9, 4096] {
            assert_eq!(scan(&text, chunk, 0).hours.0, want, "chunk {chunk}");
        }
    }
}
