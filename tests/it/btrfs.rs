//! The Btrfs reader on its own: every directory, file and symlink of the
//! Btrfs fixtures read through the `FileSystem` trait and compared with
//! what the kernel showed on a read-only mount of the same image
//! (images/expected/btrfs-*.tsv, made by images/build-btrfs.py): inode
//! numbers, sizes, modes, owners, link counts, all four times, bytes,
//! symlink targets, xattrs. Then damage: a bad primary superblock (the
//! mirror is used), a bad first copy of DUP metadata (the second is used),
//! leaves failing their checksum in every copy (read with a warning, sizes
//! trusted only as far as extents reach), bit flips and truncation (errors
//! and warnings, never a panic or a hang).

use crate::common::*;
use sha2::{Digest, Sha256};
use snapsift::evidence::Source;
use snapsift::fs::{self, FileKind, FileSystem, NodeId, Probe};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

const IMAGES: [&str; 4] = ["btrfs-rootdir", "btrfs-subvol", "btrfs-suse", "btrfs-fedora"];

fn open(data: Vec<u8>) -> Arc<dyn FileSystem> {
    let src: Source = Arc::new(data);
    match fs::probe(&src) {
        Probe::Found(f) => f,
        Probe::Damaged(what, why) => panic!("{what}: {why}"),
        _ => panic!("no filesystem"),
    }
}

fn pct(b: &[u8]) -> String {
    b.iter().map(|&c| if c < 0x20 || c == 0x7F || c >= 0x80 || c == b'%' { format!("%{c:02X}") } else { (c as char).to_string() }).collect()
}

fn stamp(t: Option<snapsift::util::time::Timestamp>) -> String {
    let t = t.unwrap();
    format!("{}.{:09}", t.secs, t.nanos)
}

/// Every node below the root by escaped path.
fn walk(fs: &dyn FileSystem) -> BTreeMap<String, NodeId> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(fs.root(), Vec::new())];
    while let Some((dir, path)) = stack.pop() {
        for e in fs.read_dir(dir).unwrap() {
            let mut p = path.clone();
            p.push(b'/');
            p.extend_from_slice(&e.name);
            if fs.metadata(e.node).unwrap().kind() == FileKind::Dir {
                stack.push((e.node, p.clone()));
            }
            assert!(out.insert(pct(&p), e.node).is_none(), "{} listed twice", pct(&p));
        }
    }
    out
}

