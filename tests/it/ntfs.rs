//! The NTFS reader on its own: every file of the NTFS fixtures (not only the
//! targets) read through the `FileSystem` trait, compared with the listing
//! sleuthkit and the ntfs-3g mount made (images/expected/ntfs-*.tsv); plus
//! alternate data streams, hard links, reparse points, timestamps and
//! damaged records.

use crate::common::*;
use sha2::{Digest, Sha256};
use snapsift::evidence::{self, OpenOptions, Source};
use snapsift::fs::{self, FileKind, FileSystem, NodeId, Probe};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

fn open_source(path: &Path) -> Source {
    let temp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inflate");
    evidence::open(path, &OpenOptions { temp_dir: Some(temp), progress: None }).unwrap().source
}

fn open_fs(name: &str) -> Arc<dyn FileSystem> {
    match fs::probe(&open_source(&image(name))) {
        Probe::Found(f) => f,
        _ => panic!("{name}: no filesystem found"),
    }
}

fn pct(b: &[u8]) -> String {
    b.iter().map(|&c| if c < 0x20 || c == 0x7F || c >= 0x80 || c == b'%' { format!("%{c:02X}") } else { (c as char).to_string() }).collect()
}

fn sha_of(fs: &dyn FileSystem, node: NodeId) -> (String, u64) {
    let mut r = fs.open(node).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    (h.finalize().iter().map(|b| format!("{b:02x}")).collect(), n)
}

/// Every regular file and link below the root, by escaped path (metafiles
/// `$MFT`, `$Extend` … at the root are left out, as in the listing).
fn walk(fs: &dyn FileSystem) -> BTreeMap<String, (NodeId, FileKind)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(fs.root(), Vec::new())];
    while let Some((dir, path)) = stack.pop() {
        for e in fs.read_dir(dir).unwrap() {
            if path.is_empty() && e.name.starts_with(b"$") {
                continue;
            }
            let mut p = path.clone();
            p.push(b'/');
            p.extend_from_slice(&e.name);
            let kind = fs.metadata(e.node).unwrap().kind();
            match kind {
                FileKind::Dir => stack.push((e.node, p)),
                _ => {
                    assert!(out.insert(pct(&p), (e.node, kind)).is_none(), "{} listed twice", pct(&p));
                }
            }
        }
    }
    out
}

fn check_all_files(name: &str) {
    let fs = open_fs(name);
    assert_eq!(fs.kind(), "ntfs");
    let got = walk(fs.as_ref());
    let expected = expected(name);
    let want: HashMap<&str, &Expected> = expected.iter().map(|e| (e.path.as_str(), e)).collect();
    let inodes: HashMap<String, u64> = tsv(&repo().join(format!("images/expected/{name}.tsv")))
        .into_iter()
        .map(|r| (r["path"].clone(), r["inode"].parse().unwrap()))
        .collect();
    for p in got.keys() {
        assert!(want.contains_key(p.as_str()), "{name}: {p} is not in the listing");
    }
    for e in &expected {
        let &(node, kind) = got.get(&e.path).unwrap_or_else(|| panic!("{name}: {} not found", e.path));
        let m = fs.metadata(node).unwrap();
        let mt = m.mtime.unwrap();
        if e.kind == "l" {
            assert_eq!(kind, FileKind::Symlink, "{name} {}", e.path);
            assert_eq!(pct(&fs.read_link(node).unwrap()), e.target, "{name} {}", e.path);
            continue;
        }
        assert_eq!(kind, FileKind::File, "{name} {}", e.path);
        assert_eq!(node, inodes[&e.path], "{name} {}: record number", e.path);
        assert_eq!(m.size, e.size, "{name} {}: size", e.path);
        assert_eq!((mt.secs, mt.nanos), e.mtime, "{name} {}: mtime", e.path);
        let (sha, n) = sha_of(fs.as_ref(), node);
        assert_eq!(n, e.size, "{name} {}: bytes read", e.path);
        assert_eq!(sha, e.sha256, "{name} {}: content", e.path);
    }
    assert!(fs.warnings().is_empty(), "{name}: {:?}", fs.warnings());
}

