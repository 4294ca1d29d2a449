//! containerd: containers from the metadata store, layers from the
//! overlayfs snapshotter.
//!
//! `io.containerd.metadata.v1.bolt/meta.db`:
//!   `v1/<namespace>/containers/<id>`: `image`, `snapshotter`,
//!   `snapshotKey`, `labels/…` (Kubernetes pod and container names);
//!   `v1/<namespace>/snapshots/<snapshotter>/<key>`: `name`, the key in the
//!   snapshotter's own store (`<namespace>/<n>/<key>`).
//! `io.containerd.snapshotter.v1.overlayfs/metadata.db`:
//!   `v1/snapshots/<name>`: `id` (uvarint), `kind` (1 view, 2 active,
//!   3 committed), `parent` (a name); the layer is `snapshots/<id>/fs`.
//!
//! Docker with the containerd image store keeps its containers' layers here
//! too (moby daemon/containerd/image_snapshot.go): the writable snapshot is
//! keyed by the container id, over `<id>-init` (Docker's init files) over
//! the image's top layer, and libcontainerd's record of a started container
//! (label `com.docker/engine.bundle.path`) has no snapshot key, Docker
//! mounting the rootfs itself. Both are returned as Docker's (runtime
//! `docker`, [`Found::snapshot`] set), for `mod.rs` to name from Docker's
//! config.v2.json; the snapshot is recognised by its name alone, so this
//! holds without meta.db too.
//!
//! When meta.db cannot be read, active snapshots no container record claims
//! stand in for containers (`_unnamed_<namespace>-<n>-<key>`), each through
//! its parent chain in metadata.db; their names are unknown and a note says
//! so. When metadata.db cannot be read, no snapshot is shown as a
//! container: the parent chains live only there, and a committed image
//! layer keeps the `work` folder it had while it was unpacked, so nothing
//! on disk tells a container's writable layer from an image layer. Every
//! snapshot folder is then extracted alone under `_layers/<id>`, its
//! whiteouts recorded, not shown; the containers meta.db names are listed
//! without files.

use super::bbolt::{Bucket, Db, Item, uvarint};
use super::{Dir, Found, Info, Snap, read_db, short};
use crate::fs::overlay::Whiteouts;
use std::collections::HashMap;

const SNAPSHOTTER: &str = "io.containerd.snapshotter.v1.overlayfs";
/// The label libcontainerd puts on the record of a Docker container
/// (moby daemon/internal/libcontainerd/remote/client.go).
const DOCKER_BUNDLE: &str = "com.docker/engine.bundle.path";
/// Parent chains longer than this are treated as loops.
const MAX_CHAIN: usize = 512;

/// meta.db keeps no task state (that lived in /run), so a container's
/// state is unknown offline.
struct Snapshot {
    id: u64,
    kind: u8,
    parent: Option<String>,
}

fn text(v: Option<&[u8]>) -> Option<String> {
    v.map(|b| String::from_utf8_lossy(b).into_owned())
}

