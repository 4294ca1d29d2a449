//! XFS log recovery (issue 14): the kernel's own snapshot of a running
//! machine (images/build-journal.py), read through snapsift's in-memory
//! replay, against the kernel's listing after its replay
//! (images/expected/journal-xfs.tsv) and with `-o ro,norecovery`
//! (journal-xfs.on-disk.tsv); then damaged and lying logs.

use crate::common::*;
use sha2::{Digest, Sha256};
use snapsift::evidence::Source;
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

/// Byte offset and length of the fixture's internal log (from its superblock).
fn log_region(img: &[u8]) -> (usize, usize) {
    let be32 = |o: usize| u32::from_be_bytes(img[o..o + 4].try_into().unwrap()) as u64;
    let be64 = |o: usize| u64::from_be_bytes(img[o..o + 8].try_into().unwrap());
    let (bs, agblocks, logstart, logblocks, agblklog) = (be32(4), be32(84), be64(48), be32(96), img[124]);
    let linear = (logstart >> agblklog) * agblocks + (logstart & ((1 << agblklog) - 1));
    ((linear * bs) as usize, (logblocks * bs) as usize)
}

/// Record headers (cycle 1: the ones written since mkfs) as (offset, h_len).
fn records(img: &[u8]) -> Vec<(usize, u32)> {
    let (start, len) = log_region(img);
    (start..start + len)
        .step_by(512)
        .filter(|&o| img[o..o + 4] == [0xFE, 0xED, 0xBA, 0xBE] && img[o + 4..o + 8] == [0, 0, 0, 1])
        .map(|o| (o, u32::from_be_bytes(img[o + 12..o + 16].try_into().unwrap())))
        .collect()
}

/// Opens a damaged image: quickly, without a panic; files the log never
/// touched read as on disk; the replay says what became of the log, and
/// why when it did not replay it all. Returns the replay's message.
fn survives(img: Vec<u8>, what: &str) -> (Status, String) {
    let src = source_of(img);
    let t = Instant::now();
    let fs = open(&src, true);
    let r = fs.replay().unwrap_or_else(|| panic!("{what}: the replay is accounted for"));
    let msg = r.message();
    eprintln!("{what}: {msg}");
    assert!(msg.contains("XFS log"), "{what}: {msg}");
    if r.status != Status::Replayed {
        assert!(r.reason.as_deref().is_some_and(|s| !s.is_empty()), "{what}: a reason: {msg}");
    }
    for row in tsv(&repo().join(format!("images/expected/{NAME}.on-disk.tsv"))) {
        if row["journal"] != "same" || row["type"] != "r" {
            continue;
        }
        let node = fs::lookup_ci(&*fs, &row["path"]).unwrap_or_else(|| panic!("{what}: {} missing ({msg})", row["path"]));
        let mut data = Vec::new();
        fs.open(node).unwrap().read_to_end(&mut data).unwrap();
        assert_eq!(format!("{:x}", Sha256::digest(&data)), row["sha256"], "{what}: {} ({msg})", row["path"]);
    }
    assert!(t.elapsed() < Duration::from_secs(10), "{what}: took {:?}", t.elapsed());
    (r.status, msg)
}

#[test]
fn damaged_logs_never_make_things_worse() {
    let seeds = campaign("JOURNAL_FUZZ_SEEDS", 60, 200);
    let clean = fixture();
    let (start, len) = log_region(&clean);
    let written = records(&clean).last().map(|&(o, l)| o + 512 + l as usize).unwrap() - start;
    let mut stopped = 0;
    for seed in 1..=seeds {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut img = clean.clone();
        for _ in 0..1 + rng.next() % 4 {
            // Mostly where the records are, sometimes anywhere in the log.
            let span = if rng.next().is_multiple_of(4) { len } else { written };
            let at = start + (rng.next() % span as u64) as usize;
            img[at] ^= 1 << (rng.next() % 8);
        }
        let (status, _) = survives(img, &format!("seed {seed}"));
        stopped += usize::from(status != Status::Replayed);
    }
    // CRCs catch damage to records: most seeds stop somewhere.
    assert!(stopped > 0, "no damage was ever noticed");
}

#[test]
fn zeroed_log_reads_as_on_disk() {
    let mut img = fixture();
    let (start, len) = log_region(&img);
    img[start..start + len].fill(0);
    let src = source_of(img);
    let fs = open(&src, true);
    let r = fs.replay().unwrap();
    assert_eq!(r.status, Status::NotReplayed, "{}", r.message());
    assert!(r.message().contains("zeroed"), "{}", r.message());
    check_listing(&*fs, &format!("{NAME}.on-disk.tsv"), "zeroed log");
}

