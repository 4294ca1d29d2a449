//! `wtmp`, `btmp` and `utmp` (glibc's `struct utmp` on x86-64 and aarch64,
//! 384 bytes a record) as JSON lines, one a record, in file order.
//!
//! Each line: the added fields, then `type` (string: glibc's names as
//! `utmpdump` and `<utmp.h>` spell them, `UNKNOWN(n)` for any other number),
//! `pid` (number), `line`, `id`, `user`, `host` (strings, the bytes up to the
//! first NUL, see [`text`]), `addr` (string: `ut_addr_v6` as `utmpdump`
//! prints it: IPv4 when only the first word is set, `0.0.0.0` when none is,
//! else IPv6 text as glibc's `inet_ntop`), `exit_termination`, `exit_status`,
//! `session`, `tv_sec`, `tv_usec` (numbers, as stored) and `offset` (number,
//! the record's byte offset in the file). `datetime` is `tv_sec`+`tv_usec`,
//! null when negative or out of range.
//!
//! A file whose size is not a multiple of 384 bytes: every whole record is
//! converted, the tail is said in `problem`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

use super::{Context, Converted, iso_micros, line_head, push_json_str};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// Bytes in one `struct utmp` (glibc, 64-bit Linux).
pub const RECORD: usize = 384;

/// glibc's `ut_type` names (`utmpdump` prints the numbers, `last` and
/// `who` these names).
pub fn type_name(t: i16) -> String {
    const NAMES: [&str; 10] = [
        "EMPTY",
        "RUN_LVL",
        "BOOT_TIME",
        "NEW_TIME",
        "OLD_TIME",
        "INIT_PROCESS",
        "LOGIN_PROCESS",
        "USER_PROCESS",
        "DEAD_PROCESS",
        "ACCOUNTING",
    ];
    match usize::try_from(t).ok().and_then(|i| NAMES.get(i)) {
        Some(n) => (*n).to_string(),
        None => format!("UNKNOWN({t})"),
    }
}

/// Bytes from a log as a JSON-safe string, reversibly: valid UTF-8 is kept
/// as it is (control characters are then escaped by JSON itself), each byte
/// that is not UTF-8 becomes `%XX`, and so does a `%` that would read as
/// such an escape (`%41` in the file is written `%2541`). Decoding every
/// `%XX` gives the original bytes back. The same rule as the grep folder's
/// file names (collect::outpath).
pub fn text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut at = 0;
    for chunk in bytes.utf8_chunks() {
        for (i, ch) in chunk.valid().char_indices() {
            let rest = bytes.get(at + i..).unwrap_or_default();
            if ch == '%' && matches!(rest, [b'%', a, b, ..] if a.is_ascii_hexdigit() && b.is_ascii_hexdigit()) {
                out.push_str("%25");
            } else {
                out.push(ch);
            }
        }
        at += chunk.valid().len();
        for byte in chunk.invalid() {
            out.push_str(&format!("%{byte:02X}"));
        }
        at += chunk.invalid().len();
    }
    out
}

/// The bytes of a fixed-size C string field up to its first NUL.
pub fn cstr(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(n) => &field[..n],
        None => field,
    }
}

/// `ut_addr_v6` as utmpdump prints it (glibc `inet_ntop`).
pub fn addr_text(a: &[u8; 16]) -> String {
    if a[4..].iter().all(|&b| b == 0) {
        return Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string();
    }
    // glibc writes `::a.b.c.d` for the IPv4-compatible form; Rust's Display
    // does not (it does `::ffff:a.b.c.d` like glibc).
    if a[..12].iter().all(|&b| b == 0) && (a[12] != 0 || a[13] != 0) {
        return format!("::{}", Ipv4Addr::new(a[12], a[13], a[14], a[15]));
    }
    Ipv6Addr::from(*a).to_string()
}

/// The earliest and latest time seen (ISO 8601 strings sort as times).
#[derive(Default)]
pub(crate) struct Span {
    pub first: Option<String>,
    pub last: Option<String>,
    pub hours: crate::util::time::Hourly,
}

impl Span {
    pub fn see(&mut self, iso: &str) {
        self.hours.see_iso(iso.as_bytes());
        if self.first.as_deref().is_none_or(|f| iso < f) {
            self.first = Some(iso.to_string());
        }
        if self.last.as_deref().is_none_or(|l| iso > l) {
            self.last = Some(iso.to_string());
        }
    }

    /// `done` with the time range and the hours seen.
    pub fn into_converted(self, mut done: Converted) -> Converted {
        done.first = self.first;
        done.last = self.last;
        done.hours = self.hours;
        done
    }
}

/// Appends `,"key":"value"` (both escaped: audit keys come from the file).
pub(crate) fn push_str_field(line: &mut Vec<u8>, key: &str, value: &str) {
    line.extend_from_slice(b",\"");
    push_json_str(line, key);
    line.extend_from_slice(b"\":\"");
    push_json_str(line, value);
    line.push(b'"');
}