pub(super) fn find(root: &Dir) -> (Vec<Found>, Vec<String>) {
    let mut notes = Vec::new();
    let Some(snap_dir) = root.child(SNAPSHOTTER) else {
        notes.push(format!("{}: no overlayfs snapshotter folder; containers using other snapshotters are not read", root.path));
        return (Vec::new(), notes);
    };
    let db_path = format!("{}/metadata.db", snap_dir.path);
    let snapshots = match snap_dir.child("metadata.db") {
        Some(f) => match read_db(&f).and_then(|db| snapshot_table(&db).map(|t| (db.warnings.clone(), t))) {
            Ok((w, t)) => {
                notes.extend(w.into_iter().map(|w| format!("{db_path}: {w}")));
                Ok(t)
            }
            Err(e) => Err(format!("{db_path} is unreadable ({e})")),
        },
        None => Err(format!("{db_path} is missing")),
    };
    let meta = root.child("io.containerd.metadata.v1.bolt/meta.db");
    let mut found_notes = Vec::new();
    let meta_path = format!("{}/io.containerd.metadata.v1.bolt/meta.db", root.path);
    // Why no container record names a snapshot, when meta.db is not read.
    let mut meta_gone = None;
    let mut containers =
        match meta.as_ref().map(|m| read_db(m).and_then(|db| containers(&db, &mut found_notes).map(|c| (db.warnings.clone(), c)))) {
            Some(Ok((w, c))) => {
                notes.extend(w.into_iter().map(|w| format!("{meta_path}: {w}")));
                notes.extend(found_notes.into_iter().map(|n| format!("{meta_path}: {n}")));
                c
            }
            Some(Err(e)) => {
                notes.push(format!("{meta_path}: unreadable ({e})"));
                meta_gone = Some(format!("{meta_path} is unreadable"));
                Vec::new()
            }
            None => {
                meta_gone = Some(format!("{meta_path} is missing"));
                Vec::new()
            }
        };
    let snapshots = match snapshots {
        Ok(s) => s,
        Err(why) => {
            // The overlayfs snapshotter keeps a snapshot's parent only in
            // metadata.db (`v1/snapshots/<key>/parent` and `v1/parents`);
            // `snapshots/<id>` holds `fs` and `work` alone, and Commit
            // changes only the database, so the `work` folder an active
            // snapshot was made with survives in every committed image
            // layer (containerd plugins/snapshots/overlay/overlay.go,
            // prepareDirectory and Commit, at 301026e58). Without the
            // database no folder can be told to be a container's, nor
            // placed in a chain: each is extracted as a layer alone.
            let layers = layers(&snap_dir);
            if !layers.is_empty() {
                notes.push(format!(
                    "{why}: the {} snapshot folder(s) are extracted as layers under containers/_layers/, not as containers: which layers form which container is unknown",
                    layers.len()
                ));
            }
            let mut out: Vec<Found> = containers
                .into_iter()
                .map(|r| {
                    let mut f = Found::new(r.info);
                    f.snapshot = r.snapshot;
                    f.problems.push(format!(
                        "{why}: which snapshot folders hold this container's files is unknown; not shown (its layers are under containers/_layers/)"
                    ));
                    f
                })
                .collect();
            out.extend(layers);
            return (out, notes);
        }
    };
    // Active snapshots no readable container record claims (the record is
    // damaged, or meta.db is gone) are shown as containers without names:
    // each through its parent chain in the snapshotter's own records.
    let claimed: Vec<&String> = containers.iter().filter_map(|r| r.top.as_ref()).collect();
    let mut unclaimed: Vec<String> =
        snapshots.iter().filter(|(n, s)| s.kind == 2 && !claimed.contains(n)).map(|(n, _)| n.clone()).collect();
    unclaimed.sort();
    // Docker's writable snapshots are Docker's containers, named (or not)
    // by `mod.rs` from Docker's own records.
    let (docker, unclaimed): (Vec<String>, Vec<String>) = unclaimed.into_iter().partition(|n| docker_snapshot(&snapshots, n).is_some());
    for name in docker {
        let Some((ns, key)) = docker_snapshot(&snapshots, &name) else { continue };
        containers.push(Record {
            info: Info { runtime: "docker", id: key.clone(), namespace: Some(ns.clone()), ..Info::default() },
            top: Some(name),
            snapshot: Some((ns, key)),
        });
    }
    if !unclaimed.is_empty() {
        let why = meta_gone.unwrap_or_else(|| format!("{meta_path} has no readable container record for them"));
        notes.push(format!(
            "{why}: {} active snapshot(s) are shown as containers named by snapshot (containers/_unnamed_*), each through its parent chain in {db_path}: their names, images and pods are unknown",
            unclaimed.len()
        ));
    }
    let mut unnamed = Vec::new();
    for name in unclaimed {
        // `<namespace>/<n>/<key>`: the namespace is known, the name is not.
        let mut parts = name.splitn(3, '/');
        let namespace = parts.next().filter(|n| !n.is_empty()).map(String::from);
        let folder = format!("_unnamed_{}", name.split('/').map(super::short).collect::<Vec<_>>().join("-"));
        let info = Info { runtime: "containerd", id: name.replace('/', "-"), namespace, ..Info::default() };
        let snapshot = split_name(&name);
        containers.push(Record { info, top: Some(name), snapshot });
        unnamed.push((containers.len() - 1, folder));
    }
    let mut out = Vec::new();
    for (i, r) in containers.into_iter().enumerate() {
        let (mut info, top) = (r.info, r.top);
        let mut f = Found::new(Info::default());
        match &top {
            Some(top) => chain(&snap_dir, &snapshots, top, &mut f, &mut info),
            None => f.problems.push("the container has no snapshot (never started, or not an overlayfs container)".into()),
        }
        f.snapshot = r.snapshot.or_else(|| top.as_deref().and_then(split_name));
        f.folder = unnamed.iter().find(|(j, _)| *j == i).map(|(_, n)| n.clone());
        if info.runtime == "docker" {
            f.folder = Some(format!("_unnamed_{}", short(&info.id)));
        }
        f.info = info;
        out.push(f);
    }
    (out, notes)
}

