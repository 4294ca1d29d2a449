//! Containers a host runs, each as a child host whose root is the union
//! view the container saw: its writable layer over its image layers, with
//! whiteouts and opaque directories applied (`fs::overlay`).
//!
//! - `containerd.rs`: containerd's metadata (`meta.db`) and overlayfs
//!   snapshotter (`metadata.db`), both bbolt files (`bbolt.rs`): EKS, GKE,
//!   AKS nodes.
//! - `docker.rs`: Docker's overlay2 layout and `config.v2.json`. With
//!   Docker's containerd image store (Docker 25+, the default for new
//!   installs of Docker 29) a container's layers are containerd's instead:
//!   its writable snapshot, keyed by the container id, in Docker's
//!   namespace (`moby`); [`join_docker`] gives each such config.v2.json the
//!   view `containerd.rs` assembled from that snapshot.
//! - `image.rs`: image tarballs given as evidence (`docker save`, OCI).
//!
//! When a runtime's own records are missing or damaged (a partial copy of
//! `/var/lib/containerd` or `/var/lib/docker`), nothing is guessed: a
//! container is shown only through a union view whose layers come from
//! records on disk (containerd's `metadata.db`, or Docker's `lower` file of
//! a layer with an `-init` sibling); a layer that cannot be placed in such
//! a view is extracted alone as a [`Kind::Layer`] under
//! `containers/_layers/`, its whiteouts and opaque directories recorded in
//! its [`Info`], never shown as files; and a host note says which file was
//! missing and what was done instead.
//!
//! Runtime roots are found where the machine's configuration puts them
//! (`/etc/containerd/config.toml` `root`, `/etc/docker/daemon.json`
//! `data-root`), at the default paths, and at the top of a directory given
//! as evidence (a copied `/var/lib/containerd` or `/var/lib/docker`).

pub mod bbolt;
mod containerd;
mod docker;
pub mod image;

use super::view::{self, MachineView};
use super::{Host, HostVolume, OsFamily, OsInfo};
use crate::fs::overlay::{Layer, Overlay, Whiteouts};
use crate::fs::{FileKind, FileSystem, NodeId, read_small};
use std::sync::Arc;

/// Runtime metadata files are read whole, up to this size.
const MAX_DB: u64 = 512 << 20;

/// A directory of some filesystem: where a runtime keeps its state.
#[derive(Clone)]
pub struct Dir {
    pub fs: Arc<dyn FileSystem>,
    pub node: NodeId,
    /// The path shown in messages (`/var/lib/containerd`).
    pub path: String,
}

impl Dir {
    /// A descendant by relative path, resolved inside this filesystem.
    fn child(&self, rel: &str) -> Option<Dir> {
        let mut node = self.node;
        for c in rel.split('/').filter(|c| !c.is_empty()) {
            node = self.fs.read_dir(node).ok()?.into_iter().find(|e| e.name == c.as_bytes())?.node;
        }
        Some(Dir { fs: self.fs.clone(), node, path: format!("{}/{rel}", self.path) })
    }

    fn is_dir(&self) -> bool {
        self.fs.metadata(self.node).is_ok_and(|m| m.kind() == FileKind::Dir)
    }

    fn read(&self, max: u64) -> std::io::Result<Vec<u8>> {
        read_small(self.fs.as_ref(), self.node, max)
    }

    fn names(&self) -> Vec<Vec<u8>> {
        self.fs.read_dir(self.node).map(|es| es.into_iter().map(|e| e.name).collect()).unwrap_or_default()
    }

    /// A layer of a union view rooted here.
    fn layer(&self, name: String, whiteouts: Whiteouts) -> Layer {
        Layer { fs: self.fs.clone(), root: self.node, name, whiteouts }
    }
}

/// What an entry of `Host::containers` is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A container: its union view, assembled from the runtime's records.
    #[default]
    Container,
    /// One layer folder alone (under `_layers/`), extracted because the
    /// records that would place it in a container are missing: not what
    /// any container saw.
    Layer,
}

