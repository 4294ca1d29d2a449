//! Journal replay (issue 14): files read through snapsift's in-memory jbd2
//! replay against what e2fsck's own replay leaves (read by sleuthkit), on
//! e2fsprogs' journal-recovery images (../shared/samples/e2fsprogs-journal,
//! skipped with a reason when absent).

mod common;
use common::*;
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
            let kind = if e.kind == FileKind::Unknown { fs.metadata(e.node).map(|m| m.kind()).unwrap_or(FileKind::Unknown) } else { e.kind };
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
        let data = Command::new("icat").arg(img).arg(&inode).output().unwrap().stdout;
        out.insert(format!("/{path}"), format!("{:x}", Sha256::digest(&data)));
    }
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
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.to_string_lossy().ends_with(".img.gz")).collect();
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