#[test]
fn every_file_reads_identical_to_the_oracle_4k() {
    check_all_files("ntfs-win");
}

#[test]
fn every_file_reads_identical_to_the_oracle_64k() {
    check_all_files("ntfs-64k");
}

/// 512-byte clusters, and $MFT's own $DATA continued in extension records
/// through its $ATTRIBUTE_LIST (files spread over the whole $MFT).
#[test]
fn every_file_reads_identical_to_the_oracle_mft_attribute_list() {
    check_all_files("ntfs-mftlist");
}

/// 4096-byte sectors: 4 KiB MFT records and index blocks, eight fixup strides.
#[test]
fn every_file_reads_identical_to_the_oracle_4kn() {
    check_all_files("ntfs-4kn");
}

fn lookup(fs: &dyn FileSystem, p: &str) -> NodeId {
    fs::lookup(fs, p.as_bytes()).unwrap().unwrap_or_else(|| panic!("{p} not found"))
}

#[test]
fn alternate_data_streams_hard_links_and_times() {
    let src = open_source(&image("ntfs-win"));
    let ntfs = snapsift::fs::ntfs::Ntfs::open(src).unwrap();
    let fs: &dyn FileSystem = &ntfs;
    assert_eq!(fs.label().as_deref(), Some("Windows"));
    assert_eq!(fs.root(), 5);
    let hist = lookup(fs, "/Users/alice/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt");
    let streams = ntfs.streams(hist).unwrap();
    assert_eq!(streams, vec![(b"Zone.Identifier".to_vec(), 26)]);
    let mut s = String::new();
    ntfs.open_stream(hist, b"Zone.Identifier").unwrap().read_to_string(&mut s).unwrap();
    assert_eq!(s, "[ZoneTransfer]\r\nZoneId=3\r\n");
    // Hard link: the same record in two directories, link count 2.
    let a = lookup(fs, "/Users/Administrator/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt");
    let b = lookup(fs, "/inetpub/logs/LogFiles/admin-history-link.txt");
    assert_eq!(a, b);
    assert_eq!(fs.metadata(a).unwrap().nlink, 2);
    // 100 ns precision from $STANDARD_INFORMATION.
    let app = lookup(fs, "/Windows/System32/winevt/Logs/Application.evtx");
    let m = fs.metadata(app).unwrap();
    assert_eq!(m.mtime.unwrap().to_string(), "2024-05-01T12:00:00.123456700Z");
    assert!(m.btime.is_some() && m.ctime.is_some() && m.atime.is_some());
    // A long name with a DOS 8.3 alias is listed once, under its long name.
    let docs = lookup(fs, "/Users/alice/Documents");
    let names: Vec<Vec<u8>> = fs.read_dir(docs).unwrap().into_iter().map(|e| e.name).collect();
    assert!(names.contains(&b"Quarterly Report Final.txt".to_vec()), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with(b"QUARTE~1")), "DOS name listed");
    // Junction: a directory reparse point is a link, not descended into.
    let j = lookup(fs, "/Users");
    let e = fs.read_dir(j).unwrap().into_iter().find(|e| e.name == b"All Users").unwrap();
    assert_eq!(fs.metadata(e.node).unwrap().kind(), FileKind::Symlink);
    assert_eq!(fs.read_link(e.node).unwrap(), b"C:\\ProgramData");
    // The big directory has every entry.
    let many = lookup(fs, "/Windows/Temp/many");
    assert_eq!(fs.read_dir(many).unwrap().len(), 5000);
}

