//! Timestamps as filesystems store them, and their ISO 8601 rendering.

use std::fmt;

/// Seconds since the Unix epoch (may be negative) plus nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub fn new(secs: i64, nanos: u32) -> Self {
        // Corrupt nanosecond fields must not produce an invalid time.
        Timestamp { secs, nanos: nanos.min(999_999_999) }
    }

    pub fn now() -> Self {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp::new(d.as_secs() as i64, d.subsec_nanos())
    }

    /// A Windows FILETIME (100 ns units since 1601-01-01 UTC).
    pub fn from_filetime(ft: u64) -> Self {
        const EPOCH_DIFF: i64 = 11_644_473_600;
        Timestamp::new((ft / 10_000_000) as i64 - EPOCH_DIFF, (ft % 10_000_000) as u32 * 100)
    }

    /// `2024-05-01T12:00:00.123456789Z` (UTC, nanoseconds always shown).
    pub fn iso8601(&self) -> String {
        self.to_string()
    }

    /// `2024-05-01 12:00:00 UTC`, for people.
    pub fn readable(&self) -> String {
        let (y, mo, d, h, mi, s) = civil(self.secs);
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
    }

    /// `20240501T120000Z`, for folder names.
    pub fn compact(&self) -> String {
        let (y, mo, d, h, mi, s) = civil(self.secs);
        format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s) = civil(self.secs);
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:09}Z", self.nanos)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS[Z]` (UTC) to Unix seconds.
pub fn parse_iso(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches('Z');
    let (date, time) = s.split_once(['T', ' ']).unwrap_or((s, "00:00:00"));
    let d: Vec<i64> = date.split('-').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let t: Vec<i64> = time.split(':').map(|x| x.split('.').next().unwrap_or("0").parse().ok()).collect::<Option<_>>()?;
    let (&[y, mo, da], &[h, mi, se]) = (d.as_slice(), t.as_slice()) else { return None };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        return None;
    }
    Some(days_from_civil(y, mo as u32, da as u32) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Unix seconds to (year, month, day, hour, minute, second), proleptic
/// Gregorian, UTC. Howard Hinnant's days-from-civil inverse.
/// The year and month of Unix second `secs` (UTC).
pub fn year_month(secs: i64) -> (i64, i64) {
    let (y, m, ..) = civil(secs);
    (y, i64::from(m))
}

fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, (rem / 3600) as u32, (rem % 3600 / 60) as u32, (rem % 60) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_dates() {
        assert_eq!(Timestamp::new(0, 0).to_string(), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(Timestamp::new(1_714_564_800, 5).to_string(), "2024-05-01T12:00:00.000000005Z");
        assert_eq!(Timestamp::new(-1, 0).to_string(), "1969-12-31T23:59:59.000000000Z");
        assert_eq!(Timestamp::new(951_782_400, 0).to_string(), "2000-02-29T00:00:00.000000000Z");
        assert_eq!(Timestamp::new(2_208_988_800, 0).to_string(), "2040-01-01T00:00:00.000000000Z");
        assert_eq!(Timestamp::new(1_714_564_800, 0).compact(), "20240501T120000Z");
        assert_eq!(parse_iso("2024-05-01T12:00:00Z"), Some(1_714_564_800));
        assert_eq!(parse_iso("2024-05-01"), Some(1_714_521_600));
        assert_eq!(parse_iso("1965-03-04"), Some(days_from_civil(1965, 3, 4) * 86_400));
        assert!(days_from_civil(1965, 3, 4) < 0);
        assert_eq!(parse_iso("2024-13-01"), None);
    }
}

/// The decimal number in `b[r]`, all digits (no sign, no allocation: read
/// for every entry of a log).
pub fn digits(b: &[u8], r: std::ops::Range<usize>) -> Option<i64> {
    let d = b.get(r)?;
    (!d.is_empty() && d.iter().all(u8::is_ascii_digit)).then(|| d.iter().fold(0i64, |n, &c| n * 10 + i64::from(c - b'0')))
}

/// Events per hour (hours since the Unix epoch, UTC), counted as binary
/// logs are converted: what the report's activity chart draws.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hourly(pub std::collections::BTreeMap<i64, u64>);

/// At most this many distinct hours are kept (23 years): forged times
/// scattered over millennia cannot grow the map without bound.
const MAX_HOURS: usize = 200_000;

impl Hourly {
    /// One event at Unix second `secs`.
    pub fn see(&mut self, secs: i64) {
        self.add(secs, 1);
    }

    /// `n` events in the hour of Unix second `secs`.
    pub fn add(&mut self, secs: i64, n: u64) {
        let hour = secs.div_euclid(3600);
        if let Some(c) = self.0.get_mut(&hour) {
            *c += n;
        } else if self.0.len() < MAX_HOURS {
            self.0.insert(hour, n);
        }
    }

    /// One event at an ISO 8601 time (`2024-05-01T12:…`, the rest ignored);
    /// a time that does not parse is not counted.
    pub fn see_iso(&mut self, iso: &[u8]) {
        let num = |r| digits(iso, r);
        let (Some(y), Some(m), Some(d), Some(h)) = (num(0..4), num(5..7), num(8..10), num(11..13)) else { return };
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 {
            return;
        }
        self.see(days_from_civil(y, m as u32, d as u32) * 86_400 + h * 3600);
    }

    pub fn merge(&mut self, other: &Hourly) {
        for (&h, &n) in &other.0 {
            if let Some(c) = self.0.get_mut(&h) {
                *c += n;
            } else if self.0.len() < MAX_HOURS {
                self.0.insert(h, n);
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}
