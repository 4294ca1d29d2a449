//! Every fixture image, extracted, compared with the listings that
//! sleuthkit (fls/istat/icat) and debugfs produced when the images were
//! built (images/expected/*.tsv): the right files, identical bytes, the
//! original mtime to the nanosecond, nothing extra, symlinks recorded but
//! never created, and the right host names and volumes.

use crate::common::*;
use std::collections::HashMap;

fn check_image(name: &str) {
    check_images(name, &[&image(name)]);
}

/// `evidence` extracted in one run, against the listing `name`.
fn check_images(name: &str, evidence: &[&std::path::Path]) {
    let case = tempfile::tempdir().unwrap();
    let out = extract(evidence, case.path());
    assert_eq!(out.code, Some(0), "{name}: exit status; stderr: {}", out.stderr);
    let run = &runs(case.path())[0];
    let offsets = volume_offsets(run);
    let rows = manifest(case.path());
    // (offset, image path) → manifest row
    let by_path: HashMap<(String, String), &HashMap<String, String>> =
        rows.iter().filter(|r| r["type"] != "volume").map(|r| ((offsets[&r["volume"]].clone(), r["image_path"].clone()), r)).collect();

    let expected = expected(name);
    let mut wanted = 0;
    for e in &expected {
        let row = by_path.get(&(e.offset.clone(), e.path.clone()));
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
            assert!(row.is_none_or(|r| r["status"] != "ok"), "{name}: {} was extracted but is not a target", e.path);
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
    // Copied files only (derived .evtx.jsonl and decompressed rows aside).
    let ok = rows.iter().filter(|r| r["status"] == "ok" && r["type"] == "file").count();
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
    let vols = volumes();
    let mine: Vec<_> = vols.iter().filter(|v| v["image"] == name).collect();
    assert!(!mine.is_empty());
    for v in &mine {
        let offset = &v["offset"];
        let got = ev["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| volume_key(x) == *offset)
            .unwrap_or_else(|| panic!("{name}: no volume at {offset}"));
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
fn xfs_v5() {
    check_image("xfs-v5");
}

#[test]
fn xfs_v4() {
    check_image("xfs-v4");
}

#[test]
fn linux_lvm_volumes_land_at_their_mount_points() {
    check_image("linux-lvm");
    let case = tempfile::tempdir().unwrap();
    assert_eq!(extract(&[&image("linux-lvm")], case.path()).code, Some(0));
    let host = case.path().join("Host-Based Logs/lvm01.internal");
    // /var/log is its own LV in two segments, /home another, /data a partition.
    for p in [
        "var/log/messages",
        "var/log/audit/audit.log",
        "home/ec2-user/.bash_history",
        "home/carol/.bash_history",
        "data/app/logs/server.log",
        "root/.bash_history",
    ] {
        assert!(host.join(p).is_file(), "{p} not at its mount point");
    }
    assert!(!host.join("_volumes").exists(), "every volume is mounted by fstab");
    assert!(!host.join("usr").exists() && !host.join("boot").exists());
    let j = run_json(&runs(case.path())[0]);
    let mounts: Vec<String> =
        j["evidence"][0]["volumes"].as_array().unwrap().iter().filter_map(|v| v["mount_point"].as_str().map(String::from)).collect();
    for m in ["/var/log", "/home", "/boot", "/data"] {
        assert!(mounts.iter().any(|x| x == m), "{m} in {mounts:?}");
    }
}

#[test]
fn amazon_linux_layout_xfs_root_and_fat_efi_partition() {
    check_image("al2023-gpt");
}

#[test]
fn an_lvm_volume_group_spanning_two_disks() {
    let (a, b) = (fixtures().join("lvm-multi-a.img"), fixtures().join("lvm-multi-b.img"));
    check_images("lvm-multi", &[&a, &b]);
    // One disk alone: the root is read, the LV that needs the other disk is
    // reported unreadable, and the run says so (exit 1).
    let case = tempfile::tempdir().unwrap();
    let out = extract(&[&a], case.path());
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let rows = manifest(case.path());
    assert!(rows.iter().any(|r| r["volume"] == "vg1-var_log" && r["status"] == "error" && r["reason"].contains("not in this evidence")));
    assert!(rows.iter().any(|r| r["image_path"] == "/root/.bash_history" && r["status"] == "ok"));
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
    // Drive letters from the SYSTEM hive's MountedDevices (GPT partition
    // GUIDs): the OS under C/, the data volume, with its IIS logs, under E/.
    let case = tempfile::tempdir().unwrap();
    assert_eq!(extract(&[&image("ntfs-gpt")], case.path()).code, Some(0));
    let host = case.path().join("Host-Based Logs/WIN-GPT01");
    assert!(host.join("C/Windows/System32/winevt/Logs/Application.evtx").is_file());
    assert!(host.join("C/Windows/System32/winevt/Logs/Application.evtx.jsonl").is_file(), "EVTX converted");
    assert!(host.join("C/inetpub/logs/LogFiles/W3SVC1/u_ex240601.log").is_file());
    assert!(host.join("E/inetpub/logs/LogFiles/W3SVC2/u_ex240602.log").is_file(), "IIS logs from E:");
    assert!(host.join("E/App/logs/app.log").is_file());
    assert!(!host.join("_volumes").exists());
    let j = run_json(&runs(case.path())[0]);
    let vols = j["evidence"][0]["volumes"].as_array().unwrap();
    assert!(vols.iter().any(|v| v["mount_point"] == "E:" && v["label"] == "Data"), "{vols:?}");
    // Found where the machine's configuration puts them.
    let rows = manifest(case.path());
    let by = |p: &str| rows.iter().find(|r| r["image_path"] == p && r["type"] == "file").map(|r| r["target"].clone());
    assert_eq!(by("/Windows/System32/config/MovedLogs/Security.evtx").as_deref(), Some("config:eventlog"));
    assert_eq!(by("/WebLogs/W3SVC1/u_ex240603.log").as_deref(), Some("config:iis"));
}

/// An MBR Windows disk: drive letters from MountedDevices values of disk
/// signature + partition byte offset; E: is a logical partition. A letter
/// for another disk's signature and a CD-ROM's place nothing.
#[test]
fn ntfs_mbr_drive_letters_by_disk_signature_and_offset() {
    check_image("ntfs-mbr");
    let case = tempfile::tempdir().unwrap();
    assert_eq!(extract(&[&image("ntfs-mbr")], case.path()).code, Some(0));
    let host = case.path().join("Host-Based Logs/WIN-MBR01");
    assert!(host.join("C/Windows/System32/winevt/Logs/Security.evtx").is_file());
    assert!(host.join("E/inetpub/logs/LogFiles/W3SVC1/u_ex240501.log").is_file(), "IIS logs from E:");
    assert!(host.join("E/\u{c4}rger/\u{c9}V\u{c9}NEMENTS.LOG").is_file());
    let mut top: Vec<String> = std::fs::read_dir(&host).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    top.sort();
    assert_eq!(top, ["C", "E"]);
    let j = run_json(&runs(case.path())[0]);
    let vols = j["evidence"][0]["volumes"].as_array().unwrap();
    assert!(vols.iter().any(|v| v["id"] == "p5" && v["mount_point"] == "E:" && v["label"] == "Logs"), "{vols:?}");
}

#[test]
fn ntfs_4096_byte_sectors_data_volume() {
    check_image("ntfs-4kn");
}

#[test]
fn ntfs_mft_with_its_own_attribute_list() {
    check_image("ntfs-mftlist");
}

/// NTFS alternate data streams: always listed, extracted with --ads (the
/// Zone.Identifier written through ntfs-3g when the image was built).
#[test]
fn ntfs_alternate_data_streams_are_listed_and_extracted_on_request() {
    let path = "/Users/alice/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt";
    let run = |extra: &[&str]| {
        let case = tempfile::tempdir().unwrap();
        let img = image("ntfs-win");
        let mut a: Vec<&std::ffi::OsStr> = vec!["extract".as_ref(), img.as_os_str(), "-o".as_ref(), case.path().as_os_str(), "-q".as_ref()];
        a.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
        assert_eq!(snapsift(&a).code, Some(0));
        let row = manifest(case.path()).into_iter().find(|r| r["type"] == "ads" && r["image_path"] == format!("{path}:Zone.Identifier"));
        (case, row.expect("the stream is listed"))
    };
    let (_, listed) = run(&[]);
    assert_eq!(listed["status"], "skipped");
    assert!(listed["reason"].contains("--ads"));
    let (case, got) = run(&["--ads"]);
    assert_eq!(got["status"], "ok", "{}", got["reason"]);
    let file = case.path().join(&got["output_path"]);
    assert!(got["output_path"].ends_with("ConsoleHost_history.txt:Zone.Identifier"), "{}", got["output_path"]);
    assert_eq!(std::fs::read(&file).unwrap(), b"[ZoneTransfer]\r\nZoneId=3\r\n");
    assert_eq!(sha256_file(&file), got["sha256"]);
}

/// What `disk.0*` gives: a split raw set named whole on the command line,
/// in either order, is one disk. Each file comes once (no `__2` twins),
/// every file sleuthkit lists is there, and the segment given too is said
/// to be folded in.
#[test]
fn split_raw_given_whole_is_read_once() {
    let first = image("split-gpt");
    let second = first.with_extension("002");
    let (first, second) = (first.as_path(), second.as_path());
    check_images("split-gpt", &[first, second]);
    for order in [[first, second], [second, first]] {
        let case = tempfile::tempdir().unwrap();
        let out = extract(&order, case.path());
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        each_file_once(case.path());
        let run = run_json(&runs(case.path())[0]);
        let ev = run["evidence"].as_array().unwrap();
        assert_eq!(ev.len(), 1, "{run}");
        assert_eq!(ev[0]["folded"].as_array().unwrap().len(), 1, "{run}");
        assert!(run["warnings"].to_string().contains("is part of this image"), "{run}");
    }
}
