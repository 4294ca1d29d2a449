//! Binary logs made greppable, end to end: an ext4 image made by `mke2fs -d`
//! from the journal, login and audit fixtures (written by systemd, utmpdump,
//! auditd's format and sqlite3; see images/build-journald.py and
//! images/build-logins.py) is extracted, and every binary log must have its
//! JSON-lines twin, listed in the manifest with its hash. The converters'
//! field-by-field checks against journalctl, utmpdump, lastlog and ausearch
//! are in tests/journal_json.rs and tests/logins_json.rs; this checks the
//! wiring: which files get a twin, where, with what rows and switches.

use crate::common::*;
use std::io::Read;
use std::path::Path;
use std::process::Command;

const JOURNAL_DIR: &str = "var/log/journal/0123456789abcdef0123456789abcdef";

fn gunzip(src: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(src).unwrap()).read_to_end(&mut out).unwrap();
    out
}

/// The image, or None (with the reason printed) when mke2fs is missing.
fn image_with_binary_logs(dir: &Path) -> Option<std::path::PathBuf> {
    if Command::new("mke2fs").arg("-V").output().is_err() {
        eprintln!("skipped: mke2fs (e2fsprogs) is not installed");
        return None;
    }
    let root = dir.join("root");
    let put = |path: &str, data: &[u8]| {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    let fx = repo().join("images");
    put("etc/hostname", b"binlogs01\n");
    put("etc/os-release", b"NAME=\"Amazon Linux\"\nID=amzn\nVERSION_ID=\"2023\"\n");
    put("etc/passwd", &std::fs::read(fx.join("logins/passwd")).unwrap());
    put(&format!("{JOURNAL_DIR}/system.journal"), &gunzip(&fx.join("journald/compact-zstd.journal.gz")));
    put(
        &format!("{JOURNAL_DIR}/system@0005f1a2b3c4d5e6-0123456789abcdef.journal~"),
        &gunzip(&fx.join("journald/online-killed.journal.gz")),
    );
    let wtmp = std::fs::read(fx.join("logins/wtmp")).unwrap();
    put("var/log/wtmp", &wtmp);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &wtmp).unwrap();
    put("var/log/wtmp.1.gz", &gz.finish().unwrap());
    put("var/log/btmp", &std::fs::read(fx.join("logins/btmp")).unwrap());
    put("var/log/lastlog", &gunzip(&fx.join("logins/lastlog.gz")));
    put("var/log/audit/audit.log", &std::fs::read(fx.join("logins/audit.log")).unwrap());
    put("var/lib/wtmpdb/wtmp.db", &std::fs::read(fx.join("logins/wtmp.db")).unwrap());
    put("var/lib/lastlog/lastlog2.db", &std::fs::read(fx.join("logins/lastlog2.db")).unwrap());
    put("var/log/syslog", b"Jun  1 09:00:00 binlogs01 sshd[1]: a text log gets no twin\n");
    let img = dir.join("binlogs.img");
    let st = Command::new("mke2fs").args(["-q", "-F", "-t", "ext4", "-d"]).arg(&root).arg(&img).arg("48M").status().unwrap();
    assert!(st.success(), "mke2fs -d");
    Some(img)
}

