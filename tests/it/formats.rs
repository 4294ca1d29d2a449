//! Every disk-image format, against the oracle of the tool that wrote it
//! (qemu-img's own reading, ewfexport, GNU tar; images/expected/formats.tsv):
//! full reads byte-identical, random small reads across grain/block/cluster
//! boundaries identical to the source disk, the same files extracted from
//! every format, and damaged images giving clear errors or warnings.

use crate::common::*;
use sha2::{Digest, Sha256};
use snapsift::evidence::{self, OpenErrorKind, OpenOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// images/<folder> decompressed into Cargo's target tmp dir (`.tar.gz`
/// exports are kept as they are).
fn unpacked(folder: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(folder);
    std::fs::create_dir_all(&d).unwrap();
    for e in std::fs::read_dir(repo().join("images").join(folder)).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".tar.gz") && !name.starts_with("pax0") {
            std::fs::copy(&p, d.join(&name)).unwrap();
        } else if let Some(stem) = name.strip_suffix(".gz") {
            unpack(&p, &d.join(stem));
        }
    }
    d
}

/// images/formats (qemu-img, ewfacquire, tar), decompressed once.
fn formats_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| unpacked("formats"))
}

/// images/vhd (build-vhd.py: dirty VHDX logs, differencing disks).
fn vhd_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| unpacked("vhd"))
}

fn fixture(name: &str) -> PathBuf {
    formats_dir().join(name)
}

fn base() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| std::fs::read(fixture("base.raw")).unwrap())
}

fn open(path: &Path) -> Result<evidence::Evidence, evidence::OpenError> {
    // Inflated archives are unlinked as soon as they are open.
    let temp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inflate");
    evidence::open(path, &OpenOptions { temp_dir: Some(temp), progress: None })
}

