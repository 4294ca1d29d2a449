//! Journal replay (issue 14): files read through snapsift's in-memory jbd2
//! replay against what e2fsck's own replay leaves (read by sleuthkit), on
//! e2fsprogs' journal-recovery images (../shared/samples/e2fsprogs-journal,
//! skipped with a reason when absent).

use crate::common::*;
use sha2::{Digest, Sha256};
use snapsift::evidence::{self, OpenOptions, Source};
use snapsift::fs::{self, FileKind, FileSystem, Probe};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

fn samples() -> Option<PathBuf> {
    let d = repo().join("../shared/samples/e2fsprogs-journal");
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("skipped: {} is absent", d.display());
        None
    }
}

fn have(tool: &str) -> bool {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: {tool} is not installed");
    }
    found
}

fn open_source(path: &Path) -> Source {
    evidence::open(path, &OpenOptions { temp_dir: None, progress: None }).unwrap().source
}

#[allow(dead_code)]
fn open_fs(path: &Path, replay: bool) -> Arc<dyn FileSystem> {
    match fs::probe_with(&open_source(path), fs::OpenOptions { replay }) {
        Probe::Found(f) => f,
        Probe::Damaged(what, why) => panic!("{}: {what}: {why}", path.display()),
        _ => panic!("{}: no filesystem", path.display()),
    }
}

/// Every regular file reachable from the root: path → sha256 (or the error).
fn files_of(fs: &dyn FileSystem) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(fs.root(), String::new())];
    let mut seen = std::collections::HashSet::new();
    while let Some((dir, path)) = stack.pop() {
        if !seen.insert(dir) {
            continue;
        }
        let Ok(entries) = fs.read_dir(dir) else { continue };
        for e in entries {
            let p = format!("{path}/{}", String::from_utf8_lossy(&e.name));
            let kind =
                if e.kind == FileKind::Unknown { fs.metadata(e.node).map(|m| m.kind()).unwrap_or(FileKind::Unknown) } else { e.kind };
            match kind {
                FileKind::Dir => {
                    out.insert(p.clone(), "dir".into());
                    stack.push((e.node, p));
                }
                FileKind::File => {
                    let h = fs.open(e.node).and_then(|mut r| {
                        let mut h = Sha256::new();
                        std::io::copy(&mut r, &mut h)?;
                        Ok(format!("{:x}", h.finalize()))
                    });
                    out.insert(p, h.unwrap_or_else(|e| format!("error: {e}")));
                }
                _ => {}
            }
        }
    }
    out
}

/// The same through sleuthkit (allocated regular files and directories).
fn sleuthkit_files(img: &Path) -> BTreeMap<String, String> {
    let fls = Command::new("fls").args(["-r", "-p", "-u"]).arg(img).output().unwrap();
    let mut out = BTreeMap::new();
    let mut files = Vec::new();
    for line in String::from_utf8_lossy(&fls.stdout).lines() {
        // "r/r 12:\tpath"
        let Some((head, path)) = line.split_once('\t') else { continue };
        if head.contains('*') || path.ends_with("$OrphanFiles") {
            continue;
        }
        if head.starts_with("d/d") {
            out.insert(format!("/{path}"), "dir".into());
            continue;
        }
        if !head.starts_with("r/r") {
            continue;
        }
        let inode = head.trim_start_matches("r/r").trim().trim_end_matches(':').split('-').next().unwrap().to_string();
        files.push((format!("/{path}"), inode));
    }
    // One icat per file: on both cores.
    let half = files.len().div_ceil(2).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = files
            .chunks(half)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(p, inode)| {
                            let data = Command::new("icat").arg(img).arg(inode).output().unwrap().stdout;
                            (p.clone(), format!("{:x}", Sha256::digest(&data)))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for p in parts {
            out.extend(p.join().unwrap());
        }
    });
    out
}