/// A container record of meta.db: what it says, the name of its writable
/// snapshot in the snapshotter's store, and that snapshot's (namespace, key).
struct Record {
    info: Info,
    top: Option<String>,
    snapshot: Option<Snap>,
}

/// A backend key `<namespace>/<n>/<key>` as (namespace, key).
fn split_name(name: &str) -> Option<Snap> {
    let mut parts = name.splitn(3, '/');
    let ns = parts.next().filter(|n| !n.is_empty())?;
    let _n = parts.next()?;
    let key = parts.next().filter(|k| !k.is_empty())?;
    Some((ns.to_string(), key.to_string()))
}

/// A Docker container's writable snapshot, by the shape Docker gives it
/// (moby daemon/containerd/image_snapshot.go, createLayer): key a 64-hex
/// container id, parent `<id>-init` in the same namespace.
fn docker_snapshot(snaps: &HashMap<String, Snapshot>, name: &str) -> Option<Snap> {
    let (ns, key) = split_name(name)?;
    if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let parent = split_name(snaps.get(name)?.parent.as_deref()?)?;
    (parent.0 == ns && parent.1 == format!("{key}-init")).then_some((ns, key))
}

/// `v1/snapshots/<name>` of the snapshotter's store.
fn snapshot_table(db: &Db) -> std::io::Result<HashMap<String, Snapshot>> {
    let mut out = HashMap::new();
    let Some(b) = db.path(&[b"v1", b"snapshots"])? else { return Ok(out) };
    for (name, item) in db.entries(b)? {
        let Item::Bucket(s) = item else { continue };
        // A damaged record loses that snapshot only: chains through it
        // report it missing.
        let read = || -> std::io::Result<Option<Snapshot>> {
            let id = db.value(s, b"id")?.and_then(uvarint);
            let kind = db.value(s, b"kind")?.and_then(|k| k.first().copied()).unwrap_or(0);
            let parent = text(db.value(s, b"parent")?).filter(|p| !p.is_empty());
            Ok(id.map(|id| Snapshot { id, kind, parent }))
        };
        if let Ok(Some(snap)) = read() {
            out.insert(String::from_utf8_lossy(name).into_owned(), snap);
        }
    }
    Ok(out)
}

/// Every container of every namespace, with its top snapshot's name in
/// the snapshotter's store. A damaged namespace or container record is
/// reported in `notes` and skipped; the others are still read.
fn containers(db: &Db, notes: &mut Vec<String>) -> std::io::Result<Vec<Record>> {
    let mut out = Vec::new();
    let Some(v1) = db.path(&[b"v1"])? else { return Ok(out) };
    for (ns, item) in db.entries(v1)? {
        let Item::Bucket(nsb) = item else { continue };
        let namespace = String::from_utf8_lossy(ns).into_owned();
        let list = db.bucket(nsb, b"containers").and_then(|cs| cs.map(|cs| db.entries(cs)).transpose());
        let list = match list {
            Ok(l) => l.unwrap_or_default(),
            Err(e) => {
                notes.push(format!("meta.db namespace {namespace}: containers unreadable ({e})"));
                continue;
            }
        };
        for (id, item) in list {
            let Item::Bucket(c) = item else { continue };
            let id = String::from_utf8_lossy(id).into_owned();
            match container(db, ns, &namespace, id.clone(), c) {
                Ok(x) => out.push(x),
                Err(e) => notes.push(format!("meta.db container {namespace}/{id}: unreadable ({e}); not shown")),
            }
        }
    }
    Ok(out)
}

