//! Containers on a node image: real containerd state (meta.db and the
//! overlayfs snapshotter's metadata.db, written by containerd 1.6 with
//! `ctr`, container writes made through a kernel overlay mount) and a Docker
//! overlay2 tree, checked against what the kernel's overlayfs showed for
//! the same layers (images/build-containers.py, images/expected/containers*).
//! Partial copies are made from the same image in place: a bbolt file's
//! meta pages zeroed (unreadable), an ext4 directory entry renamed (the
//! file or folder missing); then no layer may pass for a container.

use crate::common::*;
use sha2::{Digest, Sha256};
use snapsift::evidence::OpenOptions;
use snapsift::fs::{FileKind, FileSystem, NodeId};
use snapsift::host::containers::{Container, Kind};
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
    // Active snapshots no readable record claims stand in, said to be nameless.
    assert!(warnings.contains("names, images and pods are unknown") || !warnings.contains("_unnamed_"), "{warnings}");
    let containers = std::fs::read_dir(case.join("Host-Based Logs/eks-node-1/containers")).unwrap().count();
    // Docker's three, and the three containerd ones (named or by snapshot).
    assert!(containers >= 6, "only {containers} containers extracted:\n{warnings}");
    // Docker's are untouched by the damage.
    assert!(case.join("Host-Based Logs/eks-node-1/containers/api_2960f270d1d1/var/log/api/api.log").is_file());
}

/// Makes bbolt file `path` of the image at `img` unreadable: both meta
/// pages zeroed.
fn unreadable_db(img: &Path, path: &str) {
    use std::os::unix::fs::FileExt;
    let (off, _, _) = extents_of(path)[0];
    std::fs::OpenOptions::new().write(true).open(img).unwrap().write_all_at(&[0u8; 8192], off).unwrap();
}

const META_DB: &str = "/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db";
const SNAPSHOTTER_DB: &str = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/metadata.db";

/// Renames, in place, the one ext4 directory entry of p1 (the root
/// filesystem, where Docker's tree is) whose name is `name` and whose file
/// type is `ftype` (1 file, 2 directory): the entry is then missing, as in
/// a copy made without it. (A directory block's checksum is not checked
/// by the reader; the kernel would refuse the block.)
fn rename_entry(img: &Path, name: &str, ftype: u8, new: &str) {
    use std::os::unix::fs::FileExt;
    assert_eq!(name.len(), new.len());
    let f = std::fs::OpenOptions::new().read(true).write(true).open(img).unwrap();
    // p1 spans 1 MiB to 49 MiB.
    let mut p1 = vec![0u8; 48 << 20];
    f.read_exact_at(&mut p1, 1 << 20).unwrap();
    let mut want = vec![name.len() as u8, ftype];
    want.extend_from_slice(name.as_bytes());
    let hits: Vec<usize> = p1.windows(want.len()).enumerate().filter(|(_, w)| *w == want.as_slice()).map(|(i, _)| i).collect();
    assert_eq!(hits.len(), 1, "the entry {name} is not unique in p1");
    f.write_all_at(new.as_bytes(), (1 << 20) + hits[0] as u64 + 2).unwrap();
}

/// The node image as a partial copy of both runtimes' state leaves it:
/// meta.db and metadata.db unreadable, Docker's image/overlay2/layerdb gone.
fn without_databases(dir: &Path) -> std::path::PathBuf {
    let img = dir.join("node.img");
    std::fs::copy(image("containers-node"), &img).unwrap();
    unreadable_db(&img, META_DB);
    unreadable_db(&img, SNAPSHOTTER_DB);
    rename_entry(&img, "layerdb", 2, "layerdX");
    img
}

/// The expected union view of a Docker container without its named
/// volumes (they are known only from config.v2.json).
fn expected_without_volumes(intact: &host::Loaded, folder: &str) -> Listing {
    let c = intact.host.containers.iter().find(|c| c.folder == folder).unwrap();
    let mounts: Vec<String> = c.host.as_ref().unwrap().volumes.iter().filter_map(|v| v.mount_point.clone()).collect();
    assert!(folder != "api_2960f270d1d1" || !mounts.is_empty(), "api's named volume is not found in the intact image");
    expected_rows("node", folder).into_iter().filter(|(p, _)| !mounts.iter().any(|m| p.starts_with(&format!("{m}/")))).collect()
}

