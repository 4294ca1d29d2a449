//! Btrfs subvolumes as the machine used them. One Btrfs volume holds
//! several trees: the OS root may be one of them rather than the default
//! (Ubuntu's `@`, Fedora's `root`, both with the top level as default),
//! fstab mounts others where they belong (`subvol=/@/var` on SUSE,
//! `subvol=home` on Fedora), and snapshots keep older copies of them
//! (snapper's `/.snapshots/N/snapshot`). Each becomes a [`HostVolume`] of
//! its own over the same volume: mounted ones where fstab says, snapshots
//! as snapshots of the mounted one they were taken from (their parent UUID;
//! snapper's of `/` when that one is no longer mounted, after a rollback),
//! into `_snapshots/<N>-<taken>/…`.

use super::fstab::{self, SubvolSpec};
use super::{HostVolume, linux};
use crate::fs::{FileSystem, Subvolume};
use std::collections::HashSet;
use std::sync::Arc;

/// When the tree a Btrfs volume shows by default is not an OS root but one
/// of its subvolumes is: that one, preferring the subvolume its own fstab
/// mounts at `/`, then one that is writable and not a snapshot.
pub(super) fn os_root(fs: &dyn FileSystem) -> Option<(Subvolume, Arc<dyn FileSystem>)> {
    let mut roots: Vec<(Subvolume, Arc<dyn FileSystem>)> = fs
        .subvolumes()
        .ok()?
        .into_iter()
        .filter(|s| !s.shown)
        .filter_map(|s| {
            let view = fs.subvolume(s.id).ok()?;
            linux::is_root(&*view).then_some((s, view))
        })
        .collect();
    let mounts_itself = |(s, v): &(Subvolume, Arc<dyn FileSystem>)| {
        fstab::mounts(&**v).iter().any(|m| m.point == "/" && m.subvol.as_ref().is_some_and(|x| x.matches(s)))
    };
    let pick = roots.iter().position(mounts_itself).or_else(|| roots.iter().position(|(s, _)| s.parent_uuid.is_none() && !s.readonly));
    (!roots.is_empty()).then(|| roots.swap_remove(pick.unwrap_or(0)))
}

/// The subvolume of `hv`'s filesystem that fstab mounts at `point`, as a
/// volume of its own; None when `hv` already reads it (it is the tree `hv`
/// shows, or nested in it).
pub(super) fn mount(hv: &HostVolume, spec: &SubvolSpec, point: &str) -> Result<Option<HostVolume>, String> {
    let fs = hv.fs.as_deref().ok_or("no filesystem")?;
    let all = fs.subvolumes().map_err(|e| format!("its subvolumes cannot be listed: {e}"))?;
    let s = all.iter().find(|s| spec.matches(s)).ok_or_else(|| format!("the filesystem has no subvolume {spec}"))?;
    if all.iter().find(|x| x.shown).is_some_and(|shown| contains(shown, s)) {
        return Ok(None);
    }
    let view = fs.subvolume(s.id).map_err(|e| format!("subvolume {} cannot be opened: {e}", s.path))?;
    let mut v = hv.view_of(s.clone(), view);
    v.mount_point = Some(point.to_string());
    Ok(Some(v))
}

/// Does `outer`'s tree show `inner` (the same, or nested in it)?
fn contains(outer: &Subvolume, inner: &Subvolume) -> bool {
    outer.id == inner.id || outer.path.is_empty() || inner.path.starts_with(&format!("{}/", outer.path))
}

/// snapper's number for `…/.snapshots/<N>/snapshot`.
pub fn snapper_number(path: &str) -> Option<u32> {
    let rest = path.strip_suffix("/snapshot")?;
    let (store, n) = rest.rsplit_once('/')?;
    (store == ".snapshots" || store.ends_with("/.snapshots")).then(|| n.parse().ok())?
}

