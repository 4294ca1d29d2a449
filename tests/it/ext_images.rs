//! ext images other tools made that once came out wrong: bigalloc (made by
//! images/build-bigalloc.sh with mke2fs -d; expected = what was put in) and,
//! where `E2FSPROGS_TESTS` names e2fsprogs' `tests/` folder (its source tree
//! or Debian source package), the damaged images of its own test suite
//! (expected from debugfs, which the test runs; skipped with a printed
//! reason otherwise).

use crate::common::*;
use snapsift::evidence::Source;
use snapsift::fs::{self, FileSystem, Probe};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

fn open(bytes: Vec<u8>) -> Arc<dyn FileSystem> {
    let src: Source = Arc::new(bytes);
    match fs::probe(&src) {
        Probe::Found(f) => f,
        Probe::Damaged(what, why) => panic!("{what}: {why}"),
        _ => panic!("no filesystem"),
    }
}

fn read(fs: &dyn FileSystem, path: &str) -> std::io::Result<Vec<u8>> {
    let node = fs::lookup_ci(fs, path).unwrap_or_else(|| panic!("{path} missing"));
    let mut v = Vec::new();
    fs.open(node)?.read_to_end(&mut v)?;
    Ok(v)
}

/// bigalloc with 1 KiB blocks: first data block 0, descriptors at block 2,
/// 131,072 blocks per group, and a fast symlink whose attribute block takes
/// a whole 16 KiB cluster.
#[test]
fn bigalloc_reads_as_put_in() {
    let fs = open(std::fs::read(image("ext4-bigalloc")).unwrap());
    assert_eq!(fs.label().as_deref(), Some("bigalloc"));
    assert_eq!(read(&*fs, "etc/hostname").unwrap(), b"bigalloc01\n");
    assert_eq!(read(&*fs, "var/log/auth.log").unwrap(), b"May  1 00:00:00 bigalloc01 sshd[1]: Accepted publickey for root\n");
    let access: String = (1..=20000).map(|i| format!("GET /index.html 200 {i}\n")).collect();
    assert_eq!(read(&*fs, "var/log/app/access.log").unwrap(), access.as_bytes());
    let link = fs::lookup_ci(&*fs, "var/log/auth.link").unwrap();
    assert_eq!(fs.read_link(link).unwrap(), b"auth.log");
    let xattrs = fs.xattrs(link).unwrap();
    assert!(xattrs.iter().any(|(n, v)| n == b"trusted.snapsift" && v == b"bigalloc-test"), "{xattrs:?}");
}

/// An e2fsprogs test image, when `E2FSPROGS_TESTS` points at its tests.
fn e2fsprogs(test: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("E2FSPROGS_TESTS") else {
        eprintln!("skipped: set E2FSPROGS_TESTS to e2fsprogs' tests/ folder to check {test}");
        return None;
    };
    let gz = PathBuf::from(dir).join(test).join("image.gz");
    if !gz.is_file() {
        eprintln!("skipped: {} is missing", gz.display());
        return None;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2fsprogs");
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join(format!("{test}.img"));
    unpack(&gz, &img);
    Some(img)
}

/// Every regular file debugfs can read, as debugfs reads it.
fn agrees_with_debugfs(test: &str, img: &std::path::Path) {
    let fs = open(std::fs::read(img).unwrap());
    let ls = std::process::Command::new("debugfs").args(["-R", "ls -p -r /"]).arg(img).output();
    let Ok(ls) = ls else {
        eprintln!("skipped: no debugfs");
        return;
    };
    let mut checked = 0;
    for line in String::from_utf8_lossy(&ls.stdout).lines() {
        // /ino/mode/uid/gid/name/size/  (recursive listings give full paths)
        let f: Vec<&str> = line.split('/').collect();
        if f.len() < 7 || !f[2].starts_with("100") {
            continue;
        }
        let path = f[5..f.len() - 2].join("/");
        let want = std::process::Command::new("debugfs").args(["-R", &format!("cat /{path}")]).arg(img).output().unwrap();
        let got = read(&*fs, &path).unwrap_or_else(|e| panic!("{test}: /{path}: {e}"));
        assert_eq!(got, want.stdout, "{test}: /{path}");
        checked += 1;
    }
    eprintln!("{test}: {checked} files as debugfs reads them");
    assert!(checked > 0, "{test}: debugfs listed no files:\n{}", String::from_utf8_lossy(&ls.stdout));
}

/// bigalloc images e2fsck checks (issue #23: once refused whole).
#[test]
fn e2fsprogs_bigalloc_images_read() {
    for test in ["f_bigalloc_symlink_with_xattr", "f_badcluster", "f_dup_ba"] {
        let Some(img) = e2fsprogs(test) else { return };
        let fs = open(std::fs::read(&img).unwrap());
        assert!(fs.read_dir(fs.root()).is_ok(), "{test}");
        if test == "f_bigalloc_symlink_with_xattr" {
            let link = fs::lookup_ci(&*fs, "symlink").unwrap();
            assert_eq!(fs.read_link(link).unwrap(), b"target");
        } else {
            agrees_with_debugfs(test, &img);
        }
    }
}

/// `f_ea_value_crash`: the inline-data file `/a` has its `system.data`
/// value at an offset inside the attribute table itself. debugfs refuses
/// it, as the kernel does; snapsift must too, never give the table's bytes
/// as the file's.
#[test]
fn e2fsprogs_ea_value_in_the_table_is_an_error() {
    let Some(img) = e2fsprogs("f_ea_value_crash") else { return };
    let fs = open(std::fs::read(&img).unwrap());
    let err = read(&*fs, "a").unwrap_err().to_string();
    assert!(err.contains("overlaps the attribute table"), "{err}");
}
