//! Config-aware discovery: where this machine's configuration put its logs
//! and histories, beyond the default paths. Each finding becomes a target
//! named for how it was found (`config:nginx`, `config:HISTFILE`), so the
//! manifest says why a file was collected.
//!
//! - `HISTFILE=` in /etc/profile, /etc/bash.bashrc, /etc/bashrc, zsh rc files
//!   and each home's .bashrc/.bash_profile/.profile/.zshrc/.zprofile
//!   (`~`, `$HOME`, `${HOME}` expanded per home). `HISTFILE=/dev/null` (history
//!   switched off) is reported as a finding.
//! - nginx `access_log` / `error_log` in nginx.conf and the files it
//!   `include`s.
//! - Apache `CustomLog` / `ErrorLog`, relative to `ServerRoot`, with
//!   `${APACHE_LOG_DIR}` from Debian's envvars, in the main config and
//!   `Include`/`IncludeOptional` files.
//! - journald `Storage=volatile|none` (reported: no journal on disk).
//! - Docker's `data-root` (daemon.json): container logs (`*-json.log*`).

use super::Host;
use crate::fs::{lookup, read_small, FileKind, FileSystem, NodeId};
use crate::targets::{Scope, Target};
use std::sync::Arc;

/// Config files read in all (bounded: a config that includes itself).
const MAX_CONFIG_FILES: usize = 200;

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
            let mount = if v.is_os_root { "/" } else if let Some(m) = &v.mount_point { m.as_str() } else { continue };
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
            .map(|es| {
                es.into_iter()
                    .filter(|e| e.kind != FileKind::Dir)
                    .map(|e| String::from_utf8_lossy(&e.name).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
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

fn target(name: &str, description: String, paths: Vec<String>) -> Target {
    Target {
        name: name.into(),
        description,
        os: "any".into(),
        scope: Scope::Os,
        paths,
        paths_from: None,
        optional: false,
        exclude: Vec::new(),
        case_insensitive: false,
        max_size: None,
        follow_links: false,
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

/// Windows: event logs the registry moved (`Services\EventLog\<log>\File`)
/// and IIS log folders from `applicationHost.config` (`logFile directory`).
fn configured_windows(host: &Host) -> Vec<Target> {
    let Some(fs) = host.volumes.iter().find(|v| v.is_os_root).and_then(|v| v.fs.as_deref()) else {
        return Vec::new();
    };
    let glob = |p: &str| globset::escape(p);
    let mut out = Vec::new();
    let moved: Vec<String> = super::windows::moved_event_logs(fs).iter().map(|p| glob(p)).collect();
    if !moved.is_empty() {
        out.push(target("config:eventlog", "event logs where the registry's EventLog File values put them".into(), moved));
    }
    let mut iis = Vec::new();
    if let Some(b) = super::windows::read_text(fs, "/Windows/System32/inetsrv/config/applicationHost.config") {
        let text = String::from_utf8_lossy(&b);
        for element in ["<logFile", "<centralW3CLogFile", "<centralBinaryLogFile"] {
            for (i, _) in text.match_indices(element) {
                let tag = &text[i..text[i..].find('>').map_or(text.len(), |e| i + e)];
                if let Some(d) = tag.split("directory=\"").nth(1).and_then(|r| r.split('"').next())
                    && let Some(p) = super::windows::system_path(d)
                {
                    iis.push(format!("{}/**", glob(p.trim_end_matches('/'))));
                }
            }
        }
    }
    if !iis.is_empty() {
        iis.sort();
        iis.dedup();
        out.push(target("config:iis", "IIS logs where applicationHost.config's logFile directory puts them".into(), iis));
    }
    for t in &mut out {
        t.os = "windows".into();
        t.case_insensitive = true;
    }
    out
}

/// What the machine's configuration says, as extra targets, and findings
/// worth reporting (history switched off).
pub fn configured(host: &Host) -> (Vec<Target>, Vec<String>) {
    if host.os.family == "windows" {
        return (configured_windows(host), Vec::new());
    }
    let view = MachineView::new(host);
    let mut targets = Vec::new();
    let mut findings = Vec::new();
    let homes: Vec<String> = host
        .volumes
        .iter()
        .find(|v| v.is_os_root)
        .map(|v| v.homes.iter().map(|h| String::from_utf8_lossy(h).into_owned()).collect())
        .unwrap_or_default();

    // HISTFILE
    let mut hist = Vec::new();
    let mut rc_files: Vec<(String, Vec<String>)> = ["/etc/profile", "/etc/bash.bashrc", "/etc/bashrc", "/etc/zshrc", "/etc/zsh/zshrc"]
        .iter()
        .map(|p| (p.to_string(), homes.clone()))
        .collect();
    for h in &homes {
        for rc in [".bashrc", ".bash_profile", ".profile", ".zshrc", ".zprofile", ".bash_login"] {
            rc_files.push((format!("{h}/{rc}"), vec![h.clone()]));
        }
    }
    for (rc, applies_to) in rc_files {
        let Some(text) = view.read(&rc) else { continue };
        for line in text.lines() {
            let l = line.trim().trim_start_matches("export ").trim();
            let Some(v) = l.strip_prefix("HISTFILE=") else { continue };
            let v = v.split('#').next().unwrap_or("").trim().trim_matches(['"', '\'']);
            if v.is_empty() {
                continue;
            }
            if v == "/dev/null" {
                findings.push(format!("shell history switched off: HISTFILE=/dev/null in {rc}"));
                continue;
            }
            for h in &applies_to {
                let expanded = v.replacen("~/", &format!("{h}/"), 1).replace("${HOME}", h).replace("$HOME", h);
                if let Some(g) = log_glob(&expanded) {
                    hist.push(g);
                }
            }
        }
    }
    if !hist.is_empty() {
        hist.sort();
        hist.dedup();
        targets.push(target("config:HISTFILE", "histories where HISTFILE= in shell rc files puts them".into(), hist));
    }

    // nginx
    let mut nginx = Vec::new();
    each_config(&view, "/etc/nginx/nginx.conf", |_, text| {
        let mut includes = Vec::new();
        for stmt in text.split(';') {
            let stmt = stmt.lines().map(|l| l.split('#').next().unwrap_or("")).collect::<Vec<_>>().join(" ");
            let words: Vec<&str> = stmt.split_whitespace().filter(|w| *w != "{" && *w != "}").collect();
            let words: Vec<&str> = words.into_iter().skip_while(|w| !matches!(*w, "access_log" | "error_log" | "include")).collect();
            match words.as_slice() {
                ["include", pat, ..] => includes.extend(expand_include(&view, "/etc/nginx", pat)),
                ["access_log" | "error_log", path, ..] => nginx.extend(log_glob(path)),
                _ => {}
            }
        }
        includes
    });
    if !nginx.is_empty() {
        nginx.sort();
        nginx.dedup();
        targets.push(target("config:nginx", "logs where nginx's access_log/error_log put them".into(), nginx));
    }

    // Apache
    let mut apache = Vec::new();
    for (main, default_root) in [("/etc/apache2/apache2.conf", "/etc/apache2"), ("/etc/httpd/conf/httpd.conf", "/etc/httpd")] {
        let envvars = view.read("/etc/apache2/envvars").unwrap_or_default();
        let log_dir = envvars
            .lines()
            .find_map(|l| l.trim().strip_prefix("export APACHE_LOG_DIR="))
            .map(|v| v.split('$').next().unwrap_or("").trim_matches(['"', '\'']).to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "/var/log/apache2".into());
        let mut root = default_root.to_string();
        each_config(&view, main, |_, text| {
            let mut includes = Vec::new();
            for line in text.lines() {
                let words: Vec<&str> = line.split('#').next().unwrap_or("").split_whitespace().collect();
                let arg = |i: usize| words.get(i).map(|w| w.trim_matches('"').replace("${APACHE_LOG_DIR}", &log_dir));
                match words.first().map(|w| w.to_ascii_lowercase()).as_deref() {
                    Some("serverroot") => root = arg(1).unwrap_or(root.clone()),
                    Some("include") | Some("includeoptional") => {
                        if let Some(p) = arg(1) {
                            includes.extend(expand_include(&view, &root, &p));
                        }
                    }
                    Some("customlog") | Some("errorlog") | Some("transferlog") => {
                        if let Some(p) = arg(1).filter(|p| !p.starts_with('|') && !p.starts_with("syslog")) {
                            let abs = if p.starts_with('/') { p } else { format!("{root}/{p}") };
                            apache.extend(log_glob(&abs));
                        }
                    }
                    _ => {}
                }
            }
            includes
        });
    }
    if !apache.is_empty() {
        apache.sort();
        apache.dedup();
        targets.push(target("config:apache", "logs where Apache's CustomLog/ErrorLog put them".into(), apache));
    }
    // journald: Storage=volatile keeps the journal in memory only.
    for f in ["/etc/systemd/journald.conf"].into_iter().map(String::from).chain(
        view.list("/etc/systemd/journald.conf.d").into_iter().map(|n| format!("/etc/systemd/journald.conf.d/{n}")),
    ) {
        let Some(text) = view.read(&f) else { continue };
        for l in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
            if let Some(v) = l.strip_prefix("Storage=").map(str::trim)
                && matches!(v, "volatile" | "none")
            {
                findings.push(format!("journald Storage={v} in {f}: the journal was not kept on disk"));
            }
        }
    }

    // Docker: container logs (json-file driver) under data-root.
    let mut docker = vec!["/var/lib/docker/containers/*/*-json.log*".to_string()];
    if let Some(root) = docker_data_root(&view) {
        docker.push(format!("{}/containers/*/*-json.log*", globset::escape(root.trim_end_matches('/'))));
    }
    targets.push(target("config:docker", "Docker container logs (json-file driver), in data-root from /etc/docker/daemon.json".into(), docker));
    (targets, findings)
}

/// Docker's `data-root` (or the older `graph`) from /etc/docker/daemon.json.
pub fn docker_data_root(view: &MachineView) -> Option<String> {
    let text = view.read("/etc/docker/daemon.json")?;
    let j = serde_json::from_str::<serde_json::Value>(&text).ok()?;
    let root = j["data-root"].as_str().or(j["graph"].as_str())?;
    root.starts_with('/').then(|| root.trim_end_matches('/').to_string())
}

/// containerd's `root` from /etc/containerd/config.toml.
pub fn containerd_root(view: &MachineView) -> Option<String> {
    let text = view.read("/etc/containerd/config.toml")?;
    let v: toml::Value = toml::from_str(&text).ok()?;
    let root = v.get("root")?.as_str()?;
    root.starts_with('/').then(|| root.trim_end_matches('/').to_string())
}
