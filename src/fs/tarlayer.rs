//! An uncompressed tar archive (a container image layer) as a read-only
//! filesystem: the headers are indexed once into a tree; file content is
//! read in place from the archive.
//!
//! The archive is hostile input. Paths are cleaned lexically inside the
//! layer: a leading `/` is dropped (runtimes unpack absolute names inside
//! the container's root too), `..` that would climb above the layer's root
//! rejects the entry, an entry below a symlink or a file is rejected (a
//! link is never followed while indexing), and a hard link must name an
//! earlier regular file of the same layer. Each rejection is a warning.
//! Whiteout names (`.wh.*`) are kept as they are: the overlay applies them.

use super::{DirEntry, FileKind, FileReader, FileSystem, Metadata, NodeId};
use crate::evidence::{ReadAt, Slice, Source};
use crate::util::corrupt;
use crate::util::tar::{self, BLOCK, MAX_META};
use crate::util::time::Timestamp;
use std::collections::HashMap;
use std::io;

/// Entries indexed per layer: a hostile archive of empty headers must end,
/// and the index costs about 200 bytes an entry (real layers hold up to a
/// few hundred thousand files).
const MAX_ENTRIES: usize = 1_000_000;

struct Entry {
    name: Vec<u8>,
    kind: FileKind,
    parent: NodeId,
    children: Vec<NodeId>,
    /// Content: offset in the archive and length.
    data: u64,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: Option<Timestamp>,
    atime: Option<Timestamp>,
    ctime: Option<Timestamp>,
    link: Vec<u8>,
    rdev: Option<(u32, u32)>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Entry {
    fn dir(name: Vec<u8>, parent: NodeId) -> Entry {
        Entry {
            name,
            kind: FileKind::Dir,
            parent,
            children: Vec::new(),
            data: 0,
            size: 0,
            mode: 0o040755,
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: None,
            atime: None,
            ctime: None,
            link: Vec::new(),
            rdev: None,
            xattrs: Vec::new(),
        }
    }
}

pub struct TarLayer {
    src: Source,
    nodes: Vec<Entry>,
    warnings: crate::util::warnings::Warnings,
}

/// A PAX time: seconds with an optional fraction.
fn pax_time(v: &[u8]) -> Option<Timestamp> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let ns: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    Some(Timestamp::new(secs.parse().ok()?, ns.parse().ok()?))
}

/// Cleans a member path inside the layer; None when `..` climbs out.
fn clean(path: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            c => out.push(c.to_vec()),
        }
    }
    Some(out)
}

/// What the headers before a member said about it.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Pending {
    fn pax(&self, key: &[u8]) -> Option<&[u8]> {
        self.pax.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
    }
}

impl TarLayer {
    /// Indexes the archive. Damage after the first header ends the index
    /// with a warning (what came before is kept); an archive whose first
    /// header is not a tar header is an error.
    pub fn open(src: Source) -> io::Result<TarLayer> {
        let mut layer = TarLayer { src, nodes: vec![Entry::dir(Vec::new(), 0)], warnings: Default::default() };
        let mut lookup: HashMap<(NodeId, Vec<u8>), NodeId> = HashMap::new();
        let mut pos = 0u64;
        let mut pending = Pending::default();
        let mut count = 0usize;
        let mut h = [0u8; BLOCK];
        loop {
            match layer.src.read_at(pos, &mut h) {
                Ok(n) if n == BLOCK => {}
                Ok(0) if pos > 0 => {
                    layer.warn(format!("the archive ends at byte {pos} without its end-of-archive marker"));
                    break;
                }
                Ok(_) if pos > 0 => {
                    layer.warn(format!("truncated: the archive ends inside a header at byte {pos}"));
                    break;
                }
                Ok(_) => return Err(corrupt("not a tar archive (shorter than one header)")),
                Err(e) => return Err(e),
            }
            if h.iter().all(|&b| b == 0) {
                break;
            }
            if !checksum_ok(&h) {
                if pos == 0 {
                    return Err(corrupt("not a tar archive (header checksum mismatch)"));
                }
                layer.warn(format!("damaged tar header at byte {pos}: the rest of the layer is not read"));
                break;
            }
            count += 1;
            if count > MAX_ENTRIES {
                layer.warn(format!("more than {MAX_ENTRIES} entries: the rest of the layer is not read"));
                break;
            }
            let size = tar::number(&h[124..136])?;
            let data = pos + BLOCK as u64;
            let Some(next) = data.checked_add(tar::padded(size)) else {
                layer.warn(format!("tar header at byte {pos} claims {size} bytes"));
                break;
            };
            let typeflag = h[156];
            if matches!(typeflag, b'L' | b'K' | b'x') {
                if size > MAX_META {
                    layer.warn(format!("tar metadata record of {size} bytes at byte {pos}: the rest is not read"));
                    break;
                }
                let mut b = vec![0u8; size as usize];
                layer.src.read_exact_at(data, &mut b)?;
                match typeflag {
                    b'L' => pending.long_name = Some(tar::field(&b).to_vec()),
                    b'K' => pending.long_link = Some(tar::field(&b).to_vec()),
                    _ => match tar::pax_records(&b) {
                        Ok(r) => pending.pax.extend(r.into_iter().map(|(k, v)| (k.to_vec(), v.to_vec()))),
                        Err(e) => layer.warn(format!("PAX header at byte {pos}: {e}")),
                    },
                }
            } else if typeflag != b'g' {
                layer.member(&h, data, size, std::mem::take(&mut pending), &mut lookup);
            }
            pos = next;
        }
        if pos > layer.src.len() {
            layer.warn(format!("truncated: the archive is {} bytes, its last member ends at {pos}", layer.src.len()));
        }
        Ok(layer)
    }