/// Docker's containers of one store in the intact image: overlay2
/// (`false`) or containerd's image store (`true`, layers `snapshot N`).
fn docker_of(intact: &host::Loaded, containerd_store: bool) -> Vec<String> {
    let v: Vec<String> = intact
        .host
        .containers
        .iter()
        .filter(|c| c.info.runtime == "docker" && c.info.layers.iter().all(|l| l.starts_with("snapshot ")) == containerd_store)
        .map(|c| c.folder.clone())
        .collect();
    assert!(!v.is_empty());
    v
}

/// The folders of the Docker containers in containerd's image store.
const CACHE: &str = "cache_968fd4a1df3d";
const REPORT: &str = "report_83c759508b8c";

#[test]
fn without_the_runtime_databases_no_layer_is_shown_as_a_container() {
    let dir = tempfile::tempdir().unwrap();
    let img = without_databases(dir.path());
    let l = host::load(&img, &OpenOptions::default(), None).unwrap();
    let intact = node();
    let warnings = l.host.warnings.join("\n");
    let meta = tsv(&repo().join("images/expected/containers-meta.tsv"));
    let docker = docker_of(&intact, false);
    // containerd: every snapshot folder is a layer alone; none is a container.
    let layers: Vec<_> = l.host.containers.iter().filter(|c| c.info.kind == Kind::Layer).collect();
    let layer_folders: BTreeSet<&str> = layers.iter().map(|c| c.folder.as_str()).collect();
    // (9 was a view containerd collected.)
    let want: BTreeSet<String> = (1..=20).filter(|n| *n != 9).map(|n| format!("_layers/{n}")).collect();
    assert_eq!(layer_folders, want.iter().map(String::as_str).collect(), "{warnings}");
    for c in l.host.containers.iter().filter(|c| c.info.kind == Kind::Container) {
        assert!(c.info.runtime == "docker", "{} is shown as a container: {warnings}", c.folder);
        assert!(!c.folder.starts_with("_layers"));
    }
    // Each layer alone: no marker leaks as a file (walk panics on a char
    // device), and each deletion the kernel applied in a containerd
    // container is recorded by some layer.
    let mut whiteouts = BTreeSet::new();
    let mut opaque = BTreeSet::new();
    for c in &layers {
        union_listing(c.host.as_ref().unwrap());
        whiteouts.extend(c.info.whiteouts.iter().cloned());
        opaque.extend(c.info.opaque.iter().cloned());
    }
    // (Docker's containerd-store containers are containerd snapshots too.)
    let containerd: Vec<String> = meta
        .iter()
        .filter(|r| r["source"] == "node" && r["runtime"] == "containerd")
        .map(|r| r["container"].clone())
        .chain(docker_of(&intact, true))
        .collect();
    for r in tsv(&repo().join("images/expected/containers-hidden.tsv")).into_iter().filter(|r| containerd.contains(&r["container"])) {
        match r["why"].split_once(':') {
            None => assert!(whiteouts.contains(&r["path"]), "whiteout of {} not recorded: {whiteouts:?}", r["path"]),
            Some(("dir-whiteout", d)) => assert!(whiteouts.contains(d), "whiteout of {d} not recorded: {whiteouts:?}"),
            Some((_, d)) => assert!(opaque.contains(d), "opaque {d} not recorded: {opaque:?}"),
        }
    }
    // Docker: each container is rebuilt from overlay2 (a layer with an
    // -init sibling, through its lower file) and equals the kernel's view
    // but for its named volume; its name is unknown.
    let unnamed: Vec<_> = l.host.containers.iter().filter(|c| c.folder.starts_with("_unnamed_")).collect();
    assert_eq!(unnamed.len(), docker.len(), "{warnings}");
    for d in &docker {
        let want = expected_without_volumes(&intact, d);
        let hits: Vec<_> = unnamed.iter().filter(|c| diff(&want, &union_listing(c.host.as_ref().unwrap())).is_empty()).collect();
        assert_eq!(hits.len(), 1, "{d}: no single rebuilt view equals the kernel's");
        assert_eq!(hits[0].info.name, None);
        // Its config.v2.json is still listed, without files.
        assert!(l.host.containers.iter().any(|c| &c.folder == d && c.host.is_none()), "{d}");
    }
    // Docker's containerd-store containers: named by config.v2.json, no
    // view (their chains were in metadata.db), and said why.
    for d in docker_of(&intact, true) {
        let c = l.host.containers.iter().find(|c| c.folder == d).unwrap_or_else(|| panic!("{d} not listed: {warnings}"));
        assert!(c.host.is_none() && c.info.kind == Kind::Container, "{d}");
        assert!(c.problems.iter().any(|p| p.contains("which no readable snapshotter record names")), "{d}: {:?}", c.problems);
    }
    // What was missing, and what was done instead.
    for w in [
        "metadata.db is unreadable",
        "19 snapshot folder(s) are extracted as layers under containers/_layers/, not as containers: which layers form which container is unknown",
        "/var/lib/docker/image/overlay2/layerdb is missing",
        "3 container(s) are assembled from overlay2 alone",
        "names, images, states and named volumes are unknown",
    ] {
        assert!(warnings.contains(w), "no warning says {w:?}:\n{warnings}");
    }
}

