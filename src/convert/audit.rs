//! Linux audit logs (`audit.log*`, auditd's text format) as JSON lines: one
//! line per event, its records grouped as `ausearch` groups them.
//!
//! A record is one line: `[node=N ]type=T msg=audit(SEC.MSEC:SERIAL): k=v …`.
//! Records sharing (node, time, serial) are one event. They are usually
//! adjacent but not always (the kernel interleaves events of different CPUs),
//! so an event stays open until its `EOE` record, or until [`WINDOW`]
//! records of other events have passed, or the buffered events exceed
//! [`MAX_BUFFERED`] bytes (oldest first), or the file ends. A record that
//! comes after its event was written starts a second line with the same
//! `time` and `serial`.
//!
//! Each line: the added fields, then `node` (string, "" without a `node=`
//! prefix), `time` (string, as in the record: `1717232400.123`), `serial`
//! (number) and `records` (array, in file order, `EOE` included), each an
//! object of strings: `type` first, then every field in order. Quotes around
//! a value are removed; the user-space part of `msg='…'` is flattened into
//! the record's fields (as auparse does); words that are not `k=v` (AVC's
//! `avc:  denied  { read } for`) are joined into `_text`; a repeated key
//! gets `_2`, `_3`…; the enriched format's 0x1d separator is a space.
//!
//! Hex-encoded values are decoded as `ausearch -i` shows them: `proctitle`
//! (its NUL-separated arguments joined by spaces), `cmd`, `exe`, `comm`,
//! `name`, `path`, `cwd`, `data`, `acct`, and an `EXECVE` record's `aN` and
//! `aN[M]`, when unquoted and all hex digits. The decoded value takes the
//! key and the hex as it was is kept as `<key>_hex`. Bytes that are not
//! UTF-8 are `%XX` as in [`super::utmp::text`]. UIDs are not turned into
//! names (the machine's passwd is not the analysis host's).
//!
//! Lines that are not records (and lines longer than [`MAX_LINE`] bytes)
//! are skipped and counted in `problem`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

use super::utmp::{Span, push_added, push_num_field, push_str_field, text};
use super::{Context, Converted, iso_micros, line_head, push_json_str};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

/// Longest line read as a record (longer ones are skipped and counted).
pub const MAX_LINE: usize = 1 << 20;
/// Records of other events after which an open event is written.
pub const WINDOW: u64 = 64;
/// Bytes of open events after which the oldest is written.
pub const MAX_BUFFERED: usize = 32 << 20;
/// Longest `message`, in bytes.
const MAX_MESSAGE: usize = 1024;

/// The fields summarised in `message`, in this order.
const SUMMARY: &[&str] = &["op", "acct", "auid", "uid", "exe", "proctitle", "cmd", "hostname", "addr", "terminal", "res", "success", "key"];