fn container(db: &Db, ns: &[u8], namespace: &str, id: String, c: Bucket) -> std::io::Result<Record> {
    let labels = labels(db, c)?;
    let label = |k: &str| labels.get(k).cloned();
    let snapshotter = text(db.value(c, b"snapshotter")?).unwrap_or_default();
    // libcontainerd's record of a Docker container names no snapshot: its
    // writable snapshot is keyed by the container id.
    let docker = labels.contains_key(DOCKER_BUNDLE);
    let key = text(db.value(c, b"snapshotKey")?).filter(|k| !k.is_empty()).or_else(|| docker.then(|| id.clone()));
    // The snapshot key is namespaced in meta.db; its `name` is the key in
    // the snapshotter's own store.
    let top = match &key {
        Some(k) => db
            .path(&[b"v1", ns, b"snapshots", if snapshotter.is_empty() { b"overlayfs" } else { snapshotter.as_bytes() }, k.as_bytes()])?
            .map(|s| db.value(s, b"name"))
            .transpose()?
            .flatten()
            .map(|n| String::from_utf8_lossy(n).into_owned()),
        None => None,
    };
    let snapshot = docker.then(|| (namespace.to_string(), id.clone()));
    let mut info = Info {
        runtime: if docker { "docker" } else { "containerd" },
        // Outside Kubernetes a containerd container's id is its name;
        // a Docker container's name is in Docker's records.
        name: label("io.kubernetes.container.name").or_else(|| (!docker).then(|| id.clone())),
        id,
        image: text(db.value(c, b"image")?).filter(|i| !i.is_empty()),
        pod: label("io.kubernetes.pod.name"),
        pod_namespace: label("io.kubernetes.pod.namespace"),
        namespace: Some(namespace.to_string()),
        ..Info::default()
    };
    if !snapshotter.is_empty() && snapshotter != "overlayfs" {
        info.state = Some(format!("snapshotter {snapshotter} (not read)"));
        return Ok(Record { info, top: None, snapshot });
    }
    Ok(Record { info, top, snapshot })
}

fn labels(db: &Db, c: Bucket) -> std::io::Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    if let Some(l) = db.bucket(c, b"labels")? {
        for (k, v) in db.entries(l)? {
            if let Item::Value(v) = v {
                out.insert(String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned());
            }
        }
    }
    Ok(out)
}

/// The layers of a snapshot and its parents, top first.
fn chain(dir: &Dir, snaps: &HashMap<String, Snapshot>, top: &str, f: &mut Found, info: &mut Info) {
    let mut name = Some(top.to_string());
    let mut seen = Vec::new();
    while let Some(n) = name.take() {
        if seen.contains(&n) || seen.len() >= MAX_CHAIN {
            f.problems.push(format!("snapshot chain loops at {n}; layers below are not shown"));
            break;
        }
        seen.push(n.clone());
        let Some(s) = snaps.get(&n) else {
            f.problems.push(format!("snapshot {n} is missing from the snapshotter's metadata; the layers below it are not shown"));
            break;
        };
        let label = format!("snapshot {}", s.id);
        match dir.child(&format!("snapshots/{}/fs", s.id)) {
            Some(d) if d.is_dir() => f.layers.push(d.layer(label.clone(), Whiteouts::Overlay)),
            _ => f.problems.push(format!("{label}: its folder snapshots/{}/fs is missing; its files are not shown", s.id)),
        }
        info.layers.push(label);
        name = s.parent.clone();
    }
}