#[test]
fn extraction_without_the_runtime_databases_keeps_deleted_files_out_of_every_container() {
    let dir = tempfile::tempdir().unwrap();
    let img = without_databases(dir.path());
    let case = dir.path().join("case");
    let out = extract(&[&img], &case);
    assert!(matches!(out.code, Some(0 | 1)), "{}", out.stderr);
    let l = host::load(&img, &OpenOptions::default(), None).unwrap();
    let intact = node();
    let base = case.join("Host-Based Logs/eks-node-1/containers");
    let mut got = BTreeMap::new();
    collect_tree(&base, String::new(), &mut got);
    // Layer views, by folder, to check which layer held a file.
    let layer_views: BTreeMap<String, Listing> = l
        .host
        .containers
        .iter()
        .filter(|c| c.info.kind == Kind::Layer)
        .map(|c| (format!("/{}", c.folder), union_listing(c.host.as_ref().unwrap())))
        .collect();
    for (p, sha) in &got {
        if let Some((folder, path)) =
            layer_views.keys().find_map(|f| p.strip_prefix(f.as_str()).filter(|r| r.starts_with('/')).map(|rest| (f, rest)))
        {
            // Under _layers/<id>: only what that layer itself holds.
            let w = layer_views[folder].get(path).unwrap_or_else(|| panic!("{p}: not in layer {folder}"));
            assert_eq!(&w.2, sha, "{p}");
            continue;
        }
        assert!(!p.starts_with("/_layers/"), "{p}: under _layers/ but no such layer");
        // The named Docker records have no view: only rebuilt ones hold
        // files (checked against their own hidden rows below).
        assert!(p.starts_with("/_unnamed_"), "{p}: a container folder without a view holds files");
    }
    // Something a container deleted is there, in the layer that held it.
    assert!(got.keys().any(|p| p.starts_with("/_layers/") && p.ends_with("/var/log/dpkg.log")), "{:?}", got.keys());
    // Every visible log and history of each rebuilt Docker view, with the kernel's bytes.
    for c in l.host.containers.iter().filter(|c| c.folder.starts_with("_unnamed_")) {
        let view = union_listing(c.host.as_ref().unwrap());
        let d = tsv(&repo().join("images/expected/containers-meta.tsv"))
            .into_iter()
            .filter(|r| r["source"] == "node" && r["runtime"] == "docker")
            .map(|r| r["container"].clone())
            .find(|d| diff(&expected_without_volumes(&intact, d), &view).is_empty())
            .unwrap_or_else(|| panic!("{}: no expected view", c.folder));
        let want = expected_without_volumes(&intact, &d);
        let mine = extracted(&case, "eks-node-1", &c.folder);
        for (p, w) in
            want.iter().filter(|(p, w)| w.0 == "r" && (p.starts_with("/var/log/") || p.ends_with("_history") || p.contains("/logs/")))
        {
            assert_eq!(mine.get(p), Some(&w.2), "{} ({d}): {p}", c.folder);
        }
        for h in hidden_rows("node", &d) {
            assert!(!mine.contains_key(&h), "{}: {h}, which an upper layer deletes, is extracted", c.folder);
        }
        for (p, sha) in &mine {
            assert_eq!(want.get(p).map(|w| &w.2), Some(sha), "{}: {p} is not in the kernel's view", c.folder);
        }
    }
    let warnings = warnings_of(&case);
    assert!(warnings.contains("metadata.db is unreadable") && warnings.contains("layerdb is missing"), "{warnings}");
    let run = runs(&case).pop().unwrap();
    let j = run_json(&run);
    // Layers are counted apart from containers: the 3 rebuilt views and
    // the 5 Docker records without one.
    assert_eq!((j["counts"]["containers"].as_u64(), j["counts"]["container_layers"].as_u64()), (Some(8), Some(19)));
    let listed = j["evidence"][0]["containers"].as_array().unwrap();
    assert!(
        listed.iter().any(|c| c["info"]["kind"] == "layer" && c["info"]["whiteouts"].as_array().is_some_and(|w| !w.is_empty())),
        "{listed:?}"
    );
}

