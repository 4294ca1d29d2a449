//! The exFAT reader on its own: images/exfat.img (images/build-exfat.sh:
//! mkfs.exfat, files put in through fuse-exfat at UTC+2) read through the
//! `FileSystem` trait and compared with what the script put in (made again
//! here the same way); then extracted by the binary; then damaged by seed.

use crate::common::*;
use snapsift::evidence::Source;
use snapsift::fs::{self, FileKind, FileSystem, NodeId, Probe};
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn clean() -> Vec<u8> {
    std::fs::read(image("exfat")).unwrap()
}

fn open(data: Vec<u8>) -> Arc<dyn FileSystem> {
    let src: Source = Arc::new(data);
    match fs::probe(&src) {
        Probe::Found(f) => f,
        _ => panic!("no filesystem found"),
    }
}

/// Every file the script writes: path, content, mtime (as `touch -d` set it).
fn expected() -> BTreeMap<String, (Vec<u8>, String)> {
    let mut m = BTreeMap::new();
    let mut put = |p: &str, data: Vec<u8>, t: &str| m.insert(p.to_string(), (data, format!("{t}.000000000Z")));
    put("/hello.txt", b"hello from exFAT\n".to_vec(), "2024-05-01T12:34:57");
    put("/empty.txt", Vec::new(), "2024-05-01T12:34:57");
    put(
        "/logs/app/app.log",
        b"May  1 00:00:00 app[1]: started\nMay  1 00:00:01 app[1]: listening on :8080\n".to_vec(),
        "2024-05-01T00:00:01",
    );
    let big: String = (1..=3000).map(|i| format!("line {i}\n")).collect();
    put("/logs/app/big.log", big.into_bytes(), "2024-05-02T08:00:00");
    put("/logs/Ünïcode log.txt", "ünïcödé in the name and in the text\n".as_bytes().to_vec(), "2023-12-31T23:59:58");
    put("/logs/a file name long enough to need four name entries.log", b"four name entries\n".to_vec(), "2023-12-31T23:59:58");
    let frag: String = (1..=14).map(|i| format!("{:<511}\n", format!("frag.log part {i}"))).collect();
    put("/logs/frag.log", frag.into_bytes(), "2024-05-02T08:00:00");
    for i in 1..=24 {
        put(&format!("/many/f{i:02}.log"), format!("file {i:02} of many\n").into_bytes(), &format!("2024-06-{i:02}T10:00:00"));
    }
    m
}

/// Every file and directory below the root by path, with its node and kind.
fn walk(fs: &dyn FileSystem) -> BTreeMap<String, (NodeId, FileKind)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(fs.root(), String::new())];
    while let Some((dir, path)) = stack.pop() {
        for e in fs.read_dir(dir).unwrap() {
            let p = format!("{path}/{}", String::from_utf8(e.name).unwrap());
            if e.kind == FileKind::Dir {
                stack.push((e.node, p.clone()));
            }
            assert!(out.insert(p.clone(), (e.node, e.kind)).is_none(), "{p} listed twice");
        }
    }
    out
}

fn read(fs: &dyn FileSystem, node: NodeId) -> Vec<u8> {
    let mut v = Vec::new();
    fs.open(node).unwrap().read_to_end(&mut v).unwrap();
    v
}

#[test]
fn exfat_files_names_sizes_and_times_are_as_put_in() {
    let data = clean();
    let fs = open(data.clone());
    assert_eq!(fs.kind(), "exfat");
    assert_eq!(fs.label().as_deref(), Some("SNAPSIFT-ÉX"));
    assert_eq!(fs.uuid().as_deref(), Some("5EED-0E0F"));
    let tree = walk(&*fs);
    let want = expected();
    let files: Vec<&String> = tree.iter().filter(|(_, (_, k))| *k == FileKind::File).map(|(p, _)| p).collect();
    assert_eq!(files, want.keys().collect::<Vec<_>>(), "the files listed");
    let dirs: Vec<&String> = tree.iter().filter(|(_, (_, k))| *k == FileKind::Dir).map(|(p, _)| p).collect();
    assert_eq!(dirs, ["/logs", "/logs/app", "/many"]);
    for (path, (content, mtime)) in &want {
        let node = tree[path].0;
        let m = fs.metadata(node).unwrap();
        assert_eq!(m.kind(), FileKind::File, "{path}");
        assert_eq!(m.size, content.len() as u64, "{path}");
        assert_eq!(&read(&*fs, node), content, "{path}");
        assert_eq!(m.mtime.unwrap().to_string(), *mtime, "{path}");
        assert!(m.btime.is_some() && m.atime.is_some(), "{path}");
    }
    for d in ["/logs", "/logs/app", "/many"] {
        let m = fs.metadata(tree[d].0).unwrap();
        assert_eq!(m.kind(), FileKind::Dir);
        assert_eq!(m.mtime.unwrap().to_string(), "2024-06-30T00:00:00.000000000Z", "{d}");
    }
    // What the fixture is for: a FAT-chained file beside contiguous ones
    // (NoFatChain, the stream extension's flags byte), and a directory
    // whose entry sets cross from one of its clusters into the next.
    let no_fat_chain = |p: &str| data[(tree[p].0 & !1) as usize + 33] & 2 != 0;
    assert!(!no_fat_chain("/logs/frag.log") && no_fat_chain("/logs/app/big.log"));
    assert!(tree.iter().any(|(p, (n, _))| p.starts_with("/many/") && n % 512 > 448), "no entry set crosses a cluster boundary");
    // Names compared through the volume's up-case table, beyond ASCII.
    assert_eq!(fs::lookup_ci(&*fs, "/LOGS/ÜNÏCODE LOG.TXT"), Some(tree["/logs/Ünïcode log.txt"].0));
    assert!(fs.read_link(tree["/hello.txt"].0).is_err());
    assert!(fs.open(tree["/many"].0).is_err());
    assert!(fs.warnings().is_empty(), "{:?}", fs.warnings());
}

