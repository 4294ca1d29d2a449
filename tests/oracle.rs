//! Every fixture image, extracted, compared with the listings that
//! sleuthkit (fls/istat/icat) and debugfs produced when the images were
//! built (images/expected/*.tsv): the right files, identical bytes, the
//! original mtime to the nanosecond, nothing extra, symlinks recorded but
//! never created, and the right host names and volumes.

mod common;
use common::*;
use std::collections::HashMap;

fn check_image(name: &str) {
    let case = tempfile::tempdir().unwrap();
    let out = extract(&[&image(name)], case.path());
    assert_eq!(out.code, Some(0), "{name}: exit status; stderr: {}", out.stderr);
    let run = &runs(case.path())[0];
    let offsets = volume_offsets(run);
    let rows = manifest(case.path());
    // (offset, image path) → manifest row
    let by_path: HashMap<(u64, String), &HashMap<String, String>> = rows
        .iter()
        .map(|r| ((offsets[&r["volume"]], r["image_path"].clone()), r))
        .collect();

    let expected = expected(name);
    let mut wanted = 0;
    for e in &expected {
        let row = by_path.get(&(e.offset, e.path.clone()));
        if e.kind == "l" {
            // Symlinks: recorded when a target matches, never created.
            if let Some(r) = row {
                assert_eq!(r["status"], "symlink", "{name} {}", e.path);
                assert_eq!(r["reason"], format!("-> {}", e.target), "{name} {}", e.path);
                assert_eq!(r["output_path"], "");
            }
            continue;
        }
        if !e.extract {
            assert!(
                row.is_none_or(|r| r["status"] != "ok"),
                "{name}: {} was extracted but is not a target",
                e.path
            );
            continue;
        }
        wanted += 1;
        let r = row.unwrap_or_else(|| panic!("{name}: {} (offset {}) missing from the manifest", e.path, e.offset));
        assert_eq!(r["status"], "ok", "{name} {}: {}", e.path, r["reason"]);
        assert_eq!(r["sha256"], e.sha256, "{name} {}: manifest hash", e.path);
        assert_eq!(r["size"], e.size.to_string(), "{name} {}", e.path);
        let file = case.path().join(&r["output_path"]);
        assert_eq!(sha256_file(&file), e.sha256, "{name} {}: bytes of {}", e.path, file.display());
        assert_eq!(mtime_of(&file), e.mtime, "{name} {}: mtime of {}", e.path, file.display());
    }
    assert!(wanted > 0, "{name}: the listing names no file to extract");
    let ok = rows.iter().filter(|r| r["status"] == "ok").count();
    assert_eq!(ok, wanted, "{name}: extracted files vs expected");

    // No symlink anywhere in the case folder.
    let mut stack = vec![case.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            assert!(!ft.is_symlink(), "symlink created in the case folder: {}", e.path().display());
            if ft.is_dir() {
                stack.push(e.path());
            }
        }
    }

    // Volumes and host name against images/expected/volumes.tsv.
    let j = run_json(run);
    let ev = &j["evidence"][0];
    let vols = tsv(&repo().join("images/expected/volumes.tsv"));
    let mine: Vec<_> = vols.iter().filter(|v| v["image"] == name).collect();
    assert!(!mine.is_empty());
    for v in &mine {
        let offset: u64 = v["offset"].parse().unwrap();
        let got = ev["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["offset"].as_u64().unwrap_or(0) == offset)
            .unwrap_or_else(|| panic!("{name}: no volume at offset {offset}"));
        assert_eq!(got["size"].as_u64().unwrap(), v["size"].parse::<u64>().unwrap(), "{name} size at {offset}");
        assert_eq!(got["filesystem"], v["fstype"].as_str(), "{name} fs at {offset}");
        assert_eq!(got["label"], v["label"].as_str(), "{name} label at {offset}");
        assert_eq!(got["os_root"], v["os_root"] == "yes", "{name} os_root at {offset}");
        if v["os_root"] == "yes" {
            assert_eq!(ev["host"], v["hostname"].as_str(), "{name} hostname");
        }
    }
    if mine.iter().all(|v| v["os_root"] != "yes") {
        assert_eq!(ev["host"], name.split('.').next().unwrap(), "{name}: fallback host name is the file stem");
    }
    let host = ev["host"].as_str().unwrap();
    assert!(case.path().join("Host-Based Logs").join(host).is_dir());
}

#[test]
fn linux_gpt() {
    check_image("linux-gpt");
}

#[test]
fn linux_mbr_with_logical_partitions() {
    check_image("linux-mbr");
}

#[test]
fn ext2_bare_indirect_blocks() {
    check_image("ext2-bare");
}

#[test]
fn ext3_bare_application_volume() {
    check_image("ext3-bare");
}

#[test]
fn ext4_edge_cases() {
    check_image("ext4-edge");
}

#[test]
fn split_raw() {
    check_image("split-gpt");
}

#[test]
fn gpt_with_4096_byte_sectors() {
    check_image("linux-gpt4k");
}

#[test]
fn ntfs_win() {
    check_image("ntfs-win");
}

#[test]
fn ntfs_64k_clusters() {
    check_image("ntfs-64k");
}

#[test]
fn ntfs_gpt_windows_disk_with_a_data_volume() {
    check_image("ntfs-gpt");
}

#[test]
fn ntfs_4096_byte_sectors_data_volume() {
    check_image("ntfs-4kn");
}

#[test]
fn ntfs_mft_with_its_own_attribute_list() {
    check_image("ntfs-mftlist");
}