#[test]
fn an_unreadable_meta_db_leaves_each_container_assembled_from_metadata_db_and_says_its_name_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("node.img");
    std::fs::copy(image("containers-node"), &img).unwrap();
    unreadable_db(&img, META_DB);
    let l = host::load(&img, &OpenOptions::default(), None).unwrap();
    let warnings = l.host.warnings.join("\n");
    assert!(
        warnings.contains("meta.db is unreadable: 3 active snapshot(s) are shown as containers named by snapshot")
            && warnings.contains("their names, images and pods are unknown"),
        "{warnings}"
    );
    let unnamed: Vec<_> = l.host.containers.iter().filter(|c| c.info.runtime == "containerd").collect();
    assert_eq!(unnamed.len(), 3, "{warnings}");
    // Each is the kernel's view of one container, through its full chain.
    let mut matched = BTreeSet::new();
    for c in unnamed {
        assert!(c.folder.starts_with("_unnamed_") && c.info.name.is_none() && c.info.kind == Kind::Container, "{}", c.folder);
        let got = union_listing(c.host.as_ref().unwrap());
        let which: Vec<String> = tsv(&repo().join("images/expected/containers-meta.tsv"))
            .into_iter()
            .filter(|r| r["source"] == "node" && r["runtime"] == "containerd")
            .map(|r| r["container"].clone())
            .filter(|f| diff(&expected_rows("node", f), &got).is_empty())
            .collect();
        assert_eq!(which.len(), 1, "{}: {which:?}", c.folder);
        assert_eq!(c.info.layers.len(), 5);
        matched.insert(which[0].clone());
    }
    assert_eq!(matched.len(), 3);
    // Docker's containerd-store containers are still named by their
    // config.v2.json: their snapshots' names carry the container id.
    for d in [CACHE, REPORT] {
        let c = l.host.containers.iter().find(|c| c.folder == d).unwrap_or_else(|| panic!("{d} not found: {warnings}"));
        let got = union_listing(c.host.as_ref().unwrap());
        let dd = diff(&expected_rows("node", d), &got);
        assert!(dd.is_empty(), "{d}:\n{dd}");
        assert_eq!((c.info.runtime, c.info.layers.len()), ("docker", 6));
    }
    assert!(!warnings.contains("Docker container(s) in containerd's image store have no config.v2.json"), "{warnings}");
}

#[test]
fn a_corrupt_snapshotter_db_leaves_each_snapshot_a_layer_and_no_container() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("node.img");
    std::fs::copy(image("containers-node"), &img).unwrap();
    // Both meta pages destroyed: the database cannot be opened at all.
    unreadable_db(&img, SNAPSHOTTER_DB);
    let case = dir.path().join("case");
    let out = extract(&[&img], &case);
    assert!(matches!(out.code, Some(0 | 1)), "{}", out.stderr);
    let warnings = warnings_of(&case);
    assert!(warnings.contains("metadata.db is unreadable") && warnings.contains("containers/_layers/"), "{warnings}");
    let base = case.join("Host-Based Logs/eks-node-1/containers");
    // meta.db's containers are listed, but no view of them is made up.
    assert!(warnings.contains("container shop_web-7d9f8_nginx: ") && warnings.contains("which snapshot folders hold"), "{warnings}");
    assert!(!base.join("shop_web-7d9f8_nginx").exists());
    // nginx's own writes are kept, in its snapshot's layer folder.
    let mut found = false;
    for e in std::fs::read_dir(base.join("_layers")).unwrap() {
        found |= e.unwrap().path().join("var/log/nginx/access.log").is_file();
    }
    assert!(found, "nginx's own writes are missing:\n{warnings}");
    // Docker's overlay2 ones are untouched; its containerd-store ones have
    // no view, their files are in the layers.
    assert!(base.join("api_2960f270d1d1/var/log/api/api.log").is_file());
    for d in [CACHE, REPORT] {
        assert!(!base.join(d).exists() && warnings.contains(&format!("container {d}: ")), "{d}:\n{warnings}");
    }
}