#[test]
fn truncated_logs_are_bounded() {
    let clean = fixture();
    let (start, _) = log_region(&clean);
    // The image ends inside the log.
    let (status, msg) = survives_truncated(clean[..start + 65536].to_vec());
    assert_eq!(status, Status::NotReplayed, "{msg}");
    assert!(msg.contains("past the end of the image"), "{msg}");
    // The log's last records never written (zeros from the middle on): the
    // head moves back, the records before it replay.
    let recs = records(&clean);
    let mut img = clean.clone();
    let cut = recs[recs.len() / 2].0;
    img[cut..cut + 512 * 200].fill(0);
    let (status, msg) = survives(img, "zeros from the middle");
    assert_eq!(status, Status::Replayed, "{msg}");
    assert!(!msg.contains("10 transactions"), "fewer transactions: {msg}");
}

/// A truncated image: files whose blocks are gone fail; no panic, and the
/// log's fate is said.
fn survives_truncated(img: Vec<u8>) -> (Status, String) {
    let src = source_of(img);
    let fs = open(&src, true);
    let r = fs.replay().unwrap();
    let _ = fs.read_dir(fs.root());
    (r.status, r.message())
}

#[test]
fn lying_logs_are_bounded() {
    let clean = fixture();
    let recs = records(&clean);
    // The first long record after the tail (tail: 1:34, a record of 32 KiB).
    let &(big, _) = recs.iter().find(|&&(_, l)| l > 16384).unwrap();
    let put = |img: &mut Vec<u8>, at: usize, v: u32| img[at..at + 4].copy_from_slice(&v.to_be_bytes());
    type Lie = (&'static str, Box<dyn Fn(&mut Vec<u8>)>, &'static str, Status);
    let first_block = log_region(&clean).0;
    let lies: Vec<Lie> = vec![
        ("h_len", Box::new(move |i| put(i, big + 12, 0x7fff_ffff)), "bad header (length", Status::Stopped),
        ("h_size", Box::new(move |i| put(i, big + 320, 1 << 20)), "over the 256 KiB maximum", Status::Stopped),
        ("short h_len", Box::new(move |i| put(i, big + 12, 512)), "record at block", Status::Stopped),
        ("num_logops", Box::new(move |i| put(i, big + 40, 100_000)), "operations cannot fit", Status::Stopped),
        // Block 0 claims a cycle no record has: no head can be found.
        ("cycle", Box::new(move |i| put(i, first_block + 4, 5)), "log head not found", Status::NotReplayed),
        (
            "log_blocks",
            Box::new(|i| {
                i[96..100].copy_from_slice(&0x0010_0000u32.to_be_bytes());
                fix_sb_crc(i);
            }),
            "log claims more blocks than the filesystem",
            Status::NotReplayed,
        ),
    ];
    for (name, lie, says, want) in lies {
        let mut img = clean.clone();
        lie(&mut img);
        let (status, msg) = survives(img, name);
        assert!(msg.contains(says), "{name}: {msg}");
        assert_eq!(status, want, "{name}: {msg}");
    }
}

fn fix_sb_crc(img: &mut [u8]) {
    img[224..228].fill(0);
    let crc = !crc32c(&img[..512]);
    img[224..228].copy_from_slice(&crc.to_le_bytes());
}

/// Plain bitwise CRC-32C (seed !0, not inverted at the end, as XFS uses it).
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    crc
}

/// The whole binary on a damaged snapshot: extraction finishes, the run
/// says what became of the log.
#[test]
fn end_to_end_on_a_lying_log() {
    let mut img = fixture();
    let (start, len) = log_region(&img);
    img[start..start + len].fill(0);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("zeroed.img");
    std::fs::write(&path, &img).unwrap();
    let case = tmp.path().join("case");
    let out = snapsift_with_limit(
        &["extract".as_ref(), path.as_os_str(), "-o".as_ref(), case.as_os_str(), "--quiet".as_ref()],
        Duration::from_secs(60),
    );
    assert!(matches!(out.code, Some(0 | 1)), "{}", out.stderr);
    let run = run_json(&runs(&case)[0]);
    let j = &run["evidence"][0]["volumes"][0]["journal"];
    assert_eq!(j["status"], "not replayed", "{j}");
    assert!(j["message"].as_str().unwrap().contains("zeroed"), "{j}");
    assert!(!manifest(&case).is_empty());
}