/// The other subvolumes of each Btrfs volume among `hvs`: snapshots, as
/// snapshots of the volume they were taken from, and subvolumes nothing
/// else reads (neither mounted nor nested in a mounted one), as volumes
/// mounted nowhere. Also what was left out and why.
pub(super) fn the_rest(hvs: &[HostVolume]) -> (Vec<HostVolume>, Vec<String>) {
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    let mut done = HashSet::new();
    for first in hvs.iter().filter(|v| !v.is_snapshot() && v.fs.as_ref().is_some_and(|f| f.kind() == "btrfs")) {
        let Some(vol) = first.volume.as_ref() else { continue };
        if !done.insert(vol.id()) {
            continue;
        }
        let Some(fs) = first.fs.as_ref() else { continue };
        // Listed once: every view of the volume lists the same ones.
        let all = match fs.subvolumes() {
            Ok(all) => all,
            Err(e) => {
                notes.push(format!("{}: the Btrfs subvolumes cannot be listed ({e}): only the default one is read", vol.id()));
                continue;
            }
        };
        // What each volume over it reads: its subvolume, or (the volume as
        // first opened, `first`) the one `fs` shows.
        let shown = all.iter().find(|s| s.shown);
        let read: Vec<(&HostVolume, Subvolume)> = hvs
            .iter()
            .filter(|v| !v.is_snapshot() && v.volume.as_ref().is_some_and(|x| x.id() == vol.id()))
            .filter_map(|v| Some((v, v.subvol.clone().or_else(|| shown.cloned())?)))
            .collect();
        for s in &all {
            if read.iter().any(|(_, r)| r.id == s.id) {
                continue;
            }
            let snapper = snapper_number(&s.path);
            if snapper.is_none() && s.parent_uuid.is_none() {
                // A plain subvolume: read where it is nested, or on its own
                // when it holds no subvolume that is read elsewhere.
                let nested_in_read = read.iter().any(|(_, r)| contains(r, s));
                let holds_others = all.iter().any(|o| o.id != s.id && contains(s, o));
                if nested_in_read || holds_others {
                    continue;
                }
                match fs.subvolume(s.id) {
                    Ok(view) => out.push(first.view_of(s.clone(), view)),
                    Err(e) => notes.push(format!("{}: Btrfs subvolume {} cannot be opened: {e}", vol.id(), s.path)),
                }
                continue;
            }
            // A snapshot: of the mounted subvolume it was taken from, else
            // (snapper's, after a rollback) of the root.
            let origin = read
                .iter()
                .find(|(_, r)| r.uuid.is_some() && r.uuid == s.parent_uuid)
                .or_else(|| snapper.and_then(|_| read.iter().find(|(v, _)| v.is_os_root)))
                .map(|(v, _)| v.id());
            let view = match fs.subvolume(s.id) {
                Ok(view) => view,
                Err(e) => {
                    notes.push(format!("{}: Btrfs snapshot {} cannot be opened: {e}", vol.id(), s.path));
                    continue;
                }
            };
            let mut v = first.view_of(s.clone(), view);
            if let Some(x) = v.volume.as_mut() {
                x.snapshot_of = Some(origin.unwrap_or_else(|| format!("{}:{}", vol.id(), s.parent_uuid.as_deref().unwrap_or("?"))));
            }
            out.push(v);
        }
    }
    (out, notes)
}

/// A snapshot's folder under `_snapshots/`: `<N>-<taken>` for snapper's,
/// else `<its name>-<taken>`.
pub(super) fn snapshot_folder(s: &Subvolume) -> String {
    let name = match snapper_number(&s.path) {
        Some(n) => n.to_string(),
        None => s.path.rsplit('/').next().unwrap_or(&s.path).to_string(),
    };
    match s.created {
        Some(t) => format!("{name}-{}", t.compact()),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapper_paths() {
        assert_eq!(snapper_number("@/.snapshots/12/snapshot"), Some(12));
        assert_eq!(snapper_number(".snapshots/1/snapshot"), Some(1));
        assert_eq!(snapper_number("@/home/.snapshots/3/snapshot"), Some(3));
        assert_eq!(snapper_number("@/snapshots/3/snapshot"), None);
        assert_eq!(snapper_number("@/.snapshots/x/snapshot"), None);
        assert_eq!(snapper_number("@/.snapshots/3"), None);
    }
}
