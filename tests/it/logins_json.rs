//! Login records and audit logs → JSON lines (convert::{utmp, lastlog,
//! audit, logindb}), against what the real tools say about the fixtures
//! images/build-logins.py made (images/logins/, images/expected/logins/):
//! `utmpdump`, `lastlog -R`, `ausearch -i`, and the rows put into the SQLite
//! databases. Damaged input: converted as far as it reads, said in
//! `problem` or as an InvalidData error, never a panic.

use serde_json::Value;
use snapsift::convert::{Context, Converted, audit, lastlog, logindb, utmp};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const CTX: Context = Context { host: "web01", source_path: "/var/log/x" };

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("images/logins").join(name)
}

fn expected(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/expected/logins").join(name);
    String::from_utf8(std::fs::read(p).unwrap()).unwrap()
}

/// The lines a converter wrote, parsed, after checking the contract: one
/// JSON object a line, the added fields first in order with their types.
fn lines(out: &[u8]) -> Vec<serde_json::Map<String, Value>> {
    let text = std::str::from_utf8(out).expect("UTF-8 output");
    assert!(text.is_empty() || text.ends_with('\n'));
    text.lines()
        .map(|l| {
            assert!(l.starts_with(r#"{"host":"web01","source_path":"/var/log/x","datetime":"#), "{l}");
            let (d, m) = (l.find(r#","timestamp_desc":""#).unwrap(), l.find(r#","message":""#).unwrap());
            assert!(d < m, "{l}");
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let o = v.as_object().unwrap().clone();
            assert!(o["datetime"].is_null() || o["datetime"].is_string());
            assert!(o["timestamp_desc"].is_string() && o["message"].is_string());
            o
        })
        .collect()
}

/// Every field keeps one JSON type across lines (null allowed only where
/// the format says "or null").
fn one_type_per_field(rows: &[serde_json::Map<String, Value>], nullable: &[&str]) {
    let mut kinds: HashMap<String, &'static str> = HashMap::new();
    for r in rows {
        for (k, v) in r {
            let kind = match v {
                Value::Null if k == "datetime" || nullable.contains(&k.as_str()) => continue,
                Value::Null => panic!("{k} is null"),
                Value::Bool(_) => "bool",
                Value::Number(n) => {
                    assert!(n.is_i64() || n.is_u64(), "{k}: integers only");
                    "number"
                }
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            assert_eq!(*kinds.entry(k.clone()).or_insert(kind), kind, "{k} changed type");
        }
    }
}

fn convert_utmp(path: &Path) -> (Converted, Vec<serde_json::Map<String, Value>>) {
    let mut out = Vec::new();
    let c = utmp::convert(path, &CTX, &mut out).unwrap();
    let rows = lines(&out);
    assert_eq!(rows.len() as u64, c.entries);
    one_type_per_field(&rows, &[]);
    (c, rows)
}

/// Undoes [`utmp::text`]'s `%XX`.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(x) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// utmpdump's `cleanse`: what is not printable ASCII, `[` and `]` as `?`.
fn cleanse(b: &[u8]) -> String {
    b.iter().map(|&c| if (0x20..0x7f).contains(&c) && c != b'[' && c != b']' { c as char } else { '?' }).collect()
}

const UT_TYPES: [&str; 10] = [
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

#[test]
fn utmp_files_match_utmpdump() {
    let extra: BTreeMap<String, BTreeMap<String, i64>> = serde_json::from_str(&expected("utmp.extra.json")).unwrap();
    for name in ["wtmp", "btmp", "utmp"] {
        let (c, rows) = convert_utmp(&fixture(name));
        assert_eq!(c.problem, None);
        let dump = expected(&format!("{name}.utmpdump"));
        assert_eq!(rows.len(), dump.lines().count(), "{name}");
        for (i, (row, d)) in rows.iter().zip(dump.lines()).enumerate() {
            let f: Vec<&str> = d.strip_prefix('[').unwrap().strip_suffix(']').unwrap().split("] [").collect();
            assert_eq!(f.len(), 8, "{d}");
            let t: i64 = f[0].parse().unwrap();
            let tname = usize::try_from(t).ok().and_then(|t| UT_TYPES.get(t)).map_or(format!("UNKNOWN({t})"), |s| s.to_string());
            let s = |k: &str| row[k].as_str().unwrap();
            assert_eq!(s("type"), tname, "{name}:{i}");
            assert_eq!(row["pid"].as_i64().unwrap(), f[1].parse::<i64>().unwrap());
            for (k, want) in [("id", f[2]), ("user", f[3]), ("line", f[4]), ("remote_host", f[5])] {
                assert_eq!(cleanse(&unescape(s(k))).trim_end(), want.trim_end(), "{name}:{i} {k}");
            }
            assert_eq!(s("addr"), f[6].trim_end(), "{name}:{i}");
            let time = f[7].replace(',', ".").replace("+00:00", "Z");
            assert_eq!(row["datetime"].as_str().unwrap(), time, "{name}:{i}");
            assert_eq!(row["offset"].as_u64().unwrap(), 384 * i as u64);
            let ex = extra.get(&format!("{name}:{i}"));
            for k in ["exit_termination", "exit_status", "session"] {
                assert_eq!(row[k].as_i64().unwrap(), ex.map_or(0, |e| e[k]), "{name}:{i} {k}");
            }
        }
        if name == "wtmp" {
            assert_eq!(rows[4]["message"], "USER_PROCESS alice pts/0 from 203.0.113.7");
            // Not UTF-8, a control byte and a literal %41: reversible.
            assert_eq!(rows[6]["user"], "%E9ve\u{1}");
            assert_eq!(rows[6]["remote_host"], "host%2541.example");
            assert_eq!(unescape(rows[6]["remote_host"].as_str().unwrap()), b"host%41.example");
            assert_eq!(c.first.as_deref(), Some("2024-06-01T08:58:58.500000Z"));
            assert_eq!(c.last.as_deref(), Some("2024-06-01T09:42:00.000000Z"));
        }
    }
}

#[test]
fn utmp_damage() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(fixture("wtmp")).unwrap();
    let cut = dir.path().join("wtmp");
    std::fs::write(&cut, &whole[..1000]).unwrap();
    let (c, rows) = convert_utmp(&cut);
    assert_eq!(rows.len(), 2);
    assert_eq!(c.problem.as_deref(), Some("file size 1000 is not a multiple of the 384-byte record: the last 232 bytes are not a record"));
    let junk = dir.path().join("junk");
    std::fs::write(&junk, random(384 * 50 + 17, 7)).unwrap();
    let (c, rows) = convert_utmp(&junk);
    assert_eq!(rows.len(), 50);
    assert!(c.problem.is_some());
    std::fs::write(&junk, b"").unwrap();
    assert_eq!(convert_utmp(&junk).0, Converted::default());
}

fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes `data` leaving its zero 4 KiB blocks as holes.
fn write_sparse(path: &Path, data: &[u8]) {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::create(path).unwrap();
    for (i, block) in data.chunks(4096).enumerate() {
        if block.iter().any(|&b| b != 0) {
            f.seek(SeekFrom::Start(i as u64 * 4096)).unwrap();
            f.write_all(block).unwrap();
        }
    }
    f.set_len(data.len() as u64).unwrap();
}

fn convert_lastlog(path: &Path, users: &HashMap<u32, String>) -> (Converted, Vec<serde_json::Map<String, Value>>) {
    let mut out = Vec::new();
    let c = lastlog::convert(path, &CTX, users, &mut out).unwrap();
    let rows = lines(&out);
    assert_eq!(rows.len() as u64, c.entries);
    one_type_per_field(&rows, &[]);
    (c, rows)
}

#[test]
fn lastlog_matches_lastlog_and_the_rows_put_in() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let mut data = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(fixture("lastlog.gz")).unwrap()).read_to_end(&mut data).unwrap();
    let path = dir.path().join("lastlog");
    write_sparse(&path, &data);
    let users = lastlog::passwd_users(&std::fs::read(fixture("passwd")).unwrap());
    assert_eq!(users.len(), 5);
    let (c, rows) = convert_lastlog(&path, &users);
    assert_eq!(c.problem, None);
    // What was put in, including the UID no account has.
    let put: Vec<Value> = serde_json::from_str(&expected("lastlog.rows.json")).unwrap();
    assert_eq!(rows.len(), put.len());
    for (row, p) in rows.iter().zip(&put) {
        let uid = p["uid"].as_u64().unwrap();
        assert_eq!(row["uid"].as_u64(), Some(uid));
        assert_eq!(row["user"].as_str().unwrap(), users.get(&(uid as u32)).map_or("", |s| s.as_str()));
        assert_eq!(row["line"], p["line"]);
        assert_eq!(row["remote_host"], p["host"]);
        assert_eq!(row["ll_time"], p["time"]);
    }
    assert_eq!(rows[0]["message"], "Last login of root (uid 0) on pts/0 from 203.0.113.7");
    // lastlog(8)'s own reading, column by column.
    let text = expected("lastlog.txt");
    let header = text.lines().next().unwrap();
    let (port, from, latest) = (header.find("Port").unwrap(), header.find("From").unwrap(), header.find("Latest").unwrap());
    let mut seen = 0;
    for l in text.lines().skip(1).filter(|l| !l.contains("**Never logged in**")) {
        let user = l[..port].trim();
        let row = rows.iter().find(|r| r["user"] == user).unwrap_or_else(|| panic!("{user}"));
        assert_eq!(row["line"].as_str().unwrap(), l[port..from].trim());
        assert_eq!(row["remote_host"].as_str().unwrap(), l[from..latest - 2].trim());
        // "Sat Jun  1 09:00:00 +0000 2024"
        let w: Vec<&str> = l[latest - 2..].split_whitespace().collect();
        let month =
            ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].iter().position(|m| *m == w[1]).unwrap()
                + 1;
        let want = format!("{}-{month:02}-{:02}T{}.000000Z", w[5], w[2].parse::<u32>().unwrap(), w[3]);
        assert_eq!(row["datetime"].as_str().unwrap(), want);
        seen += 1;
    }
    assert_eq!(seen, 3);
    let names: Vec<_> = text.lines().skip(1).filter(|l| l.contains("**Never logged in**")).map(|l| l.split(' ').next().unwrap()).collect();
    assert!(names.iter().all(|n| !rows.iter().any(|r| r["user"] == *n)));
}

#[test]
fn lastlog_huge_sparse_and_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lastlog");
    let far: u64 = 3_000_000_000; // ~876 GB apparent
    {
        use std::io::{Seek, SeekFrom};
        let mut f = std::fs::File::create(&path).unwrap();
        let mut rec = vec![0u8; 292];
        rec[..4].copy_from_slice(&1_717_232_400i32.to_le_bytes());
        rec[4..8].copy_from_slice(b"pts9");
        f.seek(SeekFrom::Start(5 * 292)).unwrap();
        f.write_all(&rec).unwrap();
        f.seek(SeekFrom::Start(far * 292)).unwrap();
        f.write_all(&rec).unwrap();
        f.write_all(b"tail").unwrap();
    }
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(&path).unwrap();
    if m.blocks() * 512 > 1 << 30 {
        println!("SKIPPED the huge sparse lastlog: this filesystem has no holes");
        return;
    }
    let started = std::time::Instant::now();
    let (c, rows) = convert_lastlog(&path, &HashMap::new());
    assert!(started.elapsed().as_secs() < 10, "holes are skipped");
    assert_eq!(rows.iter().map(|r| r["uid"].as_u64().unwrap()).collect::<Vec<_>>(), [5, far]);
    assert_eq!(rows[1]["user"], "");
    assert_eq!(rows[1]["message"], format!("Last login of ? (uid {far}) on pts9"));
    assert!(c.problem.unwrap().contains("the last 4 bytes are not a record"));
    let junk = dir.path().join("junk");
    std::fs::write(&junk, random(292 * 40 + 3, 9)).unwrap();
    let (_, rows) = convert_lastlog(&junk, &HashMap::new());
    assert_eq!(rows.len(), 40);
}

fn convert_audit(path: &Path) -> (Converted, Vec<serde_json::Map<String, Value>>) {
    let mut out = Vec::new();
    let c = audit::convert(path, &CTX, &mut out).unwrap();
    let rows = lines(&out);
    assert_eq!(rows.len() as u64, c.entries);
    one_type_per_field(&rows, &[]);
    for r in &rows {
        for rec in r["records"].as_array().unwrap() {
            assert!(rec.as_object().unwrap().values().all(Value::is_string), "record fields are strings");
        }
    }
    (c, rows)
}

/// ausearch -i's `k=v k=v` where decoded values may hold spaces: a word
/// `key=…` starts a field, other words continue the value.
fn ausearch_fields(body: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for w in body.split(' ') {
        match w.split_once('=') {
            Some((k, v)) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "_-[]".contains(c)) => {
                out.push((k.to_string(), v.to_string()))
            }
            _ => {
                if let Some(last) = out.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(w);
                }
            }
        }
    }
    out.into_iter().map(|(k, v)| (k, v.trim_end().to_string())).collect()
}