/// A torn MFT record (one sector's update sequence number not matching)
/// makes that file an error, not wrong data; the rest still reads.
#[test]
fn torn_record_is_an_error() {
    let mut data = std::fs::read(image("ntfs-win")).unwrap();
    let cluster = u64::from(u16::from_le_bytes([data[11], data[12]])) * u64::from(data[13]);
    let mft = u64::from_le_bytes(data[0x30..0x38].try_into().unwrap()) * cluster;
    let fs = open_fs("ntfs-win");
    let app = lookup(fs.as_ref(), "/Windows/System32/winevt/Logs/Application.evtx");
    let sec = (mft + app * 1024 + 512 + 510) as usize;
    data[sec] ^= 0xFF;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("torn.img");
    std::fs::write(&p, &data).unwrap();
    let Probe::Found(fs) = fs::probe(&open_source(&p)) else { panic!("not found") };
    let err = fs.metadata(app).unwrap_err().to_string();
    assert!(err.contains("torn"), "{err}");
    let sys = lookup(fs.as_ref(), "/Windows/System32/winevt/Logs/System.evtx");
    assert!(fs.open(sys).is_ok());
    // The one-pass listing would miss the file: it declines, so the walk
    // reads directories one by one and reports the file as an error.
    assert!(fs.list_all().unwrap().is_err());
    assert!(fs.warnings().iter().any(|w| w.contains("one by one")), "{:?}", fs.warnings());
}

#[test]
fn deleted_records_are_not_in_use() {
    // The build deletes thousands of filler files; their records stay.
    let fs = open_fs("ntfs-win");
    let mut deleted = 0;
    for rec in 16..20000u64 {
        if let Err(e) = fs.metadata(rec)
            && e.to_string().contains("not in use")
        {
            deleted += 1;
        }
    }
    assert!(deleted > 100, "{deleted}");
}

/// The computer name from a real SYSTEM hive (not in the repository).
#[test]
fn regf_computer_name_from_a_real_system_hive() {
    let p = Path::new("/work/shared/samples/registry/SYSTEM.gz");
    if !p.exists() {
        println!("SKIPPED: {} is not present", p.display());
        return;
    }
    let mut hive = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(p).unwrap()).read_to_end(&mut hive).unwrap();
    let parsed = snapsift::host::regf::Hive::parse(hive.clone()).unwrap();
    assert_eq!(snapsift::host::registry::computer_name(&parsed).as_deref(), Some("DESKTOP-M3OSHQU"));
    // Damaged copies: never a panic.
    let mut rng = Rng(7);
    for _ in 0..200 {
        let mut h = hive.clone();
        for _ in 0..64 {
            let i = (rng.next() % h.len() as u64) as usize;
            h[i] ^= 1 << (rng.next() % 8);
        }
        let read = |h: &[u8]| {
            if let Some(h) = snapsift::host::regf::Hive::parse(h.to_vec()) {
                let _ = snapsift::host::registry::computer_name(&h);
                let _ = snapsift::host::registry::os_version(&h);
            }
        };
        read(&h);
        h.truncate((rng.next() % hive.len() as u64) as usize);
        read(&h);
    }
}

