//! Findings of tampering and hiding (run.json `findings`, the top of the
//! report), on what the tests put in: a machine folder with every form of
//! history switched off, a history linked to /dev/null, emptied and zeroed
//! login records, a journal kept in memory, an audit log with a day-long
//! silence and a last-change time set back, text logs (syslog, an access log)
//! with a silence; event logs made from copies of
//! the real samples in ../shared/samples/evtx with one record's EventID
//! changed to 1102, 104 and 4719 (checksums fixed, read back by the `evtx`
//! crate). A fixture with none of these yields no finding.

use crate::common::*;
use std::path::Path;

fn findings(case: &Path) -> Vec<serde_json::Value> {
    run_json(&runs(case)[0])["findings"].as_array().cloned().unwrap_or_default()
}

fn has(found: &[serde_json::Value], kind: &str, path: &str, at: &str) -> bool {
    found.iter().any(|f| f["kind"] == kind && f["path"] == path && f["at"].as_str().is_some_and(|a| a.starts_with(at)))
}

#[test]
fn traces_of_tampering_on_a_linux_machine() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let w = |p: &str, s: &[u8]| {
        let f = r.join(p.trim_start_matches('/'));
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, s).unwrap();
    };
    w("/etc/hostname", b"tamper01\n");
    w("/etc/os-release", b"PRETTY_NAME=\"Test\"\n");
    w("/etc/passwd", b"root:x:0:0::/root:/bin/bash\n");
    w("/etc/profile", b"# system-wide\nexport PATH\nset +o history\n");
    w("/root/.bashrc", b"alias ll='ls -l'\nHISTFILE=/dev/null\n");
    w("/home/alice/.bashrc", b"[ -n \"$PS1\" ] && unset HISTFILE\n");
    w("/home/bob/.bash_profile", b"export HISTSIZE=0\n");
    w("/home/bob/.bash_history", b"ls\n");
    std::fs::create_dir_all(r.join("home/carol")).unwrap();
    std::os::unix::fs::symlink("/dev/null", r.join("home/carol/.bash_history")).unwrap();
    w("/etc/systemd/journald.conf", b"[Journal]\nStorage=none\n");
    w("/var/log/wtmp", b"");
    w("/var/log/btmp", &[0u8; 384 * 2]);
    // Audit events every hour for 20 hours, nothing for 30, then 22 more.
    let base = 1_714_600_800i64; // 2024-05-01T22:00:00Z
    let audit: String = (0..20)
        .chain(50..72)
        .map(|h| {
            format!(
                "type=USER_LOGIN msg=audit({}.123:{h}): pid=1 uid=0 auid=0 ses=1 msg='op=login acct=\"root\" res=success'\n",
                base + h * 3600
            )
        })
        .collect();
    w("/var/log/audit/audit.log", audit.as_bytes());
    // Last changed an hour before its newest event.
    let f = std::fs::File::options().write(true).open(r.join("var/log/audit/audit.log")).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs((base + 70 * 3600) as u64)).unwrap();
    drop(f);
    // dave logged in (a session in the rotated wtmp), and his history is empty.
    let mut rec = vec![0u8; 384];
    rec[0..2].copy_from_slice(&7i16.to_le_bytes());
    rec[8..13].copy_from_slice(b"pts/0");
    rec[44..48].copy_from_slice(b"dave");
    rec[76..87].copy_from_slice(b"203.0.113.7");
    rec[340..344].copy_from_slice(&(base as i32).to_le_bytes());
    w("/var/log/wtmp.1", &rec);
    w("/home/dave/.bash_history", b"");
    w("/home/erin/.bash_history", b""); // never logged in: nothing to say
    // A text log whose lines give their zone, last changed before its newest line.
    w("/var/log/app/app.log", b"2024-05-01T12:00:00Z app started\n2024-05-01T14:30:00.5+02:00 app listening\n");
    let f = std::fs::File::options().write(true).open(r.join("var/log/app/app.log")).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_714_564_800)).unwrap(); // 2024-05-01T12:00:00Z
    drop(f);
    // Plain-text logs with a silence: a syslog file (no year, no zone: the
    // year is its last change's), a line every 20 minutes for 30 hours,
    // nothing for 36, then 34 more; an access log (zoned) with 35 silent hours.
    let syslog: String = (0..30)
        .chain(66..100)
        .flat_map(|h: i64| [0, 20, 40].map(move |m| (h, m)))
        .map(|(h, m)| {
            format!("May {:2} {:02}:{m:02}:07 tamper01 sshd[42]: Accepted publickey for root\n", 1 + (22 + h) / 24, (22 + h) % 24)
        })
        .collect();
    w("/var/log/auth.log", syslog.as_bytes());
    let f = std::fs::File::options().write(true).open(r.join("var/log/auth.log")).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_715_000_000)).unwrap(); // 2024-05-06
    drop(f);
    let access: String = (0..25)
        .chain(60..90)
        .map(|h: i64| format!("203.0.113.7 - - [{:02}/May/2024:{:02}:00:00 +0000] \"GET / HTTP/1.1\" 200 1\n", 10 + h / 24, h % 24))
        .collect();
    w("/var/log/nginx/access.log", access.as_bytes());
    let case = tempfile::tempdir().unwrap();
    let out = extract(&[r], case.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let found = findings(case.path());
    let want = [
        ("history-empty", "/home/dave/.bash_history", ""),
        ("mtime-before-last-entry", "/var/log/app/app.log", ""),
        ("history-off", "/etc/profile", "line 3"),
        ("history-off", "/root/.bashrc", "line 2"),
        ("history-off", "/home/alice/.bashrc", "line 1"),
        ("history-off", "/home/bob/.bash_profile", "line 1"),
        ("history-off", "/home/carol/.bash_history", ""),
        ("journal-not-kept", "/etc/systemd/journald.conf", "line 2"),
        ("login-records-empty", "/var/log/wtmp", ""),
        ("login-records-zeroed", "/var/log/btmp", ""),
        ("log-gap", "/var/log/audit/audit.log", "between 2024-05-02T17:00:00Z and 2024-05-04T00:00:00Z"),
        ("mtime-before-last-entry", "/var/log/audit/audit.log", ""),
        ("log-gap", "/var/log/auth.log", "between 2024-05-03T03:00:00 and 2024-05-04T16:00:00"),
        ("log-gap", "/var/log/nginx/access.log", "between 2024-05-11T00:00:00Z and 2024-05-12T12:00:00Z"),
    ];
    for (kind, path, at) in want {
        assert!(has(&found, kind, path, at), "{kind} {path} {at}: {found:#?}");
    }
    assert_eq!(found.len(), want.len(), "{found:#?}");
    let auth = found.iter().find(|f| f["path"] == "/var/log/auth.log").unwrap();
    assert!(
        auth["meaning"].as_str().unwrap().contains("no entry for 36 hours") && auth["meaning"].as_str().unwrap().contains("local time"),
        "{auth}"
    );
    for f in &found {
        assert_eq!(f["host"], "tamper01");
        assert!(f["meaning"].as_str().is_some_and(|m| m.len() > 20 && !m.contains('\n')), "{f}");
    }
    // At the top of the report, before the activity chart.
    let page = std::fs::read_to_string(case.path().join("snapsift/report.html")).unwrap();
    let (top, chart) = (page.find("Traces of tampering and hiding (14)").unwrap(), page.find("<h2>Activity</h2>").unwrap());
    assert!(top < chart);
    assert!(page.contains("/home/carol/.bash_history"));
}