struct Event {
    node: Vec<u8>,
    time: Vec<u8>,
    serial: u64,
    usec: Option<u64>,
    /// The records, each a JSON object, comma-separated.
    records: Vec<u8>,
    types: Vec<String>,
    summary: Vec<(&'static str, String)>,
    seen: u64,
    /// What this event adds to the buffered total.
    bytes: usize,
}

/// Reads one line of at most `max` bytes into `buf` (without the newline).
/// Ok(None) at EOF; Ok(Some(false)) for a line that was longer (skipped).
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<bool>> {
    buf.clear();
    let mut overlong = false;
    let mut any = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(if any { Some(!overlong) } else { None });
        }
        any = true;
        let (chunk, end) = match memchr::memchr(b'\n', avail) {
            Some(i) => (&avail[..i], Some(i + 1)),
            None => (avail, None),
        };
        if !overlong {
            if buf.len() + chunk.len() > max {
                overlong = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let used = end.unwrap_or(avail.len());
        r.consume(used);
        if end.is_some() {
            return Ok(Some(!overlong));
        }
    }
}

/// A record line's head: (node, type, time, serial, body).
type Head<'a> = (&'a [u8], &'a [u8], &'a [u8], u64, &'a [u8]);

fn split_record(line: &[u8]) -> Option<Head<'_>> {
    let mut rest = line;
    let mut node: &[u8] = b"";
    if let Some(r) = rest.strip_prefix(b"node=") {
        let sp = r.iter().position(|&b| b == b' ')?;
        node = &r[..sp];
        rest = &r[sp + 1..];
    }
    let r = rest.strip_prefix(b"type=")?;
    let sp = r.iter().position(|&b| b == b' ')?;
    let rtype = &r[..sp];
    let r = r[sp + 1..].strip_prefix(b"msg=audit(")?;
    let close = r.iter().position(|&b| b == b')')?;
    let stamp = &r[..close];
    let colon = stamp.iter().position(|&b| b == b':')?;
    let time = &stamp[..colon];
    let serial = std::str::from_utf8(&stamp[colon + 1..]).ok()?.parse::<u64>().ok()?;
    if rtype.is_empty() || time.is_empty() || !time.iter().all(|&b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let body = r[close + 1..].strip_prefix(b":").unwrap_or(&r[close + 1..]);
    Some((node, rtype, time, serial, body))
}

/// `SEC[.FRAC]` as microseconds.
fn time_usec(time: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(time).ok()?;
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let sec: u64 = sec.parse().ok()?;
    let mut usec = 0u64;
    for (i, c) in frac.bytes().take(6).enumerate() {
        let d = c.checked_sub(b'0').filter(|d| *d < 10)?;
        usec += u64::from(d) * 10u64.pow(5 - i as u32);
    }
    sec.checked_mul(1_000_000)?.checked_add(usec)
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t' || b == 0x1d || b == b'\r'
}

/// The fields of a record body, in order: (key, value, quoted).
fn fields(body: &[u8], out: &mut Vec<(Vec<u8>, Vec<u8>, bool)>, words: &mut Vec<u8>) {
    let mut i = 0;
    while i < body.len() {
        if is_space(body[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < body.len() && !is_space(body[i]) && body[i] != b'=' {
            i += 1;
        }
        if i >= body.len() || body[i] != b'=' {
            if !words.is_empty() {
                words.push(b' ');
            }
            words.extend_from_slice(&body[start..i]);
            continue;
        }
        let key = &body[start..i];
        i += 1; // '='
        match body.get(i) {
            Some(b'\'') if key == b"msg" => {
                let end = body[i + 1..].iter().position(|&b| b == b'\'').map_or(body.len(), |p| i + 1 + p);
                fields(&body[i + 1..end], out, words);
                i = end + 1;
            }
            Some(&q @ (b'"' | b'\'')) => {
                let end = body[i + 1..].iter().position(|&b| b == q).map_or(body.len(), |p| i + 1 + p);
                out.push((key.to_vec(), body[i + 1..end].to_vec(), true));
                i = end + 1;
            }
            _ => {
                let v = i;
                while i < body.len() && !is_space(body[i]) {
                    i += 1;
                }
                out.push((key.to_vec(), body[v..i].to_vec(), false));
            }
        }
    }
}

/// Whether a field's unquoted value is hex-encoded text, as auparse reads it.
fn encoded(rtype: &[u8], key: &[u8]) -> bool {
    match key {
        b"proctitle" | b"cmd" | b"exe" | b"comm" | b"name" | b"path" | b"cwd" | b"data" | b"acct" => true,
        _ if rtype == b"EXECVE" => {
            let Some(rest) = key.strip_prefix(b"a") else { return false };
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let tail = &rest[digits..];
            digits > 0
                && (tail.is_empty()
                    || (tail.len() > 2
                        && tail[0] == b'['
                        && tail[tail.len() - 1] == b']'
                        && tail[1..tail.len() - 1].iter().all(u8::is_ascii_digit)))
        }
        _ => false,
    }
}

fn unhex(v: &[u8]) -> Option<Vec<u8>> {
    if v.is_empty() || !v.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    v.chunks_exact(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect()
}

/// One record as a JSON object, and its summary fields added to the event.
fn record_json(rtype: &[u8], body: &[u8], ev: &mut Event) -> Vec<u8> {
    let mut list = Vec::new();
    let mut words = Vec::new();
    fields(body, &mut list, &mut words);
    let type_text = text(rtype);
    // Keys used so far, and the next suffix to try for a repeated one (a
    // hostile line may repeat one key 100,000 times).
    let mut keys: HashMap<String, u32> = HashMap::from([("type".to_string(), 2)]);
    let mut j = b"{\"type\":\"".to_vec();
    push_json_str(&mut j, &type_text);
    j.push(b'"');
    let put = |keys: &mut HashMap<String, u32>, j: &mut Vec<u8>, key: String, value: &str| {
        let mut k = key.clone();
        if let Some(&from) = keys.get(&key) {
            let mut n = from;
            loop {
                k = format!("{key}_{n}");
                n += 1;
                if !keys.contains_key(&k) {
                    break;
                }
            }
            keys.insert(key, n);
        }
        push_str_field(j, &k, value);
        keys.insert(k, 2);
    };
    for (key, value, quoted) in &list {
        let key_text = text(key);
        let decoded = if !quoted && encoded(rtype, key) { unhex(value) } else { None };
        let shown = match decoded {
            Some(mut d) => {
                if key == b"proctitle" {
                    while d.last() == Some(&0) {
                        d.pop();
                    }
                    for b in &mut d {
                        if *b == 0 {
                            *b = b' ';
                        }
                    }
                }
                let s = text(&d);
                put(&mut keys, &mut j, key_text.clone(), &s);
                put(&mut keys, &mut j, format!("{key_text}_hex"), &text(value));
                s
            }
            None => {
                let s = text(value);
                put(&mut keys, &mut j, key_text.clone(), &s);
                s
            }
        };
        if let Some(name) = SUMMARY.iter().find(|n| n.as_bytes() == key.as_slice())
            && !ev.summary.iter().any(|(k, _)| k == name)
        {
            ev.summary.push((name, shown));
        }
    }
    if !words.is_empty() {
        put(&mut keys, &mut j, "_text".into(), &text(&words));
    }
    j.push(b'}');
    // For the message only: the first few distinct types.
    if ev.types.len() < 16 && !ev.types.contains(&type_text) {
        ev.types.push(type_text);
    }
    j
}

fn write_event(out: &mut impl Write, head: &[u8], ev: &Event, span: &mut Span) -> io::Result<()> {
    let datetime = ev.usec.map(iso_micros);
    if let Some(t) = &datetime {
        span.see(t);
    }
    let mut message = ev.types.join(",");
    for (k, v) in SUMMARY.iter().filter_map(|n| ev.summary.iter().find(|(k, _)| k == n)) {
        message.push(' ');
        message.push_str(k);
        message.push('=');
        message.push_str(v);
    }
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    let mut line = Vec::with_capacity(head.len() + ev.records.len() + message.len() + 200);
    line.extend_from_slice(head);
    push_added(&mut line, datetime.as_deref(), "Audit event time", &message);
    push_str_field(&mut line, "node", &text(&ev.node));
    push_str_field(&mut line, "time", &text(&ev.time));
    push_num_field(&mut line, "serial", ev.serial);
    line.extend_from_slice(b",\"records\":[");
    line.extend_from_slice(&ev.records);
    line.extend_from_slice(b"]}\n");
    out.write_all(&line)
}

/// Converts one audit log.
pub fn convert(input: &Path, ctx: &Context, out: &mut dyn Write) -> io::Result<Converted> {
    let mut reader = BufReader::with_capacity(256 << 10, File::open(input)?);
    let mut out = BufWriter::new(out);
    let head = line_head(ctx);
    let mut done = Converted::default();
    let mut span = Span::default();
    let mut open: VecDeque<Event> = VecDeque::new();
    let mut buffered = 0usize;
    let (mut not_records, mut overlong, mut first_bad) = (0u64, 0u64, None);
    let mut line = Vec::new();
    let mut lineno = 0u64;
    let mut count = 0u64;
    while let Some(fits) = read_line(&mut reader, &mut line, MAX_LINE)? {
        lineno += 1;
        if !fits {
            overlong += 1;
            first_bad.get_or_insert(lineno);
            continue;
        }
        let l = line.strip_suffix(b"\r").unwrap_or(&line);
        if l.iter().all(|&b| is_space(b)) {
            continue;
        }
        let Some((node, rtype, time, serial, body)) = split_record(l) else {
            not_records += 1;
            first_bad.get_or_insert(lineno);
            continue;
        };
        count += 1;
        let at = match open.iter().position(|e| e.serial == serial && e.time == time && e.node == node) {
            Some(at) => at,
            None => {
                open.push_back(Event {
                    node: node.to_vec(),
                    time: time.to_vec(),
                    serial,
                    usec: time_usec(time),
                    records: Vec::new(),
                    types: Vec::new(),
                    summary: Vec::new(),
                    seen: count,
                    bytes: 0,
                });
                open.len() - 1
            }
        };
        let Some(ev) = open.get_mut(at) else { continue };
        let rec = record_json(rtype, body, ev);
        if !ev.records.is_empty() {
            ev.records.push(b',');
        }
        ev.records.extend_from_slice(&rec);
        buffered += rec.len() + 1;
        ev.bytes += rec.len() + 1;
        ev.seen = count;
        if rtype == b"EOE"
            && let Some(ev) = open.remove(at)
        {
            buffered = buffered.saturating_sub(ev.bytes);
            write_event(&mut out, &head, &ev, &mut span)?;
            done.entries += 1;
        }
        // Write the events that have been quiet for WINDOW records, and the
        // oldest while too much is buffered.
        let mut i = 0;
        while i < open.len() {
            let stale = open.get(i).is_some_and(|e| count - e.seen >= WINDOW);
            let over = i == 0 && buffered > MAX_BUFFERED;
            if stale || over {
                if let Some(ev) = open.remove(i) {
                    buffered = buffered.saturating_sub(ev.bytes);
                    write_event(&mut out, &head, &ev, &mut span)?;
                    done.entries += 1;
                }
            } else {
                i += 1;
            }
        }
    }
    for ev in open.drain(..) {
        write_event(&mut out, &head, &ev, &mut span)?;
        done.entries += 1;
    }
    out.flush()?;
    if not_records + overlong > 0 {
        let mut p = Vec::new();
        if not_records > 0 {
            p.push(format!("{not_records} lines are not audit records"));
        }
        if overlong > 0 {
            p.push(format!("{overlong} lines are longer than {MAX_LINE} bytes"));
        }
        done.problem = Some(format!("{} (skipped; the first is line {})", p.join(", "), first_bad.unwrap_or(0)));
    }
    Ok(span.into_converted(done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_and_fields() {
        let (node, t, time, serial, body) = split_record(b"node=h1 type=SYSCALL msg=audit(1717232400.123:456): a=1").unwrap();
        assert_eq!((node, t, time, serial, body), (&b"h1"[..], &b"SYSCALL"[..], &b"1717232400.123"[..], 456, &b" a=1"[..]));
        assert!(split_record(b"type=SYSCALL msg=audit(1717232").is_none());
        assert_eq!(time_usec(b"1717232400.123"), Some(1_717_232_400_123_000));
        assert_eq!(time_usec(b"1.2.3"), None);
        let mut f = Vec::new();
        let mut w = Vec::new();
        fields(b"a=1 b=\"x y\" msg='op=login acct=\"al\" res=ok' avc: denied \x1dAUID=\"unset\"", &mut f, &mut w);
        let keys: Vec<_> = f.iter().map(|(k, _, _)| String::from_utf8_lossy(k).into_owned()).collect();
        assert_eq!(keys, ["a", "b", "op", "acct", "res", "AUID"]);
        assert_eq!(f[1].1, b"x y");
        assert_eq!(w, b"avc: denied");
        assert!(encoded(b"EXECVE", b"a12[3]") && encoded(b"EXECVE", b"a0") && !encoded(b"SYSCALL", b"a0"));
        assert!(!encoded(b"EXECVE", b"a1[") && !encoded(b"EXECVE", b"argc"));
        assert_eq!(unhex(b"6C73"), Some(b"ls".to_vec()));
        assert_eq!(unhex(b"(null)"), None);
        let mut r = io::Cursor::new(b"ab\ncdefgh\nij".to_vec());
        let mut b = Vec::new();
        assert_eq!(read_line(&mut r, &mut b, 4).unwrap(), Some(true));
        assert_eq!(read_line(&mut r, &mut b, 4).unwrap(), Some(false));
        assert_eq!(read_line(&mut r, &mut b, 4).unwrap(), Some(true));
        assert_eq!(b, b"ij");
        assert_eq!(read_line(&mut r, &mut b, 4).unwrap(), None);
    }
}
