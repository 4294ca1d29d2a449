//! Docker: container logs (json-file driver) under the default data root
//! and the `data-root` of /etc/docker/daemon.json.

use crate::host::view::{MachineView, docker_data_root};
use crate::targets::Target;

pub fn target(view: &MachineView) -> Option<Target> {
    let mut docker = vec!["/var/lib/docker/containers/*/*-json.log*".to_string()];
    if let Some(root) = docker_data_root(view) {
        docker.push(format!("{}/containers/*/*-json.log*", globset::escape(root.trim_end_matches('/'))));
    }
    super::target("config:docker", "Docker container logs (json-file driver), in data-root from /etc/docker/daemon.json", docker)
}
