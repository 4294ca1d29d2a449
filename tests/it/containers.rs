//! Containers on a node image: real containerd state (meta.db and the
//! overlayfs snapshotter's metadata.db, written by containerd 1.6 with
//! `ctr`, container writes made through a kernel overlay mount) and a Docker
//! overlay2 tree, checked against what the kernel's overlayfs showed for
//! the same layers (images/build-containers.py, images/expected/containers*).

use crate::common::*;
use sha2::{Digest, Sha256};
use snapsift::evidence::OpenOptions;
use snapsift::fs::{FileKind, FileSystem, NodeId};
use snapsift::host::{self, Host};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

/// The listing's escaping: bytes outside printable ASCII and `%` as %XX.
fn pct(b: &[u8]) -> String {
    b.iter().map(|&c| if (0x20..0x7F).contains(&c) && c != b'%' { (c as char).to_string() } else { format!("%{c:02X}") }).collect()
}

type Listing = BTreeMap<String, (String, String, String, String)>;

/// (path → type, size, sha256, link target) of the expected rows for one
/// source and container.
fn expected_rows(source: &str, container: &str) -> Listing {
    tsv(&repo().join("images/expected/containers.tsv"))
        .into_iter()
        .filter(|r| r["source"] == source && r["container"] == container)
        .map(|r| (r["path"].clone(), (r["type"].clone(), r["size"].clone(), r["sha256"].clone(), r["link_target"].clone())))
        .collect()
}

fn hidden_rows(source: &str, container: &str) -> Vec<String> {
    tsv(&repo().join("images/expected/containers-hidden.tsv"))
        .into_iter()
        .filter(|r| r["source"] == source && r["container"] == container)
        .map(|r| r["path"].clone())
        .collect()
}

/// Every regular file and symlink a filesystem shows, walked whole.
fn walk(fs: &dyn FileSystem, prefix: &str, out: &mut Listing) {
    fn go(fs: &dyn FileSystem, dir: NodeId, path: String, depth: usize, out: &mut Listing) {
        assert!(depth < 64, "runaway depth at {path}");
        for e in fs.read_dir(dir).unwrap() {
            let p = format!("{path}/{}", pct(&e.name));
            let m = fs.metadata(e.node).unwrap();
            match m.kind() {
                FileKind::Dir => go(fs, e.node, p, depth + 1, out),
                FileKind::File => {
                    let mut data = Vec::new();
                    fs.open(e.node).unwrap().read_to_end(&mut data).unwrap();
                    let sha = format!("{:x}", Sha256::digest(&data));
                    out.insert(p, ("r".into(), data.len().to_string(), sha, String::new()));
                }
                FileKind::Symlink => {
                    let t = fs.read_link(e.node).unwrap();
                    out.insert(p, ("l".into(), t.len().to_string(), String::new(), pct(&t)));
                }
                other => panic!("{p}: a {other:?} is visible in the union view (a whiteout marker leaked)"),
            }
        }
    }
    go(fs, fs.root(), prefix.trim_end_matches('/').to_string(), 0, out);
}

/// The union listing of a container host: its root and its volumes at
/// their mount points.
fn union_listing(h: &Host) -> Listing {
    let mut out = Listing::new();
    for v in &h.volumes {
        let at = v.mount_point.clone().unwrap_or_default();
        walk(v.fs.as_deref().unwrap(), &at, &mut out);
    }
    out
}

fn node() -> host::Loaded {
    host::load(&image("containers-node"), &OpenOptions::default(), None).unwrap()
}

/// Symlink sizes are not in the listing's sense comparable (the kernel
/// listing records the target's length too), so rows compare whole.
fn diff(want: &Listing, got: &Listing) -> String {
    let mut s = String::new();
    for (p, w) in want {
        match got.get(p) {
            None => s += &format!("missing {p}\n"),
            Some(g) if g != w => s += &format!("differs {p}: want {w:?} got {g:?}\n"),
            _ => {}
        }
    }
    for p in got.keys().filter(|p| !want.contains_key(*p)) {
        s += &format!("extra   {p}\n");
    }
    s
}