/// Whiteouts and opaque directories recorded per layer, at most.
const MAX_MARKERS: usize = 10_000;
/// Entries walked per layer to find them, at most.
const MAX_WALK: usize = 1_000_000;

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Info {
    pub runtime: &'static str,
    pub kind: Kind,
    pub id: String,
    /// Docker's name, or the Kubernetes container name.
    pub name: Option<String>,
    pub image: Option<String>,
    pub pod: Option<String>,
    pub pod_namespace: Option<String>,
    /// containerd's own namespace (`k8s.io`, `moby`, `default`).
    pub namespace: Option<String>,
    pub state: Option<String>,
    /// The union's layers, top first (`snapshot 12`, `overlay2 3f2a…`).
    pub layers: Vec<String>,
    /// A layer's deletions (its 0:0 character devices), by path: recorded,
    /// never extracted as files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub whiteouts: Vec<String>,
    /// A layer's opaque directories (`overlay.opaque=y`), by path.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub opaque: Vec<String>,
}

pub struct Container {
    pub info: Info,
    /// The output folder under `containers/`, `/`-separated:
    /// `_layers/<id>` for a layer (no container's folder has a `/`).
    pub folder: String,
    /// The container as a host (its union view as the OS root, named
    /// volumes at their mount points); None when no view could be built.
    pub host: Option<Host>,
    /// What is missing or could not be read.
    pub problems: Vec<String>,
}

/// A container found by a runtime reader, before it becomes a host.
pub(crate) struct Found {
    pub info: Info,
    pub layers: Vec<Layer>,
    /// (mount point in the container, directory) for named volumes.
    pub volumes: Vec<(String, Dir)>,
    pub problems: Vec<String>,
    /// The output folder when the runtime reader names it (layers,
    /// containers whose name is unknown); else made from `info`.
    pub folder: Option<String>,
    /// containerd: the container's writable snapshot (namespace, key),
    /// whose chain the view was assembled from (or would be).
    pub snapshot: Option<Snap>,
    /// Docker on containerd's image store: the snapshot holding its
    /// layers, taken from containerd's findings by [`join_docker`].
    pub wants: Option<Snap>,
}

/// A snapshot of containerd's: (namespace, key as clients name it).
pub(crate) type Snap = (String, String);

impl Found {
    fn new(info: Info) -> Found {
        Found { info, layers: Vec::new(), volumes: Vec::new(), problems: Vec::new(), folder: None, snapshot: None, wants: None }
    }

    /// One layer folder alone, under `_layers/<id>` (`<id>` shortened),
    /// with its whiteouts and opaque directories recorded.
    fn layer(runtime: &'static str, id: String, label: String, dir: &Dir) -> Found {
        let name = short(&id);
        let mut info = Info { runtime, kind: Kind::Layer, id, layers: vec![label.clone()], ..Info::default() };
        let mut f = Found::new(Info::default());
        if let Some(p) = markers(dir, &mut info) {
            f.problems.push(p);
        }
        f.info = info;
        f.layers.push(dir.layer(label, Whiteouts::Overlay));
        f.folder = Some(format!("_layers/{name}"));
        f
    }
}

/// A 64-hex id's first 12 characters; any other id whole.
fn short(id: &str) -> String {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) { id[..12].to_string() } else { id.to_string() }
}

/// Records a layer folder's whiteouts (0:0 character devices) and opaque
/// directories in `info`, walking its own filesystem (not a union).
/// Returns a problem when the walk or the record was cut short.
fn markers(dir: &Dir, info: &mut Info) -> Option<String> {
    let fs = dir.fs.as_ref();
    let opaque = |node| {
        fs.xattrs(node).is_ok_and(|a| a.iter().any(|(k, v)| (k == b"trusted.overlay.opaque" || k == b"user.overlay.opaque") && v == b"y"))
    };
    let mut stack = vec![(dir.node, String::new(), 0usize)];
    let (mut walked, mut cut) = (0usize, false);
    while let Some((node, path, depth)) = stack.pop() {
        let Ok(entries) = fs.read_dir(node) else { continue };
        for e in entries {
            walked += 1;
            if walked > MAX_WALK {
                cut = true;
                break;
            }
            let p = format!("{path}/{}", crate::util::bytes::escape(&e.name));
            let kind = match e.kind {
                FileKind::Unknown | FileKind::CharDevice => fs.metadata(e.node).ok(),
                _ => None,
            };
            if let Some(m) = kind {
                if m.kind() == FileKind::CharDevice && m.rdev == Some((0, 0)) {
                    if info.whiteouts.len() < MAX_MARKERS {
                        info.whiteouts.push(p);
                    } else {
                        cut = true;
                    }
                    continue;
                }
                if m.kind() != FileKind::Dir {
                    continue;
                }
            } else if e.kind != FileKind::Dir {
                continue;
            }
            if opaque(e.node) {
                if info.opaque.len() < MAX_MARKERS {
                    info.opaque.push(p.clone());
                } else {
                    cut = true;
                }
            }
            if depth < 256 {
                stack.push((e.node, p, depth + 1));
            }
        }
        if walked > MAX_WALK {
            break;
        }
    }
    info.whiteouts.sort();
    info.opaque.sort();
    cut.then(|| {
        format!(
            "its whiteouts and opaque directories are recorded only in part ({} and {}; at most {MAX_MARKERS} each, {MAX_WALK} entries walked)",
            info.whiteouts.len(),
            info.opaque.len()
        )
    })
}

