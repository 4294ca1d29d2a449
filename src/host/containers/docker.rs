//! Docker (overlay2 storage driver), from its documented on-disk layout:
//!
//! - `containers/<id>/config.v2.json`: `ID`, `Name` (`/api`), `Config.Image`,
//!   `Config.Labels`, `State`, `Driver`, `MountPoints` (named volumes:
//!   `volumes/<name>/_data`, placed at their destination);
//! - `image/overlay2/layerdb/mounts/<id>/mount-id`: the container's layer
//!   folder `overlay2/<mount-id>`, whose `diff` is the writable layer and
//!   whose `lower` lists the layers below as `l/<short>:l/<short>…`;
//! - `overlay2/l/<short>`: a symlink `../<layer-id>/diff`, read as text
//!   inside the image, never followed on the analysis host.
//!
//! With Docker's containerd image store (`Driver` a containerd snapshotter,
//! `overlayfs`), the layers are containerd's: the container wants its
//! writable snapshot, keyed by its id, in Docker's containerd namespace
//! ([`Found::wants`]); `mod.rs` takes the view from containerd's findings.
//! Named volumes stay in Docker's `volumes/`.
//!
//! Without those records (a partial copy: `layerdb/mounts` or a
//! `config.v2.json` missing), containers are recovered from `overlay2`
//! alone: Docker makes a container's writable layer `overlay2/<X>` together
//! with `overlay2/<X>-init`, and `X/lower` names the init layer and the
//! image layers, so each unclaimed `<X>` with an `-init` sibling is shown
//! through that union view as `_unnamed_<X12>` (its name, image, state and
//! named volumes are unknown; its container id when `layerdb/mounts` still
//! names it). Any other layer no container uses is then extracted alone
//! under `_layers/<X12>`: it is an image layer, or the writable layer of a
//! container whose `-init` folder was not copied, and nothing on disk tells
//! which; it is never shown as a container.

use super::{Dir, Found, Info, link_target};
use crate::fs::overlay::Whiteouts;
use std::collections::{HashMap, HashSet};

/// config.v2.json is bounded (real ones are a few KiB).
const MAX_CONFIG: u64 = 16 << 20;
const MAX_LOWER: usize = 500;

/// `ns`: the containerd namespace of Docker's containerd image store.
pub(super) fn find(root: &Dir, ns: &str) -> (Vec<Found>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    // overlay2 folders some assembled container uses.
    let mut claimed: HashSet<String> = HashSet::new();
    // Containers whose config.v2.json names no layer (their mount-id is missing).
    let mut untied: Vec<String> = Vec::new();
    let mut configs: HashSet<String> = HashSet::new();
    if let Some(containers) = root.child("containers") {
        for id in containers.names() {
            let id = String::from_utf8_lossy(&id).into_owned();
            let Some(cfg) = containers.child(&format!("{id}/config.v2.json")) else { continue };
            configs.insert(id.clone());
            let json = match cfg
                .read(MAX_CONFIG)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string()))
            {
                Ok(j) => j,
                Err(e) => {
                    notes.push(format!("{}: unreadable ({e}); container {id} is not shown by name", cfg.path));
                    configs.remove(&id);
                    continue;
                }
            };
            let (f, ids) = container(root, &id, &json, ns);
            match ids {
                Ids::Known(ids) => claimed.extend(ids),
                Ids::Untied => untied.push(f.info.name.clone().unwrap_or_else(|| super::short(&id))),
                // Not in overlay2: no overlay2 layer can be its.
                Ids::OtherDriver => {
                    configs.remove(&id);
                }
            }
            out.push(f);
        }
    }
    let (mut recovered, layers) = recover(root, &mut claimed, &configs);
    let mounts = format!("{}/image/overlay2/layerdb/mounts", root.path);
    // The highest folder of layerdb/mounts that is missing, if any.
    let gone = ["image", "image/overlay2", "image/overlay2/layerdb", "image/overlay2/layerdb/mounts"]
        .into_iter()
        .find(|p| root.child(p).is_none());
    if !recovered.is_empty() {
        let why = if let Some(g) = gone {
            format!("{}/{g} is missing", root.path)
        } else {
            format!("{}/containers/<id>/config.v2.json or {mounts}/<id>/mount-id is missing", root.path)
        };
        let mut n = format!(
            "{why}: {} container(s) are assembled from overlay2 alone (a layer with an -init sibling, over the layers its lower file names) and shown as containers/_unnamed_*: their names, images, states and named volumes are unknown",
            recovered.len()
        );
        if !untied.is_empty() {
            n += &format!("; which of them belongs to the config.v2.json of {} is unknown", untied.join(", "));
        }
        notes.push(n);
    }
    if !layers.is_empty() {
        notes.push(format!(
            "{}/overlay2: {} layer(s) belong to no container that could be assembled; extracted as layers under containers/_layers/, not as containers (image layers, or a container's writable layer whose -init folder is missing: which is unknown)",
            root.path,
            layers.len()
        ));
    }
    out.append(&mut recovered);
    out.extend(layers);
    (out, notes)
}