#[test]
fn windows_host_and_targets() {
    let case = tempfile::tempdir().unwrap();
    let out = extract(&[&image("ntfs-win")], case.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // The computer name comes from the SYSTEM hive (ControlSet002, per Select).
    let host = case.path().join("Host-Based Logs/WIN-SNAPSIFT01/C");
    assert!(host.join("Windows/System32/winevt/Logs/Security.evtx").is_file());
    // Channel logs keep the name Windows gives them (`%4` stands for `/`).
    let channel = host.join("Windows/System32/winevt/Logs/Microsoft-Windows-PowerShell%4Operational.evtx");
    assert!(channel.is_file(), "{}", channel.display());
    assert!(host.join("inetpub/logs/LogFiles/W3SVC2/u_ex240503.log").is_file());
    let j = run_json(&runs(case.path())[0]);
    assert_eq!(j["evidence"][0]["volumes"][0]["os_root"], true);
    // The version from the SOFTWARE hive; "Windows 10" with build 22631 is 11.
    let out = snapsift(&[std::ffi::OsStr::new("inspect"), image("ntfs-win").as_os_str()]);
    assert!(out.stdout.contains("os: windows (Windows 11 Pro 23H2 (build 22631))"), "{}", out.stdout);
    let out = snapsift(&[std::ffi::OsStr::new("inspect"), image("ntfs-64k").as_os_str()]);
    assert!(out.stdout.contains("Windows Server 2022 Datacenter 21H2 (build 20348)"), "{}", out.stdout);
}

/// Bit flips in $MFT (records, attribute headers, runlists, attribute
/// lists) and in index blocks: errors and partial listings, never a panic.
#[test]
fn damaged_mft_and_indexes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["ntfs-win", "ntfs-64k", "ntfs-4kn", "ntfs-mftlist"] {
        let clean = std::fs::read(image(name)).unwrap();
        let cluster = u64::from(u16::from_le_bytes([clean[11], clean[12]])) * u64::from(clean[13]);
        let mft = (u64::from_le_bytes(clean[0x30..0x38].try_into().unwrap()) * cluster) as usize;
        let flips = campaign("NTFS_FUZZ_FLIPS", 300, 300);
        for seed in 1..=campaign("NTFS_FUZZ_SEEDS", 16, 64) {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut data = clean.clone();
            // The first ~1,000 records (system files, directories, the
            // attribute-list file's neighbours) and anywhere in the volume.
            for _ in 0..flips {
                let i = mft + (rng.next() % (1 << 20)) as usize;
                if i < data.len() {
                    data[i] ^= 1 << (rng.next() % 8);
                }
            }
            for _ in 0..flips {
                let i = (rng.next() % data.len() as u64) as usize;
                data[i] ^= 1 << (rng.next() % 8);
            }
            let p = dir.path().join(format!("{name}-{seed}.img"));
            std::fs::write(&p, &data).unwrap();
            if let Probe::Found(fs) = fs::probe(&open_source(&p)) {
                survive_walk(fs.as_ref());
                let _ = fs.list_all();
                let _ = fs::lookup_ci(fs.as_ref(), "/windows/system32/CONFIG/system");
            }
            std::fs::remove_file(&p).unwrap();
        }
    }
}

/// A zeroed boot sector: the backup in the last sector opens the volume.
#[test]
fn backup_boot_sector_is_used_when_the_first_is_damaged() {
    let dir = tempfile::tempdir().unwrap();
    // 4Kn: the backup is the last 4096-byte sector.
    let mut data = std::fs::read(image("ntfs-4kn")).unwrap();
    data[..4096].fill(0);
    let p = dir.path().join("noboot4k.img");
    std::fs::write(&p, &data).unwrap();
    let Probe::Found(fs) = fs::probe(&open_source(&p)) else { panic!("4Kn backup boot sector not used") };
    assert_eq!(fs.read_dir(lookup(fs.as_ref(), "/logs")).unwrap().len(), 301);

    let mut data = std::fs::read(image("ntfs-win")).unwrap();
    data[..512].fill(0);
    let p = dir.path().join("noboot.img");
    std::fs::write(&p, &data).unwrap();
    let Probe::Found(fs) = fs::probe(&open_source(&p)) else { panic!("backup boot sector not used") };
    assert!(fs.warnings().iter().any(|w| w.contains("backup boot sector")), "{:?}", fs.warnings());
    let n = lookup(fs.as_ref(), "/Windows/System32/winevt/Logs/Application.evtx");
    assert_eq!(fs.metadata(n).unwrap().size, 69632);
}

/// An index entry whose record was reused since (sequence number bumped, as
/// after a crash without $LogFile replay) is skipped with a warning.
#[test]
fn stale_index_entries_are_skipped() {
    let mut data = std::fs::read(image("ntfs-win")).unwrap();
    let cluster = u64::from(u16::from_le_bytes([data[11], data[12]])) * u64::from(data[13]);
    let mft = u64::from_le_bytes(data[0x30..0x38].try_into().unwrap()) * cluster;
    let fs = open_fs("ntfs-win");
    let sec = lookup(fs.as_ref(), "/Windows/System32/winevt/Logs/Security.evtx");
    let at = (mft + sec * 1024 + 16) as usize;
    data[at] = data[at].wrapping_add(1);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("stale.img");
    std::fs::write(&p, &data).unwrap();
    let Probe::Found(fs) = fs::probe(&open_source(&p)) else { panic!("not found") };
    let logs = lookup(fs.as_ref(), "/Windows/System32/winevt/Logs");
    let names: Vec<Vec<u8>> = fs.read_dir(logs).unwrap().into_iter().map(|e| e.name).collect();
    assert!(!names.contains(&b"Security.evtx".to_vec()), "stale entry listed");
    assert!(names.contains(&b"System.evtx".to_vec()));
    assert!(fs.warnings().iter().any(|w| w.contains("stale index entry")), "{:?}", fs.warnings());
}

