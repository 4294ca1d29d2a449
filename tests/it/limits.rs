//! Resource limits (`--max-file-size`, `--max-output`, `--max-depth`,
//! `--max-dir-entries`), sparse output, and how files that cannot be read
//! whole are reported.

use crate::common::*;
use std::ffi::OsStr;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

/// `snapsift extract <evidence> -o <case> [extra…]` (not quiet: the summary
/// lines are part of what is checked).
fn run(evidence: &Path, case: &Path, extra: &[&str]) -> Output {
    let mut a: Vec<&OsStr> = vec!["extract".as_ref(), evidence.as_os_str(), "-o".as_ref(), case.as_os_str()];
    a.extend(extra.iter().map(OsStr::new));
    snapsift(&a)
}

/// images/sparse-ext4: /var/log/lastlog, 100 GiB apparent size, three 4 KiB
/// records at 0, 1 GiB and the last 4 KiB (images/build-hostile.py).
const SPARSE_SIZE: u64 = 100 << 30;
/// `sha256sum` of the file mke2fs was given (images/README.md).
const SPARSE_SHA256: &str = "4e43e0abf462f0edbcba11f665ef489d5af0885425b54f480ab4174e22639a18";

fn record(off: u64) -> Vec<u8> {
    format!("record at byte {off:016}\n").repeat(128).into_bytes()
}

/// Hashing 100 GiB of holes takes over a minute: a plain `cargo test`
/// copies the first 2 GiB (two of the three records, and holes),
/// `SNAPSIFT_FULL_TESTS=1` the whole file.
#[test]
fn a_100_gib_sparse_log_is_copied_whole_and_stays_sparse() {
    let gib = campaign("SPARSE_COPY_GIB", 2, 100).clamp(2, 100);
    let whole = gib == 100;
    let case = tempfile::tempdir().unwrap();
    let cap = if whole { "0".to_string() } else { format!("{gib}G") };
    let out = run(&image("sparse-ext4"), case.path(), &["-q", "--max-file-size", &cap]);
    assert_eq!(out.code, Some(if whole { 0 } else { 1 }), "{}", out.stderr);
    let row = manifest(case.path()).into_iter().find(|r| r["image_path"] == "/var/log/lastlog" && r["type"] == "file").unwrap();
    assert_eq!(row["size"], SPARSE_SIZE.to_string());
    let copied = if whole { SPARSE_SIZE } else { gib << 30 };
    if whole {
        assert_eq!(row["status"], "ok");
        assert_eq!(row["sha256"], SPARSE_SHA256);
    } else {
        assert_eq!(row["status"], "truncated", "{}", row["reason"]);
    }
    let copy = std::fs::File::open(case.path().join(&row["output_path"])).unwrap();
    let m = copy.metadata().unwrap();
    assert_eq!(m.len(), copied);
    if !whole {
        assert_eq!(sha256_file(&case.path().join(&row["output_path"])), row["sha256"], "the hash is of what was copied");
    }
    // Three 4 KiB records: holes stayed holes (a filesystem may round each
    // up to a few blocks; nowhere near 100 GiB).
    assert!(m.blocks() * 512 <= 1 << 20, "{} bytes allocated for a file of 12 KiB of data", m.blocks() * 512);
    for off in [0, 1 << 30, SPARSE_SIZE - 4096].into_iter().filter(|&o| o < copied) {
        let mut b = vec![0u8; 4096];
        copy.read_exact_at(&mut b, off).unwrap();
        assert_eq!(b, record(off), "record at {off}");
    }
    let mut hole = vec![1u8; 4096];
    copy.read_exact_at(&mut hole, copied - copied / 4).unwrap();
    assert!(hole.iter().all(|&b| b == 0));
}

