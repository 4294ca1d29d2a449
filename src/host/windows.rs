//! Windows: OS root detection, user profiles, the computer name (SYSTEM
//! hive) and the version (SOFTWARE hive).

use crate::fs::{read_small, FileKind, FileSystem, NodeId};

/// Hives larger than this are not read for the computer name.
const MAX_HIVE: u64 = 512 << 20;

/// Resolves a path with ASCII case folding, as Windows matches names on
/// NTFS (the `$UpCase` table also folds non-ASCII letters; system paths
/// are ASCII). Reparse points are not followed.
pub fn lookup_ci(fs: &dyn FileSystem, path: &str) -> Option<NodeId> {
    let mut node = fs.root();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        let entries = fs.read_dir(node).ok()?;
        let exact = entries.iter().find(|e| e.name == comp.as_bytes());
        let e = exact.or_else(|| entries.iter().find(|e| e.name.eq_ignore_ascii_case(comp.as_bytes())))?;
        node = e.node;
    }
    Some(node)
}

/// A Windows system volume has the SYSTEM registry hive.
pub fn is_root(fs: &dyn FileSystem) -> bool {
    lookup_ci(fs, "/Windows/System32/config/SYSTEM")
        .and_then(|n| fs.metadata(n).ok())
        .is_some_and(|m| m.kind() == FileKind::File)
}

/// The computer name recorded in the SYSTEM hive, with where it came from.
pub fn hostname(fs: &dyn FileSystem) -> Option<(String, String)> {
    let node = lookup_ci(fs, "/Windows/System32/config/SYSTEM")?;
    let hive = super::regf::Hive::parse(read_small(fs, node, MAX_HIVE).ok()?)?;
    let (name, key) = super::registry::computer_name_at(&hive)?;
    Some((name, format!("SYSTEM hive, {key}")))
}

/// The Windows version from the SOFTWARE hive.
pub fn pretty_name(fs: &dyn FileSystem) -> Option<String> {
    let node = lookup_ci(fs, "/Windows/System32/config/SOFTWARE")?;
    let hive = super::regf::Hive::parse(read_small(fs, node, MAX_HIVE).ok()?)?;
    super::registry::os_version(&hive)
}

/// Profile folders under /Users (absolute paths, as stored).
pub fn homes(fs: &dyn FileSystem) -> Vec<Vec<u8>> {
    let Some(users) = lookup_ci(fs, "/Users") else { return Vec::new() };
    let Ok(entries) = fs.read_dir(users) else { return Vec::new() };
    entries
        .into_iter()
        .filter(|e| e.kind == FileKind::Dir)
        .map(|e| [b"/Users/".as_slice(), &e.name].concat())
        .collect()
}

/// Drive letters recorded in the SYSTEM hive's MountedDevices.
pub fn drive_letters(fs: &dyn FileSystem) -> Vec<(char, super::registry::MountTarget)> {
    lookup_ci(fs, "/Windows/System32/config/SYSTEM")
        .and_then(|n| read_small(fs, n, MAX_HIVE).ok())
        .and_then(super::regf::Hive::parse)
        .map(|h| super::registry::drive_letters(&h))
        .unwrap_or_default()
}