/// Offset (in the image) of the header of the first attribute of `typ` in
/// MFT record `rec` (1 KiB records, attribute within the first sector).
/// $MFT is fragmented in ntfs-win, so the record is found by its own
/// number (stored at offset 44 since NTFS 3.1).
fn attr_header(data: &[u8], rec: u64, typ: u32) -> usize {
    let r = record_at(data, rec);
    let mut off = usize::from(u16::from_le_bytes([data[r + 20], data[r + 21]]));
    loop {
        let t = u32::from_le_bytes(data[r + off..r + off + 4].try_into().unwrap());
        assert_ne!(t, 0xFFFF_FFFF, "attribute {typ:#x} not in record {rec}");
        if t == typ {
            assert!(off < 500, "attribute beyond the first fixup stride");
            return r + off;
        }
        off += u32::from_le_bytes(data[r + off + 4..r + off + 8].try_into().unwrap()) as usize;
    }
}

/// Offset (in the image) of MFT record `rec` (1 KiB records).
fn record_at(data: &[u8], rec: u64) -> usize {
    // From $MFT's start, so records 0–3 are not found in $MFTMirr.
    let cluster = usize::from(u16::from_le_bytes([data[11], data[12]])) * usize::from(data[13]);
    let mft = u64::from_le_bytes(data[0x30..0x38].try_into().unwrap()) as usize * cluster;
    (mft / 1024..data.len() / 1024)
        .chain(0..mft / 1024)
        .map(|i| i * 1024)
        .find(|&o| &data[o..o + 4] == b"FILE" && u32::from_le_bytes(data[o + 44..o + 48].try_into().unwrap()) == rec as u32)
        .expect("record not found")
}

/// EFS-encrypted content is an error, not ciphertext passed off as the
/// file; a non-link reparse point (here the dedup tag) reads as stored,
/// with a warning.
#[test]
fn encrypted_files_and_other_reparse_points() {
    let mut data = std::fs::read(image("ntfs-win")).unwrap();
    let fs = open_fs("ntfs-win");
    let sec = lookup(fs.as_ref(), "/Windows/System32/winevt/Logs/Security.evtx");
    let logfiles = lookup(fs.as_ref(), "/inetpub/logs/LogFiles");
    let link = fs.read_dir(logfiles).unwrap().into_iter().find(|e| e.name == b"current.log").unwrap().node;
    let h = attr_header(&data, sec, 0x80);
    data[h + 13] |= 0x40; // ATTR_ENCRYPTED (0x4000)
    let h = attr_header(&data, link, 0xC0);
    let value = h + usize::from(u16::from_le_bytes([data[h + 20], data[h + 21]]));
    data[value..value + 4].copy_from_slice(&0x8000_0013u32.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("efs.img");
    std::fs::write(&p, &data).unwrap();
    let Probe::Found(fs) = fs::probe(&open_source(&p)) else { panic!("not found") };
    let err = fs.open(sec).err().expect("encrypted file opened").to_string();
    assert!(err.contains("encrypted"), "{err}");
    assert_eq!(fs.metadata(link).unwrap().kind(), FileKind::File);
    assert!(fs.open(link).is_ok());
    assert!(fs.warnings().iter().any(|w| w.contains("0x80000013")), "{:?}", fs.warnings());
}

/// A volume not cleanly unmounted (the dirty flag in $Volume) is read as it
/// is, and says so.
#[test]
fn dirty_volume_is_reported() {
    let mut data = std::fs::read(image("ntfs-64k")).unwrap();
    let h = attr_header(&data, 3, 0x70);
    let value = h + usize::from(u16::from_le_bytes([data[h + 20], data[h + 21]]));
    data[value + 10] |= 1;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dirty.img");
    std::fs::write(&p, &data).unwrap();
    let Probe::Found(fs) = fs::probe(&open_source(&p)) else { panic!("not found") };
    assert!(fs.warnings().iter().any(|w| w.contains("dirty")), "{:?}", fs.warnings());
    assert!(lookup(fs.as_ref(), "/Windows/System32/config/SYSTEM") > 0);
}

/// One reader shared by several threads (the collector copies in parallel):
/// the same bytes as the listing, whatever the interleaving.
#[test]
fn many_threads_read_one_volume() {
    let fs = open_fs("ntfs-win");
    let files: Vec<(NodeId, String)> =
        walk(fs.as_ref()).into_iter().filter(|(_, (_, k))| *k == FileKind::File).map(|(p, (n, _))| (n, p)).collect();
    let want: HashMap<String, String> = expected("ntfs-win").into_iter().map(|e| (e.path, e.sha256)).collect();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (fs, files, want) = (&fs, &files, &want);
            s.spawn(move || {
                // Each thread in a different order, so cache entries are
                // made and evicted concurrently.
                for (node, path) in files.iter().skip(t * 997 % files.len()).chain(files.iter()).take(files.len()) {
                    assert_eq!(&sha_of(fs.as_ref(), *node).0, &want[path], "{path}");
                }
            });
        }
    });
}

