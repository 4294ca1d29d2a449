//! XFS log recovery (issue 14): the kernel's own snapshot of a running
//! machine (images/build-journal.py), read through snapsift's in-memory
//! replay, against the kernel's listing after its replay
//! (images/expected/journal-xfs.tsv) and with `-o ro,norecovery`
//! (journal-xfs.on-disk.tsv); then damaged and lying logs.

mod common;
use common::*;
use sha2::{Digest, Sha256};
use snapsift::evidence::{self, OpenOptions, Source};
use snapsift::fs::replay::Status;
use snapsift::fs::{self, FileKind, FileSystem, Probe};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NAME: &str = "journal-xfs";

fn source_of(bytes: Vec<u8>) -> Source {
    Arc::new(bytes)
}

fn fixture() -> Vec<u8> {
    std::fs::read(image(NAME)).unwrap()
}

fn open(src: &Source, replay: bool) -> Arc<dyn FileSystem> {
    match fs::probe_with(src, fs::OpenOptions { replay }) {
        Probe::Found(f) => f,
        Probe::Damaged(what, why) => panic!("{what}: {why}"),
        _ => panic!("no filesystem"),
    }
}

/// Checks every row of a kernel listing against `fs`.
fn check_listing(fs: &dyn FileSystem, listing: &str, what: &str) {
    let rows = tsv(&repo().join(format!("images/expected/{listing}")));
    assert!(rows.len() > 10, "{listing}");
    for r in &rows {
        let path = &r["path"];
        let node = fs::lookup_ci(fs, path).unwrap_or_else(|| panic!("{what}: {path} is missing"));
        let m = fs.metadata(node).unwrap();
        assert_eq!(node.to_string(), r["inode"], "{what}: {path}: inode");
        assert_eq!(m.size.to_string(), r["size"], "{what}: {path}: size");
        let (s, ns) = r["mtime"].split_once('.').unwrap();
        let mt = m.mtime.unwrap();
        assert_eq!((mt.secs.to_string(), mt.nanos), (s.to_string(), ns.parse::<u32>().unwrap()), "{what}: {path}: mtime");
        match r["type"].as_str() {
            "r" => {
                assert_eq!(m.kind(), FileKind::File, "{what}: {path}");
                let mut h = Sha256::new();
                let mut data = Vec::new();
                fs.open(node).unwrap().read_to_end(&mut data).unwrap();
                h.update(&data);
                assert_eq!(format!("{:x}", h.finalize()), r["sha256"], "{what}: {path}: content");
            }
            "l" => {
                assert_eq!(m.kind(), FileKind::Symlink, "{what}: {path}");
                assert_eq!(String::from_utf8_lossy(&fs.read_link(node).unwrap()), r["target"], "{what}: {path}: target");
            }
            "d" => assert_eq!(m.kind(), FileKind::Dir, "{what}: {path}"),
            t => panic!("{listing}: type {t}"),
        }
    }
    // Nothing listed as gone is still there.
    let other = if listing.contains("on-disk") { format!("{NAME}.tsv") } else { format!("{NAME}.on-disk.tsv") };
    let listed: Vec<String> = rows.iter().map(|r| r["path"].clone()).collect();
    for r in tsv(&repo().join(format!("images/expected/{other}"))) {
        if !listed.contains(&r["path"]) {
            assert!(fs::lookup_ci(fs, &r["path"]).is_none(), "{what}: {} should not exist", r["path"]);
        }
    }
}

#[test]
fn replayed_log_shows_what_the_machine_had() {
    let src = source_of(fixture());
    let t = Instant::now();
    let fs = open(&src, true);
    let setup = t.elapsed();
    let r = fs.replay().expect("the log was dirty");
    eprintln!("{} in {setup:?}; warnings: {:?}", r.message(), fs.warnings());
    assert_eq!(r.log, "XFS log");
    assert_eq!(r.status, Status::Replayed, "{}", r.message());
    assert!(r.transactions > 0 && r.blocks > 0 && r.unit == 512, "{}", r.message());
    assert!(r.first.as_deref().unwrap().contains(':'), "LSNs as cycle:block");
    check_listing(&*fs, &format!("{NAME}.tsv"), "replayed");
    let disk = fs.on_disk().expect("the on-disk view is kept");
    check_listing(&*disk, &format!("{NAME}.on-disk.tsv"), "on disk");
    assert!(disk.replay().is_none());
    // No inode the replay rebuilt fails its CRC.
    assert!(!fs.warnings().iter().any(|w| w.contains("checksum")), "{:?}", fs.warnings());
}

#[test]
fn no_replay_reads_as_on_disk() {
    let src = source_of(fixture());
    let fs = open(&src, false);
    let r = fs.replay().expect("the log was dirty");
    assert_eq!((r.status, r.reason.as_deref()), (Status::NotReplayed, Some("--no-replay")));
    assert!(fs.on_disk().is_none());
    check_listing(&*fs, &format!("{NAME}.on-disk.tsv"), "--no-replay");
}