/// Without the snapshotter's metadata: every snapshot folder, as a layer
/// alone.
fn layers(dir: &Dir) -> Vec<Found> {
    let Some(snaps) = dir.child("snapshots") else { return Vec::new() };
    let mut ids: Vec<u64> = snaps.names().iter().filter_map(|n| std::str::from_utf8(n).ok()?.parse().ok()).collect();
    ids.sort_unstable();
    ids.into_iter()
        .filter_map(|id| {
            let fs = snaps.child(&format!("{id}/fs")).filter(Dir::is_dir)?;
            Some(Found::layer("containerd", id.to_string(), format!("snapshot {id}"), &fs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A snapshot whose parent is gone: the layers found are shown, and the
    /// gap is reported by name.
    #[test]
    fn a_missing_parent_is_reported_and_the_layers_above_it_kept() {
        let t = tempfile::tempdir().unwrap();
        for id in [3, 7] {
            std::fs::create_dir_all(t.path().join(format!("snapshots/{id}/fs"))).unwrap();
        }
        let fs = Arc::new(crate::fs::hostdir::HostDir::open(t.path()).unwrap());
        let dir = Dir { node: 0, fs, path: "/x".into() };
        let snaps = HashMap::from([
            ("ns/9/top".to_string(), Snapshot { id: 7, kind: 2, parent: Some("ns/5/mid".into()) }),
            ("ns/5/mid".to_string(), Snapshot { id: 3, kind: 3, parent: Some("ns/2/gone".into()) }),
        ]);
        let mut f = Found::new(Info::default());
        let mut info = Info::default();
        chain(&dir, &snaps, "ns/9/top", &mut f, &mut info);
        assert_eq!(info.layers, ["snapshot 7", "snapshot 3"]);
        assert_eq!(f.layers.len(), 2);
        assert_eq!(f.problems.len(), 1);
        assert!(f.problems[0].contains("ns/2/gone") && f.problems[0].contains("missing"), "{:?}", f.problems);
        // A parent chain that loops ends with a report, not a hang.
        let looped = HashMap::from([
            ("a".to_string(), Snapshot { id: 7, kind: 2, parent: Some("b".into()) }),
            ("b".to_string(), Snapshot { id: 3, kind: 3, parent: Some("a".into()) }),
        ]);
        let mut f = Found::new(Info::default());
        chain(&dir, &looped, "a", &mut f, &mut Info::default());
        assert!(f.problems.iter().any(|p| p.contains("loops")), "{:?}", f.problems);
    }

    /// Docker's writable snapshot is told by its name and parent alone: a
    /// 64-hex key over `<key>-init` in the same namespace.
    #[test]
    fn dockers_writable_snapshot_is_recognised_by_its_key_and_init_parent() {
        let id = "ab".repeat(32);
        let snap = |parent: &str| Snapshot { id: 1, kind: 2, parent: Some(parent.to_string()) };
        let snaps = HashMap::from([
            (format!("moby/11/{id}"), snap(&format!("moby/10/{id}-init"))),
            (format!("moby/12/{}", "cd".repeat(32)), snap("moby/8/sha256:00")),
            (format!("other/13/{id}"), snap(&format!("moby/10/{id}-init"))),
            ("moby/14/short".to_string(), snap("moby/10/short-init")),
        ]);
        assert_eq!(docker_snapshot(&snaps, &format!("moby/11/{id}")), Some(("moby".into(), id.clone())));
        for n in [format!("moby/12/{}", "cd".repeat(32)), format!("other/13/{id}"), "moby/14/short".into(), "nothing".into()] {
            assert_eq!(docker_snapshot(&snaps, &n), None, "{n}");
        }
        assert_eq!(split_name("ns/3/a/b"), Some(("ns".into(), "a/b".into())));
        assert_eq!(split_name("ns/3/"), None);
        assert_eq!(split_name("/3/k"), None);
    }

    /// No metadata.db: every snapshot folder (committed image layers keep
    /// their `work` folder too) is a layer alone, and the note says why.
    #[test]
    fn without_metadata_db_every_snapshot_is_a_layer_and_none_a_container() {
        let t = tempfile::tempdir().unwrap();
        for id in [1, 2, 5] {
            std::fs::create_dir_all(t.path().join(format!("{SNAPSHOTTER}/snapshots/{id}/fs"))).unwrap();
            std::fs::create_dir_all(t.path().join(format!("{SNAPSHOTTER}/snapshots/{id}/work"))).unwrap();
        }
        let fs = Arc::new(crate::fs::hostdir::HostDir::open(t.path()).unwrap());
        let (found, notes) = find(&Dir { node: 0, fs, path: "/var/lib/containerd".into() });
        let folders: Vec<_> = found.iter().map(|f| f.folder.clone().unwrap_or_default()).collect();
        assert_eq!(folders, ["_layers/1", "_layers/2", "_layers/5"]);
        assert!(found.iter().all(|f| f.info.kind == super::super::Kind::Layer && f.layers.len() == 1));
        assert_eq!(
            notes,
            [
                "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/metadata.db is missing: the 3 snapshot folder(s) are extracted as layers under containers/_layers/, not as containers: which layers form which container is unknown"
            ]
        );
    }
}