#[test]
fn audit_matches_ausearch() {
    let (c, rows) = convert_audit(&fixture("audit.log"));
    assert_eq!(c.problem.as_deref(), Some("2 lines are not audit records (skipped; the first is line 23)"));
    let text = expected("audit.ausearch");
    let blocks: Vec<&str> = text.split("----\n").filter(|b| !b.trim().is_empty()).collect();
    assert_eq!(rows.len(), blocks.len());
    for block in blocks {
        let recs: Vec<&str> = block.lines().filter(|l| !l.is_empty()).collect();
        let (head, _) = recs[0].split_once(" : ").unwrap();
        let node = head.strip_prefix("node=").map_or("", |h| h.split(' ').next().unwrap());
        // msg=audit(06/01/24 09:01:00.123:470)
        let stamp = head.split("msg=audit(").nth(1).unwrap().trim_end_matches(')');
        let (when, serial) = stamp.rsplit_once(':').unwrap();
        let (date, time) = when.split_once(' ').unwrap();
        let d: Vec<&str> = date.split('/').collect();
        let want_time = format!("20{}-{}-{}T{time}000Z", d[2], d[0], d[1]);
        let ev = rows
            .iter()
            .find(|r| r["serial"].as_u64().unwrap().to_string() == serial && r["node"] == node)
            .unwrap_or_else(|| panic!("no event {node} {serial}"));
        assert_eq!(ev["datetime"].as_str().unwrap(), want_time);
        let ours = ev["records"].as_array().unwrap();
        let mut want_types: Vec<&str> = recs.iter().map(|r| r.split("type=").nth(1).unwrap().split(' ').next().unwrap()).collect();
        let mut our_types: Vec<&str> = ours.iter().map(|r| r["type"].as_str().unwrap()).collect();
        want_types.sort();
        our_types.sort();
        assert_eq!(our_types, want_types, "event {serial}");
        for r in &recs {
            let (h, body) = r.split_once(" : ").unwrap();
            let t = h.split("type=").nth(1).unwrap().split(' ').next().unwrap();
            let fields = ausearch_fields(body);
            let found = ours.iter().any(|o| {
                o["type"] == t && fields.iter().all(|(k, v)| o.get(k).and_then(Value::as_str).map(str::trim_end) == Some(v.as_str()))
            });
            assert!(found, "event {serial}: no {t} record with {fields:?} in {ours:?}");
        }
    }
    let ev = |serial: u64| rows.iter().find(|r| r["serial"] == serial).unwrap();
    let tool = &ev(472)["records"][0];
    assert_eq!(tool["exe"], "/tmp/my dir/my tool");
    assert_eq!(tool["exe_hex"], "2F746D702F6D79206469722F6D7920746F6F6C");
    assert_eq!(tool["key"], "(null)");
    assert_eq!(ev(470)["records"].as_array().unwrap().len(), 7);
    assert_eq!(ev(470)["time"], "1717232460.123");
    assert_eq!(ev(100)["records"][0]["AUID"], "unset");
    assert_eq!(ev(456)["node"], "web01");
    assert_eq!(
        ev(460)["message"],
        "USER_LOGIN op=login auid=1000 uid=0 exe=/usr/sbin/sshd hostname=? addr=203.0.113.7 terminal=/dev/pts/0 res=success"
    );
    assert_eq!(c.first.as_deref(), Some("2024-06-01T08:58:20.000000Z"));
}