fn full_sha(src: &evidence::Source) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < src.len() {
        let n = src.read_at(off, &mut buf).unwrap();
        assert!(n > 0, "short read at {off}");
        h.update(&buf[..n]);
        off += n as u64;
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The whole disk in memory (the small build-vhd.py disks only).
fn full_read(src: &evidence::Source) -> Vec<u8> {
    let mut out = vec![0u8; src.len() as usize];
    let mut off = 0;
    for chunk in out.chunks_mut(1 << 20) {
        src.read_exact_at(off, chunk).unwrap();
        off += chunk.len() as u64;
    }
    out
}

fn base_sha() -> String {
    Sha256::digest(base()).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_format_reads_byte_identical_to_its_oracle() {
    let rows = tsv(&repo().join("images/expected/formats.tsv"));
    assert!(rows.len() >= 20);
    for r in &rows {
        let name = &r["file"];
        let ev = open(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(ev.source.len().to_string(), r["virtual_size"], "{name}: size ({})", ev.format);
        assert_eq!(full_sha(&ev.source), r["sha256"], "{name}: full read ({})", ev.format);
    }
}

#[test]
fn random_small_reads_agree_across_boundaries() {
    let want = base_sha();
    let rows = tsv(&repo().join("images/expected/formats.tsv"));
    let base = base();
    for r in rows.iter().filter(|r| r["sha256"] == want) {
        let name = &r["file"];
        let ev = open(&fixture(name)).unwrap();
        let mut rng = Rng(0x5eed_0000 + name.len() as u64);
        for i in 0..1500 {
            // Half the reads straddle a power-of-two boundary (sector, grain,
            // subcluster, cluster, block).
            let len = 1 + (rng.next() % 70_000) as usize;
            let mut off = rng.next() % (base.len() as u64 - len as u64);
            if i % 2 == 0 {
                let unit = 512u64 << (rng.next() % 12);
                off = (off / unit * unit).saturating_sub(rng.next() % 700).min(base.len() as u64 - len as u64);
            }
            let mut got = vec![0u8; len];
            ev.source.read_exact_at(off, &mut got).unwrap();
            assert!(got == base[off as usize..off as usize + len], "{name}: {len} bytes at {off} differ");
        }
    }
}

#[test]
fn vhdx_past_the_first_sector_bitmap_interleave() {
    let ev = open(&fixture("big.vhdx")).unwrap();
    assert_eq!(ev.source.len(), 4608 << 20);
    for r in tsv(&repo().join("images/expected/formats-windows.tsv")) {
        let off: u64 = r["offset"].parse().unwrap();
        let mut buf = vec![0u8; r["length"].parse().unwrap()];
        ev.source.read_exact_at(off, &mut buf).unwrap();
        let got: String = Sha256::digest(&buf).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, r["sha256"], "big.vhdx window at {off}");
    }
}

/// The acceptance test of the format layer: the same Linux disk in every
/// format gives the same files and hashes as the raw image.
#[test]
fn extraction_is_the_same_from_every_format() {
    let extract_files = |p: &Path| -> HashMap<(String, String), String> {
        let case = tempfile::tempdir().unwrap();
        let out = extract(&[p], case.path());
        assert_eq!(out.code, Some(0), "{}: {}", p.display(), out.stderr);
        manifest(case.path())
            .into_iter()
            .filter(|r| r["status"] == "ok")
            .map(|r| ((r["volume"].clone(), r["image_path"].clone()), r["sha256"].clone()))
            .collect()
    };
    let reference = extract_files(&fixture("base.raw"));
    assert!(reference.len() > 20);
    let want = base_sha();
    for r in tsv(&repo().join("images/expected/formats.tsv")).iter().filter(|r| r["sha256"] == want) {
        assert_eq!(extract_files(&fixture(&r["file"])), reference, "{}", r["file"]);
    }
}

#[test]
fn formats_are_named_and_e01_case_data_is_shown() {
    for (file, want) in [
        ("stream.vmdk", "VMDK (streamOptimized)"),
        ("split.vmdk", "VMDK (twoGbMaxExtentSparse)"),
        ("snap.vmdk", "VMDK snapshot"),
        ("dynamic.vhd", "dynamic VHD"),
        ("fixed.vhd", "fixed VHD"),
        ("chain.qcow2", "QCOW2 (v3) over QCOW2"),
        ("v2.qcow2", "QCOW2 (v2)"),
        ("gcp-oldgnu.tar.gz", "raw in gzip-compressed tar member disk.raw"),
        ("disk.E01", "EnCase (E01)"),
    ] {
        let ev = open(&fixture(file)).unwrap();
        assert!(ev.format.starts_with(want), "{file}: {}", ev.format);
    }
    let out = snapsift(&["inspect".as_ref(), fixture("disk.E01").as_os_str()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("case number: case-42"), "{}", out.stdout);
    assert!(out.stdout.contains("stored MD5: "), "{}", out.stdout);
    assert!(out.stdout.contains("web01"), "{}", out.stdout);
}

fn copy_to(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(fixture(name), &p).unwrap();
    p
}

fn patch(p: &Path, off: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn stream_vmdk_without_its_footer_still_reads() {
    let d = tempfile::tempdir().unwrap();
    let p = copy_to(d.path(), "stream.vmdk");
    let len = std::fs::metadata(&p).unwrap().len();
    // Footer marker, footer and end-of-stream marker gone.
    std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(len - 1536).unwrap();
    assert_eq!(full_sha(&open(&p).unwrap().source), base_sha());
}

#[test]
fn an_interrupted_stream_vmdk_download_is_rebuilt_from_its_markers() {
    let d = tempfile::tempdir().unwrap();
    let p = copy_to(d.path(), "stream.vmdk");
    let len = std::fs::metadata(&p).unwrap().len();
    // Cut in the middle of the grains.
    std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(len * 6 / 10).unwrap();
    // qemu keeps its grain tables at the start: they survive the cut, and
    // grains that did not arrive are errors.
    let ev = open(&p).unwrap();
    let mut tail = vec![0u8; 4096];
    assert!(ev.source.read_exact_at(ev.source.len() - 4096, &mut tail).is_err());
    // VMware and AWS exports put the directory at the end (gdOffset =
    // GD_AT_END): the cut took it, and the map must be rebuilt.
    patch(&p, 56, &[0xFF; 8]);
    let ev = open(&p).unwrap();
    assert!(ev.warnings.iter().any(|w| w.contains("rebuilt")), "{:?}", ev.warnings);
    // What arrived reads right, including the unallocated (zero) gap …
    let mut head = vec![0u8; 8 << 20];
    ev.source.read_exact_at(0, &mut head).unwrap();
    assert!(head == base()[..8 << 20]);
    // … and what did not arrive is an error, never zeros.
    let mut tail = vec![0u8; 4096];
    let e = ev.source.read_exact_at(ev.source.len() - 4096, &mut tail).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
    // Extraction finishes, and says files could not be read.
    let case = tempfile::tempdir().unwrap();
    let out = extract(&[&p], case.path());
    assert_eq!(out.code, Some(1), "{}", out.stderr);
}

#[test]
fn vmdk_damaged_grain_directory_falls_back_to_the_redundant_one() {
    let d = tempfile::tempdir().unwrap();
    let p = copy_to(d.path(), "sparse.vmdk");
    let head = std::fs::read(&p).unwrap();
    let gd = u64::from_le_bytes(head[56..64].try_into().unwrap());
    patch(&p, gd * 512, &[0xFF; 64]);
    let ev = open(&p).unwrap();
    assert!(ev.warnings.iter().any(|w| w.contains("redundant")), "{:?}", ev.warnings);
    assert_eq!(full_sha(&ev.source), base_sha());
}

#[test]
fn vhd_with_a_damaged_end_footer_uses_the_copy_at_the_start() {
    let d = tempfile::tempdir().unwrap();
    let p = copy_to(d.path(), "dynamic.vhd");
    let len = std::fs::metadata(&p).unwrap().len();
    patch(&p, len - 512, &[0u8; 512]);
    let ev = open(&p).unwrap();
    assert!(ev.warnings.iter().any(|w| w.contains("offset 0")), "{:?}", ev.warnings);
    assert_eq!(full_sha(&ev.source), base_sha());
}

/// A fixed VHD whose footer fails only its checksum (a byte of its
/// reserved area flipped): read with a warning that says what was
/// accepted, as libvhdi reads it. A footer whose disk type is also wrong
/// is refused.
#[test]
fn vhd_footer_with_a_wrong_checksum_is_read_with_a_warning() {
    let d = tempfile::tempdir().unwrap();
    let p = copy_to(d.path(), "fixed.vhd");
    let len = std::fs::metadata(&p).unwrap().len();
    patch(&p, len - 512 + 100, &[0x5a]);
    let ev = open(&p).unwrap();
    assert!(ev.warnings.iter().any(|w| w.contains("checksum is wrong") && w.contains("qemu-img refuses")), "{:?}", ev.warnings);
    assert_eq!(full_sha(&ev.source), base_sha());
    patch(&p, len - 512 + 60, &[0, 0, 0, 9]);
    let err = open(&p).err().expect("a footer with disk type 9 is refused");
    assert_eq!(err.kind, OpenErrorKind::Damaged);
    assert!(err.to_string().contains("no valid VHD footer"), "{err}");
}

#[test]
fn vhdx_with_one_damaged_header_uses_the_other() {
    let d = tempfile::tempdir().unwrap();
    let p = copy_to(d.path(), "default.vhdx");
    patch(&p, 64 * 1024 + 100, &[0xAB; 16]);
    let ev = open(&p).unwrap();
    assert!(ev.warnings.iter().any(|w| w.contains("header")), "{:?}", ev.warnings);
    assert_eq!(full_sha(&ev.source), base_sha());
}

#[test]
fn missing_parents_are_named_and_mismatched_parents_refused() {
    let d = tempfile::tempdir().unwrap();
    let chain = copy_to(d.path(), "chain.qcow2");
    let e = open(&chain).err().unwrap();
    assert_eq!(e.kind, OpenErrorKind::Missing, "a parent not copied yet may be: {e}");
    assert!(e.to_string().contains("plain.qcow2"), "{e}");
    let snap = copy_to(d.path(), "snap.vmdk");
    let e = open(&snap).err().unwrap();
    assert_eq!(e.kind, OpenErrorKind::Missing, "{e}");
    assert!(e.to_string().contains("sparse.vmdk"), "{e}");
    // A parent modified after the snapshot: its CID no longer matches.
    let parent = copy_to(d.path(), "sparse.vmdk");
    let bytes = std::fs::read(&parent).unwrap();
    let at = bytes.windows(4).position(|w| w == b"CID=").unwrap() + 4;
    patch(&parent, at as u64, b"0badc0de");
    let e = open(&snap).err().unwrap();
    assert_eq!(e.kind, OpenErrorKind::Damaged, "{e}");
    assert!(e.to_string().contains("CID"), "{e}");
}

#[test]
fn a_backing_file_loop_is_an_error_not_a_hang() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("loop.qcow2");
    std::fs::copy(fixture("chain.qcow2"), &p).unwrap();
    let head = std::fs::read(&p).unwrap();
    let off = u64::from_be_bytes(head[8..16].try_into().unwrap());
    patch(&p, off, b"loop.qcow2");
    patch(&p, 16, &10u32.to_be_bytes());
    let e = format!("{:#}", open(&p).err().unwrap());
    assert!(e.contains("loop"), "{e}");
}

#[test]
fn encrypted_qcow2_is_refused_clearly() {
    let d = tempfile::tempdir().unwrap();
    let p = copy_to(d.path(), "plain.qcow2");
    patch(&p, 32, &1u32.to_be_bytes());
    let e = open(&p).err().unwrap();
    assert_eq!(e.kind, OpenErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("encrypted"), "{e}");
}

#[test]
fn a_bat_entry_past_the_end_is_an_error_never_zeros() {
    let d = tempfile::tempdir().unwrap();
    let p = copy_to(d.path(), "dynamic.vhd");
    let bytes = std::fs::read(&p).unwrap();
    let dyn_off = u64::from_be_bytes(bytes[16..24].try_into().unwrap()) as usize;
    let bat = u64::from_be_bytes(bytes[dyn_off + 16..dyn_off + 24].try_into().unwrap());
    patch(&p, bat + 4, &0x7FFF_0000u32.to_be_bytes()); // block 1 (2 MiB..4 MiB)
    let ev = open(&p).unwrap();
    let mut buf = vec![0u8; 4096];
    let err = ev.source.read_exact_at(3 << 20, &mut buf).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn truncated_and_corrupted_containers_never_panic_or_hang() {
    let d = tempfile::tempdir().unwrap();
    let names: Vec<String> = tsv(&repo().join("images/expected/formats.tsv")).into_iter().map(|r| r["file"].clone()).collect();
    for name in names.iter().filter(|n| {
        !n.starts_with("split") && !n.contains(".E0") && !n.starts_with("flat") && !n.starts_with("snap") && !n.starts_with("chain")
    }) {
        let data = std::fs::read(fixture(name)).unwrap();
        for frac in [0.0005, 0.01, 0.3, 0.7, 0.999] {
            let cut = (data.len() as f64 * frac) as usize;
            let p = d.path().join(name);
            std::fs::write(&p, &data[..cut]).unwrap();
            let case = tempfile::tempdir().unwrap();
            let out = extract(&[&p], case.path());
            assert!(matches!(out.code, Some(0..=2)), "{name} cut at {cut}: {:?} {}", out.code, out.stderr);
        }
        let mut rng = Rng(0xC0FFEE ^ name.len() as u64);
        for seed in 0..4 {
            let mut bad = data.clone();
            for _ in 0..64 {
                // Headers, tables and metadata live in the first and last MiB.
                let span = (1u64 << 20).min(bad.len() as u64);
                let i = if rng.next().is_multiple_of(2) { rng.next() % span } else { bad.len() as u64 - 1 - rng.next() % span };
                bad[i as usize] ^= 1 << (rng.next() % 8);
            }
            let p = d.path().join(format!("{seed}-{name}"));
            std::fs::write(&p, &bad).unwrap();
            let case = tempfile::tempdir().unwrap();
            let out = extract(&[&p], case.path());
            assert!(matches!(out.code, Some(0..=2)), "{name} flipped (seed {seed}): {:?} {}", out.code, out.stderr);
            std::fs::remove_file(&p).unwrap();
        }
    }
}

/// A fixture of images/vhd copied into `dir` (with the parent a row names).
fn vhd_copy(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(vhd_dir().join(name), &p).unwrap();
    p
}

/// The damage a vhdx-log.tsv case describes: `-`, `write:OFFSET:HEX`,
/// `zero:OFFSET:LENGTH` or `truncate:LENGTH` (as build-vhd.py applies it).
fn apply_case(p: &Path, spec: &str) {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts[..] {
        ["-"] => {}
        ["truncate", len] => std::fs::OpenOptions::new().write(true).open(p).unwrap().set_len(len.parse().unwrap()).unwrap(),
        ["write", off, hex] => {
            let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
            patch(p, off.parse().unwrap(), &bytes);
        }
        ["zero", off, len] => patch(p, off.parse().unwrap(), &vec![0u8; len.parse().unwrap()]),
        _ => panic!("bad patch {spec}"),
    }
}

/// A dirty VHDX log (images/build-vhd.py: qemu-img's VHDX plus a log that
/// rewrites payload sectors and allocates a block through the BAT) reads as
/// the disk with the log applied — qemu's own replay agrees where it follows
/// the specification — damaged logs fall back to the newest intact
/// sequence or to the disk as it is, and the evidence file never changes.
#[test]
fn vhdx_dirty_log_is_replayed_in_memory_and_never_written() {
    let rows = tsv(&repo().join("images/expected/vhdx-log.tsv"));
    assert!(rows.len() >= 6);
    for r in &rows {
        let case = format!("{} {}", r["file"], r["case"]);
        let d = tempfile::tempdir().unwrap();
        let p = vhd_copy(d.path(), &r["file"]);
        apply_case(&p, &r["patch"]);
        let before = sha256_file(&p);
        let ev = open(&p).unwrap_or_else(|e| panic!("{case}: {e:#}"));
        assert_eq!(ev.source.len().to_string(), r["virtual_size"], "{case}");
        assert_eq!(full_sha(&ev.source), r["sha256"], "{case}: full read");
        assert!(ev.warnings.iter().any(|w| w.contains(r["warning"].as_str())), "{case}: {:?}", ev.warnings);
        assert!(ev.warnings.iter().all(|w| w.contains("not modified") || w.contains("read as on disk")), "{case}: {:?}", ev.warnings);
        drop(ev);
        assert_eq!(sha256_file(&p), before, "{case}: the evidence file changed");
    }
}

/// Damage anywhere in the log, or a cut anywhere in the file: an error or
/// a warning, never a panic or a hang.
#[test]
fn damaged_vhdx_logs_never_panic() {
    let data = std::fs::read(vhd_dir().join("log.vhdx")).unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("log.vhdx");
    let log = 1u64 << 20; // qemu-img's log: 1 MiB at 1 MiB
    let mut rng = Rng(0x10C0);
    for seed in 0..48 {
        let mut bad = data.clone();
        // The entries sit in the first 32 KiB of the log; hit them most.
        for _ in 0..1 + seed % 8 {
            let span = if rng.next().is_multiple_of(4) { 1 << 20 } else { 32 << 10 };
            let i = (log + rng.next() % span) as usize;
            bad[i] ^= 1 << (rng.next() % 8);
        }
        std::fs::write(&p, &bad).unwrap();
        if let Ok(ev) = open(&p) {
            assert!(ev.warnings.iter().any(|w| w.contains("log")), "seed {seed}: {:?}", ev.warnings);
            let mut buf = vec![0u8; 1 << 20];
            let mut off = 0;
            while off < ev.source.len() {
                let _ = ev.source.read_at(off, &mut buf);
                off += buf.len() as u64;
            }
        }
    }
    // A plausible entry header at every sector of the log, each claiming
    // the whole log: the search must stay bounded.
    let mut bad = data.clone();
    let guid = bad[(64 << 10) + 48..(64 << 10) + 64].to_vec();
    for s in 0..256 {
        let at = log as usize + s * 4096;
        bad[at..at + 4].copy_from_slice(b"loge");
        bad[at + 8..at + 12].copy_from_slice(&(1u32 << 20).to_le_bytes());
        bad[at + 16..at + 24].copy_from_slice(&(100 + s as u64).to_le_bytes());
        bad[at + 32..at + 48].copy_from_slice(&guid);
    }
    std::fs::write(&p, &bad).unwrap();
    let started = std::time::Instant::now();
    let ev = open(&p).unwrap();
    assert!(ev.warnings.iter().any(|w| w.contains("could not be replayed")), "{:?}", ev.warnings);
    assert!(started.elapsed().as_secs() < 60, "log search took {:?}", started.elapsed());
    for cut in [64 << 10, 1 << 20, (1 << 20) + 5000, 3 << 20, data.len() as u64 - 4096] {
        std::fs::write(&p, &data[..cut as usize]).unwrap();
        if let Ok(ev) = open(&p) {
            let _ = ev.source.read_at(0, &mut vec![0u8; 4096]);
        }
    }
}

/// Differencing VHD and VHDX made by images/build-vhd.py from the
/// specifications (partial blocks through the sector bitmap, blocks left
/// to the parent, fully present and zero blocks), over qemu-img parents:
/// the full read is the disk the script put together, which libvhdi also
/// reads (but for its two defects the listing names).
#[test]
fn differencing_vhd_and_vhdx_read_as_expected() {
    let rows = tsv(&repo().join("images/expected/vhd-diff.tsv"));
    assert_eq!(rows.len(), 2);
    for r in &rows {
        let name = &r["file"];
        let d = tempfile::tempdir().unwrap();
        let child = vhd_copy(d.path(), name);
        vhd_copy(d.path(), &r["parent"]);
        let ev = open(&child).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(ev.format.starts_with("differencing"), "{name}: {}", ev.format);
        assert_eq!(ev.files.len(), 2, "{name}: {:?}", ev.files);
        assert!(ev.warnings.is_empty(), "{name}: {:?}", ev.warnings);
        assert_eq!(ev.source.len().to_string(), r["virtual_size"], "{name}");
        let all = full_read(&ev.source);
        let sha: String = Sha256::digest(&all).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sha, r["sha256"], "{name}: full read");
        // Small reads starting and ending inside bitmap runs.
        let mut rng = Rng(0xD1FF + name.len() as u64);
        for _ in 0..2000 {
            let len = 1 + (rng.next() % 9000) as usize;
            let off = (rng.next() % (all.len() - len) as u64) as usize;
            let mut got = vec![0u8; len];
            ev.source.read_exact_at(off as u64, &mut got).unwrap();
            assert!(got == all[off..off + len], "{name}: {len} bytes at {off}");
        }
    }
}

#[test]
fn a_differencing_disk_names_its_missing_parent_and_refuses_a_wrong_one() {
    for r in tsv(&repo().join("images/expected/vhd-diff.tsv")) {
        let (name, parent) = (&r["file"], &r["parent"]);
        let d = tempfile::tempdir().unwrap();
        let child = vhd_copy(d.path(), name);
        let e = open(&child).err().unwrap();
        assert_eq!(e.kind, OpenErrorKind::Missing, "{name}: {e}");
        let e = e.to_string();
        assert!(e.contains(parent.as_str()) && e.contains("missing"), "{name}: {e}");
        // Another disk of the same format under the parent's name.
        let other = if name.ends_with(".vhdx") { "block1m.vhdx" } else { "dynamic.vhd" };
        std::fs::copy(fixture(other), d.path().join(parent)).unwrap();
        let e = open(&child).err().unwrap();
        assert_eq!(e.kind, OpenErrorKind::Damaged, "{name}: {e}");
        assert!(e.to_string().contains("is not the parent of"), "{name}: {e}");
    }
}

#[test]
fn vhd_fixtures_cut_or_flipped_never_panic() {
    for r in tsv(&repo().join("images/expected/vhd-diff.tsv")) {
        let d = tempfile::tempdir().unwrap();
        vhd_copy(d.path(), &r["parent"]);
        let data = std::fs::read(vhd_dir().join(&r["file"])).unwrap();
        let p = d.path().join(&r["file"]);
        let mut rng = Rng(0xBAD0 + data.len() as u64);
        for i in 0..24 {
            let mut bad = if i < 6 { data[..(data.len() as u64 * (i + 1) / 7) as usize].to_vec() } else { data.clone() };
            for _ in 0..if i < 6 { 0 } else { 32 } {
                let span = (5u64 << 20).min(bad.len() as u64);
                let at = (rng.next() % span) as usize;
                bad[at] ^= 1 << (rng.next() % 8);
            }
            std::fs::write(&p, &bad).unwrap();
            if let Ok(ev) = open(&p) {
                let mut buf = vec![0u8; 1 << 20];
                let mut off = 0;
                while off < ev.source.len() {
                    let _ = ev.source.read_at(off, &mut buf);
                    off += buf.len() as u64;
                }
            }
        }
    }
}

/// Evidence is never written: every committed image, and every fixture
/// made from them, hashes the same after each one was extracted in full;
/// and `--hash-evidence` records those same digests for every file a run
/// read (segments, extents, parents).
#[test]
fn every_evidence_file_is_byte_identical_after_extraction() {
    let listing = |d: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()).collect();
        // A fixture being unpacked by another test binary is not evidence yet.
        v.retain(|p| p.is_file() && !p.extension().is_some_and(|e| e.to_string_lossy().starts_with("part")));
        v.sort();
        v
    };
    let containers = repo().join("images/containers");
    let evidence: Vec<PathBuf> = [fixtures(), formats_dir(), containers.as_path()].iter().flat_map(|d| listing(d)).collect();
    let committed: Vec<PathBuf> =
        ["images", "images/formats", "images/containers", "images/vhd"].iter().flat_map(|d| listing(&repo().join(d))).collect();
    let digests = |files: &[PathBuf]| -> Vec<String> { files.iter().map(|p| sha256_file(p)).collect() };
    let (before, committed_before) = (digests(&evidence), digests(&committed));
    let known: HashMap<String, &String> = evidence.iter().map(|p| p.display().to_string()).zip(&before).collect();
    let mut checked = 0;
    for e in &evidence {
        let case = tempfile::tempdir().unwrap();
        let out = snapsift(&[
            "extract".as_ref(),
            e.as_os_str(),
            "-o".as_ref(),
            case.path().as_os_str(),
            "-q".as_ref(),
            "--hash-evidence".as_ref(),
            // The 100 GiB sparse log need not be hashed whole here.
            "--max-file-size".as_ref(),
            "64M".as_ref(),
        ]);
        assert!(matches!(out.code, Some(0..=2)), "{}: exit {:?}: {}", e.display(), out.code, out.stderr);
        let j = run_json(&runs(case.path())[0]);
        for ev in j["evidence"].as_array().unwrap() {
            let recorded = ev["sha256"].as_object().unwrap();
            assert!(!recorded.is_empty(), "{}: no evidence digest in run.json", e.display());
            for (file, digest) in recorded {
                if let Some(want) = known.get(file) {
                    assert_eq!(digest.as_str(), Some(want.as_str()), "{file}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= evidence.len(), "{checked} digests checked for {} files", evidence.len());
    assert_eq!(digests(&evidence), before, "an evidence file changed");
    assert_eq!(digests(&committed), committed_before, "a committed image changed");
}

/// What `case.E0*` gives: the three segments of one E01 set, in any order,
/// are one disk, extracted once, as the first segment alone gives it.
#[test]
fn e01_segments_given_whole_are_read_once() {
    let seg = |n: u32| fixture(&format!("disk.E0{n}"));
    let alone = tempfile::tempdir().unwrap();
    assert_eq!(extract(&[&seg(1)], alone.path()).code, Some(0));
    let files = |case: &Path| -> std::collections::BTreeSet<(String, String)> {
        manifest(case).into_iter().filter(|r| r["type"] == "file").map(|r| (r["image_path"].clone(), r["sha256"].clone())).collect()
    };
    let want = files(alone.path());
    for order in [[1, 2, 3], [2, 1, 3], [3, 2, 1]] {
        let case = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = order.iter().map(|&n| seg(n)).collect();
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let out = extract(&refs, case.path());
        assert_eq!(out.code, Some(0), "{order:?}: {}", out.stderr);
        each_file_once(case.path());
        assert_eq!(files(case.path()), want, "{order:?}");
        let run = run_json(&runs(case.path())[0]);
        assert_eq!(run["evidence"].as_array().unwrap().len(), 1, "{order:?}: {run}");
    }
}

/// `mkfs.fat -F 32` on a small disk makes FAT32 with fewer than 65,525
/// clusters (images/build-fat32-small.sh, written through fusefat): FAT32
/// by its BPB, as the kernel and fsck.fat take it, and its files read as put in.
#[test]
fn small_fat32_is_fat32() {
    let src: evidence::Source = std::sync::Arc::new(std::fs::read(image("fat32-small")).unwrap());
    let snapsift::fs::Probe::Found(fs) = snapsift::fs::probe(&src) else { panic!("no filesystem") };
    assert_eq!(fs.kind(), "fat32");
    assert_eq!(fs.label().as_deref(), Some("SMALLFAT"));
    let read = |p: &str| {
        let node = snapsift::fs::lookup_ci(&*fs, p).unwrap_or_else(|| panic!("{p} missing"));
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut fs.open(node).unwrap(), &mut v).unwrap();
        v
    };
    assert_eq!(read("logs/app.log"), b"May  1 00:00:00 app[1]: started\nMay  1 00:00:01 app[1]: listening on :8080\n");
    let big: String = (1..=3000).map(|i| format!("line {i}\n")).collect();
    assert_eq!(read("logs/big.log"), big.as_bytes());
}

/// Volumes snapsift recognises but does not read (images/build-refusals.sh:
/// APFS by mkapfs, ISO 9660 by genisoimage, squashfs by mksquashfs, beside
/// an ext4 root) are named with what they hold, in the summary even with
/// `--quiet`, in run.json and in the manifest; the root is still read. A
/// QCOW version 1 image is refused with what to do.
#[test]
fn unsupported_volumes_are_named_not_silent() {
    let case = tempfile::tempdir().unwrap();
    let out = extract(&[&image_file("refusals.img")], case.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for (part, what) in [("p2", "APFS container"), ("p3", "ISO 9660"), ("p4", "squashfs")] {
        assert!(
            out.stderr.lines().any(|l| l.starts_with("snapsift: skipped") && l.contains(part) && l.contains(what)),
            "{part}: {}",
            out.stderr
        );
        let rows = manifest(case.path());
        let row = rows.iter().find(|r| r["volume"] == part && r["type"] == "volume").unwrap_or_else(|| panic!("{part}: no row"));
        assert_eq!(row["status"], "skipped");
        assert!(row["reason"].contains(what), "{row:?}");
        let run = run_json(&runs(case.path())[0]);
        assert!(run["skipped_volumes"].to_string().contains(what), "{run}");
    }
    assert!(manifest(case.path()).iter().any(|r| r["image_path"] == "/var/log/syslog" && r["status"] == "ok"));
    let out = snapsift(&["inspect".as_ref(), image_file("qcow1.qcow").as_os_str()]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("QCOW version 1 is not supported") && out.stderr.contains("qemu-img convert -O qcow2"), "{}", out.stderr);
}

/// An images/*.gz fixture that is not a `.img` (`refusals.img`, `qcow1.qcow`), decompressed.
fn image_file(name: &str) -> PathBuf {
    fixtures().join(name)
}