#[test]
fn max_file_size_copies_the_head_of_larger_files_and_marks_them_truncated() {
    let img = image("linux-gpt");
    let full = tempfile::tempdir().unwrap();
    assert_eq!(run(&img, full.path(), &["-q"]).code, Some(0));
    let whole: std::collections::HashMap<String, String> = manifest(full.path())
        .into_iter()
        .filter(|r| r["type"] == "file" && r["status"] == "ok")
        .map(|r| (format!("{}{}", r["volume"], r["image_path"]), r["output_path"].clone()))
        .collect();
    let case = tempfile::tempdir().unwrap();
    let out = run(&img, case.path(), &["--max-file-size", "1K"]);
    assert_eq!(out.code, Some(1), "a truncated file makes the exit status 1: {}", out.stderr);
    assert!(out.stderr.contains("larger than --max-file-size"), "{}", out.stderr);
    let (mut cut, mut kept) = (0, 0);
    for r in manifest(case.path()).into_iter().filter(|r| r["type"] == "file" && r["status"] != "skipped") {
        let size: u64 = r["size"].parse().unwrap();
        let copy = std::fs::read(case.path().join(&r["output_path"])).unwrap();
        assert_eq!(sha256_file(&case.path().join(&r["output_path"])), r["sha256"], "the hash is of what was copied");
        let original = std::fs::read(full.path().join(&whole[&format!("{}{}", r["volume"], r["image_path"])])).unwrap();
        if size > 1024 {
            assert_eq!(r["status"], "truncated", "{}", r["image_path"]);
            assert!(r["reason"].contains("first 1024 of") && r["reason"].contains("--max-file-size"), "{}", r["reason"]);
            assert_eq!(copy[..], original[..1024], "{}", r["image_path"]);
            cut += 1;
        } else {
            assert_eq!(r["status"], "ok", "{}", r["image_path"]);
            assert_eq!(copy, original);
            kept += 1;
        }
    }
    assert!(cut > 5 && kept > 5, "{cut} truncated, {kept} whole");
}

/// Sum of the sizes of every file below `dir`.
fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        total += if t.is_dir() { tree_bytes(&e.path()) } else { e.metadata().unwrap().len() };
    }
    total
}