#[test]
fn audit_damage_and_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let rec = |serial: u64, t: &str| format!("type={t} msg=audit(1717232400.000:{serial}): pid=1 comm=\"x\"\n");
    // An overlong line, a truncated one, NULs and bad UTF-8, then records.
    let mut data = vec![b'a'; audit::MAX_LINE + 10];
    data.extend_from_slice(b"\ntype=SYSCALL msg=audit(17172\n\0\0\xff\xfe\n");
    data.extend_from_slice(rec(1, "SYSCALL").as_bytes());
    // Event 2 starts, then WINDOW other events pass, then 2's second record:
    // it was written already, so it becomes a second line (documented).
    data.extend_from_slice(rec(2, "SYSCALL").as_bytes());
    for s in 0..audit::WINDOW {
        data.extend_from_slice(rec(100 + s, "USER_LOGIN").as_bytes());
    }
    data.extend_from_slice(rec(2, "PROCTITLE").as_bytes());
    data.extend_from_slice(b"type=EXECVE msg=audit(1717232400.000:3): argc=1 a0=\xff\xfe a1=ZZ a2=414");
    std::fs::write(&path, &data).unwrap();
    let (c, rows) = convert_audit(&path);
    let p = c.problem.unwrap();
    assert!(p.contains("2 lines are not audit records") && p.contains("1 lines are longer than 1048576 bytes"), "{p}");
    assert_eq!(rows.iter().filter(|r| r["serial"] == 2).count(), 2);
    assert_eq!(rows.len() as u64, 1 + 2 + audit::WINDOW + 1);
    let last = &rows.iter().find(|r| r["serial"] == 3).unwrap()["records"][0];
    assert_eq!((&last["a0"], &last["a1"], &last["a2"]), (&Value::from("%FF%FE"), &Value::from("ZZ"), &Value::from("414")));
    // One key repeated 200,000 times in a line, and 100,000 records of one
    // event each of another type: linear, not quadratic.
    let mut flood = b"type=SYSCALL msg=audit(1.000:1):".to_vec();
    flood.extend(b" a=1".repeat(200_000));
    flood.push(b'\n');
    for i in 0..100_000 {
        flood.extend_from_slice(format!("type=T{i} msg=audit(1.000:2): x=1\n").as_bytes());
    }
    std::fs::write(&path, flood).unwrap();
    let started = std::time::Instant::now();
    let (c, rows) = convert_audit(&path);
    assert!(started.elapsed().as_secs() < 10);
    assert_eq!((c.problem, rows.len()), (None, 2));
    assert_eq!(rows[0]["records"][0]["a_200000"], "1");
    assert_eq!(rows[1]["records"].as_array().unwrap().len(), 100_000);
    std::fs::write(&path, random(200_000, 3)).unwrap();
    convert_audit(&path);
    let mut noise = random(100_000, 4);
    for (i, b) in noise.iter_mut().enumerate() {
        if i % 50 == 0 {
            *b = b'\n';
        }
    }
    let mut text = Vec::new();
    for chunk in noise.chunks(60) {
        text.extend_from_slice(b"type=X msg=audit(1.5:9): msg='");
        text.extend_from_slice(chunk);
    }
    std::fs::write(&path, text).unwrap();
    convert_audit(&path);
}