/// Every NTFS volume of every committed NTFS image (images/ntfs-*.img.gz):
/// (image, offset, filesystem).
fn ntfs_volumes() -> Vec<(String, u64, Arc<dyn FileSystem>)> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("images"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|n| n.strip_prefix("ntfs-").and_then(|s| s.strip_suffix(".img.gz")).map(|s| format!("ntfs-{s}")))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        for v in snapsift::volume::discover(&open_source(&image(&name))).volumes {
            if let Probe::Found(fs) = fs::probe(&v.source)
                && fs.kind() == "ntfs"
            {
                out.push((name.clone(), v.offset, fs));
            }
        }
    }
    assert!(out.len() >= 8, "{:?}", out.iter().map(|o| (&o.0, o.1)).collect::<Vec<_>>());
    out
}

/// (path, node, kind) of every name below the root, directories and
/// metafiles included; `children(dir)` lists a directory.
fn tree(fs: &dyn FileSystem, children: &mut dyn FnMut(NodeId) -> Vec<fs::DirEntry>) -> BTreeMap<String, (NodeId, FileKind)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(fs.root(), String::new())];
    while let Some((dir, path)) = stack.pop() {
        for e in children(dir) {
            let p = format!("{path}/{}", pct(&e.name));
            let kind = match e.kind {
                FileKind::Unknown => fs.metadata(e.node).unwrap().kind(),
                k => k,
            };
            if kind == FileKind::Dir {
                stack.push((e.node, p.clone()));
            }
            assert!(out.insert(p.clone(), (e.node, kind)).is_none(), "{p} twice");
        }
    }
    out
}