#[test]
fn a_writable_layer_whose_init_folder_is_missing_is_extracted_as_a_layer_not_a_container() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let img = without_databases(dir.path());
    // The first `<64 hex>-init` entry of overlay2/ renamed: its container
    // can no longer be told from an image layer.
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&img).unwrap();
    let mut p1 = vec![0u8; 48 << 20];
    f.read_exact_at(&mut p1, 1 << 20).unwrap();
    let at = p1.windows(71).position(|w| w[..2] == [69, 2] && w[2..66].iter().all(u8::is_ascii_hexdigit) && &w[66..] == b"-init").unwrap();
    let top = String::from_utf8(p1[at + 2..at + 66].to_vec()).unwrap();
    f.write_all_at(b"-inix", (1 << 20) + at as u64 + 66).unwrap();
    let l = host::load(&img, &OpenOptions::default(), None).unwrap();
    let warnings = l.host.warnings.join("\n");
    let unnamed: Vec<_> = l.host.containers.iter().filter(|c| c.folder.starts_with("_unnamed_")).collect();
    assert_eq!(unnamed.len(), 2, "{warnings}");
    let docker_layers: Vec<_> = l.host.containers.iter().filter(|c| c.info.kind == Kind::Layer && c.info.runtime == "docker").collect();
    // Its writable layer is a layer alone, with its whiteouts recorded.
    let mine = docker_layers.iter().find(|c| c.info.id == top).unwrap_or_else(|| panic!("{top} is not a layer: {warnings}"));
    assert_eq!(mine.folder, format!("_layers/{}", &top[..12]));
    assert!(!mine.info.whiteouts.is_empty() || !mine.info.opaque.is_empty(), "{:?}", mine.info);
    for c in &docker_layers {
        union_listing(c.host.as_ref().unwrap());
    }
    assert!(warnings.contains("layer(s) belong to no container that could be assembled"), "{warnings}");
}

#[test]
fn without_a_config_v2_json_the_container_is_rebuilt_from_its_layers_and_its_name_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("node.img");
    std::fs::copy(image("containers-node"), &img).unwrap();
    // The config.v2.json entry of api (an overlay2 container): the one
    // whose directory block also holds `<api id>-json.log`.
    let api = "2960f270d1d1256a61830077478d7f8b62d4b7e77cb27699f160b24e914e6e47";
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().read(true).write(true).open(&img).unwrap();
        let mut p1 = vec![0u8; 48 << 20];
        f.read_exact_at(&mut p1, 1 << 20).unwrap();
        let log = format!("{api}-json.log");
        let at = (0..p1.len() - 16)
            .filter(|&i| &p1[i..i + 16] == b"\x0e\x01config.v2.json")
            .find(|&i| p1[i / 4096 * 4096..(i / 4096 + 1) * 4096].windows(log.len()).any(|w| w == log.as_bytes()))
            .unwrap();
        f.write_all_at(b"config.v2.jsoX", (1 << 20) + at as u64 + 2).unwrap();
    }
    let l = host::load(&img, &OpenOptions::default(), None).unwrap();
    let intact = node();
    let warnings = l.host.warnings.join("\n");
    let docker: Vec<&Container> = l.host.containers.iter().filter(|c| c.info.runtime == "docker").collect();
    assert_eq!(docker.len(), 5, "{warnings}");
    let unnamed: Vec<_> = docker.iter().filter(|c| c.folder.starts_with("_unnamed_")).collect();
    assert_eq!(unnamed.len(), 1, "{warnings}");
    let c = unnamed[0];
    // layerdb/mounts still gives its container id; the name is unknown.
    let row = tsv(&repo().join("images/expected/containers-meta.tsv")).into_iter().find(|r| r["id"] == c.info.id).unwrap();
    assert_eq!(c.info.id, api);
    assert_eq!(c.folder, format!("_unnamed_{}", &c.info.id[..12]));
    assert_eq!(c.info.name, None);
    let d = diff(&expected_without_volumes(&intact, &row["container"]), &union_listing(c.host.as_ref().unwrap()));
    assert!(d.is_empty(), "{d}");
    assert!(c.problems.iter().any(|p| p.contains("config.v2.json is missing")), "{:?}", c.problems);
    assert!(warnings.contains("1 container(s) are assembled from overlay2 alone"), "{warnings}");
    // No layer is left over: every overlay2 folder is in a view.
    assert!(l.host.containers.iter().all(|c| c.info.kind == Kind::Container), "{warnings}");
}