fn convert_db(
    f: fn(&Path, &Context, &mut dyn Write) -> io::Result<Converted>,
    path: &Path,
) -> io::Result<(Converted, Vec<serde_json::Map<String, Value>>)> {
    let mut out = Vec::new();
    let c = f(path, &CTX, &mut out)?;
    let rows = lines(&out);
    assert_eq!(rows.len() as u64, c.entries);
    one_type_per_field(&rows, &["logout_datetime"]);
    Ok((c, rows))
}

fn iso(usec: i64) -> String {
    // usec from 2024-06-01T00:00:00Z = 1717200000 s
    let s = usec / 1_000_000 - 1_717_200_000;
    assert!((0..86400).contains(&s));
    format!("2024-06-01T{:02}:{:02}:{:02}.{:06}Z", s / 3600, s / 60 % 60, s % 60, usec % 1_000_000)
}

#[test]
fn wtmpdb_rows_as_put_in() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wtmp.db");
    std::fs::copy(fixture("wtmp.db"), &db).unwrap();
    let (c, rows) = convert_db(logindb::convert_wtmpdb, &db).unwrap();
    assert_eq!(c.problem, None);
    let put: Vec<Value> = serde_json::from_str(&expected("wtmp.db.json")).unwrap();
    assert_eq!(rows.len(), put.len());
    let names = ["EMPTY", "BOOT_TIME", "RUNLEVEL", "USER_PROCESS"];
    for (r, p) in rows.iter().zip(&put) {
        assert_eq!(r["id"], p["ID"]);
        let t = p["Type"].as_i64().unwrap();
        assert_eq!(r["type"].as_str().unwrap(), names.get(t as usize).map_or(format!("UNKNOWN({t})"), |s| s.to_string()));
        let user: Vec<u8> = (0..p["UserHex"].as_str().unwrap().len() / 2)
            .map(|i| u8::from_str_radix(&p["UserHex"].as_str().unwrap()[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert_eq!(unescape(r["user"].as_str().unwrap()), user);
        for (k, col) in [("tty", "TTY"), ("remote_host", "RemoteHost"), ("service", "Service")] {
            assert_eq!(r[k].as_str().unwrap(), p[col].as_str().unwrap_or(""), "{k}");
        }
        let (login, logout) = (p["Login"].as_i64().unwrap_or(0), p["Logout"].as_i64().unwrap_or(0));
        assert_eq!(r["login"].as_i64(), Some(login));
        assert_eq!(r["logout"].as_i64(), Some(logout));
        assert_eq!(r["datetime"], if login > 0 { Value::from(iso(login)) } else { Value::Null });
        assert_eq!(r["logout_datetime"], if logout > 0 { Value::from(iso(logout)) } else { Value::Null });
    }
    assert_eq!(rows[1]["message"], "USER_PROCESS alice pts/0 from 203.0.113.7 (sshd), until 2024-06-01T09:30:00.000000Z");
    // Immutable and read-only: nothing was created beside the copy.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn lastlog2_rows_as_put_in() {
    let (c, rows) = convert_db(logindb::convert_lastlog2, &fixture("lastlog2.db")).unwrap();
    assert_eq!(c.problem, None);
    let put: Vec<Value> = serde_json::from_str(&expected("lastlog2.db.json")).unwrap();
    assert_eq!(rows.len(), put.len());
    for (r, p) in rows.iter().zip(&put) {
        assert_eq!(r["name"], p["Name"]);
        let t = p["Time"].as_i64().unwrap_or(0);
        assert_eq!(r["time"].as_i64(), Some(t));
        assert_eq!(r["datetime"], if t > 0 { Value::from(iso(t * 1_000_000)) } else { Value::Null });
        for (k, col) in [("tty", "TTY"), ("remote_host", "RemoteHost"), ("service", "Service")] {
            assert_eq!(r[k].as_str().unwrap(), p[col].as_str().unwrap_or(""), "{k}");
        }
    }
    assert_eq!(c.first.as_deref(), Some("2024-06-01T09:00:00.000000Z"));
}

#[test]
fn login_databases_that_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let not = dir.path().join("wtmp.db");
    std::fs::write(&not, b"this is not a database at all, just text\n").unwrap();
    for f in [logindb::convert_wtmpdb, logindb::convert_lastlog2] {
        let e = convert_db(f, &not).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("not an SQLite database"), "{e}");
        let e = convert_db(f, &fixture("other.db")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("database: no such table"), "{e}");
    }
    // Damaged databases: an error or a problem, never a panic.
    let whole = std::fs::read(fixture("wtmp.db")).unwrap();
    let mut seeds = vec![whole[..4096].to_vec(), whole[..100].to_vec()];
    let mut rotten = whole.clone();
    rotten[4096..].copy_from_slice(&random(whole.len() - 4096, 5));
    seeds.push(rotten);
    let mut header_only = whole[..100].to_vec();
    header_only.extend(random(8092, 6));
    seeds.push(header_only);
    for (i, bytes) in seeds.iter().enumerate() {
        let p = dir.path().join(format!("d{i}.db"));
        std::fs::write(&p, bytes).unwrap();
        match convert_db(logindb::convert_wtmpdb, &p) {
            Ok((c, rows)) => assert!(c.problem.is_some() || rows.len() <= 5, "{i}"),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{i}: {e}"),
        }
    }
}