#[test]
fn each_containers_union_view_equals_the_kernels_overlay() {
    let l = node();
    let folders: BTreeSet<String> = l.host.containers.iter().map(|c| c.folder.clone()).collect();
    let want_folders: BTreeSet<String> = tsv(&repo().join("images/expected/containers-meta.tsv"))
        .into_iter()
        .filter(|r| r["source"] == "node")
        .map(|r| r["container"].clone())
        .collect();
    assert_eq!(folders, want_folders);
    for c in &l.host.containers {
        let want = expected_rows("node", &c.folder);
        assert!(!want.is_empty(), "no expected rows for {}", c.folder);
        let got = union_listing(c.host.as_ref().unwrap());
        let d = diff(&want, &got);
        assert!(d.is_empty(), "container {}:\n{d}", c.folder);
        for h in hidden_rows("node", &c.folder) {
            assert!(!got.contains_key(&h), "{}: {h} is hidden by the kernel but shown", c.folder);
        }
        assert!(c.problems.is_empty(), "{}: {:?}", c.folder, c.problems);
    }
}

#[test]
fn inspect_lists_each_container_with_its_runtime_metadata() {
    let l = node();
    for r in tsv(&repo().join("images/expected/containers-meta.tsv")).into_iter().filter(|r| r["source"] == "node") {
        let c = l.host.containers.iter().find(|c| c.folder == r["container"]).unwrap();
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        let i = &c.info;
        assert_eq!(i.runtime, r["runtime"]);
        assert_eq!(i.id, r["id"]);
        assert_eq!(opt(&i.image), r["image"], "{}", c.folder);
        assert_eq!(opt(&i.pod), r["pod"], "{}", c.folder);
        // The listing's namespace: the pod's, else containerd's own.
        assert_eq!(opt(&i.pod_namespace.clone().or(if i.runtime == "containerd" { i.namespace.clone() } else { None })), r["namespace"]);
        assert_eq!(opt(&i.name), r["name"], "{}", c.folder);
        assert_eq!(i.layers.len().to_string(), r["layers"], "{}", c.folder);
        assert_eq!(opt(&i.state), r["state"], "{}", c.folder);
    }
    let out = snapsift(&["inspect".as_ref(), image("containers-node").as_os_str()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for f in [
        "shop_web-7d9f8_nginx",
        "batch_worker-5c4b_worker",
        "default_legacy-tool",
        "api_2960f270d1d1",
        "db_f9f91ed9db33",
        "edit_df23058688f4",
    ] {
        assert!(out.stdout.contains(f), "inspect does not list {f}:\n{}", out.stdout);
    }
}

/// Files extracted for one container, path → sha256.
fn extracted(case: &Path, node: &str, folder: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    collect_tree(&case.join("Host-Based Logs").join(node).join("containers").join(folder), String::new(), &mut out);
    out
}

#[test]
fn extraction_writes_each_containers_logs_and_histories_as_the_container_saw_them() {
    let case = tempfile::tempdir().unwrap();
    let out = extract(&[&image("containers-node")], case.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let rows = manifest(case.path());
    for c in tsv(&repo().join("images/expected/containers-meta.tsv")).into_iter().filter(|r| r["source"] == "node") {
        let folder = &c["container"];
        let want = expected_rows("node", folder);
        let got = extracted(case.path(), "eks-node-1", folder);
        // Everything extracted is visible in the kernel's view, with the same bytes.
        for (p, sha) in &got {
            let w = want.get(p).unwrap_or_else(|| panic!("{folder}: extracted {p}, which the kernel does not show"));
            assert_eq!(&w.2, sha, "{folder}{p}");
        }
        // Every visible log and history was extracted.
        let wanted =
            want.iter().filter(|(p, w)| w.0 == "r" && (p.starts_with("/var/log/") || p.ends_with("_history") || p.contains("/logs/")));
        for (p, _) in wanted {
            assert!(got.contains_key(p), "{folder}: {p} not extracted; got {:?}", got.keys().collect::<Vec<_>>());
        }
        for h in hidden_rows("node", folder) {
            assert!(!got.contains_key(&h), "{folder}: hidden {h} extracted");
        }
        // The manifest names the layer each file came from.
        let mine: Vec<_> = rows.iter().filter(|r| r["volume"].starts_with(&format!("container:{folder}"))).collect();
        assert!(!mine.is_empty());
        for r in mine.iter().filter(|r| r["status"] == "ok" && r["volume"] == format!("container:{folder}")) {
            assert!(r["layer"].starts_with("snapshot ") || r["layer"].starts_with("overlay2 "), "{r:?}");
        }
    }
    // The node's own layer folders are not swept: hidden files stay hidden.
    for r in &rows {
        assert!(!r["image_path"].contains("io.containerd.snapshotter") && !r["image_path"].contains("/overlay2/"), "{r:?}");
    }
}

#[test]
fn kubernetes_container_log_links_are_resolved_inside_the_image() {
    let case = tempfile::tempdir().unwrap();
    let out = extract(&[&image("containers-node")], case.path());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let host = case.path().join("Host-Based Logs/eks-node-1");
    let links: Vec<_> = std::fs::read_dir(host.join("var/log/containers")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(links.len(), 2);
    let rows = manifest(case.path());
    for l in links {
        let meta = std::fs::symlink_metadata(&l).unwrap();
        assert!(meta.is_file(), "{} is not a regular file", l.display());
        let name = l.file_name().unwrap().to_str().unwrap();
        let row = rows.iter().find(|r| r["image_path"].ends_with(name)).unwrap();
        let target = row["reason"].strip_prefix("symlink to ").unwrap().split(':').next().unwrap().to_string();
        assert!(target.starts_with("/var/log/pods/"), "{target}");
        // The copy holds the pod log's bytes.
        assert_eq!(sha256_file(&l), sha256_file(&host.join(target.trim_start_matches('/'))));
    }
}

/// The run's warnings (run.json), one per line.
fn warnings_of(case: &Path) -> String {
    let run = runs(case).pop().unwrap();
    run_json(&run)["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string() + "\n").collect()
}

/// A database file's extents in the disk image: (image offset, length,
/// offset in the file).
fn extents_of(path: &str) -> Vec<(u64, u64, u64)> {
    tsv(&repo().join("images/expected/containers-files.tsv"))
        .into_iter()
        .filter(|r| r["path"] == path)
        .map(|r| (r["image_offset"].parse().unwrap(), r["length"].parse().unwrap(), r["file_offset"].parse().unwrap()))
        .collect()
}

/// Where byte `at` of a database file lies in the disk image.
fn image_offset(path: &str, at: u64) -> u64 {
    let (off, _, fo) = *extents_of(path).iter().find(|(_, len, fo)| (*fo..fo + len).contains(&at)).unwrap();
    off + at - fo
}

/// A copy of the node image whose bbolt file `path` has its live root page
/// overwritten: the root named by the meta page with the higher txid
/// (bbolt's meta: magic, version, page size, flags, root pgid at +16,
/// txid at +48, after the 16-byte page header).
fn damaged_copy(dir: &Path, path: &str) -> std::path::PathBuf {
    use std::os::unix::fs::FileExt;
    let img = dir.join("node.img");
    std::fs::copy(image("containers-node"), &img).unwrap();
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&img).unwrap();
    let meta = |page: u64| {
        let mut m = [0u8; 80];
        f.read_exact_at(&mut m, image_offset(path, page * 4096)).unwrap();
        let u64_at = |o: usize| u64::from_le_bytes(m[o..o + 8].try_into().unwrap());
        (u64_at(16 + 48), u64_at(16 + 16))
    };
    let (_, root) = meta(0).max(meta(1));
    f.write_all_at(&[0xA5; 4096], image_offset(path, root * 4096)).unwrap();
    img
}

#[test]
fn a_corrupt_meta_db_is_reported_and_every_container_is_still_extracted() {
    let dir = tempfile::tempdir().unwrap();
    // Page 2 onwards holds the buckets (0 and 1 are the meta pages).
    let img = damaged_copy(dir.path(), "/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db");
    let case = dir.path().join("case");
    let out = extract(&[&img], &case);
    assert!(matches!(out.code, Some(0 | 1)), "{}", out.stderr);
    let warnings = warnings_of(&case);
    assert!(warnings.contains("meta.db"), "no report of the damage:\n{warnings}");
    let containers = std::fs::read_dir(case.join("Host-Based Logs/eks-node-1/containers")).unwrap().count();
    // Docker's three, and the three containerd ones (named or by snapshot).
    assert!(containers >= 6, "only {containers} containers extracted:\n{warnings}");
    // Docker's are untouched by the damage.
    assert!(case.join("Host-Based Logs/eks-node-1/containers/api_2960f270d1d1/var/log/api/api.log").is_file());
}

#[test]
fn a_corrupt_snapshotter_db_still_yields_each_containers_own_writes() {
    let dir = tempfile::tempdir().unwrap();
    let p = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/metadata.db";
    let img = dir.path().join("node.img");
    std::fs::copy(image("containers-node"), &img).unwrap();
    // Both meta pages destroyed: the database cannot be opened at all.
    let (off, _, _) = extents_of(p)[0];
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&[0u8; 8192], off).unwrap();
    let case = dir.path().join("case");
    let out = extract(&[&img], &case);
    assert!(matches!(out.code, Some(0 | 1)), "{}", out.stderr);
    let warnings = warnings_of(&case);
    assert!(warnings.contains("metadata.db"), "{warnings}");
    // The three active snapshots, each alone: nginx's access log was
    // written into its own layer.
    let mut found = false;
    for e in std::fs::read_dir(case.join("Host-Based Logs/eks-node-1/containers")).unwrap() {
        found |= e.unwrap().path().join("var/log/nginx/access.log").is_file();
    }
    assert!(found, "nginx's own writes are missing:\n{warnings}");
}

fn tarball(name: &str) -> std::path::PathBuf {
    repo().join("images/containers").join(name)
}

#[test]
fn image_tarballs_show_the_union_of_their_layers() {
    for name in ["app-image.docker.tar", "app-image.oci.tar"] {
        let l = host::load(&tarball(name), &OpenOptions::default(), None).unwrap();
        let want = expected_rows(name, "-");
        assert!(!want.is_empty());
        let got = union_listing(&l.host);
        let d = diff(&want, &got);
        assert!(d.is_empty(), "{name}:\n{d}");
        for h in hidden_rows(name, "-") {
            assert!(!got.contains_key(&h), "{name}: hidden {h} shown");
        }
        let meta = tsv(&repo().join("images/expected/containers-meta.tsv")).into_iter().find(|r| r["source"] == name).unwrap();
        assert!(l.notes.iter().any(|n| n.contains(&meta["image"]) && n.contains(&format!("{} layers", meta["layers"]))), "{:?}", l.notes);
        // Extraction: the logs and histories, as the image holds them.
        let case = tempfile::tempdir().unwrap();
        let out = extract(&[&tarball(name)], case.path());
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let host_dir = std::fs::read_dir(case.path().join("Host-Based Logs")).unwrap().next().unwrap().unwrap().path();
        let mut got = BTreeMap::new();
        collect_tree(&host_dir, String::new(), &mut got);
        for (p, sha) in &got {
            assert_eq!(&want.get(p).unwrap_or_else(|| panic!("{name}: extracted {p}, not in the image")).2, sha);
        }
        for p in want.keys().filter(|p| p.starts_with("/var/log/") && want[*p].0 == "r") {
            assert!(got.contains_key(p), "{name}: {p} not extracted");
        }
    }
}

fn collect_tree(dir: &Path, rel: String, out: &mut BTreeMap<String, String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = format!("{rel}/{}", e.file_name().to_string_lossy());
        let t = e.file_type().unwrap();
        assert!(!t.is_symlink(), "a symlink in the case folder: {p}");
        if t.is_dir() {
            collect_tree(&e.path(), p, out);
        } else {
            out.insert(p, sha256_file(&e.path()));
        }
    }
}

#[test]
fn hostile_layer_entries_never_leave_the_image_and_the_rest_is_extracted() {
    let img = tarball("hostile-image.docker.tar");
    let rows = tsv(&repo().join("images/expected/containers-hostile.tsv"));
    let l = host::load(&img, &OpenOptions::default(), None).unwrap();
    let view = union_listing(&l.host);
    let shown: BTreeSet<&String> = view.keys().collect();
    // Kept: the entries that stay inside, and the symlink (it exists in the
    // image; it is recorded, never created).
    let link = "/var/log/link".to_string();
    let want: BTreeSet<&String> = rows.iter().filter(|r| r["expect"] != "reject").map(|r| &r["output_path"]).chain([&link]).collect();
    assert_eq!(shown, want, "the image view shows exactly the entries kept inside it");
    // Each rejected entry is reported by name.
    let fs_warnings = l.host.volumes.iter().flat_map(|v| v.fs.as_ref().unwrap().warnings());
    let warnings = l.host.warnings.iter().cloned().chain(fs_warnings).collect::<Vec<_>>().join("\n");
    for r in rows.iter().filter(|r| r["expect"] == "reject" && r["type"] != "l") {
        let entry = r["entry"].trim_start_matches("./");
        assert!(warnings.contains(entry.split('/').next_back().unwrap()), "{} not reported:\n{warnings}", r["entry"]);
    }
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("case");
    let out = extract(&[&img], &case);
    assert!(matches!(out.code, Some(0 | 1)), "{}", out.stderr);
    // Nothing beside the case folder; nothing in it links anywhere.
    let beside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(beside, ["case"]);
    let mut got = BTreeMap::new();
    collect_tree(&case.join("Host-Based Logs"), String::new(), &mut got);
    let logs: Vec<_> = got.keys().filter(|p| p.contains("/var/log/")).collect();
    assert_eq!(logs.len(), 2, "good.log and the odd-named log: {logs:?}");
    assert!(logs.iter().any(|p| p.ends_with("/var/log/good.log")));
    let m = manifest(&case);
    let row = m.iter().find(|r| r["image_path"] == "/var/log/link").unwrap();
    assert_eq!((row["status"].as_str(), row["reason"].as_str()), ("symlink", "-> /etc"));
}

/// A minimal ustar writer for hostile archives made at test time.
fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in members {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(b"14613472400");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn a_gzip_bomb_layer_is_refused_and_the_other_layers_are_still_read() {
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;
    // 2 GiB of zeros as 32 gzip members of 64 MiB each (about 2 MB): more
    // than 1000 times its size.
    let mut member = GzEncoder::new(Vec::new(), Compression::best());
    member.write_all(&vec![0u8; 64 << 20]).unwrap();
    let member = member.finish().unwrap();
    let bomb = member.repeat(32);
    let good = {
        let mut g = GzEncoder::new(Vec::new(), Compression::default());
        g.write_all(&tar(&[("var/log/ok.log", b"fine\n")])).unwrap();
        g.finish().unwrap()
    };
    let digest = |b: &[u8]| format!("sha256:{:x}", Sha256::digest(b));
    let hex = |b: &[u8]| format!("{:x}", Sha256::digest(b));
    let layer =
        |b: &[u8]| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}"#, digest(b), b.len());
    let manifest = format!(r#"{{"schemaVersion":2,"layers":[{},{}]}}"#, layer(&good), layer(&bomb));
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"bomb:1"}}}}]}}"#,
        digest(manifest.as_bytes()),
        manifest.len()
    );
    let blob = |b: &[u8]| format!("blobs/sha256/{}", hex(b));
    let (gb, bb, mb) = (blob(&good), blob(&bomb), blob(manifest.as_bytes()));
    let archive = tar(&[
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        ("index.json", index.as_bytes()),
        (&mb, manifest.as_bytes()),
        (&gb, &good),
        (&bb, &bomb),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("bomb.tar");
    std::fs::write(&img, archive).unwrap();
    let case = dir.path().join("case");
    let out = extract(&[&img], &case);
    assert!(matches!(out.code, Some(0 | 1)), "{}", out.stderr);
    let warnings = warnings_of(&case);
    assert!(warnings.contains("decompression bomb"), "{warnings}");
    assert!(case.join("Host-Based Logs/bomb_1/var/log/ok.log").is_file(), "{warnings}");
    // No inflated layer is left behind.
    let left: u64 =
        std::fs::read_dir(&case).unwrap().filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum();
    assert!(left < 1 << 20, "{left} bytes left in the case folder");
}