/// Appends `,"key":n`.
pub(crate) fn push_num_field(line: &mut Vec<u8>, key: &str, n: impl itoa::Integer) {
    line.extend_from_slice(b",\"");
    line.extend_from_slice(key.as_bytes());
    line.extend_from_slice(b"\":");
    line.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// The added fields after `line_head`: `"datetime":…,"timestamp_desc":…,"message":…`.
pub(crate) fn push_added(line: &mut Vec<u8>, datetime: Option<&str>, desc: &str, message: &str) {
    match datetime {
        Some(t) => {
            line.extend_from_slice(b"\"datetime\":\"");
            push_json_str(line, t);
            line.push(b'"');
        }
        None => line.extend_from_slice(b"\"datetime\":null"),
    }
    push_str_field(line, "timestamp_desc", desc);
    push_str_field(line, "message", message);
}

fn i16_at(b: &[u8; RECORD], off: usize) -> i16 {
    i16::from_le_bytes([b[off], b[off + 1]])
}

fn i32_at(b: &[u8; RECORD], off: usize) -> i32 {
    i32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// A login's one-line summary, `KIND user tty from host`, empty parts left
/// out (utmp records and wtmpdb rows alike).
pub fn login_message(kind: &str, user: &str, tty: &str, from: &str) -> String {
    let mut m = kind.to_string();
    for part in [user, tty] {
        if !part.is_empty() {
            m.push(' ');
            m.push_str(part);
        }
    }
    if !from.is_empty() {
        m.push_str(" from ");
        m.push_str(from);
    }
    m
}

/// Converts one wtmp/btmp/utmp file.
pub fn convert(input: &Path, ctx: &Context, out: &mut dyn Write) -> io::Result<Converted> {
    let mut file = io::BufReader::with_capacity(64 * RECORD, File::open(input)?);
    let mut out = BufWriter::new(out);
    let head = line_head(ctx);
    let mut done = Converted::default();
    let mut span = Span::default();
    let mut rec = [0u8; RECORD];
    let mut offset: u64 = 0;
    let mut line = Vec::with_capacity(1024);
    loop {
        let n = crate::util::read_full(&mut file, &mut rec)?;
        if n == 0 {
            break;
        }
        if n < RECORD {
            done.problem = Some(format!(
                "file size {} is not a multiple of the {RECORD}-byte record: the last {n} bytes are not a record",
                offset + n as u64
            ));
            break;
        }
        done.blank += u64::from(rec.iter().all(|&b| b == 0));
        let ut_type = i16_at(&rec, 0);
        let user = text(cstr(&rec[44..76]));
        let ut_line = text(cstr(&rec[8..40]));
        let host = text(cstr(&rec[76..332]));
        let mut a = [0u8; 16];
        a.copy_from_slice(&rec[348..364]);
        let addr = addr_text(&a);
        let (sec, usec) = (i32_at(&rec, 340), i32_at(&rec, 344));
        let datetime = match (u64::try_from(sec), u64::try_from(usec)) {
            (Ok(s), Ok(u)) if u < 1_000_000 => Some(iso_micros(s * 1_000_000 + u)),
            _ => None,
        };
        if let Some(t) = &datetime
            && sec > 0
        {
            span.see(t);
        }
        let name = type_name(ut_type);
        if ut_type == 7 && !user.is_empty() && done.users.len() < 1000 {
            done.users.insert(user.clone());
        }
        let from = if !host.is_empty() {
            host.as_str()
        } else if a.iter().any(|&b| b != 0) {
            addr.as_str()
        } else {
            ""
        };
        let message = login_message(&name, &user, &ut_line, from);
        line.clear();
        line.extend_from_slice(&head);
        push_added(&mut line, datetime.as_deref(), "Login record time", &message);
        push_str_field(&mut line, "type", &name);
        push_num_field(&mut line, "pid", i32_at(&rec, 4));
        push_str_field(&mut line, "line", &ut_line);
        push_str_field(&mut line, "id", &text(cstr(&rec[40..44])));
        push_str_field(&mut line, "user", &user);
        push_str_field(&mut line, "remote_host", &host);
        push_str_field(&mut line, "addr", &addr);
        push_num_field(&mut line, "exit_termination", i16_at(&rec, 332));
        push_num_field(&mut line, "exit_status", i16_at(&rec, 334));
        push_num_field(&mut line, "session", i32_at(&rec, 336));
        push_num_field(&mut line, "tv_sec", sec);
        push_num_field(&mut line, "tv_usec", usec);
        push_num_field(&mut line, "offset", offset);
        line.extend_from_slice(b"}\n");
        out.write_all(&line)?;
        done.entries += 1;
        offset += RECORD as u64;
    }
    out.flush()?;
    Ok(span.into_converted(done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_text_addresses() {
        assert_eq!(type_name(7), "USER_PROCESS");
        assert_eq!(type_name(-1), "UNKNOWN(-1)");
        assert_eq!(type_name(10), "UNKNOWN(10)");
        assert_eq!(text(b"a\xe9%41%zz%"), "a%E9%2541%zz%");
        assert_eq!(text("é\u{1}".as_bytes()), "é\u{1}");
        let mut a = [0u8; 16];
        assert_eq!(addr_text(&a), "0.0.0.0");
        a[..4].copy_from_slice(&[203, 0, 113, 7]);
        assert_eq!(addr_text(&a), "203.0.113.7");
        a = [0; 16];
        a[12..].copy_from_slice(&[198, 51, 100, 24]);
        assert_eq!(addr_text(&a), "::198.51.100.24");
        a[15] = 0;
        a[12..14].copy_from_slice(&[0, 0]);
        a[14] = 1;
        assert_eq!(addr_text(&a), "::100");
        a[10..12].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(addr_text(&a), "::ffff:0.0.1.0");
    }
}