/// `shop_web-7d9f8_nginx` for a Kubernetes container, `api_3f2a1b4c5d6e`
/// for a named Docker one, `default_legacy-tool` otherwise.
fn folder(i: &Info) -> String {
    match (&i.pod_namespace, &i.pod, &i.name) {
        (Some(ns), Some(pod), Some(name)) => format!("{ns}_{pod}_{name}"),
        _ if i.runtime == "docker" => format!("{}_{}", i.name.as_deref().unwrap_or("unnamed"), short(&i.id)),
        _ => format!("{}_{}", i.namespace.as_deref().unwrap_or("default"), short(&i.id)),
    }
}

/// Every container of the host's runtimes. Returns the containers and
/// findings for the run's warnings.
pub fn find(host: &Host) -> (Vec<Container>, Vec<String>) {
    let mut found = Vec::new();
    let mut notes = Vec::new();
    let mut seen: Vec<(usize, NodeId)> = Vec::new();
    let docker_ns = view::docker_containerd_namespace(&MachineView::new(host));
    for (runtime, dir) in roots(host) {
        // One state directory reached twice (config and default path).
        let key = (Arc::as_ptr(&dir.fs) as *const () as usize, dir.node);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let (mut f, mut n) = match runtime {
            "containerd" => containerd::find(&dir),
            _ => docker::find(&dir, &docker_ns),
        };
        found.append(&mut f);
        notes.append(&mut n);
    }
    let found = join_docker(found, &mut notes);
    let mut out: Vec<Container> = Vec::new();
    for mut f in found {
        let mut name = f.folder.take().unwrap_or_else(|| folder(&f.info));
        if out.iter().any(|c| c.folder == name) {
            name = format!("{name}_{}", f.info.id);
        }
        out.push(build(f, name));
    }
    (out, notes)
}

/// Docker with the containerd image store: each container whose
/// config.v2.json wants a snapshot takes the view containerd's reader
/// assembled from it (the writable snapshot is keyed by the container id:
/// moby daemon/containerd/image_snapshot.go, createLayer), and libcontainerd's
/// record of it (no snapshot key: Docker mounts the rootfs itself) is folded
/// in. A Docker snapshot or record no config.v2.json claims stays a
/// nameless container (`_unnamed_<id12>`), and a note says so.
fn join_docker(found: Vec<Found>, notes: &mut Vec<String>) -> Vec<Found> {
    let (wanting, rest): (Vec<Found>, Vec<Found>) = found.into_iter().partition(|f| f.wants.is_some());
    let mut rest: Vec<Option<Found>> = rest.into_iter().map(Some).collect();
    let mut out = Vec::new();
    for mut d in wanting {
        let Some((ns, key)) = d.wants.clone() else { continue };
        let mut hits: Vec<Found> = rest
            .iter_mut()
            .filter(|r| r.as_ref().is_some_and(|r| r.snapshot.as_ref().is_some_and(|(n, k)| *n == ns && *k == key)))
            .filter_map(Option::take)
            .collect();
        // The writable snapshot's view first, then libcontainerd's record
        // (which claims that snapshot itself when meta.db is read).
        hits.sort_by_key(|h| h.layers.is_empty());
        if hits.is_empty() {
            d.problems.push(format!(
                "its layers are containerd's snapshot {key} (namespace {ns}), which no readable snapshotter record names (see the notes): not shown"
            ));
        }
        for (i, h) in hits.into_iter().enumerate() {
            if i == 0 {
                d.layers = h.layers;
                d.info.layers = h.info.layers;
                d.info.namespace = Some(ns.clone());
            }
            for p in h.problems {
                if !d.problems.contains(&p) {
                    d.problems.push(p);
                }
            }
        }
        out.push(d);
    }
    let orphans: Vec<&str> =
        rest.iter().flatten().filter(|f| f.info.runtime == "docker" && f.snapshot.is_some()).map(|f| f.info.id.as_str()).collect();
    if !orphans.is_empty() {
        notes.push(format!(
            "{} Docker container(s) in containerd's image store have no config.v2.json here ({}): shown as containers/_unnamed_<id12> through their snapshot chains; their names, states and named volumes are unknown",
            orphans.len(),
            orphans.iter().map(|i| short(i)).collect::<Vec<_>>().join(", ")
        ));
    }
    out.extend(rest.into_iter().flatten());
    out
}