/// (The Linux fixtures made by images/build.py are no such machine: their
/// files' times are drawn at random, most before their own newest line,
/// which the findings say.)
#[test]
fn a_machine_without_traces_has_no_findings() {
    let case = tempfile::tempdir().unwrap();
    assert_eq!(extract(&[&image("ntfs-win")], case.path()).code, Some(0));
    assert_eq!(findings(case.path()), Vec::<serde_json::Value>::new());
    let page = std::fs::read_to_string(case.path().join("snapsift/report.html")).unwrap();
    assert!(page.contains("Traces of tampering and hiding (0)"));
}

/// A copy of `sample` whose `nth` record's EventID is `to`: the u16 of the
/// old id found in the record's substitution values, the chunk's checksums
/// fixed, and the result read back by the `evtx` crate (which also reads
/// every other record unchanged).
fn with_event_id(sample: &[u8], nth: usize, to: u16) -> (Vec<u8>, u64) {
    let ids = |data: &[u8]| -> Vec<(u64, u64)> {
        let mut p = evtx::EvtxParser::from_buffer(data.to_vec()).unwrap();
        p.records_json_value()
            .filter_map(Result::ok)
            .map(|r| {
                let e = &r.data["Event"]["System"]["EventID"];
                (r.event_record_id, e.as_u64().or_else(|| e["#text"].as_u64()).unwrap_or(0))
            })
            .collect()
    };
    let before = ids(sample);
    let (record, old) = before[nth];
    // The record, in the first chunk (records start at 512 in a chunk).
    let chunk = 4096;
    let mut at = chunk + 512;
    loop {
        assert_eq!(&sample[at..at + 4], b"**\0\0", "record header");
        let size = u32::from_le_bytes(sample[at + 4..at + 8].try_into().unwrap()) as usize;
        if u64::from_le_bytes(sample[at + 8..at + 16].try_into().unwrap()) == record {
            break;
        }
        at += size;
    }
    let size = u32::from_le_bytes(sample[at + 4..at + 8].try_into().unwrap()) as usize;
    for off in (at + 24..at + size - 4).filter(|&o| sample[o..o + 2] == (old as u16).to_le_bytes()) {
        let mut d = sample.to_vec();
        d[off..off + 2].copy_from_slice(&to.to_le_bytes());
        let c = &mut d[chunk..chunk + 65536];
        let free = u32::from_le_bytes(c[48..52].try_into().unwrap()) as usize;
        let records_crc = snapsift::util::crc::crc32(&c[512..free]);
        c[52..56].copy_from_slice(&records_crc.to_le_bytes());
        let header: Vec<u8> = c[..120].iter().chain(&c[128..512]).copied().collect();
        let header_crc = snapsift::util::crc::crc32(&header);
        c[124..128].copy_from_slice(&header_crc.to_le_bytes());
        let after = ids(&d);
        let expected: Vec<(u64, u64)> = before.iter().map(|&(r, e)| (r, if r == record { u64::from(to) } else { e })).collect();
        if after == expected {
            return (d, record);
        }
    }
    panic!("no place for EventID {to} in record {record}");
}

