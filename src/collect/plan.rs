//! Planning: walk each volume guided by the target globs and list what to
//! copy. Directories no target can match are never read.

use crate::fs::{FileKind, FileSystem, Metadata, NodeId};
use crate::targets::{Matcher, State};
use std::collections::HashSet;

/// Directory depth beyond which a walk stops (a loop of hard-linked
/// directories, or hostile nesting).
const MAX_DEPTH: usize = 128;

pub struct Item {
    pub node: NodeId,
    /// Absolute path inside the volume, raw bytes.
    pub path: Vec<u8>,
    pub meta: Option<Metadata>,
    pub target: String,
    pub kind: FileKind,
    /// Why it is listed but not copied (size limit, not a regular file), or
    /// why it could not be examined.
    pub skip: Option<String>,
    pub error: Option<String>,
}

/// Walks one filesystem. Returns the items and problems met on the way
/// (unreadable directories are also returned as error items).
pub fn walk(fs: &dyn FileSystem, m: &Matcher) -> Vec<Item> {
    let mut items = Vec::new();
    let mut visited: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<(NodeId, Vec<u8>, State, usize)> = vec![(fs.root(), Vec::new(), m.start(), 0)];
    visited.insert(fs.root());
    while let Some((dir, path, state, depth)) = stack.pop() {
        let entries = match fs.read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                items.push(error_item(dir, path_or_root(&path), FileKind::Dir, format!("cannot list directory: {e}")));
                continue;
            }
        };
        for e in entries {
            let (next, hit) = m.step(&state, &e.name);
            if next.is_dead() && hit.is_none() {
                continue;
            }
            let mut child = path.clone();
            child.push(b'/');
            child.extend_from_slice(&e.name);
            let kind = match e.kind {
                FileKind::Unknown => match fs.metadata(e.node) {
                    Ok(md) => md.kind(),
                    Err(err) => {
                        items.push(error_item(e.node, child, FileKind::Unknown, err.to_string()));
                        continue;
                    }
                },
                k => k,
            };
            if kind == FileKind::Dir {
                if next.is_dead() {
                    continue;
                }
                if depth + 1 >= MAX_DEPTH {
                    items.push(error_item(e.node, child, kind, format!("directory nesting deeper than {MAX_DEPTH}; not entered")));
                } else if !visited.insert(e.node) {
                    items.push(error_item(e.node, child, kind, "directory loop (already visited); not entered".into()));
                } else {
                    stack.push((e.node, child, next, depth + 1));
                }
                continue;
            }
            let Some(t) = hit else { continue };
            if m.excluded(t, &child) {
                continue;
            }
            items.push(examine(fs, m, t, e.node, child, kind));
        }
    }
    items
}

fn path_or_root(p: &[u8]) -> Vec<u8> {
    if p.is_empty() { b"/".to_vec() } else { p.to_vec() }
}

fn error_item(node: NodeId, path: Vec<u8>, kind: FileKind, error: String) -> Item {
    Item { node, path, meta: None, target: String::new(), kind, skip: None, error: Some(error) }
}

fn examine(fs: &dyn FileSystem, m: &Matcher, t: usize, node: NodeId, path: Vec<u8>, kind: FileKind) -> Item {
    let target = &m.targets[t];
    let meta = match fs.metadata(node) {
        Ok(md) => md,
        Err(e) => {
            let mut it = error_item(node, path, kind, format!("cannot read metadata: {e}"));
            it.target = target.name.clone();
            return it;
        }
    };
    let skip = match kind {
        FileKind::File => target
            .max_size
            .filter(|&max| meta.size > max)
            .map(|max| format!("larger than the {max}-byte limit of target {}", target.name)),
        FileKind::Symlink => None,
        other => Some(format!("not a regular file ({other:?})")),
    };
    Item { node, path, meta: Some(meta), target: target.name.clone(), kind, skip, error: None }
}