    fn warn(&self, m: String) {
        self.warnings.add(m);
    }

    /// Adds one member to the tree.
    fn member(&mut self, h: &[u8], data: u64, size: u64, p: Pending, lookup: &mut HashMap<(NodeId, Vec<u8>), NodeId>) {
        let name = p.pax(b"path").map(<[u8]>::to_vec).or(p.long_name.clone()).unwrap_or_else(|| tar::header_name(h));
        let link = p.pax(b"linkpath").map(<[u8]>::to_vec).or(p.long_link.clone()).unwrap_or_else(|| tar::field(&h[157..257]).to_vec());
        let shown = crate::util::bytes::escape(&name);
        let kind = match h[156] {
            b'0' | 0 | b'7' if name.ends_with(b"/") => FileKind::Dir,
            b'0' | 0 | b'7' | b'1' => FileKind::File,
            b'2' => FileKind::Symlink,
            b'3' => FileKind::CharDevice,
            b'4' => FileKind::BlockDevice,
            b'5' => FileKind::Dir,
            b'6' => FileKind::Fifo,
            t => {
                self.warn(format!("`{shown}`: unsupported tar member type {:?}; skipped", t as char));
                return;
            }
        };
        let Some(comps) = clean(&name) else {
            self.warn(format!("`{shown}`: the path climbs out of the layer with `..`; skipped"));
            return;
        };
        let Some((leaf, parents)) = comps.split_last() else { return };
        let num = |key: &[u8], f: &[u8]| p.pax(key).and_then(|v| std::str::from_utf8(v).ok()?.parse().ok()).or_else(|| tar::number(f).ok());
        let mut e = Entry::dir(leaf.clone(), 0);
        e.kind = kind;
        e.mode = num(b"mode", &h[100..108]).unwrap_or(0) as u32 & 0o7777 | mode_bits(kind);
        e.uid = num(b"uid", &h[108..116]).unwrap_or(0) as u32;
        e.gid = num(b"gid", &h[116..124]).unwrap_or(0) as u32;
        e.mtime = p.pax(b"mtime").and_then(pax_time).or_else(|| Some(Timestamp::new(tar::number(&h[136..148]).ok()? as i64, 0)));
        e.atime = p.pax(b"atime").and_then(pax_time);
        e.ctime = p.pax(b"ctime").and_then(pax_time);
        e.xattrs = p.pax.iter().filter_map(|(k, v)| Some((k.strip_prefix(b"SCHILY.xattr.")?.to_vec(), v.clone()))).collect();
        if matches!(kind, FileKind::CharDevice | FileKind::BlockDevice) {
            let n = |f: &[u8]| tar::number(f).unwrap_or(0) as u32;
            e.rdev = Some((n(&h[329..337]), n(&h[337..345])));
        }
        match h[156] {
            b'1' => {
                // A hard link shares the content of an earlier file of this
                // layer; it never reaches outside the archive.
                let target = clean(&link).and_then(|t| self.find(&t, lookup));
                match target.map(|t| &self.nodes[t as usize]) {
                    Some(t) if t.kind == FileKind::File => {
                        (e.data, e.size, e.nlink) = (t.data, t.size, 2);
                    }
                    _ => {
                        let l = crate::util::bytes::escape(&link);
                        self.warn(format!("`{shown}`: hard link to `{l}`, which is not an earlier file of this layer; skipped"));
                        return;
                    }
                }
            }
            _ if kind == FileKind::File => {
                e.data = data;
                e.size = p.pax(b"size").and_then(|v| std::str::from_utf8(v).ok()?.parse().ok()).unwrap_or(size);
            }
            _ => {}
        }
        if kind == FileKind::Symlink {
            e.link = link;
        }
        // Parents: made implicitly when missing; never through a link.
        let mut dir: NodeId = 0;
        for c in parents {
            dir = match lookup.get(&(dir, c.clone())) {
                Some(&n) if self.nodes[n as usize].kind == FileKind::Dir => n,
                Some(&n) => {
                    let what = format!("{:?}", self.nodes[n as usize].kind).to_lowercase();
                    self.warn(format!(
                        "`{shown}`: a parent is a {what} in this layer, not a directory; skipped (links are never followed)"
                    ));
                    return;
                }
                None => {
                    let n = self.nodes.len() as NodeId;
                    self.nodes.push(Entry::dir(c.clone(), dir));
                    self.nodes[dir as usize].children.push(n);
                    lookup.insert((dir, c.clone()), n);
                    n
                }
            };
        }
        e.parent = dir;
        match lookup.get(&(dir, leaf.clone())) {
            // A later member replaces an earlier one; a directory keeps its
            // children when it is listed again.
            Some(&n) => {
                let old = &mut self.nodes[n as usize];
                if old.kind == FileKind::Dir && kind == FileKind::Dir {
                    e.children = std::mem::take(&mut old.children);
                }
                *old = e;
            }
            None => {
                let n = self.nodes.len() as NodeId;
                self.nodes.push(e);
                self.nodes[dir as usize].children.push(n);
                lookup.insert((dir, leaf.clone()), n);
            }
        }
    }

