//! Config-aware targets: where this machine's configuration put its logs
//! and histories, beyond the default paths. Each finding becomes a target
//! named for how it was found (`config:nginx`, `config:HISTFILE`), so the
//! manifest says why a file was collected; one file per source:
//!
//! - `histfile.rs`: `HISTFILE=` in /etc/profile, /etc/bash.bashrc,
//!   /etc/bashrc, zsh rc files and each home's .bashrc/.bash_profile/
//!   .profile/.zshrc/.zprofile (`~`, `$HOME`, `${HOME}` expanded per home);
//!   `HISTFILE=/dev/null` (history switched off) is reported as a finding.
//! - `nginx.rs`: `access_log` / `error_log` in nginx.conf and the files it
//!   `include`s.
//! - `apache.rs`: `CustomLog` / `ErrorLog`, relative to `ServerRoot`, with
//!   `${APACHE_LOG_DIR}` from Debian's envvars, in the main config and
//!   `Include`/`IncludeOptional` files.
//! - `journald.rs`: `Storage=volatile|none` (a finding: no journal on disk).
//! - `docker.rs`: Docker's `data-root` (daemon.json): container logs
//!   (`*-json.log*`).
//! - `windows.rs`: event logs the registry moved, IIS log folders.

mod apache;
mod docker;
mod histfile;
mod journald;
mod nginx;
mod windows;

use super::{Finding, Scope, Target};
use crate::host::view::MachineView;
use crate::host::{Host, OsFamily};

/// Config files read in all (bounded: a config that includes itself).
const MAX_CONFIG_FILES: usize = 200;

/// What the machine's configuration says, as extra targets, and findings
/// worth reporting (history switched off).
pub fn configured(host: &Host) -> (Vec<Target>, Vec<Finding>) {
    if host.os.family == OsFamily::Windows {
        return (windows::targets(host), Vec::new());
    }
    let view = MachineView::new(host);
    let mut findings = Vec::new();
    let homes: Vec<String> = host
        .volumes
        .iter()
        .find(|v| v.is_os_root)
        .map(|v| v.homes.iter().map(|h| String::from_utf8_lossy(h).into_owned()).collect())
        .unwrap_or_default();
    let targets = [histfile::target(&view, &homes, &mut findings), nginx::target(&view), apache::target(&view), docker::target(&view)]
        .into_iter()
        .flatten()
        .collect();
    findings.extend(journald::findings(&view));
    (targets, findings)
}

/// A target named `name` of these sorted, deduplicated globs; none without one.
fn target(name: &str, description: &str, mut paths: Vec<String>) -> Option<Target> {
    if paths.is_empty() {
        return None;
    }
    paths.sort();
    paths.dedup();
    Some(Target {
        name: name.into(),
        description: description.into(),
        os: "any".into(),
        scope: Scope::Os,
        paths,
        paths_from: None,
        optional: false,
        exclude: Vec::new(),
        case_insensitive: false,
        max_size: None,
        follow_links: false,
    })
}

/// A simple `*` / `?` match for include globs (`conf.d/*.conf`).
fn wild(pat: &str, name: &str) -> bool {
    globset::Glob::new(pat).map(|g| g.compile_matcher().is_match(name)).unwrap_or(false)
}

/// Expands an include pattern (absolute, or relative to `base`) to files.
fn expand_include(view: &MachineView, base: &str, pat: &str) -> Vec<String> {
    let full = if pat.starts_with('/') { pat.to_string() } else { format!("{}/{pat}", base.trim_end_matches('/')) };
    let (dir, name) = full.rsplit_once('/').unwrap_or(("/", &full));
    if !name.contains(['*', '?', '[']) {
        return vec![full.clone()];
    }
    let mut out: Vec<String> = view.list(dir).into_iter().filter(|n| wild(name, n)).map(|n| format!("{dir}/{n}")).collect();
    out.sort();
    out
}

/// Reads `first` and every config file it includes, once each (a config
/// that includes itself ends): `visit(path, text)` returns the includes.
fn each_config(view: &MachineView, first: &str, mut visit: impl FnMut(&str, &str) -> Vec<String>) {
    let mut queue = vec![first.to_string()];
    let mut seen: Vec<String> = Vec::new();
    while let Some(f) = queue.pop() {
        if seen.contains(&f) || seen.len() >= MAX_CONFIG_FILES {
            continue;
        }
        seen.push(f.clone());
        if let Some(text) = view.read(&f) {
            queue.extend(visit(&f, &text));
        }
    }
}

/// A log path as a glob that also takes its rotated copies (`x.log*`).
fn log_glob(path: &str) -> Option<String> {
    let p = path.trim().trim_matches(['"', '\'']);
    if !p.starts_with('/') || p.starts_with("/dev/") || p.starts_with("/proc/") {
        return None;
    }
    Some(format!("{}*", globset::escape(p)))
}
