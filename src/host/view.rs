//! The machine's files as the machine saw them: a path goes to the volume
//! mounted there (the longest mount point that is a prefix), symlinks
//! resolved inside that volume. What the host layer itself reads of the
//! configuration (where Docker and containerd keep their data) is here too.

use super::Host;
use crate::fs::{FileKind, FileSystem, NodeId, lookup, read_small};
use std::sync::Arc;

/// Reads files of the machine, across its mounted volumes.
pub struct MachineView<'a> {
    host: &'a Host,
}

impl<'a> MachineView<'a> {
    pub fn new(host: &'a Host) -> Self {
        MachineView { host }
    }

    /// The volume whose mount point is the longest prefix of `path`.
    fn locate(&self, path: &str) -> Option<(&'a dyn FileSystem, String)> {
        self.locate_arc(path).map(|(fs, rel)| (fs.as_ref(), rel))
    }

    fn locate_arc(&self, path: &str) -> Option<(&'a Arc<dyn FileSystem>, String)> {
        let mut best: Option<(&Arc<dyn FileSystem>, usize)> = None;
        for v in &self.host.volumes {
            let Some(fs) = v.fs.as_ref() else { continue };
            let mount = if v.is_os_root {
                "/"
            } else if let Some(m) = &v.mount_point {
                m.as_str()
            } else {
                continue;
            };
            let m = mount.trim_end_matches('/');
            let under = path == m || path.starts_with(&format!("{m}/")) || m.is_empty();
            if under && best.is_none_or(|(_, l)| m.len() > l) {
                best = Some((fs, m.len()));
            }
        }
        best.map(|(fs, l)| (fs, path[l..].to_string()))
    }

    /// A path of the machine as (the volume's filesystem, node), symlinks
    /// resolved inside that volume.
    pub fn resolve(&self, path: &str) -> Option<(Arc<dyn FileSystem>, NodeId)> {
        let (fs, rel) = self.locate_arc(path)?;
        let node = lookup(fs.as_ref(), rel.as_bytes()).ok()??;
        Some((fs.clone(), node))
    }

    pub fn read(&self, path: &str) -> Option<String> {
        let (fs, rel) = self.locate(path)?;
        let node = lookup(fs, rel.as_bytes()).ok()??;
        read_small(fs, node, 4 << 20).ok().map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Names in a directory (`/etc/nginx/conf.d`), for include globs.
    pub fn list(&self, dir: &str) -> Vec<String> {
        let Some((fs, rel)) = self.locate(dir) else { return Vec::new() };
        let Some(node): Option<NodeId> = lookup(fs, rel.as_bytes()).ok().flatten() else { return Vec::new() };
        fs.read_dir(node)
            .map(|es| es.into_iter().filter(|e| e.kind != FileKind::Dir).map(|e| String::from_utf8_lossy(&e.name).into_owned()).collect())
            .unwrap_or_default()
    }
}

/// Docker's `data-root` (or the older `graph`) from /etc/docker/daemon.json.
pub fn docker_data_root(view: &MachineView) -> Option<String> {
    let j = daemon_json(view)?;
    let root = j["data-root"].as_str().or(j["graph"].as_str())?;
    root.starts_with('/').then(|| root.trim_end_matches('/').to_string())
}

/// The containerd namespace Docker keeps its images and containers in
/// (`containerd-namespace` in /etc/docker/daemon.json), else `moby`.
pub fn docker_containerd_namespace(view: &MachineView) -> String {
    daemon_json(view)
        .and_then(|j| j["containerd-namespace"].as_str().filter(|n| !n.is_empty()).map(String::from))
        .unwrap_or_else(|| "moby".to_string())
}

fn daemon_json(view: &MachineView) -> Option<serde_json::Value> {
    serde_json::from_str(&view.read("/etc/docker/daemon.json")?).ok()
}

/// containerd's `root` from /etc/containerd/config.toml.
pub fn containerd_root(view: &MachineView) -> Option<String> {
    let text = view.read("/etc/containerd/config.toml")?;
    let v: toml::Value = toml::from_str(&text).ok()?;
    let root = v.get("root")?.as_str()?;
    root.starts_with('/').then(|| root.trim_end_matches('/').to_string())
}