/// Containers no record ties to their layers, recovered from overlay2
/// (`<X>` with an `<X>-init` sibling, through `X/lower`), and, when any
/// record was missing, every layer still unclaimed, alone.
fn recover(root: &Dir, claimed: &mut HashSet<String>, configs: &HashSet<String>) -> (Vec<Found>, Vec<Found>) {
    let Some(ov) = root.child("overlay2") else { return (Vec::new(), Vec::new()) };
    let mut names: Vec<String> = ov.names().into_iter().filter_map(|n| String::from_utf8(n).ok()).collect();
    names.sort();
    let all: HashSet<&String> = names.iter().collect();
    // The container ids layerdb/mounts still gives for a mount id.
    let mut by_mount: HashMap<String, String> = HashMap::new();
    if let Some(m) = root.child("image/overlay2/layerdb/mounts") {
        for cid in m.names() {
            let cid = String::from_utf8_lossy(&cid).into_owned();
            if let Some(b) = m.child(&format!("{cid}/mount-id")).and_then(|f| f.read(4096).ok()) {
                by_mount.insert(String::from_utf8_lossy(&b).trim().to_string(), cid);
            }
        }
    }
    let mut out = Vec::new();
    let tops: Vec<&String> = names
        .iter()
        .filter(|x| *x != "l" && !x.ends_with("-init") && !claimed.contains(*x) && all.contains(&format!("{x}-init")))
        .collect();
    for x in tops {
        let cid = by_mount.get(x);
        let mut f = Found::new(Info { runtime: "docker", id: cid.cloned().unwrap_or_else(|| x.clone()), ..Info::default() });
        f.folder = Some(format!("_unnamed_{}", super::short(cid.unwrap_or(x))));
        if root.child(&format!("overlay2/{x}/lower")).is_none() {
            f.problems.push(format!("overlay2/{x}/lower is missing: shown without its init and image layers"));
        }
        if let Some(cid) = cid.filter(|c| !configs.contains(*c)) {
            f.problems.push(format!("containers/{cid}/config.v2.json is missing: its name, image and state are unknown"));
        }
        claimed.extend(layers(root, x, &mut f));
        out.push(f);
    }
    // Unclaimed layers are image layers when every record was there; when
    // some was missing, a container's writes may be among them.
    let complete =
        out.is_empty() && by_mount.values().all(|c| configs.contains(c)) && configs.iter().all(|c| by_mount.values().any(|v| v == c));
    if complete {
        return (out, Vec::new());
    }
    let mut alone = Vec::new();
    for x in names.iter().filter(|x| *x != "l" && !claimed.contains(*x)) {
        if let Some(d) = root.child(&format!("overlay2/{x}/diff")).filter(Dir::is_dir) {
            alone.push(Found::layer("docker", x.clone(), format!("overlay2 {}", &x[..x.len().min(12)]), &d));
        }
    }
    (out, alone)
}

