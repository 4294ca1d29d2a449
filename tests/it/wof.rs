//! WOF-compressed ("system compression") NTFS files: images/wof.img.gz,
//! made by images/build-wof.py with wimlib's compressors and checked with
//! ntfs-3g's system-compression plugin. Every file decodes to what was put
//! in (images/expected/wof.tsv); the damaged, WIMBoot and deduplicated
//! files are errors, never zeros, and a file with a chunk that does not
//! decode is a `partial` copy of the chunks before it; the manifest says how
//! each was stored.

use crate::common::*;
use sha2::{Digest, Sha256};
use snapsift::evidence::{self, OpenOptions};
use snapsift::fs::{self, FileSystem, Probe};
use std::io::Read;
use std::sync::Arc;

fn open_fs() -> Arc<dyn FileSystem> {
    let temp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inflate");
    let src = evidence::open(&image("wof"), &OpenOptions { temp_dir: Some(temp), progress: None }).unwrap().source;
    match fs::probe(&src) {
        Probe::Found(f) => f,
        _ => panic!("wof: no filesystem found"),
    }
}

fn listing() -> Vec<std::collections::HashMap<String, String>> {
    let rows = tsv(&repo().join("images/expected/wof.tsv"));
    assert!(rows.len() >= 15, "{} rows", rows.len());
    rows
}

#[test]
fn wof_files_decode_to_their_content() {
    let fs = open_fs();
    let mut methods = std::collections::BTreeSet::new();
    for row in listing() {
        let path = &row["path"];
        let node = fs::lookup(&*fs, format!("/{path}").as_bytes()).unwrap().unwrap_or_else(|| panic!("{path}: not found"));
        assert_eq!(fs.compression(node).unwrap_or(""), row["compression"], "{path}");
        let size: u64 = row["size"].parse().unwrap();
        assert_eq!(fs.metadata(node).unwrap().size, size, "{path}");
        let read = fs.open(node).and_then(|mut r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v).map(|_| v)
        });
        match (row["expect"].as_str(), read) {
            ("ok", Ok(v)) => {
                let sha: String = Sha256::digest(&v).iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(v.len() as u64, size, "{path}");
                assert_eq!(sha, row["sha256"], "{path}: decoded content differs");
                methods.insert(row["compression"].clone());
            }
            ("partial", Ok(_)) => panic!("{path}: a damaged chunk read without an error"),
            ("partial", Err(e)) => assert!(e.to_string().contains("chunk 2: XPRESS: Huffman code lengths over-subscribe"), "{path}: {e}"),
            ("error", Err(e)) => {
                let e = e.to_string();
                let why = match path.as_str() {
                    p if p.ends_with("damaged.log") => "chunk table entry 2 points past the stream",
                    p if p.ends_with("wimboot.dll") => "WIMBoot",
                    _ => "not on this volume",
                };
                assert!(e.contains(why), "{path}: {e}");
            }
            (want, got) => panic!("{path}: expected {want}, got {:?}", got.map(|v| v.len())),
        }
    }
    for m in ["wof-xpress4k", "wof-xpress8k", "wof-xpress16k", "wof-lzx", "lznt1"] {
        assert!(methods.contains(m), "no {m} file decoded");
    }
}

#[test]
fn wof_extract_manifest_says_how_and_never_writes_zeros() {
    let root = tempfile::tempdir().unwrap();
    let targets = root.path().join("t.toml");
    std::fs::write(&targets, "[[target]]\nname = \"all\"\ndescription = \"d\"\nscope = \"any\"\npaths = [\"/**\"]\n").unwrap();
    let case = tempfile::tempdir().unwrap();
    let out = extract_with(
        &[&image("wof")],
        case.path(),
        &["--targets-file".as_ref(), targets.as_os_str(), "--target".as_ref(), "all".as_ref(), "--no-evtx-json".as_ref()],
    );
    assert!(out.code == Some(0) || out.code == Some(1) || out.code == Some(2), "{}", out.stderr);
    let rows = manifest(case.path());
    for want in listing() {
        let path = format!("/{}", want["path"]);
        let r = rows
            .iter()
            .find(|r| r["image_path"] == path && r["type"] == "file")
            .unwrap_or_else(|| panic!("{path}: no manifest row in {rows:?}"));
        assert_eq!(r["compression"], want["compression"], "{path}");
        if want["expect"] == "ok" {
            assert_eq!(r["status"], "ok", "{path}: {r:?}");
            assert_eq!(r["sha256"], want["sha256"], "{path}");
            assert_eq!(sha256_file(&case.path().join(&r["output_path"])), want["sha256"], "{path}");
        } else if want["expect"] == "partial" {
            // A chunk that does not decode mid-file: the chunks before it are
            // kept, never padded, and the row says which bytes are missing.
            assert_eq!(r["status"], "partial", "{path}: {r:?}");
            assert!(r["reason"].contains("bytes 8192-20000 missing") && r["reason"].contains("chunk 2"), "{r:?}");
            assert_eq!(std::fs::metadata(case.path().join(&r["output_path"])).unwrap().len(), 8192);
        } else {
            assert_eq!(r["status"], "error", "{path}: {r:?}");
            assert!(r["output_path"].is_empty() && r["sha256"].is_empty(), "{path}: {r:?}");
            assert!(
                r["reason"].contains("WIMBoot") || r["reason"].contains("chunk table") || r["reason"].contains("not on this volume"),
                "{r:?}"
            );
        }
    }
    // The compressed form is listed as the file's stream, plainly stored.
    let ads = rows.iter().find(|r| r["image_path"] == "/Windows/Logs/xp4k.log:WofCompressedData").expect("the WofCompressedData row");
    assert_eq!((ads["type"].as_str(), ads["compression"].as_str(), ads["status"].as_str()), ("ads", "", "skipped"));
    // Nothing of the refused files reached the case folder.
    let names: Vec<String> = walkdir(case.path());
    for bad in ["damaged.log", "wimboot.dll", "dedup.log"] {
        assert!(!names.iter().any(|n| n.ends_with(bad)), "{bad} written: {names:?}");
    }
}

fn walkdir(p: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let path = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path.to_string_lossy().into_owned());
        }
    }
    out
}
