//! A union (overlay) view over a stack of layers, as the kernel's overlayfs
//! and container runtimes build a container's root: the topmost layer that
//! has a name wins; directories merge downwards until one is opaque.
//!
//! Each layer is a directory of any other filesystem (a snapshot's `fs`
//! folder on XFS, a Docker `diff` folder on ext4, a layer tarball, a folder
//! on the analysis host). Deletions are marked two ways:
//! - overlayfs (what snapshotters and Docker keep on disk): a 0:0 character
//!   device named after the deleted entry; an opaque directory carries
//!   `trusted.overlay.opaque=y` (or `user.overlay.opaque=y` for rootless
//!   mounts); a renamed directory carries `trusted.overlay.redirect`, a
//!   metadata-only copy-up `trusted.overlay.metacopy` (data from below);
//! - OCI/AUFS (image layer tarballs): a `.wh.<name>` entry, and
//!   `.wh..wh..opq` inside an opaque directory.
//!
//! The markers themselves are never shown. Node ids are interned stacks of
//! (layer, node) pairs, so one path always gets the same id.

use super::{DirEntry, FileKind, FileReader, FileSystem, Metadata, NodeId};
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, RwLock};

const WH_PREFIX: &[u8] = b".wh.";
const WH_OPAQUE: &[u8] = b".wh..wh..opq";
/// Path components followed for a redirect or metacopy origin.
const MAX_REDIRECT_DEPTH: usize = 256;

/// How a layer marks deletions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whiteouts {
    /// 0:0 character devices and `overlay.*` xattrs (an overlayfs upper or
    /// lower directory on disk).
    Overlay,
    /// `.wh.` names (an image layer tarball).
    Oci,
}

pub struct Layer {
    pub fs: Arc<dyn FileSystem>,
    /// The layer's root directory inside `fs`.
    pub root: NodeId,
    /// What the manifest shows as the file's origin (`snapshot 12`,
    /// `sha256:1a2b…`, `upper`).
    pub name: String,
    pub whiteouts: Whiteouts,
}

struct Node {
    /// Top first: the visible (layer, node) and, for a directory, the
    /// directories below it that merge into it.
    parts: Vec<(usize, NodeId)>,
    parent: NodeId,
    name: Vec<u8>,
}

/// Nodes by id, and ids by (layer, node) stack.
type Table = (Vec<Node>, HashMap<Vec<(usize, NodeId)>, NodeId>);

pub struct Overlay {
    /// Top layer first.
    layers: Vec<Layer>,
    nodes: RwLock<Table>,
    warnings: crate::util::warnings::Warnings,
}

