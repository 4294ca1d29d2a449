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
        if let Some(work) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(work);
        }
    }
}

fn mount(sample: &Path) -> Option<Mounted> {
    for tool in ["vshadowmount", "qemu-img", "fls", "icat"] {
        if Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().map_or(true, |o| !o.status.success()) {
            println!("SKIPPED: {tool} is not installed (apt-get install libvshadow-utils qemu-utils sleuthkit)");
            return None;
        }
    }
    // One folder per mount: tests run in parallel, each with its own.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("vss-oracle-{}-{n}", std::process::id()));
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
        // Byte for byte: the whole store with SNAPSIFT_FULL_TESTS=1, else
        // every 8th MiB.
        let step = if std::env::var("SNAPSIFT_FULL_TESTS").is_ok_and(|v| v == "1") { 1 } else { 8 };
        let f = std::fs::File::open(&oracle).unwrap();
        let (mut a, mut b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
        for at in (0..store.len()).step_by(step << 20) {
            std::os::unix::fs::FileExt::read_exact_at(&f, &mut a, at).unwrap();
            store.read_exact_at(at, &mut b).unwrap();
            assert!(a == b, "store {}: differs from vshadowmount's in the MiB at {at}", info.number);
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

fn targets_file(dir: &Path) -> PathBuf {
    let p = dir.join("vss-targets.toml");
    std::fs::write(
        &p,
        "[[target]]\nname = \"specimen\"\ndescription = \"the VSS specimen's files\"\nos = \"any\"\nscope = \"any\"\n\
         paths = [\"syslog*\", \"another_file\", \"password.txt\"]\n",
    )
    .unwrap();
    p
}

#[test]
fn extract_writes_each_store_beside_the_live_volume() {
    let Some(sample) = sample() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let case = tmp.path().join("case");
    let t = targets_file(tmp.path());
    let out = extract_with(&[&sample], &case, &["--targets-file".as_ref(), t.as_os_str(), "--target".as_ref(), "specimen".as_ref()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let rows = manifest(&case);
    let row = |vol: &str, path: &str| {
        rows.iter().find(|r| r["volume"] == vol && r["image_path"] == path).unwrap_or_else(|| panic!("no row {vol} {path}: {rows:#?}"))
    };
    // Store 1 alone holds the plain syslog: written under its own folder.
    let s1 = row("disk-vss1", "/syslog");
    assert_eq!(s1["status"], "ok");
    let base = "Host-Based Logs/vsstest";
    assert_eq!(s1["output_path"], format!("{base}/_vss/1-20131203T063509Z/_volumes/disk_vsstest/syslog"));
    assert_eq!(sha256_file(&case.join(&s1["output_path"])), s1["sha256"]);
    // Store 2's files are the live volume's: listed with their hashes, not written.
    for p in ["/syslog.gz", "/another_file"] {
        let (shadow, live) = (row("disk-vss2", p), row("disk", p));
        assert_eq!(shadow["status"], "identical", "{shadow:?}");
        assert_eq!(shadow["output_path"], "");
        assert_eq!(shadow["sha256"], live["sha256"]);
        assert_eq!(sha256_file(&case.join(&live["output_path"])), live["sha256"]);
    }
    assert_eq!(row("disk", "/password.txt")["status"], "ok");
    assert!(!rows.iter().any(|r| r["volume"] == "disk-vss2" && r["status"] == "ok"));
    assert!(!case.join(base).join("_vss/2-20131203T063748Z").exists());
    let run = run_json(&runs(&case)[0]);
    let vols = run["evidence"][0]["volumes"].as_array().unwrap();
    let store2 = vols.iter().find(|v| v["id"] == "disk-vss2").unwrap();
    assert_eq!(store2["shadow_copy"]["created"], "2013-12-03T06:37:48.919058300Z");
    assert_eq!(store2["snapshot_of"], "disk");
    assert_eq!(run["counts"]["shadow_copies"], 2);
    assert_eq!(run["counts"]["identical"], 2);

    // Against the independent reader, where it runs: the bytes written and
    // the hashes listed are sleuthkit's for the same files of each store.
    if let Some(m) = mount(&sample) {
        let store1 = sleuthkit_files(&m.dir.join("vss1"));
        let store2 = sleuthkit_files(&m.dir.join("vss2"));
        assert_eq!(store1["syslog"], s1["sha256"]);
        assert_eq!(store2["syslog.gz"], row("disk-vss2", "/syslog.gz")["sha256"]);
        assert_eq!(store2["another_file"], row("disk-vss2", "/another_file")["sha256"]);
    }

    // --no-vss: the live volume only.
    let case2 = tmp.path().join("case2");
    let out = extract_with(
        &[&sample],
        &case2,
        &["--no-vss".as_ref(), "--targets-file".as_ref(), t.as_os_str(), "--target".as_ref(), "specimen".as_ref()],
    );
    assert_eq!(out.code, Some(0));
    let rows = manifest(&case2);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert!(rows.iter().all(|r| r["volume"] == "disk"));
    assert!(!case2.join(base).join("_vss").exists());
}

#[test]
fn inspect_lists_the_stores_with_their_creation_times() {
    let Some(sample) = sample() else { return };
    let out = snapsift(&["inspect".as_ref(), sample.as_os_str()]);
    let text = &out.stdout;
    assert_eq!(out.code, Some(0));
    assert!(text.contains("shadow copy 1 of disk, made 2013-12-03 06:35:09 UTC"), "{text}");
    assert!(text.contains("shadow copy 2 of disk, made 2013-12-03 06:37:48 UTC"), "{text}");
    assert!(text.contains("_vss/2-20131203T063748Z/_volumes/disk_vsstest"), "{text}");
    let out = snapsift(&["inspect".as_ref(), "--no-vss".as_ref(), sample.as_os_str()]);
    assert!(!out.stdout.contains("shadow copy"));
}

/// The specimen with some bytes changed, as a volume.
struct Patched {
    base: Source,
    patches: Vec<(u64, Vec<u8>)>,
}

impl ReadAt for Patched {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.base.read_at(offset, buf)?;
        for (at, bytes) in &self.patches {
            for (i, b) in bytes.iter().enumerate() {
                let p = at + i as u64;
                if p >= offset && p < offset + n as u64 {
                    buf[(p - offset) as usize] = *b;
                }
            }
        }
        Ok(n)
    }
    fn len(&self) -> u64 {
        self.base.len()
    }
}

fn u64_at(s: &Source, at: u64) -> u64 {
    let mut b = [0u8; 8];
    s.read_exact_at(at, &mut b).unwrap();
    u64::from_le_bytes(b)
}

/// Damaged catalogs and stores: the damaged part is reported and left
/// out, the rest still read; never a panic or a hang.
#[test]
fn damaged_catalogs_and_stores_are_reported_not_fatal() {
    let Some(sample) = sample() else { return };
    let vol = open(&sample);
    let catalog = u64_at(&vol, 0x1e00 + 48);
    // The catalog's type 3 entries: each store's block list and bitmap.
    let mut lists = Vec::new();
    for i in 0..127u64 {
        let e = catalog + 128 + i * 128;
        if u64_at(&vol, e) == 3 {
            lists.push((e, u64_at(&vol, e + 8), u64_at(&vol, e + 48)));
        }
    }
    assert_eq!(lists.len(), 2);
    let find = |patches: Vec<(u64, Vec<u8>)>| {
        let p: Source = Arc::new(Patched { base: vol.clone(), patches });
        let found = vss::find(&p);
        // Whatever was found reads without a panic, to the end.
        for (_, s) in found.iter().flat_map(|f| f.stores.iter()) {
            let mut buf = vec![0u8; 1 << 20];
            let mut at = 0;
            while at < s.len() {
                let _ = s.read_at(at, &mut buf);
                at += 1 << 20;
            }
        }
        found
    };
    let le = |v: u64| v.to_le_bytes().to_vec();
    // The catalog's next block is itself: a loop.
    let f = find(vec![(catalog + 40, le(catalog))]).unwrap();
    assert!(f.stores.is_empty() && f.warnings[0].contains("loops"), "{:?}", f.warnings);
    // The catalog lies past the volume's end.
    let f = find(vec![(0x1e00 + 48, le(vol.len() + (1 << 20)))]).unwrap();
    assert!(f.stores.is_empty() && f.warnings[0].contains("outside the volume"), "{:?}", f.warnings);
    // Store 1's block list points outside the volume: store 2 still reads.
    let (e1, _, _) = lists[0];
    let f = find(vec![(e1 + 8, le(vol.len() - 4096))]).unwrap();
    assert_eq!(f.stores.len(), 1, "{:?}", f.warnings);
    assert!(f.warnings.iter().any(|w| w.contains("not read") && w.contains("outside the volume")), "{:?}", f.warnings);
    // Store 2's block list's next block is itself.
    let (_, list2, _) = lists[1];
    let f = find(vec![(list2 + 40, le(list2))]).unwrap();
    assert!(f.warnings.iter().any(|w| w.contains("loops")), "{:?}", f.warnings);
    // Every descriptor of store 1 points past the volume: reading those
    // blocks fails with an error, not a panic, and not zeros.
    let (_, list1, _) = lists[0];
    let mut patches = Vec::new();
    for i in 0..((16384 - 128) / 32) {
        let d = list1 + 128 + i * 32;
        if u64_at(&vol, d + 16) != 0 {
            patches.push((d + 16, le(vol.len() + (1 << 30))));
        }
    }
    assert!(!patches.is_empty());
    let p: Source = Arc::new(Patched { base: vol.clone(), patches });
    let f = vss::find(&p).unwrap();
    let store1 = &f.stores.iter().find(|(i, _)| i.number == 1).unwrap().1;
    let mut failed = 0;
    let mut buf = vec![0u8; 16384];
    for at in (0..store1.len()).step_by(16384) {
        failed += store1.read_exact_at(at, &mut buf).is_err() as usize;
    }
    assert!(failed > 0);
}
