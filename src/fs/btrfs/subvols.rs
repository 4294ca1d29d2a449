//! The subvolumes of a Btrfs filesystem: every ROOT_REF in the root tree
//! (a subvolume's place in its parent: a directory of the parent's tree
//! and a name) joined into paths from the top level, as `btrfs subvolume
//! list` prints them, with what each one's ROOT_ITEM says (read-only, its
//! UUID, the UUID of the subvolume it is a snapshot of, when it was made).
//! A subvolume without a ROOT_REF (being deleted) is not listed.

use super::items::{self, INODE_REF, ROOT_ITEM, ROOT_REF};
use super::tree::Key;
use super::{Btrfs, FS_TREE};
use crate::fs::Subvolume;
use crate::util::bytes::{escape, uuid};
use crate::util::corrupt;
use std::collections::BTreeMap;
use std::io;

/// Items read from the root tree (ROOT_ITEM, ROOT_REF and ROOT_BACKREF
/// for each subvolume, besides the internal trees').
const MAX_ROOT_TREE_ITEMS: usize = 4 * super::MAX_SUBVOLS + 4096;
/// Directories between a subvolume and the top of its parent's tree.
const MAX_DEPTH: usize = 4096;
/// The object ids subvolume trees have (BTRFS_FIRST_FREE_OBJECTID to
/// BTRFS_LAST_FREE_OBJECTID).
pub(super) fn is_subvolume_id(id: u64) -> bool {
    id == FS_TREE || (256..=u64::MAX - 256).contains(&id)
}

/// `@/.snapshots/2/snapshot`: the subvolume's name, below the directories
/// of its parent that hold it (`dirs(parent, dirid)`, innermost first),
/// below its parent's path; an error when the parents form a cycle.
fn path_of(id: u64, refs: &BTreeMap<u64, Ref>, dirs: impl Fn(u64, u64) -> io::Result<Vec<Vec<u8>>>) -> io::Result<String> {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut at = id;
    for _ in 0..=refs.len() {
        if at == FS_TREE {
            parts.reverse();
            return Ok(escape(&parts.join(&b'/')));
        }
        let r = refs.get(&at).ok_or_else(|| corrupt(format!("subvolume {at} has no place in a parent")))?;
        parts.push(r.name.clone());
        parts.extend(dirs(r.parent, r.dirid)?);
        at = r.parent;
    }
    Err(corrupt("its parents form a cycle"))
}

struct Ref {
    parent: u64,
    dirid: u64,
    name: Vec<u8>,
}

impl Btrfs {
    pub(super) fn list_subvolumes(&self) -> io::Result<Vec<Subvolume>> {
        let all =
            self.meta.search(self.root_tree, Key::new(FS_TREE, 0, 0), Key::new(u64::MAX, u8::MAX, u64::MAX), MAX_ROOT_TREE_ITEMS, None)?;
        let mut refs: BTreeMap<u64, Ref> = BTreeMap::new();
        let mut infos = BTreeMap::new();
        for (k, d) in &all {
            if !is_subvolume_id(k.objectid) {
                continue;
            }
            match k.kind {
                ROOT_REF if is_subvolume_id(k.offset) => match items::root_ref(d) {
                    Ok((dirid, name)) => {
                        refs.insert(k.offset, Ref { parent: k.objectid, dirid, name });
                    }
                    Err(e) => self.meta.warn(format!("subvolume {}: {e}", k.offset)),
                },
                // The newest item of a tree is the last (its offset is the
                // transaction that made it).
                ROOT_ITEM => {
                    infos.insert(k.objectid, items::root_info(d));
                }
                _ => {}
            }
        }
        let shown = self.lock().first().map(|s| s.id);
        let mut out = Vec::new();
        for (&id, info) in &infos {
            let path = if id == FS_TREE {
                String::new()
            } else if refs.contains_key(&id) {
                match self.path_of(id, &refs) {
                    Ok(p) => p,
                    Err(e) => {
                        self.meta.warn(format!("subvolume {id}: {e}; it is not read"));
                        continue;
                    }
                }
            } else {
                continue;
            };
            out.push(Subvolume {
                id,
                path,
                uuid: info.uuid.map(|u| uuid(&u)),
                parent_uuid: info.parent_uuid.map(|u| uuid(&u)),
                created: info.otime,
                readonly: info.readonly,
                shown: shown == Some(id),
            });
        }
        Ok(out)
    }

    fn path_of(&self, id: u64, refs: &BTreeMap<u64, Ref>) -> io::Result<String> {
        path_of(id, refs, |tree, dir| self.dirs_above(tree, dir))
    }

    /// The names of `dir` and the directories above it in tree `tree`, up
    /// to (not including) its top directory, innermost first.
    fn dirs_above(&self, tree: u64, dir: u64) -> io::Result<Vec<Vec<u8>>> {
        let (root, top) = self.root_of(tree)?;
        let mut out = Vec::new();
        let mut ino = dir;
        while ino != top {
            if out.len() >= MAX_DEPTH {
                return Err(corrupt(format!("directory {dir} of subvolume {tree} is more than {MAX_DEPTH} levels deep (a loop?)")));
            }
            let found = self.meta.search(root, Key::new(ino, INODE_REF, 0), Key::new(ino, INODE_REF, u64::MAX), 1, None)?;
            let (k, d) = found.first().ok_or_else(|| corrupt(format!("directory {ino} of subvolume {tree} has no name")))?;
            out.push(items::inode_ref_name(d)?);
            ino = k.offset;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(parent: u64, dirid: u64, name: &str) -> Ref {
        Ref { parent, dirid, name: name.as_bytes().to_vec() }
    }

    #[test]
    fn paths_join_names_and_the_directories_between() {
        // @ (256) in the top level; @/.snapshots (257) in @; snapshot 258 in
        // directory 300 ("2") of @/.snapshots.
        let refs = BTreeMap::from([(256, r(5, 256, "@")), (257, r(256, 256, ".snapshots")), (258, r(257, 300, "snapshot"))]);
        let dirs = |tree: u64, dir: u64| -> io::Result<Vec<Vec<u8>>> {
            Ok(if (tree, dir) == (257, 300) { vec![b"2".to_vec()] } else { Vec::new() })
        };
        assert_eq!(path_of(258, &refs, dirs).unwrap(), "@/.snapshots/2/snapshot");
        assert_eq!(path_of(256, &refs, dirs).unwrap(), "@");
    }

    #[test]
    fn a_cycle_of_parents_is_an_error_not_a_hang() {
        let refs = BTreeMap::from([(256, r(257, 256, "a")), (257, r(256, 256, "b"))]);
        let e = path_of(256, &refs, |_, _| Ok(Vec::new())).unwrap_err();
        assert!(e.to_string().contains("cycle"), "{e}");
        let orphan = BTreeMap::from([(256, r(999, 256, "a"))]);
        assert!(path_of(256, &orphan, |_, _| Ok(Vec::new())).is_err());
    }
}