/// A twin's lines, parsed; each must start with the added fields, once.
fn lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .map(|l| {
            assert!(l.starts_with(r#"{"host":"binlogs01","source_path":"/"#), "{}: {l}", p.display());
            assert_eq!(l.matches(r#""host":"#).count(), 1, "{}: a field named host twice: {l}", p.display());
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: not JSON ({e}): {l}", p.display()))
        })
        .collect()
}

#[test]
fn every_binary_log_gets_a_json_lines_twin() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(img) = image_with_binary_logs(tmp.path()) else { return };
    let case = tmp.path().join("case");
    let out =
        snapsift(&["extract".as_ref(), img.as_os_str(), "-o".as_ref(), case.as_os_str(), "--quiet".as_ref(), "--decompress".as_ref()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let tree = case.join("Host-Based Logs/binlogs01");
    let rows = manifest(&case);

    // The journal: journalctl's entries, the cursors in its order.
    let want: Vec<serde_json::Value> = String::from_utf8(gunzip(&repo().join("images/expected/journald/compact-zstd.json.gz")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got = lines(&tree.join(JOURNAL_DIR).join("system.journal.jsonl"));
    assert_eq!(got.len(), want.len(), "one line per journal entry");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g["__CURSOR"], w["__CURSOR"]);
        assert_eq!(g["MESSAGE"], w["MESSAGE"]);
        assert_eq!(g["host"], "binlogs01");
        assert_eq!(g["source_path"], format!("/{JOURNAL_DIR}/system.journal"));
        assert!(g["datetime"].is_string() && g["timestamp_desc"].is_string() && g["message"].is_string(), "{g}");
    }
    // A file left by an unclean shutdown is converted too.
    let killed = lines(&tree.join(JOURNAL_DIR).join("system@0005f1a2b3c4d5e6-0123456789abcdef.journal~.jsonl"));
    assert!(!killed.is_empty());

    // Login records: one line a 384-byte record, the rotated copy through its plain copy.
    let wtmp_records = std::fs::metadata(repo().join("images/logins/wtmp")).unwrap().len() as usize / 384;
    for name in ["wtmp.jsonl", "wtmp.1.jsonl"] {
        let l = lines(&tree.join("var/log").join(name));
        assert_eq!(l.len(), wtmp_records, "{name}");
        assert!(l.iter().all(|x| x["host"] == "binlogs01" && x["type"].is_string() && x["pid"].is_number()), "{name}");
    }
    assert_eq!(lines(&tree.join("var/log/btmp.jsonl")).len(), 1152 / 384);
    // lastlog: names from the host's own /etc/passwd (lastlog -R's reading).
    let last = lines(&tree.join("var/log/lastlog.jsonl"));
    let listed = std::fs::read_to_string(repo().join("images/expected/logins/lastlog.txt")).unwrap();
    let logged_in: Vec<&str> =
        listed.lines().skip(1).filter(|l| !l.contains("**Never logged in**")).filter_map(|l| l.split_whitespace().next()).collect();
    for user in &logged_in {
        assert!(last.iter().any(|x| x["user"] == *user), "lastlog.jsonl names {user}");
    }
    assert!(!lines(&tree.join("var/log/audit/audit.log.jsonl")).is_empty());
    assert!(!lines(&tree.join("var/lib/wtmpdb/wtmp.db.jsonl")).is_empty());
    assert!(!lines(&tree.join("var/lib/lastlog/lastlog2.db.jsonl")).is_empty());
    assert!(!tree.join("var/log/syslog.jsonl").exists(), "text logs get no twin");

    // Each twin is a manifest row with its own hash and what was converted.
    let twins: Vec<_> = rows.iter().filter(|r| r["type"] == "jsonl").collect();
    assert_eq!(twins.len(), 9, "{twins:?}"); // two journals, wtmp, wtmp.1, btmp, lastlog, audit.log, wtmp.db, lastlog2.db
    for r in twins {
        assert_eq!(r["status"], "ok", "{r:?}");
        assert!(["journal-json", "login-json", "audit-json"].contains(&r["target"].as_str()), "{r:?}");
        assert_eq!(sha256_file(&case.join(&r["output_path"])), r["sha256"], "{r:?}");
        assert!(r["reason"].contains(" converted from "), "{r:?}");
    }

    // Each kind can be switched off.
    let case2 = tmp.path().join("case2");
    let args = ["--no-journal-json", "--no-login-json", "--no-audit-json"];
    let mut argv: Vec<&std::ffi::OsStr> = vec!["extract".as_ref(), img.as_os_str(), "-o".as_ref(), case2.as_os_str(), "--quiet".as_ref()];
    argv.extend(args.iter().map(|a| std::ffi::OsStr::new(*a)));
    assert_eq!(snapsift(&argv).code, Some(0));
    assert!(manifest(&case2).iter().all(|r| r["type"] != "jsonl"), "switched off");
}
