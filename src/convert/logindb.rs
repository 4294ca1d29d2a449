//! The SQLite login databases that replace wtmp and lastlog on newer
//! distributions, as JSON lines, one a row:
//!
//! - wtmpdb's `/var/lib/wtmpdb/wtmp.db`, table `wtmp(ID INTEGER PRIMARY KEY,
//!   Type INTEGER, User TEXT NOT NULL, Login INTEGER, Logout INTEGER, TTY
//!   TEXT, RemoteHost TEXT, Service TEXT)` (wtmpdb lib/sqlite.c; times in
//!   microseconds): [`convert_wtmpdb`], in ID order. Fields: `id` (number),
//!   `type` (string: `EMPTY`, `BOOT_TIME`, `RUNLEVEL`, `USER_PROCESS` as in
//!   wtmpdb.h, else `UNKNOWN(n)`), `user`, `tty`, `remote_host`, `service`
//!   (strings), `login`, `logout` (numbers, microseconds as stored, 0 when
//!   NULL: a session still open has no logout) and `logout_datetime`
//!   (string, ISO 8601 UTC, or null). `datetime` is the login.
//! - util-linux liblastlog2's `/var/lib/lastlog/lastlog2.db`, table
//!   `Lastlog2(Name TEXT PRIMARY KEY, Time INTEGER, TTY TEXT, RemoteHost
//!   TEXT, Service TEXT)` (seconds): [`convert_lastlog2`], in Name order.
//!   Fields: `name`, `tty`, `remote_host`, `service` (strings), `time`
//!   (number, seconds as stored, 0 when NULL). `datetime` is `time`, null
//!   when 0 or negative.
//!
//! NULL text is "", text that is not UTF-8 is `%XX` as in
//! [`super::utmp::text`]; a cell of another type than the schema's is
//! converted as well as it can be and counted in `problem`.
//!
//! The copy is opened read-only and immutable (`?immutable=1`): SQLite
//! creates no journal, WAL or shm file beside it and takes no lock (a
//! `-wal` file beside the copy is therefore not read). A file that is not
//! SQLite, or has no such table, is an `InvalidData` error; a database
//! damaged part-way is converted up to the damage, said in `problem`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

use super::utmp::{Span, push_added, push_num_field, push_str_field, text};
use super::{Context, Converted, corrupt, iso_micros, line_head};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

/// `Path` as an SQLite `file:` URI with `immutable=1`.
fn uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut s = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s.push_str("?mode=ro&immutable=1");
    s
}

fn open(input: &Path) -> io::Result<Connection> {
    let mut magic = [0u8; 16];
    let n = crate::util::read_full(&mut File::open(input)?.take(16), &mut magic)?;
    if n < 16 || &magic != b"SQLite format 3\0" {
        return Err(corrupt(format!("{}: not an SQLite database (no SQLite header)", input.display())));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    Connection::open_with_flags(uri(input), flags).map_err(|e| corrupt(format!("{}: {e}", input.display())))
}

/// Counts cells whose type is not the schema's.
#[derive(Default)]
struct Cells {
    odd: u64,
}

impl Cells {
    fn text(&mut self, v: ValueRef) -> String {
        match v {
            ValueRef::Null => String::new(),
            ValueRef::Text(b) => text(b),
            ValueRef::Integer(i) => {
                self.odd += 1;
                i.to_string()
            }
            ValueRef::Real(f) => {
                self.odd += 1;
                f.to_string()
            }
            ValueRef::Blob(b) => {
                self.odd += 1;
                text(b)
            }
        }
    }

    fn int(&mut self, v: ValueRef) -> i64 {
        match v {
            ValueRef::Null => 0,
            ValueRef::Integer(i) => i,
            other => {
                self.odd += 1;
                match other {
                    ValueRef::Real(f) => f as i64,
                    ValueRef::Text(b) => std::str::from_utf8(b).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0),
                    _ => 0,
                }
            }
        }
    }
}

fn usec_iso(usec: i64) -> Option<String> {
    u64::try_from(usec).ok().filter(|&u| u > 0).map(iso_micros)
}

/// Runs `sql` and hands every row to `row`; a query the schema does not
/// have is InvalidData, damage part-way is the problem.
fn each_row(input: &Path, sql: &str, what: &str, mut row: impl FnMut(&rusqlite::Row) -> io::Result<()>) -> io::Result<Option<String>> {
    let db = open(input)?;
    let mut stmt = db.prepare(sql).map_err(|e| corrupt(format!("{}: not a {what} database: {e}", input.display())))?;
    let mut rows = stmt.query([]).map_err(|e| corrupt(format!("{}: {e}", input.display())))?;
    let mut n = 0u64;
    loop {
        match rows.next() {
            Ok(Some(r)) => {
                row(r)?;
                n += 1;
            }
            Ok(None) => return Ok(None),
            Err(e) if n == 0 => return Err(corrupt(format!("{}: {e}", input.display()))),
            Err(e) => return Ok(Some(format!("reading stopped after {n} rows: {e}"))),
        }
    }
}