/// The one-pass $MFT listing gives every volume's tree exactly as reading
/// each directory's index does: same paths, records and kinds, metafiles
/// (`$MFT`, `$Extend/$ObjId` …) included on both sides; and every file of
/// sleuthkit's listing is there under its record number.
#[test]
fn mft_scan_lists_what_the_index_walk_lists() {
    for (image, offset, fs) in ntfs_volumes() {
        let name = format!("{image}@{offset}");
        let mut listing = fs.list_all().expect("NTFS offers a one-pass listing").unwrap();
        let fast = tree(fs.as_ref(), &mut |d| listing.remove(&d).unwrap_or_default());
        assert!(listing.values().all(|v| v.is_empty()), "{name}: directories listed but not reached");
        // A directory that is not an $I30 index ($Extend's $Quota …) has
        // no entries either way.
        let walked = tree(fs.as_ref(), &mut |d| fs.read_dir(d).unwrap_or_default());
        let only_fast: Vec<_> = fast.iter().filter(|(p, v)| walked.get(*p) != Some(v)).take(5).collect();
        let only_walk: Vec<_> = walked.iter().filter(|(p, v)| fast.get(*p) != Some(v)).take(5).collect();
        assert!(only_fast.is_empty() && only_walk.is_empty(), "{name}: only in the scan {only_fast:?}, only in the walk {only_walk:?}");
        assert_eq!(fast.get("/$MFT"), Some(&(0, FileKind::File)), "{name}: metafiles listed");
        let listed = tsv(&repo().join(format!("images/expected/{image}.tsv")));
        let mine: Vec<_> = listed.iter().filter(|r| r["offset"] == offset.to_string()).collect();
        assert!(!mine.is_empty(), "{name}: not in the listing");
        for r in mine {
            let kind = if r["type"] == "l" { FileKind::Symlink } else { FileKind::File };
            assert_eq!(fast.get(&r["path"]), Some(&(r["inode"].parse().unwrap(), kind)), "{name} {}", r["path"]);
        }
        assert!(fs.warnings().is_empty(), "{name}: {:?}", fs.warnings());
    }
}

/// Files whose parent directory was reused (its sequence number moved on),
/// and directories hanging off a loop of parents, are orphans: reported,
/// in no directory; the rest of the volume is listed as before.
#[test]
fn mft_scan_reports_orphans_and_parent_loops() {
    let mut data = std::fs::read(image("ntfs-win")).unwrap();
    let fs = open_fs("ntfs-win");
    let logs = lookup(fs.as_ref(), "/Windows/System32/winevt/Logs");
    let temp = lookup(fs.as_ref(), "/Windows/Temp");
    let many = lookup(fs.as_ref(), "/Windows/Temp/many");
    let r = record_at(&data, logs);
    data[r + 16] = data[r + 16].wrapping_add(1);
    // Temp's parent becomes its own subdirectory `many`.
    let seq = u16::from_le_bytes(data[record_at(&data, many) + 16..][..2].try_into().unwrap());
    let h = attr_header(&data, temp, 0x30);
    let value = h + usize::from(u16::from_le_bytes([data[h + 20], data[h + 21]]));
    data[value..value + 8].copy_from_slice(&(many | u64::from(seq) << 48).to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("orphans.img");
    std::fs::write(&p, &data).unwrap();
    let Probe::Found(fs) = fs::probe(&open_source(&p)) else { panic!("not found") };
    let mut listing = fs.list_all().unwrap().unwrap();
    let got = tree(fs.as_ref(), &mut |d| listing.remove(&d).unwrap_or_default());
    let gone = |p: &str| p.starts_with("/Windows/System32/winevt/Logs/") || p.starts_with("/Windows/Temp/");
    for e in expected("ntfs-win") {
        assert_eq!(got.contains_key(&e.path), !gone(&e.path), "{}", e.path);
    }
    let w = fs.warnings();
    assert!(w.iter().any(|w| w.contains("orphans") && w.contains(&many.to_string())), "{w:?}");
}

/// The bytes of one partition of a disk fixture (a bare volume), by offset.
fn partition(image_name: &str, offset: u64) -> Vec<u8> {
    let v = snapsift::volume::discover(&open_source(&image(image_name)))
        .volumes
        .into_iter()
        .find(|v| v.offset == offset)
        .unwrap_or_else(|| panic!("{image_name}: no volume at {offset}"));
    let mut data = vec![0u8; v.size as usize];
    v.source.read_exact_at(0, &mut data).unwrap();
    data
}

fn open_bytes(dir: &Path, name: &str, data: &[u8]) -> Arc<dyn FileSystem> {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    match fs::probe(&open_source(&p)) {
        Probe::Found(f) => f,
        _ => panic!("{name}: no filesystem found"),
    }
}

/// ntfs-mbr's E: volume ("Logs"), and its files' record numbers from the
/// sleuthkit listing.
const MBR_E: u64 = 14680064;

fn mbr_e_record(path: &str) -> NodeId {
    let off = MBR_E.to_string();
    let row = tsv(&repo().join("images/expected/ntfs-mbr.tsv"))
        .into_iter()
        .find(|r| r["offset"] == off && r["path"] == pct(path.as_bytes()))
        .unwrap_or_else(|| panic!("{path} not in the listing"));
    row["inode"].parse().unwrap()
}

/// Names looked up as Windows compares them on the volume: through its
/// `$UpCase` table, so Latin-1, Greek and Cyrillic letters fold as ASCII
/// ones do (names written by ntfs-3g, records from sleuthkit's listing).
#[test]
fn case_insensitive_lookup_folds_through_upcase() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open_bytes(dir.path(), "e.img", &partition("ntfs-mbr", MBR_E));
    for (stored, asked) in [
        ("/\u{c4}rger/\u{c9}V\u{c9}NEMENTS.LOG", "/\u{e4}RGER/\u{e9}v\u{e9}nements.log"),
        (
            "/\u{3a9}\u{3bc}\u{3b5}\u{3b3}\u{3b1}/\u{416}\u{443}\u{440}\u{43d}\u{430}\u{43b}.log",
            "/\u{3c9}\u{39c}\u{395}\u{393}\u{391}/\u{436}\u{423}\u{420}\u{41d}\u{410}\u{41b}.LOG",
        ),
        ("/inetpub/logs/LogFiles/W3SVC1/u_ex240501.log", "/INETPUB/logs/logfiles/w3svc1/U_EX240501.LOG"),
    ] {
        assert_eq!(fs::lookup_ci(fs.as_ref(), asked), Some(mbr_e_record(stored)), "{asked}");
    }
    // An accent is not a case: É is not E.
    assert_eq!(fs::lookup_ci(fs.as_ref(), "/\u{e4}rger/EVENEMENTS.LOG"), None);
    assert!(fs.warnings().is_empty(), "{:?}", fs.warnings());
}