fn err(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// One name's occurrences while a directory is merged, top first.
struct Stack {
    kind: FileKind,
    parts: Vec<(usize, NodeId)>,
    /// No lower occurrence can join (a non-directory on top, or an opaque
    /// or redirected directory).
    closed: bool,
}

impl Overlay {
    /// `layers` top first. The root merges every layer's root (until an
    /// opaque one).
    pub fn new(layers: Vec<Layer>) -> io::Result<Overlay> {
        if layers.is_empty() {
            return Err(err("an overlay needs at least one layer".into()));
        }
        let parts: Vec<(usize, NodeId)> = layers.iter().enumerate().map(|(i, l)| (i, l.root)).collect();
        let root = Node { parts: parts.clone(), parent: 0, name: Vec::new() };
        let nodes = RwLock::new((vec![root], HashMap::from([(parts, 0)])));
        let ov = Overlay { layers, nodes, warnings: Default::default() };
        let cut = ov.cut_at_opaque(ov.parts(0)?);
        ov.nodes.write().unwrap_or_else(|p| p.into_inner()).0[0].parts = cut;
        Ok(ov)
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    fn parts(&self, node: NodeId) -> io::Result<Vec<(usize, NodeId)>> {
        let t = self.nodes.read().unwrap_or_else(|p| p.into_inner());
        t.0.get(node as usize).map(|n| n.parts.clone()).ok_or_else(|| err(format!("unknown overlay node {node}")))
    }

    fn intern(&self, parts: Vec<(usize, NodeId)>, parent: NodeId, name: &[u8]) -> NodeId {
        let mut t = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        if let Some(&id) = t.1.get(&parts) {
            return id;
        }
        let id = t.0.len() as NodeId;
        t.0.push(Node { parts: parts.clone(), parent, name: name.to_vec() });
        t.1.insert(parts, id);
        id
    }

    fn xattr_is(&self, (layer, node): (usize, NodeId), key: &str, want: &[u8]) -> bool {
        self.overlay_xattr(layer, node, key).is_some_and(|v| v == want)
    }

    /// `trusted.overlay.<key>`, or `user.overlay.<key>` (rootless mounts).
    fn overlay_xattr(&self, layer: usize, node: NodeId, key: &str) -> Option<Vec<u8>> {
        let l = &self.layers[layer];
        if l.whiteouts != Whiteouts::Overlay {
            return None;
        }
        let attrs = match l.fs.xattrs(node) {
            Ok(a) => a,
            Err(e) => {
                self.warnings.add(format!("layer {}: extended attributes of node {node} unreadable: {e}", l.name));
                return None;
            }
        };
        let (t, u) = (format!("trusted.overlay.{key}"), format!("user.overlay.{key}"));
        attrs.into_iter().find(|(n, _)| n == t.as_bytes() || n == u.as_bytes()).map(|(_, v)| v)
    }

    /// Keeps a directory's parts down to and including the first opaque
    /// one.
    fn cut_at_opaque(&self, mut parts: Vec<(usize, NodeId)>) -> Vec<(usize, NodeId)> {
        if let Some(i) = parts.iter().position(|&p| self.xattr_is(p, "opaque", b"y")) {
            parts.truncate(i + 1);
        }
        parts
    }

    fn is_whiteout(&self, layer: usize, e: &DirEntry) -> bool {
        if self.layers[layer].whiteouts != Whiteouts::Overlay || !matches!(e.kind, FileKind::CharDevice | FileKind::Unknown) {
            return false;
        }
        self.layers[layer].fs.metadata(e.node).is_ok_and(|m| m.kind() == FileKind::CharDevice && m.rdev == Some((0, 0)))
    }

    fn kind_of(&self, layer: usize, e: &DirEntry) -> FileKind {
        match e.kind {
            FileKind::Unknown => self.layers[layer].fs.metadata(e.node).map(|m| m.kind()).unwrap_or(FileKind::Unknown),
            k => k,
        }
    }

    /// Follows `path` (components) from a layer's root, inside that layer.
    fn find_in_layer(&self, layer: usize, path: &[Vec<u8>]) -> Option<(NodeId, FileKind)> {
        let l = &self.layers[layer];
        let (mut node, mut kind) = (l.root, FileKind::Dir);
        for c in path.iter().take(MAX_REDIRECT_DEPTH) {
            if kind != FileKind::Dir {
                return None;
            }
            let e = l.fs.read_dir(node).ok()?.into_iter().find(|e| &e.name == c)?;
            kind = self.kind_of(layer, &e);
            node = e.node;
        }
        Some((node, kind))
    }

    /// The union path of a node, as components.
    fn path_of(&self, mut node: NodeId) -> Vec<Vec<u8>> {
        let t = self.nodes.read().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        while node != 0 && out.len() < 4096 {
            let Some(n) = t.0.get(node as usize) else { break };
            out.push(n.name.clone());
            node = n.parent;
        }
        out.reverse();
        out
    }

    /// Where a redirect points: an absolute path from the layer roots, or
    /// a sibling name (relative to the entry's own directory).
    fn redirect_target(path: &[Vec<u8>], redirect: &[u8]) -> Vec<Vec<u8>> {
        if redirect.starts_with(b"/") {
            redirect.split(|&c| c == b'/').filter(|c| !c.is_empty()).map(<[u8]>::to_vec).collect()
        } else {
            let mut p = path[..path.len().saturating_sub(1)].to_vec();
            p.push(redirect.to_vec());
            p
        }
    }

    /// Lower directories for a redirected (renamed) directory.
    fn redirect_parts(&self, below: usize, dir_path: &[Vec<u8>], redirect: &[u8]) -> Vec<(usize, NodeId)> {
        let target = Self::redirect_target(dir_path, redirect);
        let mut out = Vec::new();
        for l in below + 1..self.layers.len() {
            match self.find_in_layer(l, &target) {
                Some((n, FileKind::Dir)) => {
                    out.push((l, n));
                    if self.xattr_is((l, n), "opaque", b"y") {
                        break;
                    }
                }
                Some(_) => break,
                None => {}
            }
        }
        out
    }
}

impl FileSystem for Overlay {
    fn kind(&self) -> &'static str {
        "overlay"
    }
    fn root(&self) -> NodeId {
        0
    }

    fn read_dir(&self, dir: NodeId) -> io::Result<Vec<DirEntry>> {
        let parts = self.parts(dir)?;
        let dir_path = self.path_of(dir);
        let mut order: Vec<Vec<u8>> = Vec::new();
        let mut stacks: HashMap<Vec<u8>, Stack> = HashMap::new();
        // Names deleted by a layer already merged: hidden in every layer below.
        let mut hidden: HashSet<Vec<u8>> = HashSet::new();
        for (pi, &(layer, node)) in parts.iter().enumerate() {
            let entries = match self.layers[layer].fs.read_dir(node) {
                Ok(e) => e,
                // The top must be readable; a damaged lower layer loses
                // only what it alone holds.
                Err(e) if pi > 0 => {
                    self.warnings.add(format!("layer {}: directory unreadable: {e}", self.layers[layer].name));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let oci = self.layers[layer].whiteouts == Whiteouts::Oci;
            let mut opaque = false;
            let mut deleted = Vec::new();
            for e in entries {
                if oci && e.name == WH_OPAQUE {
                    opaque = true;
                    continue;
                }
                if oci && e.name.starts_with(WH_PREFIX) {
                    let target = &e.name[WH_PREFIX.len()..];
                    if matches!(target, b"" | b"." | b"..") {
                        let shown = crate::util::bytes::escape(&e.name);
                        self.warnings.add(format!("layer {}: whiteout `{shown}` names no entry; ignored", self.layers[layer].name));
                    } else {
                        deleted.push(target.to_vec());
                    }
                    continue;
                }
                if self.is_whiteout(layer, &e) {
                    deleted.push(e.name);
                    continue;
                }
                if hidden.contains(&e.name) {
                    continue;
                }
                let kind = self.kind_of(layer, &e);
                match stacks.get_mut(&e.name) {
                    None => {
                        order.push(e.name.clone());
                        let mut closed = kind != FileKind::Dir;
                        let mut parts = vec![(layer, e.node)];
                        if kind == FileKind::Dir {
                            if self.xattr_is((layer, e.node), "opaque", b"y") {
                                closed = true;
                            } else if let Some(r) = self.overlay_xattr(layer, e.node, "redirect") {
                                let mut path = dir_path.clone();
                                path.push(e.name.clone());
                                parts.extend(self.redirect_parts(layer, &path, &r));
                                closed = true;
                            }
                        }
                        stacks.insert(e.name, Stack { kind, parts, closed });
                    }
                    Some(s) if s.closed => {}
                    // A lower non-directory under a directory ends the merge.
                    Some(s) if kind != FileKind::Dir => s.closed = true,
                    Some(s) => {
                        s.parts.push((layer, e.node));
                        if self.xattr_is((layer, e.node), "opaque", b"y") {
                            s.closed = true;
                        }
                    }
                }
            }
            hidden.extend(deleted);
            if opaque {
                break;
            }
        }
        let mut out = Vec::with_capacity(order.len());
        for name in order {
            let Some(s) = stacks.remove(&name) else { continue };
            let node = self.intern(s.parts, dir, &name);
            out.push(DirEntry { name, node, kind: s.kind });
        }
        Ok(out)
    }

    fn metadata(&self, node: NodeId) -> io::Result<Metadata> {
        let (layer, n) = *self.parts(node)?.first().ok_or_else(|| err(format!("overlay node {node} is empty")))?;
        let mut m = self.layers[layer].fs.metadata(n)?;
        m.node = node;
        Ok(m)
    }

    fn open(&self, node: NodeId) -> io::Result<FileReader<'_>> {
        let (layer, n) = *self.parts(node)?.first().ok_or_else(|| err(format!("overlay node {node} is empty")))?;
        // A metadata-only copy-up keeps the data in a lower layer: under the
        // same name (or its redirect) in the directories merged below it,
        // which also covers a file inside a renamed directory.
        if self.overlay_xattr(layer, n, "metacopy").is_some() {
            let (parent, name) = {
                let t = self.nodes.read().unwrap_or_else(|p| p.into_inner());
                let node = &t.0[node as usize];
                (node.parent, node.name.clone())
            };
            let data = match self.overlay_xattr(layer, n, "redirect") {
                Some(r) if r.starts_with(b"/") => {
                    let path = Self::redirect_target(&[], &r);
                    (layer + 1..self.layers.len()).find_map(|l| match self.find_in_layer(l, &path) {
                        Some((ln, FileKind::File)) => Some((l, ln)),
                        _ => None,
                    })
                }
                r => {
                    let want = r.unwrap_or(name);
                    self.parts(parent)?.into_iter().filter(|&(l, _)| l > layer).find_map(|(l, dir)| {
                        let e = self.layers[l].fs.read_dir(dir).ok()?.into_iter().find(|e| e.name == want)?;
                        (self.kind_of(l, &e) == FileKind::File).then_some((l, e.node))
                    })
                }
            };
            return match data {
                Some((l, ln)) => self.layers[l].fs.open(ln),
                None => Err(err(format!("metacopy file: its data is in no lower layer (layer {})", self.layers[layer].name))),
            };
        }
        self.layers[layer].fs.open(n)
    }

    fn read_link(&self, node: NodeId) -> io::Result<Vec<u8>> {
        let (layer, n) = *self.parts(node)?.first().ok_or_else(|| err(format!("overlay node {node} is empty")))?;
        self.layers[layer].fs.read_link(n)
    }

    /// The union's own problems; the layers' filesystems report theirs
    /// (they are usually the node's own volumes).
    fn warnings(&self) -> Vec<String> {
        self.warnings.list()
    }

    fn xattrs(&self, node: NodeId) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (layer, n) = *self.parts(node)?.first().ok_or_else(|| err(format!("overlay node {node} is empty")))?;
        let attrs = self.layers[layer].fs.xattrs(n)?;
        // The union's own bookkeeping is not the file's.
        Ok(attrs.into_iter().filter(|(k, _)| !k.starts_with(b"trusted.overlay.") && !k.starts_with(b"user.overlay.")).collect())
    }

    fn provenance(&self, node: NodeId) -> Option<String> {
        let (layer, _) = *self.parts(node).ok()?.first()?;
        Some(self.layers[layer].name.clone())
    }
}
