//! A replayed volume seen twice: what the machine had (the journal or log
//! replayed) and what lies on disk. The grep folder shows the first; the
//! on-disk version of every file the replay changed goes beside it, under
//! `_before-journal/`, because the last seconds before a snapshot (an
//! emptied `wtmp`, a rotated log) are evidence too. Both plans are walked
//! through the same targets and compared path by path. A file the replay
//! only appended to is the exception: its on-disk version is the replayed
//! copy's first bytes, so the manifest says so (with their hash) instead of
//! writing it twice.
// Reads untrusted bytes: no panicking shortcuts (see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

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
/// Grown by the replay only: the on-disk version is the replayed file's
/// first bytes, so it is not written twice (every grep hit in a busy log
/// would show twice); its row points into the replayed copy.
pub const APPENDED: &str = "appended";

/// The two views of a replayed volume compared path by path.
pub struct Compared {
    /// For each replayed item, what the replay did to its path.
    pub tags: Vec<&'static str>,
    /// For each replayed item, its on-disk version when the replay may only
    /// have appended to it (same inode, no larger): the copy compares the
    /// two and writes the on-disk version separately only if it is not the
    /// replayed file's first bytes.
    pub grown: Vec<Option<Item>>,
    /// On-disk items to extract beside the replayed ones (changed or
    /// removed by the replay), each with its `journal` value.
    pub before: Vec<(Item, &'static str)>,
}

pub fn compare(replayed: &dyn FileSystem, now: &[Item], disk: Vec<Item>) -> Compared {
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
    let mut grown: Vec<Option<Item>> = now.iter().map(|_| None).collect();
    let mut before = Vec::new();
    for d in disk.into_iter().filter(is_content) {
        match now_at.get(&d.comps) {
            None => before.push((d, REMOVED)),
            Some(&n) if same(&now[n], &d) => {}
            Some(&n) if may_have_grown(&now[n], &d) => grown[n] = Some(d),
            Some(_) => before.push((d, CHANGED)),
        }
    }
    Compared { tags, grown, before }
}

/// The same regular file, both copied, no larger on disk than replayed: a
/// log the machine appended to in its last seconds, most often.
fn may_have_grown(now: &Item, disk: &Item) -> bool {
    let copied = |i: &Item| i.kind == FileKind::File && i.skip.is_none();
    now.node == disk.node && copied(now) && copied(disk) && matches!((&now.meta, &disk.meta), (Some(a), Some(b)) if b.size <= a.size)
}

/// Files and links, examined or not; not the error rows of a walk.
fn is_content(i: &Item) -> bool {
    matches!(i.kind, FileKind::File | FileKind::Symlink) && i.error.is_none()
}