fn gunzip(src: &Path, dst: &Path) {
    let mut out = std::fs::File::create(dst).unwrap();
    std::io::copy(&mut flate2::read::GzDecoder::new(std::fs::File::open(src).unwrap()), &mut out).unwrap();
}

#[test]
fn e2fsprogs_journals_replay_as_e2fsck_does() {
    let Some(dir) = samples() else { return };
    if !have("e2fsck") || !have("fls") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.to_string_lossy().ends_with(".img.gz")).collect();
    names.sort();
    let mut failures = Vec::new();
    for gz in names {
        let name = gz.file_name().unwrap().to_string_lossy().trim_end_matches(".img.gz").to_string();
        let img = tmp.path().join(format!("{name}.img"));
        gunzip(&gz, &img);
        let fixed = tmp.path().join(format!("{name}.fixed.img"));
        std::fs::copy(&img, &fixed).unwrap();
        let _ = Command::new("e2fsck").args(["-fy"]).arg(&fixed).output().unwrap();
        let truth = sleuthkit_files(&fixed);
        let probe = fs::probe_with(&open_source(&img), fs::OpenOptions::default());
        if name == "j_ext_dumpe2fs" {
            // An external journal device, not a filesystem: named as such.
            assert!(matches!(probe, Probe::Unsupported(w) if w.contains("external journal")), "{name}");
            continue;
        }
        let Probe::Found(f) = probe else {
            eprintln!("{name}: snapsift opens no filesystem");
            failures.push(name);
            continue;
        };
        let ours = files_of(&*f);
        let replay = f.replay().map(|r| r.message()).unwrap_or_else(|| "no replay".into());
        let diff: Vec<_> = truth
            .iter()
            .filter(|(p, h)| ours.get(*p) != Some(h))
            .map(|(p, _)| p.clone())
            .chain(ours.keys().filter(|p| !truth.contains_key(*p)).cloned())
            // e2fsck moves f_journal's visible /journal file to the hidden
            // journal inode and resets it: not the replay's doing.
            .filter(|p| !(name == "f_journal" && p == "/journal"))
            .collect();
        eprintln!("{name}: {replay}; {} files, {} differ {:?}", truth.len(), diff.len(), &diff[..diff.len().min(5)]);
        if name == "j_recover_fast_commit" {
            // Fast commits are not replayed: said per volume, and the
            // files they changed are the only ones that differ.
            assert!(replay.contains("fast-commit area holds changes of transaction 6"), "{name}: {replay}");
            assert!(diff.iter().all(|p| p.starts_with("/a/")), "{name}: {diff:?}");
            continue;
        }
        if !diff.is_empty() {
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "differ from e2fsck's replay: {failures:?}");
}

/// The kernel's own snapshots of running machines (images/build-journal.py):
/// image name and the hostname it holds.
const LIVE: &[(&str, &str)] = &[("journal-ext4", "jext4"), ("journal-ext3", "jext3"), ("journal-xfs", "jxfs")];

/// What `inspect` says of each replay: debugfs -R logdump counts 9 committed
/// transactions in each ext journal, xfs_logprint -t 10 in the XFS log.
fn replayed_line(name: &str) -> &'static str {
    match name {
        "journal-xfs" => "XFS log replayed: 10 transactions",
        _ => "jbd2 journal replayed: 9 transactions",
    }
}

type Rows = Vec<std::collections::HashMap<String, String>>;

fn listing(name: &str) -> (Rows, Rows) {
    let dir = repo().join("images/expected");
    (tsv(&dir.join(format!("{name}.tsv"))), tsv(&dir.join(format!("{name}.on-disk.tsv"))))
}

fn extract_with(image: &Path, case: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec!["extract".as_ref(), image.as_os_str(), "-o".as_ref(), case.as_os_str(), "--quiet".as_ref()];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    let out = snapsift(&args);
    assert_eq!(out.code, Some(0), "{}: {}", image.display(), out.stderr);
    out
}