#[test]
fn max_output_stops_starting_copies_and_says_so() {
    // linux-gpt holds about 70 KiB of logs.
    let cap = 40 * 1024;
    let case = tempfile::tempdir().unwrap();
    let out = run(&image("linux-gpt"), case.path(), &["--max-output", "40K"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("--max-output reached: copying stopped after"), "{}", out.stderr);
    let rows = manifest(case.path());
    let files: Vec<_> =
        rows.iter().filter(|r| r["type"] == "file" && r["status"] != "skipped" || r["reason"] == "--max-output reached").collect();
    let stopped = files.iter().filter(|r| r["status"] == "skipped").count();
    let copied: u64 = files.iter().filter(|r| r["status"] == "ok").map(|r| r["size"].parse::<u64>().unwrap()).sum();
    assert!(stopped > 0 && copied > 0, "{stopped} stopped, {copied} bytes copied");
    assert!(copied <= cap, "{copied} bytes copied with a cap of {cap}");
    assert!(tree_bytes(&case.path().join("Host-Based Logs")) <= cap);
    assert!(files.iter().all(|r| r["status"] == "ok" || r["reason"] == "--max-output reached"), "nothing else went wrong");
    let j = run_json(&runs(case.path())[0]);
    assert_eq!(j["counts"]["over_max_output"].as_u64(), Some(stopped as u64));
}

#[test]
fn deep_and_wide_directories_are_bounded_and_reported() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::write(r.join("etc/hostname"), "deep01\n").unwrap();
    let deep = r.join("var/log/a/b/c/d/e/f/g/h");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("deep.log"), "deep\n").unwrap();
    std::fs::write(r.join("var/log/a/shallow.log"), "shallow\n").unwrap();
    std::fs::create_dir_all(r.join("var/log/wide")).unwrap();
    for i in 0..50 {
        std::fs::write(r.join(format!("var/log/wide/{i}.log")), "x\n").unwrap();
    }
    let case = tempfile::tempdir().unwrap();
    let out = run(r, case.path(), &["-q", "--max-depth", "6", "--max-dir-entries", "20"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let rows = manifest(case.path());
    let ok: Vec<&str> = rows.iter().filter(|r| r["status"] == "ok").map(|r| r["image_path"].as_str()).collect();
    assert!(ok.contains(&"/var/log/a/shallow.log"), "{ok:?}");
    assert!(!ok.contains(&"/var/log/a/b/c/d/e/f/g/h/deep.log"));
    assert_eq!(ok.iter().filter(|p| p.starts_with("/var/log/wide/")).count(), 20);
    let reason = |flag: &str| rows.iter().find(|r| r["status"] == "error" && r["reason"].contains(flag)).map(|r| r["image_path"].clone());
    assert_eq!(reason("--max-dir-entries").as_deref(), Some("/var/log/wide"));
    assert!(reason("--max-depth").is_some_and(|p| p.starts_with("/var/log/a/b/c/")), "{rows:?}");
}

/// A file whose data lies past the end of a truncated image: what was read
/// is kept, the row is `partial` and names the missing bytes, and the copy
/// is not padded to the file's size.
#[test]
fn a_file_cut_by_a_truncated_image_is_partial_with_the_missing_range() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::fs::read(image("sparse-ext4")).unwrap();
    // lastlog's records are in blocks 1166, 1167, 1168 (4 KiB): keep the
    // first one only.
    let img = dir.path().join("cut.img");
    std::fs::write(&img, &data[..1167 * 4096]).unwrap();
    let case = tempfile::tempdir().unwrap();
    let out = run(&img, case.path(), &["-q"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let row = manifest(case.path()).into_iter().find(|r| r["image_path"] == "/var/log/lastlog" && r["type"] == "file").unwrap();
    assert_eq!(row["status"], "partial");
    let gib = 1u64 << 30;
    assert!(row["reason"].contains(&format!("read error at byte {gib} of {SPARSE_SIZE}")), "{}", row["reason"]);
    assert!(row["reason"].contains(&format!("bytes {gib}-{SPARSE_SIZE} missing")), "{}", row["reason"]);
    let copy = case.path().join(&row["output_path"]);
    assert_eq!(std::fs::metadata(&copy).unwrap().len(), gib, "the copy ends where reading stopped");
    let mut head = vec![0u8; 4096];
    std::fs::File::open(&copy).unwrap().read_exact_at(&mut head, 0).unwrap();
    assert_eq!(head, record(0));
    assert_eq!(sha256_file(&copy), row["sha256"]);
}

/// A directory block that cannot be parsed: the files named there cannot
/// be listed, so the directory's own row says what is missing.
#[test]
fn a_damaged_directory_block_is_a_manifest_row() {
    let mut data = std::fs::read(image("hostile-ext4")).unwrap();
    // /var/log's entry for `syslog` (name_len 6, file type 1), in 1 KiB
    // blocks: break the first record length of its block.
    let at = data.windows(8).position(|w| w == b"\x06\x01syslog").unwrap() - 6;
    let block = at / 1024 * 1024;
    data[block + 4..block + 6].copy_from_slice(&3u16.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("damaged-dir.img");
    std::fs::write(&img, data).unwrap();
    let case = tempfile::tempdir().unwrap();
    let out = run(&img, case.path(), &["-q"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let rows = manifest(case.path());
    let row = rows.iter().find(|r| r["image_path"] == "/var/log").expect("a row for the damaged directory");
    assert_eq!(row["status"], "error");
    assert_eq!(row["reason"], "directory listed in part: 1 damaged block(s) skipped; the entries there are missing");
    assert!(!rows.iter().any(|r| r["image_path"] == "/var/log/syslog"));
}