    fn find(&self, comps: &[Vec<u8>], lookup: &HashMap<(NodeId, Vec<u8>), NodeId>) -> Option<NodeId> {
        comps.iter().try_fold(0, |dir, c| lookup.get(&(dir, c.clone())).copied())
    }

    /// Where a regular file's content lies in the archive: (offset, length).
    /// An image tarball's layers are members read in place this way.
    pub fn content_range(&self, node: NodeId) -> Option<(u64, u64)> {
        self.nodes.get(node as usize).filter(|e| e.kind == FileKind::File).map(|e| (e.data, e.size))
    }

    /// The archive this layer reads.
    pub fn source(&self) -> &Source {
        &self.src
    }

    fn entry(&self, node: NodeId) -> io::Result<&Entry> {
        self.nodes.get(node as usize).ok_or_else(|| corrupt(format!("unknown tar entry {node}")))
    }
}

fn mode_bits(kind: FileKind) -> u32 {
    match kind {
        FileKind::File => 0o100000,
        FileKind::Dir => 0o040000,
        FileKind::Symlink => 0o120000,
        FileKind::CharDevice => 0o020000,
        FileKind::BlockDevice => 0o060000,
        FileKind::Fifo => 0o010000,
        FileKind::Socket => 0o140000,
        FileKind::Unknown => 0,
    }
}

/// The header checksum: the byte sum with the checksum field as spaces
/// (unsigned, or signed as some old tars wrote it).
fn checksum_ok(h: &[u8]) -> bool {
    let Ok(stored) = tar::number(&h[148..156]) else { return false };
    let unsigned: u64 = h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u64::from(b) }).sum();
    let signed: i64 = h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { i64::from(b as i8) }).sum();
    stored == unsigned || stored as i64 == signed
}

impl FileSystem for TarLayer {
    fn kind(&self) -> &'static str {
        "tar"
    }
    fn root(&self) -> NodeId {
        0
    }

    fn read_dir(&self, dir: NodeId) -> io::Result<Vec<DirEntry>> {
        let d = self.entry(dir)?;
        if d.kind != FileKind::Dir {
            return Err(corrupt(format!("tar entry {dir} is not a directory")));
        }
        Ok(d.children
            .iter()
            .map(|&c| {
                let e = &self.nodes[c as usize];
                DirEntry { name: e.name.clone(), node: c, kind: e.kind }
            })
            .collect())
    }

    fn metadata(&self, node: NodeId) -> io::Result<Metadata> {
        let e = self.entry(node)?;
        Ok(Metadata {
            node,
            kind: Some(e.kind),
            size: if e.kind == FileKind::Symlink { e.link.len() as u64 } else { e.size },
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            nlink: e.nlink,
            mtime: e.mtime,
            atime: e.atime,
            ctime: e.ctime,
            btime: None,
            rdev: e.rdev,
        })
    }

    fn open(&self, node: NodeId) -> io::Result<FileReader<'_>> {
        let e = self.entry(node)?;
        if e.kind != FileKind::File {
            return Err(corrupt(format!("not a regular file ({:?})", e.kind)));
        }
        Ok(Box::new(Slice::new(self.src.clone(), e.data, e.size).reader()))
    }

    fn read_link(&self, node: NodeId) -> io::Result<Vec<u8>> {
        let e = self.entry(node)?;
        if e.kind != FileKind::Symlink {
            return Err(corrupt("not a symbolic link"));
        }
        Ok(e.link.clone())
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.list()
    }

    fn xattrs(&self, node: NodeId) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self.entry(node)?.xattrs.clone())
    }
}
