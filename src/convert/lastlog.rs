//! `/var/log/lastlog` (shadow's `struct lastlog`: `ll_time` i32, `ll_line`
//! [32], `ll_host` [256], 292 bytes) as JSON lines: one line per UID whose
//! record is not all zeros, in UID order.
//!
//! The file is indexed by UID, so one login by UID 4294967294 makes it about
//! 1.2 TB in apparent size, nearly all a hole. Only the data regions are
//! read (`lseek` `SEEK_DATA`/`SEEK_HOLE`, where the filesystem has them;
//! otherwise every byte is read and zero records are skipped).
//!
//! Each line: the added fields, then `uid` (number), `user` (string, from
//! the same host's /etc/passwd, see [`passwd_users`]; "" when no account has
//! the UID), `line`, `host` (strings, see [`super::utmp::text`]) and
//! `ll_time` (number, as stored). `datetime` is `ll_time`, null when it is 0
//! or negative (`lastlog` says "Never logged in").
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

use super::utmp::{Span, cstr, push_added, push_num_field, push_str_field, text};
use super::{Context, Converted, iso_micros, line_head};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Bytes in one `struct lastlog`.
pub const RECORD: u64 = 292;

/// UID → account name from an /etc/passwd (`name:pw:uid:…`); the first
/// account with a UID names it, as getpwuid does. Lines that are not
/// accounts (comments, NIS `+` entries, garbage) are skipped.
pub fn passwd_users(text_bytes: &[u8]) -> HashMap<u32, String> {
    let mut users = HashMap::new();
    for line in text_bytes.split(|&b| b == b'\n') {
        let mut fields = line.split(|&b| b == b':');
        let (Some(name), Some(_), Some(uid)) = (fields.next(), fields.next(), fields.next()) else { continue };
        if name.is_empty() || name.starts_with(b"#") || name.starts_with(b"+") || name.starts_with(b"-") {
            continue;
        }
        let Some(uid) = std::str::from_utf8(uid).ok().and_then(|u| u.trim().parse::<u32>().ok()) else { continue };
        users.entry(uid).or_insert_with(|| text(name));
    }
    users
}

/// The file's next data region `[start, end)` at or after `at` (holes
/// skipped), None when only a hole is left; the rest of the file when the
/// filesystem cannot say.
fn next_region(file: &File, at: u64, size: u64) -> Option<(u64, u64)> {
    if at >= size {
        return None;
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        let from = libc::off_t::try_from(at).ok()?;
        // SAFETY: lseek on a descriptor we own; no memory is passed.
        let data = unsafe { libc::lseek(fd, from, libc::SEEK_DATA) };
        if data < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) {
                return None; // only a hole is left
            }
            return Some((at, size)); // not supported here: read it all
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        match (u64::try_from(data), u64::try_from(hole)) {
            (Ok(d), Ok(h)) if d >= at && h > d => Some((d, h.min(size))),
            _ => Some((at, size)),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        Some((at, size))
    }
}

/// Converts one lastlog file; `users` names the UIDs (see [`passwd_users`]).
pub fn convert(input: &Path, ctx: &Context, users: &HashMap<u32, String>, out: &mut dyn Write) -> io::Result<Converted> {
    let file = File::open(input)?;
    let size = file.metadata()?.len();
    let mut out = BufWriter::new(out);
    let head = line_head(ctx);
    let mut done = Converted::default();
    let mut span = Span::default();
    let whole = size / RECORD;
    let mut next = 0u64; // the first record not yet read
    const BATCH: u64 = 256;
    let mut buf = vec![0u8; (BATCH * RECORD) as usize];
    let mut line = Vec::with_capacity(512);
    let mut at = 0;
    while let Some((start, end)) = next_region(&file, at, size) {
        at = end;
        let mut rec = (start / RECORD).max(next);
        let last = end.div_ceil(RECORD).min(whole);
        while rec < last {
            let n = (last - rec).min(BATCH);
            let bytes = (n * RECORD) as usize;
            let chunk = buf.get_mut(..bytes).unwrap_or_default();
            file.read_exact_at(chunk, rec * RECORD)?;
            for (i, r) in chunk.chunks_exact(RECORD as usize).enumerate() {
                if r.iter().all(|&b| b == 0) {
                    continue;
                }
                let Ok(uid) = u32::try_from(rec + i as u64) else {
                    done.problem = Some(format!("records past UID {} (offset {}) are not read", u32::MAX, (rec + i as u64) * RECORD));
                    return finish(out, done, span);
                };
                let ll_time = i32::from_le_bytes([r[0], r[1], r[2], r[3]]);
                let ll_line = text(cstr(&r[4..36]));
                let host = text(cstr(&r[36..292]));
                let user = users.get(&uid).map(String::as_str).unwrap_or("");
                let datetime = u64::try_from(ll_time).ok().filter(|&t| t > 0).map(|t| iso_micros(t * 1_000_000));
                if let Some(t) = &datetime {
                    span.see(t);
                }
                let mut message = format!("Last login of {} (uid {uid})", if user.is_empty() { "?" } else { user });
                if !ll_line.is_empty() {
                    message.push_str(" on ");
                    message.push_str(&ll_line);
                }
                if !host.is_empty() {
                    message.push_str(" from ");
                    message.push_str(&host);
                }
                line.clear();
                line.extend_from_slice(&head);
                push_added(&mut line, datetime.as_deref(), "Last login", &message);
                push_num_field(&mut line, "uid", uid);
                push_str_field(&mut line, "user", user);
                push_str_field(&mut line, "line", &ll_line);
                push_str_field(&mut line, "remote_host", &host);
                push_num_field(&mut line, "ll_time", ll_time);
                line.extend_from_slice(b"}\n");
                out.write_all(&line)?;
                done.entries += 1;
            }
            rec += n;
        }
        next = next.max(last);
    }
    if size % RECORD != 0 {
        done.problem = Some(format!(
            "file size {size} is not a multiple of the {RECORD}-byte record: the last {} bytes are not a record",
            size % RECORD
        ));
    }
    finish(out, done, span)
}

fn finish(mut out: BufWriter<&mut dyn Write>, done: Converted, span: Span) -> io::Result<Converted> {
    out.flush()?;
    Ok(span.into_converted(done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd() {
        let u = passwd_users(b"root:x:0:0::/root:/bin/sh\n# c\n+nis::\nal\xe9:x:1000:1000::/h:/bin/sh\ndup:x:0:0::/:/\nbad:x:zz\n");
        assert_eq!(u.len(), 2);
        assert_eq!(u[&0], "root");
        assert_eq!(u[&1000], "al%E9");
    }
}