/// Every node reachable from the root: path → (type, size, sha256 or link
/// target), as `images/`'s listings have them.
/// Bytes of each file `tree_of` hashes (every fixture file is smaller).
const TREE_READ_CAP: u64 = 64 << 20;

fn tree_of(fs: &dyn FileSystem) -> std::collections::BTreeMap<String, (String, u64, String)> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![(fs.root(), String::new())];
    while let Some((dir, path)) = stack.pop() {
        let Ok(entries) = fs.read_dir(dir) else {
            out.insert(format!("{path}/"), ("unreadable".into(), 0, String::new()));
            continue;
        };
        for e in entries {
            let p = format!("{path}/{}", String::from_utf8_lossy(&e.name));
            let Ok(m) = fs.metadata(e.node) else {
                out.insert(p, ("unreadable".into(), 0, String::new()));
                continue;
            };
            let v = match m.kind() {
                FileKind::Dir => {
                    stack.push((e.node, p.clone()));
                    ("d".into(), 0, String::new())
                }
                FileKind::Symlink => {
                    ("l".into(), 0, fs.read_link(e.node).map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_default())
                }
                FileKind::File => {
                    // Streamed, and only the first 64 MiB: a forged size (a
                    // flipped high bit) makes a file of gigabytes of holes.
                    let mut sha = Sha256::new();
                    let h = fs
                        .open(e.node)
                        .and_then(|r| std::io::copy(&mut r.take(TREE_READ_CAP), &mut sha))
                        .map(|_| format!("{:x}", sha.finalize()));
                    ("r".into(), m.size, h.unwrap_or_else(|e| format!("error: {e}")))
                }
                k => (format!("{k:?}"), 0, String::new()),
            };
            out.insert(p, v);
        }
    }
    out
}

/// Opt-in (`XFS_LOG_CASES=<dir> cargo test --test it -- --ignored kernel_replays_agree`):
/// dirty snapshots the kernel made (`<case>.img`) against what the kernel
/// showed after its own replay of a copy (`<case>.kernel.tsv`: path, type,
/// size, sha256, link target; see `images/check-xfs-log.sh`).
#[test]
#[ignore]
fn kernel_replays_agree() {
    let Ok(dir) = std::env::var("XFS_LOG_CASES") else { return };
    let mut failed = Vec::new();
    let mut cases: Vec<_> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.to_string_lossy().ends_with(".kernel.tsv")).collect();
    cases.sort();
    assert!(!cases.is_empty(), "XFS_LOG_CASES={dir} holds no <case>.kernel.tsv (images/check-xfs-log.sh makes them)");
    for tsv_path in cases {
        let case = tsv_path.file_name().unwrap().to_string_lossy().trim_end_matches(".kernel.tsv").to_string();
        let img = tsv_path.with_file_name(format!("{case}.img"));
        let src = snapsift::evidence::open(&img, &snapsift::evidence::OpenOptions { temp_dir: None, progress: None }).unwrap().source;
        let t = Instant::now();
        let fs = open(&src, true);
        let msg = fs.replay().map(|r| r.message()).unwrap_or_else(|| "no replay".into());
        let ours = tree_of(&*fs);
        let kernel: std::collections::BTreeMap<String, (String, u64, String)> = std::fs::read_to_string(&tsv_path)
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let v = if f[1] == "l" { f[4].to_string() } else { f[3].to_string() };
                (f[0].to_string(), (f[1].to_string(), f[2].parse().unwrap(), v))
            })
            .collect();
        let diff: Vec<_> = kernel
            .iter()
            .filter(|(p, v)| ours.get(*p) != Some(v))
            .map(|(p, _)| p.clone())
            .chain(ours.keys().filter(|p| !kernel.contains_key(*p)).cloned())
            .collect();
        eprintln!(
            "{case}: {msg} ({:?}); {} nodes, {} differ: {:?}; warnings {:?}",
            t.elapsed(),
            kernel.len(),
            diff.len(),
            &diff[..diff.len().min(8)],
            fs.warnings()
        );
        // The replay mattered: the on-disk view differs from the kernel's.
        let before = fs.on_disk().map(|d| tree_of(&*d)).unwrap_or_default();
        let changed = kernel.iter().filter(|(p, v)| before.get(*p) != Some(v)).count();
        eprintln!("  as on disk, {changed} of them differ");
        assert!(changed > 0, "{case}: the snapshot needed no replay");
        for p in diff.iter().take(3) {
            eprintln!("  {p}: kernel {:?} ours {:?}", kernel.get(p), ours.get(p));
        }
        if !diff.is_empty() {
            failed.push(case);
        }
    }
    assert!(failed.is_empty(), "differ from the kernel's replay: {failed:?}");
}