/// Where runtimes keep state on this host.
fn roots(host: &Host) -> Vec<(&'static str, Dir)> {
    let view = MachineView::new(host);
    let mut out = Vec::new();
    let mut add = |runtime, path: String| {
        if let Some((fs, node)) = view.resolve(&path) {
            let d = Dir { fs, node, path };
            if d.is_dir() {
                out.push((runtime, d));
            }
        }
    };
    for p in view::containerd_root(&view).into_iter().chain(["/var/lib/containerd".to_string()]) {
        add("containerd", p);
    }
    for p in view::docker_data_root(&view).into_iter().chain(["/var/lib/docker".to_string()]) {
        // The containerd dockerd starts itself when the machine runs none
        // keeps its root here (moby daemon/command/daemon.go, containerdRootDir).
        add("containerd", format!("{p}/containerd/daemon"));
        add("docker", p);
    }
    // A directory given as evidence may itself be a runtime's state.
    for v in host.volumes.iter().filter(|v| v.volume.is_none()) {
        let Some(fs) = v.fs.clone() else { continue };
        let d = Dir { node: fs.root(), fs, path: String::new() };
        let names = d.names();
        let has = |n: &[u8]| names.iter().any(|x| x == n);
        if has(b"io.containerd.metadata.v1.bolt") {
            out.push(("containerd", d));
        } else if has(b"containers") && (has(b"overlay2") || has(b"containerd")) {
            if let Some(c) = d.child("containerd/daemon").filter(Dir::is_dir) {
                out.push(("containerd", c));
            }
            out.push(("docker", d));
        }
    }
    out
}

/// Turns a found container into a child host.
fn build(f: Found, folder: String) -> Container {
    let mut problems = f.problems;
    if f.layers.is_empty() {
        if problems.is_empty() {
            problems.push("no layer of this container could be found".into());
        }
        return Container { info: f.info, folder, host: None, problems };
    }
    let root: Arc<dyn FileSystem> = match Overlay::new(f.layers) {
        Ok(o) => Arc::new(o),
        Err(e) => {
            problems.push(format!("its union view could not be built: {e}"));
            return Container { info: f.info, folder, host: None, problems };
        }
    };
    let mut volumes = vec![container_volume(root.clone(), "/", format!("container:{folder}"))];
    for (at, dir) in f.volumes {
        match Overlay::new(vec![dir.layer(format!("volume {}", dir.path), Whiteouts::Oci)]) {
            Ok(v) => volumes.push(container_volume(Arc::new(v), &at, format!("container:{folder}:{at}"))),
            Err(e) => problems.push(format!("volume at {at}: {e}")),
        }
    }
    let homes = super::linux::homes(root.as_ref());
    volumes[0].homes = homes;
    let pretty = super::linux::pretty_name(root.as_ref());
    let host = Host {
        name: folder.clone(),
        name_source: match f.info.kind {
            Kind::Container => format!("{} container", f.info.runtime),
            Kind::Layer => format!("{} layer alone (not a container)", f.info.runtime),
        },
        os: OsInfo { family: OsFamily::Linux, pretty },
        volumes,
        failed: Vec::new(),
        warnings: Vec::new(),
        containers: Vec::new(),
    };
    Container { info: f.info, folder, host: Some(host), problems }
}