/// Which overlay2 folders a container's record ties it to.
enum Ids {
    /// The folders its view uses (the `-init` one among them).
    Known(Vec<String>),
    /// Its `mount-id` is missing: its layers are unknown.
    Untied,
    /// Not an overlay2 container.
    OtherDriver,
}

/// A container from its config.v2.json, and the overlay2 folders its view
/// uses.
fn container(root: &Dir, id: &str, j: &serde_json::Value, ns: &str) -> (Found, Ids) {
    let s = |v: &serde_json::Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
    let label = |k: &str| s(&j["Config"]["Labels"][k]);
    let state = state_string(&j["State"]);
    let mut f = Found::new(Info {
        runtime: "docker",
        id: id.to_string(),
        name: label("io.kubernetes.container.name").or_else(|| s(&j["Name"]).map(|n| n.trim_start_matches('/').to_string())),
        image: s(&j["Config"]["Image"]).or_else(|| s(&j["Image"])),
        pod: label("io.kubernetes.pod.name"),
        pod_namespace: label("io.kubernetes.pod.namespace"),
        state: Some(state.into()),
        ..Info::default()
    });
    let driver = s(&j["Driver"]).unwrap_or_else(|| "overlay2".into());
    if driver == "overlayfs" {
        // The containerd image store: Docker's StorageDriver() is the
        // snapshotter (moby daemon/container.go, newBaseContainer).
        f.wants = Some((ns.to_string(), id.to_string()));
        volumes(root, j, &mut f);
        return (f, Ids::OtherDriver);
    }
    if driver != "overlay2" {
        f.problems.push(format!("storage driver {driver} is not read (only overlay2, and containerd's overlayfs snapshotter)"));
        return (f, Ids::OtherDriver);
    }
    let mount_id = root
        .child(&format!("image/overlay2/layerdb/mounts/{id}/mount-id"))
        .and_then(|m| m.read(4096).ok())
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|m| !m.is_empty() && !m.contains('/'));
    let Some(mount_id) = mount_id else {
        f.problems.push(format!(
            "image/overlay2/layerdb/mounts/{id}/mount-id is missing: the container's layers are unknown; not shown by name (its files may be in a containers/_unnamed_* view)"
        ));
        return (f, Ids::Untied);
    };
    let ids = layers(root, &mount_id, &mut f);
    volumes(root, j, &mut f);
    (f, Ids::Known(ids))
}

/// The writable layer and the layers its `lower` file names; returns the
/// overlay2 folders named (the `-init` one among them).
fn layers(root: &Dir, mount_id: &str, f: &mut Found) -> Vec<String> {
    let Some(top) = root.child(&format!("overlay2/{mount_id}")) else {
        f.problems.push(format!("overlay2/{mount_id} is missing: the container's layers are not shown"));
        return Vec::new();
    };
    let mut ids = vec![mount_id.to_string()];
    if let Some(lower) = top.child("lower").and_then(|l| l.read(1 << 20).ok()) {
        for short in String::from_utf8_lossy(&lower).trim().split(':').filter(|s| !s.is_empty()).take(MAX_LOWER) {
            // `l/<short>` → `../<id>/diff`: the id is the link's middle.
            let target = root.child(&format!("overlay2/{short}")).and_then(|l| link_target(&l));
            let id = target.as_deref().and_then(|t| {
                let t = String::from_utf8_lossy(t).into_owned();
                let id = t.strip_prefix("../")?.strip_suffix("/diff")?.to_string();
                (!id.is_empty() && !id.contains('/')).then_some(id)
            });
            match id {
                Some(id) => ids.push(id),
                None => f.problems.push(format!("overlay2/{short}: not a link to a layer; that layer is not shown")),
            }
        }
    }
    for id in &ids {
        let short = &id[..id.len().min(12)];
        let label = format!("overlay2 {short}");
        match root.child(&format!("overlay2/{id}/diff")) {
            Some(d) if d.is_dir() => f.layers.push(d.layer(label.clone(), Whiteouts::Overlay)),
            _ => f.problems.push(format!("overlay2/{id}/diff is missing; that layer's files are not shown")),
        }
        f.info.layers.push(label);
    }
    ids
}

