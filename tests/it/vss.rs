//! Volume Shadow Copies, on the Windows-made specimen in
//! ../shared/samples/vss/vsstest.qcow2 (an NTFS volume with two stores).
//! The truth per store comes from libvshadow's `vshadowmount` (FUSE), which
//! exposes each store as a raw volume, read by sleuthkit's `fls`/`icat`:
//! nothing of it from snapsift. The tests skip, saying why, where the
//! sample, the tools or FUSE are missing.

use crate::common::*;
use sha2::{Digest, Sha256};
use snapsift::evidence::{self, OpenOptions, ReadAt, Source};
use snapsift::fs::{self, FileKind, FileSystem, Probe};
use snapsift::volume::vss;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

fn sample() -> Option<PathBuf> {
    let p = repo().join("../shared/samples/vss/vsstest.qcow2");
    if p.is_file() {
        Some(p)
    } else {
        println!("SKIPPED: {} is absent (third-party samples are not in the repo)", p.display());
        None
    }
}

fn open(path: &Path) -> Source {
    let temp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inflate");
    evidence::open(path, &OpenOptions { temp_dir: Some(temp), progress: None }).unwrap().source
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// `vshadowmount` of a raw copy of the sample, unmounted on drop.
struct Mounted {
    dir: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("fusermount").arg("-u").arg(&self.dir).status();
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

fn mount(sample: &Path) -> Option<Mounted> {
    for tool in ["vshadowmount", "qemu-img", "fls", "icat"] {
        if Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().map_or(true, |o| !o.status.success()) {
            println!("SKIPPED: {tool} is not installed (apt-get install libvshadow-utils qemu-utils sleuthkit)");
            return None;
        }
    }
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("vss-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let raw = work.join("vsstest.raw");
    let ok = Command::new("qemu-img").args(["convert", "-O", "raw"]).arg(sample).arg(&raw).status().unwrap().success();
    assert!(ok, "qemu-img convert failed");
    let dir = work.join("mnt");
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new("vshadowmount").arg(&raw).arg(&dir).output().unwrap();
    if !out.status.success() || !dir.join("vss1").exists() {
        println!("SKIPPED: vshadowmount could not mount (FUSE missing?): {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    Some(Mounted { dir })
}

/// path → sha256 of every regular file of a raw NTFS volume, by sleuthkit
/// (metafiles at the root and streams left out).
fn sleuthkit_files(volume: &Path) -> BTreeMap<String, String> {
    let out = Command::new("fls").args(["-r", "-p", "-F", "-u"]).arg(volume).output().unwrap();
    assert!(out.status.success(), "fls failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut files = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((meta, path)) = line.split_once(":\t") else { continue };
        let addr = meta.rsplit(' ').next().unwrap();
        if path.starts_with('$') || path.contains(':') || !addr.contains("-128-") {
            continue;
        }
        let inode = addr.split('-').next().unwrap();
        let data = Command::new("icat").arg(volume).arg(inode).output().unwrap().stdout;
        files.insert(path.to_string(), hex(Sha256::digest(&data)));
    }
    files
}

/// The same through snapsift's NTFS reader on a store.
fn snapsift_files(fs: &dyn FileSystem) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut stack = vec![(fs.root(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for e in fs.read_dir(dir).unwrap() {
            let name = String::from_utf8_lossy(&e.name).into_owned();
            let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            if path.starts_with('$') {
                continue;
            }
            let m = fs.metadata(e.node).unwrap();
            match m.kind {
                Some(FileKind::Dir) => stack.push((e.node, path)),
                Some(FileKind::File) => {
                    let mut data = Vec::new();
                    fs.open(e.node).unwrap().read_to_end(&mut data).unwrap();
                    files.insert(path, hex(Sha256::digest(&data)));
                }
                _ => {}
            }
        }
    }
    files
}

#[test]
fn each_store_reads_as_vshadowmount_gives_it() {
    let Some(sample) = sample() else { return };
    let volume = open(&sample);
    let shadows = vss::find(&volume).expect("the sample has a VSS catalog");
    assert!(shadows.warnings.is_empty(), "{:?}", shadows.warnings);
    let stores = &shadows.stores;
    assert_eq!(stores.len(), 2);
    // What vshadowinfo prints for the sample (its README says the same).
    let created: Vec<String> = stores.iter().map(|(i, _)| i.created.iso8601()).collect();
    assert_eq!(created, ["2013-12-03T06:35:09.736378700Z", "2013-12-03T06:37:48.919058300Z"]);
    assert_eq!(stores[0].0.store_id, "600f0b69-5bdf-11e3-9d6c-005056c00008");
    assert_eq!(stores[1].0.copy_id.as_deref(), Some("18f1ac6e-959d-436f-bdcc-e797a729e290"));
    assert!(stores.iter().all(|(i, s)| i.size == 1 << 30 && s.len() == 1 << 30));

    let Some(m) = mount(&sample) else { return };
    for (info, store) in stores {
        let oracle = m.dir.join(format!("vss{}", info.number));
        // Byte for byte, the whole store.
        let mut f = std::fs::File::open(&oracle).unwrap();
        let (mut a, mut b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
        let mut at = 0u64;
        while at < store.len() {
            f.read_exact(&mut a).unwrap();
            store.read_exact_at(at, &mut b).unwrap();
            assert!(a == b, "store {}: differs from vshadowmount's in the MiB at {at}", info.number);
            at += 1 << 20;
        }
        // And file by file, through sleuthkit on the oracle's store.
        let ntfs = match fs::probe(store) {
            Probe::Found(f) => f,
            _ => panic!("store {}: no NTFS found", info.number),
        };
        let want = sleuthkit_files(&oracle);
        assert!(!want.is_empty());
        assert_eq!(snapsift_files(ntfs.as_ref()), want, "store {}", info.number);
    }
    // The specimen's story: store 1 has syslog, store 2 syslog.gz and
    // another_file; the live volume adds password.txt.
    let names = |s: &Source| {
        let Probe::Found(f) = fs::probe(s) else { panic!() };
        snapsift_files(f.as_ref()).into_keys().filter(|p| !p.starts_with("System Volume Information")).collect::<Vec<_>>()
    };
    assert_eq!(names(&stores[0].1), ["syslog"]);
    assert_eq!(names(&stores[1].1), ["another_file", "syslog.gz"]);
    assert_eq!(names(&volume), ["another_file", "password.txt", "syslog.gz"]);
    let _ = Arc::strong_count(&volume);
}