fn sha(fs: &dyn FileSystem, node: NodeId) -> String {
    let mut h = Sha256::new();
    std::io::copy(&mut fs.open(node).unwrap(), &mut h).unwrap();
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything the kernel listed, as the reader reads it.
fn agrees_with_the_kernel(name: &str, fs: &dyn FileSystem) {
    let rows = tsv(&repo().join(format!("images/expected/{name}.tsv")));
    let nodes = walk(fs);
    let listed: Vec<&String> = rows.iter().map(|r| &r["path"]).collect();
    assert_eq!(nodes.keys().collect::<Vec<_>>(), listed, "{name}: paths");
    for r in &rows {
        let path = &r["path"];
        let node = nodes[path];
        let m = fs.metadata(node).unwrap();
        let kind = match r["type"].as_str() {
            "d" => FileKind::Dir,
            "l" => FileKind::Symlink,
            _ => FileKind::File,
        };
        assert_eq!(m.kind(), kind, "{name} {path}");
        assert_eq!((node & ((1 << 48) - 1)).to_string(), r["inode"], "{name} {path}: inode");
        assert_eq!(m.size.to_string(), r["size"], "{name} {path}: size");
        assert_eq!(format!("{:o}", m.mode), r["mode"], "{name} {path}: mode");
        assert_eq!((m.uid.to_string(), m.gid.to_string()), (r["uid"].clone(), r["gid"].clone()), "{name} {path}");
        assert_eq!(m.nlink.to_string(), r["nlink"], "{name} {path}: nlink");
        assert_eq!(stamp(m.mtime), r["mtime"], "{name} {path}: mtime");
        assert_eq!(stamp(m.atime), r["atime"], "{name} {path}: atime");
        assert_eq!(stamp(m.ctime), r["ctime"], "{name} {path}: ctime");
        assert_eq!(stamp(m.btime), r["btime"], "{name} {path}: btime (otime)");
        match kind {
            FileKind::File => assert_eq!(sha(fs, node), r["sha256"], "{name} {path}: bytes"),
            FileKind::Symlink => assert_eq!(pct(&fs.read_link(node).unwrap()), r["target"], "{name} {path}: target"),
            _ => {}
        }
        if kind != FileKind::Symlink {
            let mut x = fs.xattrs(node).unwrap();
            x.sort();
            let x: Vec<String> = x.iter().map(|(n, v)| format!("{}={}", String::from_utf8_lossy(n), hex(v))).collect();
            assert_eq!(x.join(";"), r["xattrs"], "{name} {path}: xattrs");
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02x}")).collect()
}

fn lookup(fs: &dyn FileSystem, path: &str) -> NodeId {
    fs::lookup_ci(fs, path).unwrap_or_else(|| panic!("{path} missing"))
}

#[test]
fn every_node_reads_as_the_kernel_shows_it_rootdir() {
    let fs = open(std::fs::read(image("btrfs-rootdir")).unwrap());
    assert_eq!(fs.kind(), "btrfs");
    assert_eq!(fs.label().as_deref(), Some("rootdir"));
    assert_eq!(fs.uuid().as_deref(), Some("5eedb7f5-0000-4000-8000-000000000001"));
    agrees_with_the_kernel("btrfs-rootdir", fs.as_ref());
    assert!(fs.warnings().is_empty(), "{:?}", fs.warnings());
}

/// Default subvolume `@`, nested subvolumes, zstd/zlib/lzo extents and
/// inline items, a partially overwritten compressed extent, preallocation,
/// a hole, a hard link, DUP metadata.
#[test]
fn every_node_reads_as_the_kernel_shows_it_subvolumes_and_compression() {
    let fs = open(std::fs::read(image("btrfs-subvol")).unwrap());
    agrees_with_the_kernel("btrfs-subvol", fs.as_ref());
    assert!(fs.warnings().is_empty(), "{:?}", fs.warnings());
    for (path, c) in [
        ("/var/log/messages", Some("zstd")),
        ("/var/log/zstd/small.log", Some("zstd")),
        ("/var/log/zlib/app.log", Some("zlib")),
        ("/var/log/zlib/small.log", Some("zlib")),
        ("/var/log/lzo/app.log", Some("lzo")),
        ("/var/log/lzo/small.log", Some("lzo")),
        ("/etc/passwd", Some("zstd")),
        ("/var/log/prealloc.log", Some("zstd")),
        ("/var/log/sparse.log", None),
    ] {
        assert_eq!(fs.compression(lookup(fs.as_ref(), path)), c, "{path}");
    }
    // Preallocated blocks hold the stale pattern on disk; they read as zeros.
    let mut v = Vec::new();
    fs.open(lookup(fs.as_ref(), "/var/log/prealloc.log")).unwrap().read_to_end(&mut v).unwrap();
    assert!(v[65536..196608].iter().all(|&b| b == 0));
}

/// Every tree a machine reads from a Btrfs volume (images/expected/btrfs-views.tsv,
/// written by images/build-btrfs.py): the default one or the subvolume fstab mounts
/// at `/`, those it mounts elsewhere, snapper's snapshots; where each belongs in the
/// grep folder.
fn views(image: &str) -> Vec<HashMap<String, String>> {
    tsv(&repo().join("images/expected/btrfs-views.tsv")).into_iter().filter(|v| v["image"] == image).collect()
}

/// The listing of a view: `<image>.tsv` for the default tree, else `<image>.<view>.tsv`.
fn listing_of(v: &HashMap<String, String>) -> String {
    if v["subvol"].is_empty() { v["image"].clone() } else { format!("{}.{}", v["image"], v["view"]) }
}

fn open_subvolume(fs: &dyn FileSystem, path: &str) -> Arc<dyn FileSystem> {
    let s = fs.subvolumes().unwrap().into_iter().find(|s| s.path == path).unwrap_or_else(|| panic!("no subvolume {path}"));
    fs.subvolume(s.id).unwrap()
}

#[test]
fn subvolumes_are_listed_as_btrfs_progs_lists_them() {
    for name in IMAGES {
        let fs = open(std::fs::read(image(name)).unwrap());
        let got: Vec<Vec<String>> = fs
            .subvolumes()
            .unwrap()
            .into_iter()
            .filter(|s| s.id != 5)
            .map(|s| {
                let ro = if s.readonly { "yes" } else { "no" };
                vec![s.id.to_string(), s.path, s.uuid.unwrap_or_default(), s.parent_uuid.unwrap_or_default(), ro.into()]
            })
            .collect();
        let want: Vec<Vec<String>> = tsv(&repo().join(format!("images/expected/{name}.subvolumes.tsv")))
            .into_iter()
            .map(|r| ["id", "path", "uuid", "parent_uuid", "readonly"].iter().map(|c| r[*c].clone()).collect())
            .collect();
        assert_eq!(got, want, "{name}");
        // The view opened shows exactly one of them: the default.
        assert_eq!(fs.subvolumes().unwrap().iter().filter(|s| s.shown).count(), 1, "{name}");
    }
    let fs = open(std::fs::read(image("btrfs-suse")).unwrap());
    let snap = fs.subvolumes().unwrap().into_iter().find(|s| s.path == "@/.snapshots/2/snapshot").unwrap();
    assert!(snap.created.is_some_and(|t| t.secs > 1_700_000_000), "{snap:?}");
    assert!(fs.subvolume(2).is_err(), "the extent tree is not a subvolume");
}

#[test]
fn every_tree_a_machine_mounts_reads_as_the_kernel_shows_it() {
    for name in ["btrfs-subvol", "btrfs-suse", "btrfs-fedora"] {
        let fs = open(std::fs::read(image(name)).unwrap());
        agrees_with_the_kernel(name, fs.as_ref());
        for v in views(name).iter().filter(|v| !v["subvol"].is_empty()) {
            let view = open_subvolume(fs.as_ref(), &v["subvol"]);
            agrees_with_the_kernel(&listing_of(v), view.as_ref());
        }
        assert!(fs.warnings().is_empty(), "{name}: {:?}", fs.warnings());
    }
}

/// Each image extracted: every file each view should give is in the manifest
/// with the kernel's hash, at `<host>/<the view's folder>/<path>`; a snapshot's
/// file with the live tree's bytes at the same path is `identical` (listed, not
/// written again); nothing else is extracted.
#[test]
fn the_whole_pipeline_finds_the_host_and_its_logs() {
    for name in IMAGES {
        let case = tempfile::tempdir().unwrap();
        let out = extract(&[&image(name)], case.path());
        assert_eq!(out.code, Some(0), "{name}: {}", out.stderr);
        let host = match name {
            "btrfs-suse" => "sles15-sap",
            "btrfs-fedora" => "fedora-cloud",
            _ => "sles15-btrfs",
        };
        let rows = manifest(case.path());
        let by_path: HashMap<(&str, &str), &HashMap<String, String>> =
            rows.iter().filter(|r| r["type"] == "file").map(|r| ((r["volume"].as_str(), r["image_path"].as_str()), r)).collect();
        let views = views(name);
        let root = views.iter().find(|v| v["role"] == "root").unwrap();
        let live: HashMap<String, String> = expected(&listing_of(root)).into_iter().map(|e| (e.path, e.sha256)).collect();
        let mut wanted = 0;
        for v in &views {
            let volume = if v["subvol"].is_empty() { "disk".to_string() } else { format!("disk:{}", v["subvol"]) };
            for e in expected(&listing_of(v)).iter().filter(|e| e.extract) {
                wanted += 1;
                let what = format!("{name} {volume} {}", e.path);
                let r = by_path.get(&(volume.as_str(), e.path.as_str())).unwrap_or_else(|| panic!("{what} not extracted"));
                let identical = v["role"] == "snapshot" && live.get(&e.path) == Some(&e.sha256);
                let status = if identical { "identical" } else { "ok" };
                assert_eq!((r["status"].as_str(), r["sha256"].as_str()), (status, e.sha256.as_str()), "{what}");
                let folder = Path::new("Host-Based Logs").join(host).join(&v["folder"]);
                if identical {
                    assert!(!case.path().join(&folder).join(e.path.trim_start_matches('/')).exists(), "{what}: written again");
                } else {
                    // (Names longer than the output filesystem allows are shortened.)
                    let out = Path::new(&r["output_path"]);
                    assert!(
                        out.starts_with(&folder) && out.components().count() == folder.components().count() + e.path.matches('/').count(),
                        "{what}: {}",
                        out.display()
                    );
                    assert_eq!(mtime_of(&case.path().join(out)), e.mtime, "{what}");
                }
            }
        }
        assert!(wanted > 3, "{name}");
        let extracted = rows.iter().filter(|r| r["type"] == "file" && (r["status"] == "ok" || r["status"] == "identical")).count();
        assert_eq!(extracted, wanted, "{name}: files beyond what the views should give");
        let j = run_json(&runs(case.path())[0]);
        assert_eq!(j["evidence"][0]["host"], host, "{name}");
        assert_eq!(j["evidence"][0]["volumes"][0]["filesystem"], "btrfs", "{name}");
        let text = j.to_string();
        assert!(!text.contains("fstab mounts"), "{name}: {text}");
    }
}

/// SUSE's story: snapper's snapshot 2, taken before an intruder deleted
/// /var/log/warn and emptied root's history, gives both back beside the live
/// tree, and says so.
#[test]
fn a_snapper_snapshot_gives_back_what_was_deleted_since() {
    let case = tempfile::tempdir().unwrap();
    let out = extract(&[&image("btrfs-suse")], case.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let snap = views("btrfs-suse").into_iter().find(|v| v["role"] == "snapshot").unwrap();
    let host = case.path().join("Host-Based Logs/sles15-sap");
    assert!(!host.join("var/log/warn").exists());
    assert!(host.join(&snap["folder"]).join("var/log/warn").is_file());
    assert_eq!(std::fs::metadata(host.join("root/.bash_history")).unwrap().len(), 0);
    assert!(std::fs::read_to_string(host.join(&snap["folder"]).join("root/.bash_history")).unwrap().contains("snapper list"));
    let j = run_json(&runs(case.path())[0]);
    assert_eq!((j["counts"]["btrfs_snapshots"].as_u64(), j["counts"]["identical"].as_u64()), (Some(1), Some(1)));
    let vols = j["evidence"][0]["volumes"].as_array().unwrap();
    let v = vols.iter().find(|v| v["id"] == "disk:@/.snapshots/2/snapshot").unwrap();
    assert_eq!(v["snapshot_of"], "disk");
    assert_eq!(v["btrfs_subvolume"]["snapper_number"], 2);
    assert_eq!(v["btrfs_subvolume"]["readonly"], true);
    assert_eq!(v["mount_point"], "/");
    let out = snapsift(&["inspect".as_ref(), image("btrfs-suse").as_os_str()]);
    let inspect = &out.stdout;
    assert!(inspect.contains("snapshot of disk → _snapshots/2-") && inspect.contains("mounted at /home"), "{inspect}");
}

/// (physical offset, logical address) of every tree block of the image:
/// blocks whose header carries the filesystem's fsid.
fn tree_blocks(data: &[u8]) -> Vec<(usize, u64)> {
    let fsid = &data[0x10020..0x10030];
    (0..data.len() / 4096)
        .map(|i| i * 4096)
        .filter(|&p| &data[p + 0x20..p + 0x30] == fsid && p != 0x10000 && p != 0x400_0000)
        .map(|p| (p, u64::from_le_bytes(data[p + 0x30..p + 0x38].try_into().unwrap())))
        .collect()
}

#[test]
fn a_damaged_primary_superblock_falls_back_to_the_mirror() {
    let mut data = std::fs::read(image("btrfs-subvol")).unwrap();
    data[0x10000 + 0x100] ^= 0x40;
    let fs = open(data);
    assert!(fs.warnings().iter().any(|w| w.contains("primary superblock is damaged") && w.contains("67108864")), "{:?}", fs.warnings());
    agrees_with_the_kernel("btrfs-subvol", fs.as_ref());
}

#[test]
fn a_damaged_first_copy_of_dup_metadata_is_read_from_the_second() {
    let mut data = std::fs::read(image("btrfs-subvol")).unwrap();
    let mut copies: HashMap<u64, Vec<usize>> = HashMap::new();
    for (p, logical) in tree_blocks(&data) {
        copies.entry(logical).or_default().push(p);
    }
    let mut damaged = 0;
    for ps in copies.values().filter(|ps| ps.len() == 2) {
        let (a, b) = (ps[0].min(ps[1]), ps[0].max(ps[1]));
        if data[a..a + 16384] == data[b..b + 16384] {
            data[a + 0x200] ^= 0xFF;
            damaged += 1;
        }
    }
    assert!(damaged > 5, "{damaged} DUP pairs");
    let fs = open(data);
    agrees_with_the_kernel("btrfs-subvol", fs.as_ref());
    assert!(fs.warnings().iter().any(|w| w.contains("copy 2 used")), "{:?}", fs.warnings());
}

/// [`survive_walk`] over the default tree and each subvolume's view.
fn survive_walk_all(fs: &dyn FileSystem) {
    survive_walk(fs);
    for s in fs.subvolumes().unwrap_or_default().iter().take(8) {
        if let Ok(view) = fs.subvolume(s.id) {
            survive_walk(view.as_ref());
        }
    }
}

/// Bit flips in tree blocks (both DUP copies, so the damage is seen) and
/// in the superblock, and truncation: errors and warnings, never a panic.
#[test]
fn bit_flips_and_truncation_never_panic_or_hang() {
    for name in IMAGES {
        let clean = std::fs::read(image(name)).unwrap();
        let blocks = tree_blocks(&clean);
        for seed in 1..=campaign("BTRFS_FUZZ_SEEDS", 12, 64) {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut data = clean.clone();
            for _ in 0..40 {
                let (p, _) = blocks[(rng.next() % blocks.len() as u64) as usize];
                // Mostly the header and item table, where the structure is.
                let span = if rng.next().is_multiple_of(2) { 600 } else { 16384 };
                data[p + (rng.next() % span) as usize] ^= 1 << (rng.next() % 8);
            }
            if seed.is_multiple_of(4) {
                // The superblock too (its checksum then fails: the mirror).
                data[0x10000 + 0x20 + (rng.next() % 0x400) as usize] ^= 1 << (rng.next() % 8);
            }
            let src: Source = Arc::new(data);
            match fs::probe(&src) {
                Probe::Found(fs) => survive_walk_all(fs.as_ref()),
                Probe::Damaged(what, why) => assert_eq!(what, "Btrfs", "{why}"),
                _ => panic!("{name} seed {seed}: not recognised"),
            }
        }
        for cut in [0x10000 + 2048, 0x11000, 1 << 20, 8 << 20, 40 << 20, clean.len() - 4096] {
            let src: Source = Arc::new(clean[..cut].to_vec());
            match fs::probe(&src) {
                Probe::Found(fs) => survive_walk_all(fs.as_ref()),
                Probe::Damaged(_, why) => assert!(!why.is_empty()),
                _ => {}
            }
        }
    }
}

/// A flipped bit in the free space of every copy of every leaf: nothing
/// the reader uses changes, but no copy passes its checksum. Every leaf is
/// read anyway with a warning, files keep their bytes, and a size is only
/// trusted as far as the file's extents reach (the trailing hole of
/// sparse.log is cut: its inode is in a damaged leaf).
#[test]
fn leaves_that_fail_their_checksum_in_every_copy_are_read_with_a_warning() {
    let mut data = std::fs::read(image("btrfs-subvol")).unwrap();
    let mut flipped = 0;
    for (p, _) in tree_blocks(&data) {
        let b = &data[p..p + 16384];
        let (level, n) = (b[0x64], u32::from_le_bytes(b[0x60..0x64].try_into().unwrap()) as usize);
        if level != 0 || n == 0 {
            continue;
        }
        // Item data grows down from the end: free space lies between the
        // item table and the lowest data offset.
        let low = (0..n).map(|i| u32::from_le_bytes(b[101 + i * 25 + 17..101 + i * 25 + 21].try_into().unwrap()) as usize).min().unwrap();
        let table_end = n * 25;
        if low > table_end + 8 {
            data[p + 101 + table_end + 4] ^= 0x10;
            flipped += 1;
        }
    }
    assert!(flipped > 10, "{flipped}");
    let fs = open(data);
    assert!(fs.warnings().iter().any(|w| w.contains("checksum mismatch in every copy; read anyway")), "{:?}", fs.warnings());
    let expected = tsv(&repo().join("images/expected/btrfs-subvol.tsv"));
    let want = |p: &str| expected.iter().find(|r| r["path"] == p).unwrap()["sha256"].clone();
    assert_eq!(sha(fs.as_ref(), lookup(fs.as_ref(), "/var/log/messages")), want("/var/log/messages"));
    assert_eq!(sha(fs.as_ref(), lookup(fs.as_ref(), "/var/log/lzo/app.log")), want("/var/log/lzo/app.log"));
    let mut v = Vec::new();
    fs.open(lookup(fs.as_ref(), "/var/log/sparse.log")).unwrap().read_to_end(&mut v).unwrap();
    // (Its last extent is the 4 KiB block written at 2 MiB.)
    assert_eq!(v.len(), 2 * 1024 * 1024 + 4096, "cut after its last extent");
    assert!(v[2 * 1024 * 1024..].starts_with(b"after a 2 MiB hole\n"));
}

/// Every checksum type btrfs-progs offers, on images mkfs.btrfs makes from a
/// staging tree (`--rootdir`: no root, no mount): each reads back what was
/// put in, with no warning (a checksum that did not verify would warn, and
/// a bit flipped in a tree block still fails it). Skipped, saying so,
/// without mkfs.btrfs.
#[test]
fn every_checksum_type_mkfs_offers_is_verified() {
    let Some(mkfs) = ["/usr/sbin/mkfs.btrfs", "/sbin/mkfs.btrfs", "/usr/bin/mkfs.btrfs"].into_iter().find(|p| Path::new(p).exists()) else {
        eprintln!("every_checksum_type_mkfs_offers_is_verified: skipped: mkfs.btrfs (btrfs-progs) is not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(stage.join("var/log")).unwrap();
    let log: Vec<u8> = (0..20_000u32).flat_map(|i| format!("line {i} of a log\n").into_bytes()).collect();
    std::fs::write(stage.join("var/log/messages"), &log).unwrap();
    for csum in ["crc32c", "xxhash", "sha256", "blake2"] {
        let img = dir.path().join(format!("{csum}.img"));
        std::fs::File::create(&img).unwrap().set_len(128 << 20).unwrap();
        let out = std::process::Command::new(mkfs).args(["-q", "-f", "--csum", csum, "--rootdir"]).arg(&stage).arg(&img).output().unwrap();
        assert!(out.status.success(), "{csum}: {}", String::from_utf8_lossy(&out.stderr));
        let clean = std::fs::read(&img).unwrap();
        let fs = open(clean.clone());
        let mut got = Vec::new();
        fs.open(lookup(fs.as_ref(), "/var/log/messages")).unwrap().read_to_end(&mut got).unwrap();
        assert!(got == log, "{csum}: content");
        assert!(fs.warnings().is_empty(), "{csum}: {:?}", fs.warnings());
        // One bit flipped in every copy of every tree block: no checksum holds.
        let mut data = clean;
        for (p, _) in tree_blocks(&data) {
            data[p + 3000] ^= 1;
        }
        let said = match fs::probe(&(Arc::new(data) as Source)) {
            Probe::Found(fs) => {
                survive_walk(fs.as_ref());
                fs.warnings().join("; ")
            }
            Probe::Damaged(_, why) => why,
            _ => panic!("{csum}: not recognised"),
        };
        assert!(said.contains("checksum"), "{csum}: {said}");
    }
}