/// A short or overwritten `$UpCase`: one warning, and names fold as ASCII
/// only (an exact name and ASCII case differences still resolve).
#[test]
fn damaged_upcase_falls_back_to_ascii_folding() {
    let clean = partition("ntfs-mbr", MBR_E);
    let dir = tempfile::tempdir().unwrap();
    // Short: $DATA of record 10 says 1,000 bytes.
    let mut short = clean.clone();
    let h = attr_header(&short, 10, 0x80);
    assert_eq!(short[h + 8], 1, "non-resident");
    short[h + 48..h + 56].copy_from_slice(&1000u64.to_le_bytes());
    short[h + 56..h + 64].copy_from_slice(&1000u64.to_le_bytes());
    // Overwritten: `a` no longer maps to `A` (the table's entries 0x60…0x7B).
    let mut wrong = clean.clone();
    let row: Vec<u8> = [0x60u16].into_iter().chain(0x41..=0x5A).chain([0x7B]).flat_map(|u| u.to_le_bytes()).collect();
    let at: Vec<usize> = (0..wrong.len() - row.len()).filter(|&i| wrong[i..i + row.len()] == row[..]).collect();
    assert_eq!(at.len(), 1, "the table is found once");
    wrong[at[0] + 2] = 0x61;
    for (name, data) in [("short", short), ("overwritten", wrong)] {
        let fs = open_bytes(dir.path(), name, &data);
        let stored = "/\u{c4}rger/\u{c9}V\u{c9}NEMENTS.LOG";
        let want = Some(mbr_e_record(stored));
        assert_eq!(fs::lookup_ci(fs.as_ref(), stored), want, "{name}");
        assert_eq!(fs::lookup_ci(fs.as_ref(), "/\u{c4}RGER/\u{c9}v\u{c9}nements.log"), want, "{name}: ASCII letters fold");
        assert_eq!(fs::lookup_ci(fs.as_ref(), "/\u{e4}RGER/\u{e9}v\u{e9}nements.log"), None, "{name}: non-ASCII do not");
        let w = fs.warnings();
        assert_eq!(w.iter().filter(|w| w.contains("$UpCase")).count(), 1, "{name}: {w:?}");
        assert!(w.iter().any(|w| w.contains("ASCII")), "{name}: {w:?}");
    }
}