/// Damage the CRCs cannot catch (each damaged record's CRC recomputed), so
/// the bytes reach the operation, transaction and item parsers: no panic,
/// no hang, the log's fate said, every file still walked.
#[test]
fn forged_records_reach_the_item_parsers() {
    let seeds = campaign("JOURNAL_FUZZ_SEEDS", 60, 200);
    let clean = fixture();
    let (start, _) = log_region(&clean);
    let tail = start + 34 * 512;
    let recs: Vec<_> = records(&clean).into_iter().filter(|&(o, _)| o >= tail).collect();
    for seed in 1..=seeds {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut img = clean.clone();
        let (o, len) = recs[(rng.next() % recs.len() as u64) as usize];
        for _ in 0..1 + rng.next() % 6 {
            // Mostly the payload; sometimes the header's fields too.
            let at = if rng.next().is_multiple_of(5) {
                o + (rng.next() % 48) as usize
            } else {
                o + 512 + (rng.next() % u64::from(len)) as usize
            };
            if (o + 32..o + 36).contains(&at) {
                continue;
            }
            match rng.next() % 3 {
                0 => img[at] ^= 1 << (rng.next() % 8),
                1 => img[at] = 0xff,
                _ => img[at] = 0,
            }
        }
        let len = u32::from_be_bytes(img[o + 12..o + 16].try_into().unwrap()).min(len) as usize;
        let mut hdr = img[o..o + 328].to_vec();
        hdr[32..36].fill(0);
        let mut body = hdr;
        body.extend_from_slice(&img[o + 512..o + 512 + len]);
        let crc = !crc32c(&body);
        img[o + 32..o + 36].copy_from_slice(&crc.to_le_bytes());
        let src = source_of(img);
        let t = Instant::now();
        let fs = open(&src, true);
        let msg = fs.replay().map(|r| r.message()).unwrap_or_default();
        eprintln!("seed {seed}: {msg}");
        assert!(msg.contains("XFS log"), "seed {seed}: {msg}");
        let files = tree_of(&*fs);
        assert!(files.len() > 10, "seed {seed}: {msg}");
        assert!(t.elapsed() < Duration::from_secs(10), "seed {seed}: {:?}", t.elapsed());
    }
}

/// One flipped bit turns a never-written block (cycle 0) far past the head
/// into the newest cycle: the head is still found, the log replayed whole.
#[test]
fn a_stray_cycle_far_past_the_head_is_ignored() {
    let mut img = fixture();
    let (start, len) = log_region(&img);
    // 5,700 blocks past the head: further than a torn write can reach.
    let at = start + 6000 * 512;
    assert!(at < start + len && img[at..at + 4] == [0, 0, 0, 0], "a block never written");
    img[at + 3] ^= 1;
    let (status, msg) = survives(img, "stray cycle");
    assert_eq!(status, Status::Replayed, "{msg}");
    assert!(msg.contains("10 transactions"), "{msg}");
}

/// A record failing its CRC among the last eight (those that may have been
/// in flight at the crash) is a torn write, left out as the kernel leaves
/// it; one earlier in the log stops the replay there.
#[test]
fn a_bad_crc_is_a_torn_write_only_at_the_end() {
    let clean = fixture();
    let recs = records(&clean);
    assert!(recs.len() > 9, "the fixture has {} records", recs.len());
    let flip = |i: usize| {
        let mut img = clean.clone();
        let (o, len) = recs[i];
        assert!(len > 20);
        img[o + 512 + 16] ^= 0x10;
        img
    };
    let (status, msg) = survives(flip(recs.len() - 1), "last record");
    assert_eq!(status, Status::Replayed, "{msg}");
    assert!(msg.contains("the last 1 log record(s)") && msg.contains("torn"), "{msg}");
    let (status, msg) = survives(flip(recs.len() - 8), "eighth from the end");
    assert!(msg.contains("the last 8 log record(s)"), "{msg}");
    assert_eq!(status, Status::Replayed, "{msg}");
    let (status, msg) = survives(flip(recs.len() - 9), "ninth from the end");
    assert_eq!(status, Status::Stopped, "{msg}");
    assert!(msg.contains("checksum mismatch") && !msg.contains("torn"), "{msg}");
}
