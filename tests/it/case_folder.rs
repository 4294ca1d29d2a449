//! The case folder is private by default (issue 21): every folder snapsift
//! creates is 0700 and every file 0600 whatever the umask, because the case
//! holds every user's shell history; `--group-readable` gives 0750/0640. A
//! case folder that already exists keeps its mode.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every entry below `root` (and `root`), with its permission bits.
fn modes(root: &Path) -> Vec<(PathBuf, bool, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        out.push((p.clone(), m.is_dir(), m.permissions().mode() & 0o7777));
        if m.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

/// Runs an extraction of the Linux fixture under umask 000.
fn extract_with_open_umask(case: &Path, extra: &[&str]) -> std::process::ExitStatus {
    Command::new("sh")
        .args(["-c", "umask 000; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_snapsift"))
        .args(["extract", "-q", "--decompress", "-o"])
        .arg(case)
        .arg(image("linux-gpt"))
        .args(extra)
        .status()
        .unwrap()
}

#[test]
fn the_case_is_private_whatever_the_umask() {
    for (extra, dir_mode, file_mode) in [(&[][..], 0o700, 0o600), (&["--group-readable"][..], 0o750, 0o640)] {
        let tmp = tempfile::tempdir().unwrap();
        let case = tmp.path().join("case");
        let status = extract_with_open_umask(&case, extra);
        assert!(matches!(status.code(), Some(0 | 1)), "{status:?}");
        let all = modes(&case);
        let (mut dirs, mut files) = (0, 0);
        for (p, is_dir, mode) in &all {
            if *is_dir {
                assert_eq!(*mode, dir_mode, "{} {extra:?}", p.display());
                dirs += 1;
            } else {
                assert_eq!(*mode, file_mode, "{} {extra:?}", p.display());
                files += 1;
            }
        }
        // Histories, logs, their plain copies, the manifest, run.json, the report.
        let names: Vec<String> = all.iter().filter_map(|(p, _, _)| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
        for want in [".bash_history", "manifest.csv", "run.json", "report.html", "bodyfile.txt"] {
            assert!(names.iter().any(|n| n == want), "{want} not in the case ({extra:?})");
        }
        assert!(dirs > 5 && files > 10, "{dirs} folders, {files} files");
    }
}

#[test]
fn an_existing_case_folder_keeps_its_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let case = tmp.path().join("case");
    std::fs::create_dir(&case).unwrap();
    std::fs::set_permissions(&case, std::fs::Permissions::from_mode(0o751)).unwrap();
    let status = extract_with_open_umask(&case, &[]);
    assert!(matches!(status.code(), Some(0 | 1)), "{status:?}");
    assert_eq!(std::fs::metadata(&case).unwrap().permissions().mode() & 0o7777, 0o751);
    for (p, is_dir, mode) in modes(&case).into_iter().filter(|(p, _, _)| *p != case) {
        assert_eq!(mode, if is_dir { 0o700 } else { 0o600 }, "{}", p.display());
    }
}