/// The binary finds the volume and extracts its logs (the `logs/`
/// directories and `*.log` names) with their content and times.
#[test]
fn exfat_volume_is_extracted() {
    let case = tempfile::tempdir().unwrap();
    let out = extract(&[&image("exfat")], case.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let rows = manifest(case.path());
    let want = expected();
    // The manifest writes bytes outside printable ASCII as %XX.
    for (p, row_path) in [
        ("/logs/app/big.log", "/logs/app/big.log"),
        ("/logs/frag.log", "/logs/frag.log"),
        ("/logs/Ünïcode log.txt", "/logs/%C3%9Cn%C3%AFcode log.txt"),
        ("/many/f24.log", "/many/f24.log"),
    ] {
        let r = rows.iter().find(|r| r["image_path"] == row_path).unwrap_or_else(|| panic!("{p}: no row"));
        assert_eq!(r["status"], "ok", "{r:?}");
        assert_eq!(r["filesystem"], "exfat", "{r:?}");
        assert_eq!(r["size"], want[p].0.len().to_string(), "{r:?}");
        assert!(r["mtime"].starts_with(&want[p].1[..19]), "{r:?}");
    }
}

/// A bare exFAT volume is one whole-disk volume, even when the boot code
/// where an MBR keeps its table (exFAT's boot sector ends in 0x55AA too)
/// looks like a partition entry.
#[test]
fn bare_exfat_is_not_taken_for_an_mbr() {
    let mut data = clean();
    data[446 + 4] = 0x07;
    data[446 + 8..446 + 12].copy_from_slice(&64u32.to_le_bytes());
    data[446 + 12..446 + 16].copy_from_slice(&1000u32.to_le_bytes());
    let src: Source = Arc::new(data);
    let vs = snapsift::volume::discover(&src);
    assert_eq!(vs.scheme, snapsift::volume::Scheme::None);
    assert_eq!(vs.volumes.len(), 1);
}

/// A damaged boot sector (its fields, not its signature): the backup boot
/// region is used. An entry set whose checksum fails is read as stored,
/// with a warning.
#[test]
fn exfat_backup_boot_and_set_checksums() {
    let mut data = clean();
    data[64..120].fill(0);
    let fs = open(data);
    assert!(fs.warnings().iter().any(|w| w.contains("backup boot region")), "{:?}", fs.warnings());
    assert_eq!(walk(&*fs).len(), expected().len() + 3);

    let mut data = clean();
    let node = walk(&*open(data.clone()))["/hello.txt"].0 as usize;
    assert_eq!(data[node + 66], b'h');
    data[node + 66] = b'j';
    let fs = open(data);
    let tree = walk(&*fs);
    assert_eq!(read(&*fs, tree["/jello.txt"].0), b"hello from exFAT\n");
    assert!(fs.warnings().iter().any(|w| w.contains("jello.txt") && w.contains("checksum")), "{:?}", fs.warnings());
}

/// Bit flips in the boot sector, the FAT, the entry sets and the start of
/// the heap: errors, warnings and partial listings, never a panic or a hang.
#[test]
fn damaged_exfat_never_panics_or_hangs() {
    let clean = clean();
    let sector = 1usize << clean[108];
    let fat = u32::from_le_bytes(clean[80..84].try_into().unwrap()) as usize * sector;
    let heap = u32::from_le_bytes(clean[88..92].try_into().unwrap()) as usize * sector;
    // Where every entry set is (a node is its File entry's offset).
    let sets: Vec<usize> = walk(&*open(clean.clone())).values().map(|(n, _)| (n & !1) as usize).collect();
    let (mut opened, mut refused) = (0, 0);
    for seed in 1..=campaign("EXFAT_FUZZ_SEEDS", 16, 64) {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut data = clean.clone();
        let flip = |data: &mut Vec<u8>, rng: &mut Rng, from: usize, len: usize| {
            let i = from + (rng.next() % len as u64) as usize;
            data[i] ^= 1 << (rng.next() % 8);
        };
        // The boot sector's fields now and then (often fatal, or the backup
        // used); the FAT entries in use; entry sets (types, counts, name
        // lengths, clusters, sizes, flags); the directories and small files
        // at the start of the heap (clusters 2-129).
        if seed % 4 == 0 {
            flip(&mut data, &mut rng, 64, 56);
        }
        for _ in 0..8 {
            flip(&mut data, &mut rng, fat, 1024);
        }
        for _ in 0..12 {
            let at = sets[(rng.next() % sets.len() as u64) as usize];
            flip(&mut data, &mut rng, at, 96);
        }
        for _ in 0..20 {
            flip(&mut data, &mut rng, heap, 128 * 512);
        }
        let start = Instant::now();
        let src: Source = Arc::new(data);
        match fs::probe(&src) {
            Probe::Found(fs) => {
                opened += 1;
                survive_walk(&*fs);
                let _ = fs::lookup_ci(&*fs, "/LOGS/app/BIG.log");
            }
            _ => refused += 1,
        }
        assert!(start.elapsed() < Duration::from_secs(10), "seed {seed}: {:?}", start.elapsed());
    }
    eprintln!("exFAT damaged images: {opened} opened, {refused} refused");
    assert!(opened > 0);
}
