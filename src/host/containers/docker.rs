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

use super::{Dir, Found, Info, link_target};
use crate::fs::overlay::Whiteouts;

/// config.v2.json is bounded (real ones are a few KiB).
const MAX_CONFIG: u64 = 16 << 20;
const MAX_LOWER: usize = 500;

pub(super) fn find(root: &Dir) -> (Vec<Found>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let Some(containers) = root.child("containers") else { return (out, notes) };
    for id in containers.names() {
        let id = String::from_utf8_lossy(&id).into_owned();
        let Some(cfg) = containers.child(&format!("{id}/config.v2.json")) else { continue };
        let json = match cfg
            .read(MAX_CONFIG)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string()))
        {
            Ok(j) => j,
            Err(e) => {
                notes.push(format!("{}: unreadable ({e}); container {id} is not shown", cfg.path));
                continue;
            }
        };
        out.push(container(root, &id, &json));
    }
    (out, notes)
}

fn container(root: &Dir, id: &str, j: &serde_json::Value) -> Found {
    let s = |v: &serde_json::Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
    let label = |k: &str| s(&j["Config"]["Labels"][k]);
    let state = state_string(&j["State"]);
    let mut f = Found {
        info: Info {
            runtime: "docker",
            id: id.to_string(),
            name: label("io.kubernetes.container.name").or_else(|| s(&j["Name"]).map(|n| n.trim_start_matches('/').to_string())),
            image: s(&j["Config"]["Image"]).or_else(|| s(&j["Image"])),
            pod: label("io.kubernetes.pod.name"),
            pod_namespace: label("io.kubernetes.pod.namespace"),
            namespace: None,
            state: Some(state.into()),
            layers: Vec::new(),
        },
        layers: Vec::new(),
        volumes: Vec::new(),
        problems: Vec::new(),
    };
    let driver = s(&j["Driver"]).unwrap_or_else(|| "overlay2".into());
    if driver != "overlay2" {
        f.problems.push(format!("storage driver {driver} is not read (only overlay2)"));
        return f;
    }
    let mount_id = root
        .child(&format!("image/overlay2/layerdb/mounts/{id}/mount-id"))
        .and_then(|m| m.read(4096).ok())
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|m| !m.is_empty() && !m.contains('/'));
    let Some(mount_id) = mount_id else {
        f.problems.push(format!("image/overlay2/layerdb/mounts/{id}/mount-id is missing: the container's layers are unknown"));
        return f;
    };
    layers(root, &mount_id, &mut f);
    volumes(root, j, &mut f);
    f
}

/// The writable layer and the layers its `lower` file names.
fn layers(root: &Dir, mount_id: &str, f: &mut Found) {
    let Some(top) = root.child(&format!("overlay2/{mount_id}")) else {
        f.problems.push(format!("overlay2/{mount_id} is missing: the container's layers are not shown"));
        return;
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
    for id in ids {
        let short = &id[..id.len().min(12)];
        let label = format!("overlay2 {short}");
        match root.child(&format!("overlay2/{id}/diff")) {
            Some(d) if d.is_dir() => f.layers.push(d.layer(label.clone(), Whiteouts::Overlay)),
            _ => f.problems.push(format!("overlay2/{id}/diff is missing; that layer's files are not shown")),
        }
        f.info.layers.push(label);
    }
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