/// The sha256 of a file's first `n` bytes.
fn sha256_prefix(p: &Path, n: usize) -> String {
    let data = std::fs::read(p).unwrap();
    data.get(..n).map(|b| format!("{:x}", Sha256::digest(b))).unwrap_or_default()
}

/// Checks a case folder made from a live snapshot against the kernel's
/// replayed listing (the host's tree) and on-disk listing (`_before-journal`,
/// or the replayed copy's first bytes for a file the journal only grew).
fn check_live_case(name: &str, host: &str, case: &Path) {
    let (now, disk) = listing(name);
    let rows = manifest(case);
    let row = |view: &str, path: &str| rows.iter().find(|r| r["view"] == view && r["image_path"] == path && r["type"] == "file");
    let tree = case.join("Host-Based Logs").join(host);
    let on_disk = |path: &str| disk.iter().find(|d| d["path"] == path && d["type"] == "r");
    // A file the journal only appended to: same inode, and its on-disk
    // bytes (the kernel's norecovery view) begin its replayed bytes.
    let appended = |e: &std::collections::HashMap<String, String>| {
        on_disk(&e["path"]).is_some_and(|d| {
            let n: usize = d["size"].parse().unwrap();
            d["inode"] == e["inode"] && n < e["size"].parse().unwrap() && sha256_prefix(&tree.join(&e["path"][1..]), n) == d["sha256"]
        })
    };
    let (mut changed, mut grown) = (0, 0);
    for e in now.iter().filter(|e| e["expect"] == "extract" && e["type"] == "r") {
        let path = &e["path"];
        let r = row("replayed", path).unwrap_or_else(|| panic!("{name}: {path} missing from the replayed view"));
        assert_eq!((r["status"].as_str(), r["sha256"].as_str()), ("ok", e["sha256"].as_str()), "{name} {path}: as the machine had it");
        assert_eq!(sha256_file(&tree.join(&path[1..])), e["sha256"], "{name} {path}: bytes in the grep folder");
        let want = match e["journal"].as_str() {
            "same" => "unchanged",
            "changed" if appended(e) => "appended",
            other => other,
        };
        assert_eq!(r["journal"], want, "{name} {path}: the manifest says what the journal did");
        changed += usize::from(want != "unchanged");
        grown += usize::from(want == "appended");
    }
    assert!(changed >= 5, "{name}: the image holds the scenario's changes ({changed})");
    assert!(grown >= 2, "{name}: the scenario appends to logs ({grown})");
    let mut before = 0;
    for d in disk.iter().filter(|d| d["expect"] == "extract" && d["type"] == "r") {
        let path = &d["path"];
        let j = d["journal"].as_str();
        if j == "same" {
            assert!(row("before-journal", path).is_none(), "{name} {path}: unchanged, yet extracted twice");
            continue;
        }
        let r = row("before-journal", path).unwrap_or_else(|| panic!("{name} {path}: its on-disk version is missing"));
        before += 1;
        let in_place = tree.join("_before-journal").join(&path[1..]);
        if row("replayed", path).is_some_and(|n| n["journal"] == "appended") {
            assert_eq!(
                (r["status"].as_str(), r["sha256"].as_str(), r["size"].as_str()),
                ("prefix", d["sha256"].as_str(), d["size"].as_str()),
                "{name} {path}: as on disk"
            );
            assert_eq!(
                (r["journal"].as_str(), r["output_path"].as_str()),
                ("appended", row("replayed", path).unwrap()["output_path"].as_str()),
                "{name} {path}"
            );
            assert!(!in_place.exists(), "{name} {path}: an appended log is not written twice");
            continue;
        }
        assert_eq!((r["status"].as_str(), r["sha256"].as_str()), ("ok", d["sha256"].as_str()), "{name} {path}: as on disk");
        assert_eq!(r["journal"], if j == "gone" { "removed" } else { "changed" }, "{name} {path}");
        assert_eq!(sha256_file(&in_place), d["sha256"], "{name} {path}: on-disk bytes");
    }
    let extra = rows.iter().filter(|r| r["view"] == "before-journal" && r["type"] == "file").count();
    assert_eq!(extra, before, "{name}: only files the journal changed are extracted as on disk");
    let run = run_json(&runs(case)[0]);
    let j = &run["evidence"][0]["volumes"][0]["journal"];
    assert_eq!(j["status"], "replayed", "{name}: {j}");
    assert!(j["transactions"].as_u64().unwrap() > 0 && j["message"].as_str().unwrap().contains("replayed"), "{name}: {j}");
}

