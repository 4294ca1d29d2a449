//! Linux: root detection, hostname, OS release, home directories.

use crate::fs::{FileKind, FileSystem, lookup, read_small};

const SMALL: u64 = 1 << 20;

fn file(fs: &dyn FileSystem, path: &str) -> Option<Vec<u8>> {
    let node = lookup(fs, path.as_bytes()).ok()??;
    read_small(fs, node, SMALL).ok()
}

fn exists(fs: &dyn FileSystem, path: &str) -> bool {
    matches!(lookup(fs, path.as_bytes()), Ok(Some(_)))
}

/// A Linux root has /etc and some sign of an installed system.
pub fn is_root(fs: &dyn FileSystem) -> bool {
    let etc_is_dir = lookup(fs, b"/etc").ok().flatten().and_then(|n| fs.metadata(n).ok()).is_some_and(|m| m.kind() == FileKind::Dir);
    etc_is_dir
        && ["/etc/os-release", "/etc/hostname", "/etc/HOSTNAME", "/etc/sysconfig/network", "/etc/passwd", "/bin", "/usr"]
            .iter()
            .any(|p| exists(fs, p))
}

/// Hostname from /etc/hostname, /etc/HOSTNAME, then /etc/sysconfig/network
/// (`HOSTNAME=`), with the file it came from.
pub fn hostname(fs: &dyn FileSystem) -> Option<(String, String)> {
    for path in ["/etc/hostname", "/etc/HOSTNAME"] {
        if let Some(b) = file(fs, path) {
            let text = String::from_utf8_lossy(&b);
            let name = text.lines().map(|l| l.trim()).find(|l| !l.is_empty() && !l.starts_with('#'));
            if let Some(n) = name {
                // /etc/hostname may hold an FQDN; the folder keeps it whole.
                return Some((n.to_string(), path.to_string()));
            }
        }
    }
    let b = file(fs, "/etc/sysconfig/network")?;
    String::from_utf8_lossy(&b).lines().find_map(|l| {
        let v = l.trim().strip_prefix("HOSTNAME=")?.trim().trim_matches(['"', '\'']);
        (!v.is_empty()).then(|| (v.to_string(), "/etc/sysconfig/network".to_string()))
    })
}

/// PRETTY_NAME from /etc/os-release (or /usr/lib/os-release).
pub fn pretty_name(fs: &dyn FileSystem) -> Option<String> {
    let b = file(fs, "/etc/os-release").or_else(|| file(fs, "/usr/lib/os-release"))?;
    String::from_utf8_lossy(&b).lines().find_map(|l| {
        let v = l.strip_prefix("PRETTY_NAME=")?.trim().trim_matches(['"', '\'']);
        Some(v.to_string())
    })
}

/// Every home directory: /root, each directory under /home, and each home
/// named in /etc/passwd (service accounts such as /var/lib/postgresql keep
/// histories too). Absolute paths, deduplicated, in a stable order.
pub fn homes(fs: &dyn FileSystem) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = vec![b"/root".to_vec()];
    if let Ok(Some(home)) = lookup(fs, b"/home")
        && let Ok(entries) = fs.read_dir(home)
    {
        for e in entries {
            let mut p = b"/home/".to_vec();
            p.extend_from_slice(&e.name);
            out.push(p);
        }
    }
    if let Some(passwd) = file(fs, "/etc/passwd") {
        for line in passwd.split(|&c| c == b'\n') {
            let fields: Vec<&[u8]> = line.split(|&c| c == b':').collect();
            if let Some(h) = fields.get(5) {
                let h = h.strip_suffix(b"/").unwrap_or(h);
                // "/" and "/nonexistent"-style homes hold nothing useful;
                // a home of "/" would turn a history glob into "/.bash_history".
                if h.starts_with(b"/") && h.len() > 1 && !h.contains(&0) {
                    out.push(h.to_vec());
                }
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|h| seen.insert(h.clone()));
    out
}