#[test]
fn docker_containers_of_the_containerd_image_store_are_named_as_docker_names_them() {
    let l = node();
    let mut docker = docker_of(&l, true);
    docker.sort();
    assert_eq!(docker, [CACHE, REPORT]);
    for d in &docker {
        let c = l.host.containers.iter().find(|c| &c.folder == d).unwrap();
        // `<name>_<id12>`, the writable snapshot over `<id>-init` over the
        // image's four layers, in Docker's namespace.
        assert_eq!(c.folder, format!("{}_{}", c.info.name.as_deref().unwrap(), &c.info.id[..12]));
        assert_eq!((c.info.namespace.as_deref(), c.info.layers.len()), (Some("moby"), 6), "{d}");
        assert_eq!(c.info.image.as_deref(), Some("snapsift/app:1.0"));
        let got = union_listing(c.host.as_ref().unwrap());
        // Docker's init files and the container's own writes are seen;
        // what its writable snapshot deletes is not.
        for p in ["/.dockerenv", "/etc/hosts", "/etc/hostname"] {
            assert!(got.contains_key(p), "{d}: {p}");
        }
        let hidden = hidden_rows("node", d);
        assert!(!hidden.is_empty());
        for h in &hidden {
            assert!(!got.contains_key(h), "{d}: {h} is deleted by an upper layer but shown");
        }
    }
    assert!(hidden_rows("node", CACHE).contains(&"/var/log/dpkg.log".to_string()));
    assert!(hidden_rows("node", REPORT).contains(&"/var/log/app/release.log".to_string()));
    // libcontainerd's record of the running one is folded into it: no
    // other container, named or not, is made of Docker's snapshots.
    assert!(l.host.containers.iter().all(|c| !c.folder.starts_with("_unnamed_") && !c.folder.starts_with("moby_")));
    assert!(!l.host.warnings.iter().any(|w| w.contains("moby")), "{:?}", l.host.warnings);
}

/// The node image with one container's config.v2.json damaged in place:
/// the byte after `"ID"` in it (a JSON syntax error).
fn damaged_config(dir: &Path, id: &str) -> std::path::PathBuf {
    use std::os::unix::fs::FileExt;
    let img = dir.join("node.img");
    std::fs::copy(image("containers-node"), &img).unwrap();
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&img).unwrap();
    let mut p1 = vec![0u8; 48 << 20];
    f.read_exact_at(&mut p1, 1 << 20).unwrap();
    let want = format!("\"ID\":\"{id}\"");
    let at = p1.windows(want.len()).position(|w| w == want.as_bytes()).unwrap();
    f.write_all_at(b"#", (1 << 20) + at as u64 + 4).unwrap();
    img
}