#[test]
fn live_snapshots_show_what_the_machine_had() {
    for (name, host) in LIVE {
        let case = tempfile::tempdir().unwrap();
        let out = extract_with(&image(name), case.path(), &[]);
        assert!(out.stderr.is_empty(), "{name}: --quiet: {}", out.stderr);
        check_live_case(name, host, case.path());
        let shown = snapsift(&["inspect".as_ref(), image(name).as_os_str()]);
        assert!(shown.stdout.contains(replayed_line(name)), "{name}: inspect says what the replay did: {}", shown.stdout);
        let report = std::fs::read_to_string(case.path().join("snapsift/report.html")).unwrap();
        assert!(
            report.contains("Changed in the last seconds") && report.contains("_before-journal/var/log/wtmp"),
            "{name}: the report shows the journal's changes"
        );
    }
}

#[test]
fn no_replay_reads_as_on_disk() {
    for (name, host) in LIVE {
        let (now, disk) = listing(name);
        let case = tempfile::tempdir().unwrap();
        extract_with(&image(name), case.path(), &["--no-replay"]);
        let rows = manifest(case.path());
        let tree = case.path().join("Host-Based Logs").join(host);
        for d in disk.iter().filter(|d| d["expect"] == "extract" && d["type"] == "r") {
            let r =
                rows.iter().find(|r| r["image_path"] == d["path"] && r["type"] == "file").unwrap_or_else(|| panic!("{name} {}", d["path"]));
            assert_eq!(
                (r["sha256"].as_str(), r["view"].as_str(), r["journal"].as_str()),
                (d["sha256"].as_str(), "on-disk", ""),
                "{name} {}",
                d["path"]
            );
        }
        for e in now.iter().filter(|e| e["journal"] == "new") {
            assert!(!tree.join(&e["path"][1..]).exists(), "{name} {}: only the journal knows it", e["path"]);
        }
        assert!(!tree.join("_before-journal").exists(), "{name}");
        let run = run_json(&runs(case.path())[0]);
        assert_eq!(run["evidence"][0]["volumes"][0]["journal"]["status"], "not replayed", "{name}");
    }
}

/// The replay sits above every container format: the same snapshot as
/// QCOW2 and streamOptimized VMDK (an AWS export) gives the same folder.
#[test]
fn live_snapshots_replay_inside_disk_formats() {
    let (name, host) = LIVE[0];
    let tmp = tempfile::tempdir().unwrap();
    let mut made = Vec::new();
    if have("qemu-img") {
        for (fmt, opts) in [
            ("qcow2", "compression_type=zlib"),
            ("vmdk", "subformat=streamOptimized"),
            ("vhdx", "subformat=dynamic"),
            ("vpc", "subformat=dynamic"),
        ] {
            let out = tmp.path().join(format!("{name}.{fmt}"));
            let st = Command::new("qemu-img").args(["convert", "-O", fmt, "-o", opts]).arg(image(name)).arg(&out).status().unwrap();
            assert!(st.success(), "qemu-img convert to {fmt}");
            made.push(out);
        }
    } else {
        eprintln!("qemu-img not installed: QCOW2, VMDK, VHDX and VHD replays not checked");
    }
    if have("ewfacquire") {
        // Compressed chunks in two segments.
        let target = tmp.path().join(name);
        let st = Command::new("ewfacquire")
            .args(["-u", "-q", "-c", "fast", "-S", "1MiB", "-t"])
            .arg(&target)
            .arg(image(name))
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "ewfacquire");
        made.push(target.with_extension("E01"));
    } else {
        eprintln!("ewfacquire not installed (ewf-tools): the E01 replay is not checked");
    }
    for out in made {
        let case = tmp.path().join(format!("case-{}", out.extension().unwrap().to_string_lossy()));
        extract_with(&out, &case, &[]);
        check_live_case(name, host, &case);
    }
}