#[test]
fn cleared_event_logs_and_a_changed_audit_policy() {
    let samples = repo().join("../shared/samples/evtx");
    let (Ok(security), Ok(system)) = (std::fs::read(samples.join("security.evtx")), std::fs::read(samples.join("system.evtx"))) else {
        println!("SKIPPED: {} is absent (third-party samples are not in the repo)", samples.display());
        return;
    };
    let (cleared, r1102) = with_event_id(&security, 3, 1102);
    let (policy, r4719) = with_event_id(&security, 5, 4719);
    let (sys_cleared, r104) = with_event_id(&system, 2, 104);
    let root = tempfile::tempdir().unwrap();
    let logs = root.path().join("Windows/System32/winevt/Logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("Security.evtx"), &cleared).unwrap();
    std::fs::write(logs.join("Archive-Security-2024-05-01.evtx"), &policy).unwrap();
    std::fs::write(logs.join("System.evtx"), &sys_cleared).unwrap();
    let targets = root.path().join("../t.toml");
    std::fs::write(
        &targets,
        "[[target]]\nname = \"evtx\"\ndescription = \"d\"\nscope = \"any\"\npaths = [\"/Windows/System32/winevt/Logs/*.evtx\"]\n",
    )
    .unwrap();
    let case = tempfile::tempdir().unwrap();
    let options =
        ["--host".as_ref(), "win01".as_ref(), "--targets-file".as_ref(), targets.as_os_str(), "--target".as_ref(), "evtx".as_ref()];
    let out = extract_with(&[root.path()], case.path(), &options);
    assert!(matches!(out.code, Some(0 | 1)), "{}", out.stderr);
    let found = findings(case.path());
    // A folder with no OS root: its files are under `_volumes/dir`.
    let logs = "/_volumes/dir/Windows/System32/winevt/Logs";
    assert!(has(&found, "security-log-cleared", &format!("{logs}/Security.evtx"), &format!("record {r1102}")), "{found:#?}");
    assert!(
        has(&found, "audit-policy-changed", &format!("{logs}/Archive-Security-2024-05-01.evtx"), &format!("record {r4719}")),
        "{found:#?}"
    );
    assert!(has(&found, "event-log-cleared", &format!("{logs}/System.evtx"), &format!("record {r104}")), "{found:#?}");
    let cleared =
        found.iter().filter(|f| f["kind"].as_str().is_some_and(|k| k.ends_with("cleared") || k == "audit-policy-changed")).count();
    assert_eq!(cleared, 3, "{found:#?}");
    assert!(found.iter().all(|f| f["time"].is_string() || f["kind"] == "log-gap"), "{found:#?}");
}

/// A snapshot of a running machine whose journal empties `wtmp` in the
/// last seconds (images/build-journal.py, made by the kernel): the replayed
/// file is empty, the one on disk still has the records.
#[test]
fn login_records_emptied_in_the_last_seconds() {
    for fixture in ["journal-ext4", "journal-xfs"] {
        let case = tempfile::tempdir().unwrap();
        assert!(matches!(extract(&[&image(fixture)], case.path()).code, Some(0 | 1)));
        let found = findings(case.path());
        assert!(has(&found, "login-records-cut", "/var/log/wtmp", ""), "{fixture}: {found:#?}");
        assert!(has(&found, "login-records-empty", "/var/log/wtmp", ""), "{fixture}: {found:#?}");
    }
}
