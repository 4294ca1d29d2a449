//! A replayed volume seen twice: what the machine had (the journal or log
//! replayed) and what lies on disk. The grep folder shows the first; the
//! on-disk version of every file the replay changed goes beside it, under
//! `_before-journal/`, because the last seconds before a snapshot (an
//! emptied `wtmp`, a rotated log) are evidence too. Both plans are walked
//! through the same targets and compared path by path.

use super::plan::Item;
use crate::fs::{FileKind, FileSystem};
use std::collections::HashMap;

/// The folder beside a host's tree that holds the on-disk versions.
pub const BEFORE_FOLDER: &str = "_before-journal";

/// The manifest's `view` column.
pub const VIEW_REPLAYED: &str = "replayed";
pub const VIEW_BEFORE: &str = "before-journal";
/// A volume whose dirty journal was not replayed (`--no-replay`, damage).
pub const VIEW_ON_DISK: &str = "on-disk";

/// The manifest's `journal` column: what the replay did to a path.
pub const UNCHANGED: &str = "unchanged";
pub const CHANGED: &str = "changed";
/// Only in the replayed view (created in the journal's last seconds).
pub const NEW: &str = "new";
/// Only on disk (deleted or renamed away by the journal).
pub const REMOVED: &str = "removed";

/// For each replayed item, what the replay did to its path; and the
/// on-disk items to extract beside them (those the replay changed or
/// removed), each with its `journal` value.
pub fn compare(replayed: &dyn FileSystem, now: &[Item], disk: Vec<Item>) -> (Vec<&'static str>, Vec<(Item, &'static str)>) {
    let by_path = |items: &[Item]| -> HashMap<Vec<Vec<u8>>, usize> {
        items.iter().enumerate().filter(|(_, i)| is_content(i)).map(|(n, i)| (i.comps.clone(), n)).collect()
    };
    let (now_at, disk_at) = (by_path(now), by_path(&disk));
    // Same path, same inode, and nothing of that inode touched by the replay.
    let same = |a: &Item, b: &Item| a.node == b.node && a.kind == b.kind && !replayed.replay_changed(a.node);
    let tags = now
        .iter()
        .map(|it| match disk_at.get(&it.comps).map(|&n| &disk[n]) {
            _ if !is_content(it) => "",
            None => NEW,
            Some(d) if same(it, d) => UNCHANGED,
            Some(_) => CHANGED,
        })
        .collect();
    let before = disk
        .into_iter()
        .filter(is_content)
        .filter_map(|d| match now_at.get(&d.comps).map(|&n| &now[n]) {
            None => Some((d, REMOVED)),
            Some(n) if same(n, &d) => None,
            Some(_) => Some((d, CHANGED)),
        })
        .collect();
    (tags, before)
}

/// Files and links, examined or not; not the error rows of a walk.
fn is_content(i: &Item) -> bool {
    matches!(i.kind, FileKind::File | FileKind::Symlink) && i.error.is_none()
}