const JBD2_MAGIC: [u8; 4] = [0xC0, 0x3B, 0x39, 0x98];

/// Offsets of the journal's own blocks (superblock, descriptors, commits,
/// revokes) in a raw ext image with `bs`-byte blocks.
fn journal_blocks(img: &[u8], bs: usize) -> Vec<usize> {
    (0..img.len() / bs).map(|b| b * bs).filter(|&o| img[o..o + 4] == JBD2_MAGIC).collect()
}

fn be32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes(b[o..o + 4].try_into().unwrap())
}

/// Runs the binary on a damaged image: never a panic or a hang, and a
/// manifest row for every file it planned.
fn survives(img: &Path, case: &Path) -> Rows {
    let out = snapsift_with_limit(
        &["extract".as_ref(), img.as_os_str(), "-o".as_ref(), case.as_os_str(), "--quiet".as_ref()],
        std::time::Duration::from_secs(60),
    );
    assert!(matches!(out.code, Some(0 | 1)), "{}: exit {:?}: {}", img.display(), out.code, out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    manifest(case)
}

/// With checksums (ext4, v3), damage anywhere in the journal is caught:
/// whatever the replay makes of it, files the journal never touched read
/// exactly as on disk, and the run says what happened to the journal.
#[test]
fn damaged_journals_never_make_things_worse() {
    let seeds = campaign("JOURNAL_FUZZ_SEEDS", 40, 200);
    let (now, disk) = listing("journal-ext4");
    let same: Vec<_> = disk.iter().filter(|d| d["journal"] == "same" && d["expect"] == "extract" && d["type"] == "r").collect();
    assert!(!same.is_empty());
    let clean = std::fs::read(image("journal-ext4")).unwrap();
    let blocks = journal_blocks(&clean, 4096);
    assert!(blocks.len() > 10, "the fixture's journal has its blocks");
    let tmp = tempfile::tempdir().unwrap();
    for seed in 1..=seeds {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut img = clean.clone();
        for _ in 0..1 + rng.next() % 4 {
            // A journal block's header or body, or the data block after it.
            let at = blocks[(rng.next() % blocks.len() as u64) as usize] + (rng.next() % 8192) as usize;
            img[at] ^= 1 << (rng.next() % 8);
        }
        let path = tmp.path().join(format!("damaged-{seed}.img"));
        std::fs::write(&path, &img).unwrap();
        let case = tmp.path().join(format!("case-{seed}"));
        let rows = survives(&path, &case);
        for d in &same {
            let r = rows.iter().find(|r| r["image_path"] == d["path"] && r["view"] != "before-journal");
            let r = r.unwrap_or_else(|| panic!("seed {seed}: {} not extracted", d["path"]));
            assert_eq!(r["sha256"], d["sha256"], "seed {seed}: {} changed by a damaged journal", d["path"]);
        }
        let run = run_json(&runs(&case)[0]);
        let msg = run["evidence"][0]["volumes"][0]["journal"]["message"].as_str().unwrap_or_default().to_string();
        assert!(msg.contains("jbd2 journal"), "seed {seed}: the run says what became of the journal: {msg}");
        std::fs::remove_file(&path).unwrap();
    }
    let _ = now;
}

/// Without checksums (ext3) lies are not caught by a checksum: each is met
/// by a bound, a clear reason, and the rest of the volume still read.
#[test]
fn lying_journals_are_bounded() {
    let clean = std::fs::read(image("journal-ext3")).unwrap();
    let bs = 1024;
    let blocks = journal_blocks(&clean, bs);
    let sb = blocks[0];
    let kind = |o: usize| be32(&clean, o + 4);
    // The first replayed transaction's descriptor (older ones may linger).
    let descriptor = *blocks.iter().find(|&&o| kind(o) == 1 && be32(&clean, o + 8) == be32(&clean, sb + 0x18)).unwrap();
    let (_, disk) = listing("journal-ext3");
    let untouched: Vec<_> = disk.iter().filter(|d| d["journal"] == "same" && d["expect"] == "extract" && d["type"] == "r").collect();
    let tmp = tempfile::tempdir().unwrap();
    type Lie = (&'static str, Box<dyn Fn(&mut Vec<u8>)>, &'static str);
    let lies: Vec<Lie> = vec![
        ("maxlen", Box::new(move |i| i[sb + 0x10..sb + 0x14].copy_from_slice(&u32::MAX.to_be_bytes())), "claims"),
        ("start", Box::new(move |i| i[sb + 0x1C..sb + 0x20].copy_from_slice(&0x7FFF_FFFFu32.to_be_bytes())), "outside its log area"),
        ("first", Box::new(move |i| i[sb + 0x14..sb + 0x18].copy_from_slice(&0u32.to_be_bytes())), "log area"),
        ("blocksize", Box::new(move |i| i[sb + 0xC..sb + 0x10].copy_from_slice(&4096u32.to_be_bytes())), "block size"),
        // The first tag names a block far past the filesystem's end.
        ("tag", Box::new(move |i| i[descriptor + 12..descriptor + 16].copy_from_slice(&0xFFFF_FF00u32.to_be_bytes())), "past the end"),
        ("type", Box::new(move |i| i[descriptor + 4..descriptor + 8].copy_from_slice(&77u32.to_be_bytes())), "unknown type"),
    ];
    for (name, lie, says) in lies {
        let mut img = clean.clone();
        lie(&mut img);
        let path = tmp.path().join(format!("{name}.img"));
        std::fs::write(&path, &img).unwrap();
        let case = tmp.path().join(format!("case-{name}"));
        let rows = survives(&path, &case);
        let run = run_json(&runs(&case)[0]);
        let msg = run["evidence"][0]["volumes"][0]["journal"]["message"].as_str().unwrap_or_default().to_string();
        assert!(msg.contains(says), "{name}: {msg}");
        if name != "tag" {
            for d in &untouched {
                let r = rows.iter().find(|r| r["image_path"] == d["path"]).unwrap_or_else(|| panic!("{name}: {}", d["path"]));
                assert_eq!(r["sha256"], d["sha256"], "{name}: {}", d["path"]);
            }
        }
    }
}

/// Sequence numbers wrap at 2^32: a journal whose transactions run through
/// 0xFFFFFFFF → 0 replays exactly as the same journal numbered from 3.
#[test]
fn sequence_numbers_that_wrap_replay_the_same() {
    let mut img = std::fs::read(image("journal-ext3")).unwrap();
    let blocks = journal_blocks(&img, 1024);
    let first = be32(&img, blocks[0] + 0x18);
    let shift = 0u32.wrapping_sub(first).wrapping_sub(4); // the 5th transaction gets 0
    for &o in &blocks {
        let seq = if be32(&img, o + 4) >= 3 && be32(&img, o + 4) <= 4 { 0x18 } else { 8 };
        let v = be32(&img, o + seq).wrapping_add(shift);
        img[o + seq..o + seq + 4].copy_from_slice(&v.to_be_bytes());
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("wrapped.img");
    std::fs::write(&path, &img).unwrap();
    let case = tmp.path().join("case");
    extract_with(&path, &case, &[]);
    check_live_case("journal-ext3", "jext3", &case);
    let run = run_json(&runs(&case)[0]);
    let j = &run["evidence"][0]["volumes"][0]["journal"];
    assert_eq!(j["first"].as_str().unwrap(), u32::MAX.wrapping_sub(3).to_string(), "{j}");
}