/// Named volumes (`volumes/<name>/_data`) at their mount points.
fn volumes(root: &Dir, j: &serde_json::Value, f: &mut Found) {
    let Some(mounts) = j["MountPoints"].as_object() else { return };
    for (dest, m) in mounts {
        let Some(name) = m["Name"].as_str().filter(|n| !n.is_empty() && !n.contains('/')) else { continue };
        if m["Type"].as_str().is_some_and(|t| t != "volume") {
            continue;
        }
        match root.child(&format!("volumes/{name}/_data")) {
            Some(d) if d.is_dir() => f.volumes.push((dest.clone(), d)),
            _ => f.problems.push(format!("volume {name} (at {dest}) is not in volumes/{name}/_data")),
        }
    }
}

/// Docker's own state word (`docker ps`), from the flags config.v2.json
/// keeps: the same order as its `State.StateString`.
fn state_string(st: &serde_json::Value) -> &'static str {
    let flag = |k: &str| st[k].as_bool() == Some(true);
    if flag("Running") {
        if flag("Paused") {
            "paused"
        } else if flag("Restarting") {
            "restarting"
        } else {
            "running"
        }
    } else if flag("RemovalInProgress") {
        "removing"
    } else if flag("Dead") {
        "dead"
    } else if st["StartedAt"].as_str().is_none_or(|t| t.starts_with("0001-01-01")) {
        "created"
    } else {
        "exited"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::containers::Kind;
    use std::sync::Arc;

    fn dir(t: &std::path::Path) -> Dir {
        let fs = Arc::new(crate::fs::hostdir::HostDir::open(t).unwrap());
        Dir { node: 0, fs, path: "/var/lib/docker".into() }
    }

    /// No records at all: the layer with an -init sibling is a container
    /// through its lower file; a layer nothing uses is a layer alone.
    #[test]
    fn without_records_a_container_is_rebuilt_from_overlay2_and_the_rest_are_layers() {
        let t = tempfile::tempdir().unwrap();
        let o = t.path().join("overlay2");
        for d in ["top/diff", "top-init/diff", "base/diff", "stray/diff", "l"] {
            std::fs::create_dir_all(o.join(d)).unwrap();
        }
        std::fs::write(o.join("top/lower"), "l/INIT:l/BASE").unwrap();
        std::os::unix::fs::symlink("../top-init/diff", o.join("l/INIT")).unwrap();
        std::os::unix::fs::symlink("../base/diff", o.join("l/BASE")).unwrap();
        let (found, notes) = find(&dir(t.path()), "moby");
        let c: Vec<_> = found.iter().filter(|f| f.info.kind == Kind::Container).collect();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].folder.as_deref(), Some("_unnamed_top"));
        assert_eq!(c[0].info.layers, ["overlay2 top", "overlay2 top-init", "overlay2 base"]);
        assert_eq!(c[0].info.name, None);
        let l: Vec<_> = found.iter().filter(|f| f.info.kind == Kind::Layer).map(|f| f.folder.clone().unwrap()).collect();
        assert_eq!(l, ["_layers/stray"]);
        let notes = notes.join("\n");
        assert!(notes.contains("/var/lib/docker/image is missing: 1 container(s) are assembled from overlay2 alone"), "{notes}");
        assert!(notes.contains("1 layer(s) belong to no container"), "{notes}");
    }
}