fn problem(stopped: Option<String>, cells: &Cells) -> Option<String> {
    let odd = (cells.odd > 0).then(|| format!("{} cells are not of the schema's type", cells.odd));
    match (stopped, odd) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

/// wtmpdb's `Type` (wtmpdb.h).
fn wtmpdb_type(t: i64) -> String {
    match t {
        0 => "EMPTY".into(),
        1 => "BOOT_TIME".into(),
        2 => "RUNLEVEL".into(),
        3 => "USER_PROCESS".into(),
        n => format!("UNKNOWN({n})"),
    }
}

/// Converts a wtmpdb database (`wtmp.db`).
pub fn convert_wtmpdb(input: &Path, ctx: &Context, out: &mut dyn Write) -> io::Result<Converted> {
    let mut out = BufWriter::new(out);
    let head = line_head(ctx);
    let (mut done, mut span, mut cells) = (Converted::default(), Span::default(), Cells::default());
    let mut line = Vec::with_capacity(512);
    let sql = "SELECT ID, Type, User, Login, Logout, TTY, RemoteHost, Service FROM wtmp ORDER BY ID";
    let stopped = each_row(input, sql, "wtmpdb", |r| {
        let v = |i: usize| r.get_ref(i).unwrap_or(ValueRef::Null);
        let id = cells.int(v(0));
        let typ = wtmpdb_type(cells.int(v(1)));
        let user = cells.text(v(2));
        let (login, logout) = (cells.int(v(3)), cells.int(v(4)));
        let (tty, rhost, service) = (cells.text(v(5)), cells.text(v(6)), cells.text(v(7)));
        let datetime = usec_iso(login);
        if let Some(t) = &datetime {
            span.see(t);
        }
        let logout_iso = usec_iso(logout);
        let mut message = super::utmp::login_message(&typ, &user, &tty, &rhost);
        if !service.is_empty() {
            message.push_str(&format!(" ({service})"));
        }
        if let Some(t) = &logout_iso {
            message.push_str(&format!(", until {t}"));
        }
        line.clear();
        line.extend_from_slice(&head);
        push_added(&mut line, datetime.as_deref(), "Login time", &message);
        push_num_field(&mut line, "id", id);
        push_str_field(&mut line, "type", &typ);
        push_str_field(&mut line, "user", &user);
        push_str_field(&mut line, "tty", &tty);
        push_str_field(&mut line, "remote_host", &rhost);
        push_str_field(&mut line, "service", &service);
        push_num_field(&mut line, "login", login);
        push_num_field(&mut line, "logout", logout);
        match &logout_iso {
            Some(t) => push_str_field(&mut line, "logout_datetime", t),
            None => line.extend_from_slice(b",\"logout_datetime\":null"),
        }
        line.extend_from_slice(b"}\n");
        done.entries += 1;
        out.write_all(&line)
    })?;
    out.flush()?;
    done.problem = problem(stopped, &cells);
    Ok(span.into_converted(done))
}

/// Converts a lastlog2 database (`lastlog2.db`).
pub fn convert_lastlog2(input: &Path, ctx: &Context, out: &mut dyn Write) -> io::Result<Converted> {
    let mut out = BufWriter::new(out);
    let head = line_head(ctx);
    let (mut done, mut span, mut cells) = (Converted::default(), Span::default(), Cells::default());
    let mut line = Vec::with_capacity(512);
    let sql = "SELECT Name, Time, TTY, RemoteHost, Service FROM Lastlog2 ORDER BY Name";
    let stopped = each_row(input, sql, "lastlog2", |r| {
        let v = |i: usize| r.get_ref(i).unwrap_or(ValueRef::Null);
        let name = cells.text(v(0));
        let time = cells.int(v(1));
        let (tty, rhost, service) = (cells.text(v(2)), cells.text(v(3)), cells.text(v(4)));
        let datetime = time.checked_mul(1_000_000).and_then(usec_iso);
        if let Some(t) = &datetime {
            span.see(t);
        }
        let mut message = format!("Last login of {name}");
        if !tty.is_empty() {
            message.push_str(&format!(" on {tty}"));
        }
        if !rhost.is_empty() {
            message.push_str(&format!(" from {rhost}"));
        }
        if !service.is_empty() {
            message.push_str(&format!(" ({service})"));
        }
        line.clear();
        line.extend_from_slice(&head);
        push_added(&mut line, datetime.as_deref(), "Last login", &message);
        push_str_field(&mut line, "name", &name);
        push_str_field(&mut line, "tty", &tty);
        push_str_field(&mut line, "remote_host", &rhost);
        push_str_field(&mut line, "service", &service);
        push_num_field(&mut line, "time", time);
        line.extend_from_slice(b"}\n");
        done.entries += 1;
        out.write_all(&line)
    })?;
    out.flush()?;
    done.problem = problem(stopped, &cells);
    Ok(span.into_converted(done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(uri(Path::new("/c/a b?#%.db")), "file:/c/a%20b%3F%23%25.db?mode=ro&immutable=1");
        assert_eq!(wtmpdb_type(3), "USER_PROCESS");
        assert_eq!(wtmpdb_type(-7), "UNKNOWN(-7)");
    }
}
