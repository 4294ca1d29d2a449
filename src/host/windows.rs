//! Windows: OS root detection, user profiles, the computer name (SYSTEM
//! hive) and the version (SOFTWARE hive).

use super::regf::Hive;
use crate::fs::{FileKind, FileSystem, lookup_ci, read_small};

/// Hives larger than this are not read for the computer name.
const MAX_HIVE: u64 = 512 << 20;

/// A Windows system volume has the SYSTEM registry hive.
pub fn is_root(fs: &dyn FileSystem) -> bool {
    lookup_ci(fs, SYSTEM).and_then(|n| fs.metadata(n).ok()).is_some_and(|m| m.kind() == FileKind::File)
}

/// A hive of the system volume, read in place where the filesystem allows
/// positional reads (NTFS), else read whole (at most `MAX_HIVE`).
fn hive<'a>(fs: &'a dyn FileSystem, path: &str) -> Option<Hive<'a>> {
    let node = lookup_ci(fs, path)?;
    match fs.file_at(node) {
        Some(src) => Hive::open(src.ok()?),
        None => Hive::parse(read_small(fs, node, MAX_HIVE).ok()?),
    }
}

const SYSTEM: &str = "/Windows/System32/config/SYSTEM";

/// The computer name recorded in the SYSTEM hive, with where it came from.
pub fn hostname(fs: &dyn FileSystem) -> Option<(String, String)> {
    let (name, key) = super::registry::computer_name_at(&hive(fs, SYSTEM)?)?;
    Some((name, format!("SYSTEM hive, {key}")))
}

/// The Windows version from the SOFTWARE hive.
pub fn pretty_name(fs: &dyn FileSystem) -> Option<String> {
    super::registry::os_version(&hive(fs, "/Windows/System32/config/SOFTWARE")?)
}

/// Profile folders under /Users (absolute paths, as stored).
pub fn homes(fs: &dyn FileSystem) -> Vec<Vec<u8>> {
    let Some(users) = lookup_ci(fs, "/Users") else { return Vec::new() };
    let Ok(entries) = fs.read_dir(users) else { return Vec::new() };
    entries.into_iter().filter(|e| e.kind == FileKind::Dir).map(|e| [b"/Users/".as_slice(), &e.name].concat()).collect()
}

/// A small file of the Windows volume, by case-insensitive path.
pub fn read_text(fs: &dyn FileSystem, path: &str) -> Option<Vec<u8>> {
    lookup_ci(fs, path).and_then(|n| read_small(fs, n, 16 << 20).ok())
}

/// The SYSTEM hive's event log files, as paths on the system volume, for
/// the logs kept somewhere other than the default folder.
pub fn moved_event_logs(fs: &dyn FileSystem) -> Vec<String> {
    let Some(hive) = hive(fs, SYSTEM) else { return Vec::new() };
    super::registry::event_log_files(&hive)
        .into_iter()
        .filter_map(|(_, f)| system_path(&f))
        .filter(|p| !p.to_ascii_lowercase().starts_with("/windows/system32/winevt/logs/"))
        .collect()
}

/// `%SystemRoot%\x`, `%windir%\x`, `%SystemDrive%\x`, `C:\x` → `/Windows/x` or
/// `/x` on the system volume; other drives → `X:/x` (a volume mounted at `X:`).
pub fn system_path(p: &str) -> Option<String> {
    let p = p.trim().trim_matches('"').replace('\\', "/");
    let lower = p.to_ascii_lowercase();
    for (var, rep) in [("%systemroot%", "/Windows"), ("%windir%", "/Windows"), ("%systemdrive%", "")] {
        if let Some(rest) = lower.strip_prefix(var) {
            return Some(format!("{rep}{}", &p[p.len() - rest.len()..]));
        }
    }
    match p.as_bytes() {
        [d, b':', rest @ ..] if d.eq_ignore_ascii_case(&b'c') => Some(String::from_utf8_lossy(rest).into_owned()),
        [d, b':', rest @ ..] if d.is_ascii_alphabetic() => {
            Some(format!("/{}:{}", (*d as char).to_ascii_uppercase(), String::from_utf8_lossy(rest)))
        }
        _ => None,
    }
}

/// Drive letters recorded in the SYSTEM hive's MountedDevices.
pub fn drive_letters(fs: &dyn FileSystem) -> Vec<(char, super::registry::MountTarget)> {
    hive(fs, SYSTEM).map(|h| super::registry::drive_letters(&h)).unwrap_or_default()
}