#[test]
fn a_containerd_store_container_without_its_docker_records_is_shown_nameless_and_never_with_deleted_files() {
    let intact = node();
    let report = intact.host.containers.iter().find(|c| c.folder == REPORT).unwrap();
    let id = report.info.id.clone();
    let dir = tempfile::tempdir().unwrap();
    // Its folder containers/<id> missing (a partial copy), or its
    // config.v2.json damaged: a note, no panic, a nameless view.
    let missing = dir.path().join("missing");
    std::fs::create_dir(&missing).unwrap();
    let img = missing.join("node.img");
    std::fs::copy(image("containers-node"), &img).unwrap();
    rename_entry(&img, &id, 2, &format!("{}x", &id[..63]));
    let damaged = dir.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    for (img, why) in [(img, "have no config.v2.json here"), (damaged_config(&damaged, &id), "config.v2.json: unreadable")] {
        let l = host::load(&img, &OpenOptions::default(), None).unwrap();
        let warnings = l.host.warnings.join("\n");
        assert!(warnings.contains(why), "{warnings}");
        assert!(!l.host.containers.iter().any(|c| c.folder == REPORT), "{warnings}");
        let c = l.host.containers.iter().find(|c| c.folder == format!("_unnamed_{}", &id[..12])).expect(&warnings);
        assert_eq!((c.info.runtime, c.info.name.as_deref(), c.info.kind), ("docker", None, Kind::Container));
        let got = union_listing(c.host.as_ref().unwrap());
        let d = diff(&expected_rows("node", REPORT), &got);
        assert!(d.is_empty(), "{d}");
        // The running one keeps its name.
        assert!(l.host.containers.iter().any(|c| c.folder == CACHE && c.host.is_some()));
    }
    assert!(!report.info.id.is_empty());
}

/// Copies a directory of an image's filesystem onto this machine as it is:
/// files, symlinks, whiteouts (0:0 character devices) and overlay xattrs.
fn copy_out(fs: &dyn FileSystem, node: NodeId, to: &Path) {
    use std::os::unix::ffi::OsStrExt;
    std::fs::create_dir_all(to).unwrap();
    for e in fs.read_dir(node).unwrap() {
        let p = to.join(std::ffi::OsStr::from_bytes(&e.name));
        let m = fs.metadata(e.node).unwrap();
        match m.kind() {
            FileKind::Dir => copy_out(fs, e.node, &p),
            FileKind::File => {
                let mut data = Vec::new();
                fs.open(e.node).unwrap().read_to_end(&mut data).unwrap();
                std::fs::write(&p, data).unwrap();
            }
            FileKind::Symlink => std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&fs.read_link(e.node).unwrap()), &p).unwrap(),
            FileKind::CharDevice => {
                let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
                assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, 0) }, 0, "mknod {}", p.display());
            }
            _ => {}
        }
        if m.kind() == FileKind::Dir {
            for (k, v) in fs.xattrs(e.node).unwrap() {
                if k.starts_with(b"trusted.overlay.") {
                    let (c, n) = (std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap(), std::ffi::CString::new(k).unwrap());
                    assert_eq!(unsafe { libc::lsetxattr(c.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), 0) }, 0);
                }
            }
        }
    }
}

/// A copied `/var/lib/docker` of a dockerd that ran its own containerd
/// (its root `<data-root>/containerd/daemon`): the containerd state of the
/// node and the two containers' folders, given as a directory. Root only
/// (whiteouts are character devices, opaque dirs trusted.* xattrs).
#[test]
fn a_copied_docker_data_root_with_its_own_containerd_shows_the_containerd_store_containers() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to make whiteouts");
        return;
    }
    let l = node();
    let t = tempfile::tempdir().unwrap();
    let docker = t.path().join("docker");
    let c8d = l.host.volumes.iter().find(|v| v.mount_point.as_deref() == Some("/var/lib/containerd")).unwrap();
    let fs = c8d.fs.as_deref().unwrap();
    copy_out(fs, fs.root(), &docker.join("containerd/daemon"));
    let root = l.host.volumes.iter().find(|v| v.is_os_root).unwrap().fs.as_deref().unwrap();
    for d in [CACHE, REPORT] {
        let id = &l.host.containers.iter().find(|c| c.folder == d).unwrap().info.id;
        let node = snapsift::fs::lookup(root, format!("/var/lib/docker/containers/{id}").as_bytes()).unwrap().unwrap();
        copy_out(root, node, &docker.join("containers").join(id));
    }
    let copy = host::load(&docker, &OpenOptions::default(), None).unwrap();
    for d in [CACHE, REPORT] {
        let c = copy.host.containers.iter().find(|c| c.folder == d).unwrap_or_else(|| panic!("{d}: {:?}", copy.host.warnings));
        let dd = diff(&expected_rows("node", d), &union_listing(c.host.as_ref().unwrap()));
        assert!(dd.is_empty(), "{d}:\n{dd}");
    }
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