fn container_volume(fs: Arc<dyn FileSystem>, at: &str, name: String) -> HostVolume {
    let root = at == "/";
    HostVolume {
        volume: None,
        name: Some(name),
        fs: Some(fs),
        problem: None,
        unreadable: false,
        unsupported: None,
        is_os_root: root,
        mount_point: (!root).then(|| at.to_string()),
        out_prefix: at.split('/').filter(|c| !c.is_empty()).map(String::from).collect(),
        homes: Vec::new(),
        subvol: None,
    }
}

/// Reads a runtime database file, bounded.
fn read_db(d: &Dir) -> std::io::Result<bbolt::Db> {
    bbolt::Db::parse(d.read(MAX_DB)?)
}

/// Resolves a path inside a layer directory's filesystem (for symlinks
/// Docker keeps under `overlay2/l/`), never on the analysis host.
fn link_target(d: &Dir) -> Option<Vec<u8>> {
    d.fs.read_link(d.node).ok()
}

/// An image tarball as a host: its union view as the OS root.
pub fn image_host(img: &image::Image) -> Host {
    let mut root = container_volume(img.root.clone(), "/", format!("image:{}", img.reference));
    root.homes = super::linux::homes(img.root.as_ref());
    Host {
        name: img.reference.replace(['/', ':', '@'], "_"),
        name_source: "image reference".into(),
        os: OsInfo { family: OsFamily::Linux, pretty: super::linux::pretty_name(img.root.as_ref()) },
        volumes: vec![root],
        failed: Vec::new(),
        warnings: img.warnings.clone(),
        containers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config.v2.json that wants a snapshot takes the view containerd's
    /// reader made of it and folds libcontainerd's record in; a Docker
    /// snapshot no config claims stays nameless, with a note; a config
    /// whose snapshot is nowhere says so.
    #[test]
    fn docker_configs_take_their_containerd_views() {
        let t = tempfile::tempdir().unwrap();
        let fs: Arc<dyn FileSystem> = Arc::new(crate::fs::hostdir::HostDir::open(t.path()).unwrap());
        let dir = Dir { node: fs.root(), fs, path: "/x".into() };
        let snap = |k: &str| Some(("moby".to_string(), k.to_string()));
        let docker =
            |id: &str, name: Option<&str>| Info { runtime: "docker", id: id.into(), name: name.map(String::from), ..Info::default() };
        let mut config = Found::new(docker("aaa", Some("web")));
        config.wants = snap("aaa");
        let mut lost = Found::new(docker("ccc", Some("gone")));
        lost.wants = snap("ccc");
        let mut view = Found::new(docker("aaa", None));
        view.snapshot = snap("aaa");
        view.layers.push(dir.layer("snapshot 18".into(), Whiteouts::Overlay));
        view.info.layers = vec!["snapshot 18".into(), "snapshot 17".into()];
        let mut record = Found::new(docker("aaa", None));
        record.snapshot = snap("aaa");
        record.problems.push("from the record".into());
        let mut orphan = Found::new(docker("bbb", None));
        orphan.snapshot = snap("bbb");
        orphan.layers.push(dir.layer("snapshot 20".into(), Whiteouts::Overlay));
        let other = Found::new(Info { runtime: "containerd", id: "k".into(), ..Info::default() });
        let mut notes = Vec::new();
        let out = join_docker(vec![record, view, config, orphan, other, lost], &mut notes);
        let ids: Vec<(&str, Option<&str>)> = out.iter().map(|f| (f.info.id.as_str(), f.info.name.as_deref())).collect();
        assert_eq!(ids, [("aaa", Some("web")), ("ccc", Some("gone")), ("bbb", None), ("k", None)]);
        assert_eq!(out[0].layers.len(), 1);
        assert_eq!(out[0].info.layers, ["snapshot 18", "snapshot 17"]);
        assert_eq!(out[0].info.namespace.as_deref(), Some("moby"));
        assert_eq!(out[0].problems, ["from the record"]);
        assert!(out[1].layers.is_empty() && out[1].problems[0].contains("no readable snapshotter record names"), "{:?}", out[1].problems);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("1 Docker container(s) in containerd's image store have no config.v2.json here (bbb)"), "{notes:?}");
    }
}
