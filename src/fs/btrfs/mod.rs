//! Our own read-only Btrfs reader.
//!
//! Written from the public on-disk format documentation (btrfs wiki
//! "On-disk Format", the kernel's `include/uapi/linux/btrfs_tree.h`) rather
//! than taken from a crate. What crates.io has (2026-12): `btrfs` (1.2) is an
//! ioctl interface to a mounted filesystem, its disk-format part on
//! `minilzo` (C) and flate2 0.2; `btrfs-disk` with `btrfs-fs` (0.13, the
//! btrfsutils project, a writer too) runs bindgen at build time (libclang
//! on every build machine); `btrfs-core` (0.1, Apache-2.0 only) documents
//! `read_file` as assembling a file's whole content in memory, from the FS
//! tree (5) rather than the default subvolume, with crc32c the only
//! checksum it checks. snapsift
//! needs streaming reads of multi-GiB logs, the default subvolume and the
//! subvolumes nested in it, every checksum type it can verify, and its own
//! damage rules (checks against the parent, another copy, warnings).
//!
//! Covered: the superblock (checksum verified: crc32c, xxhash64, sha256,
//! blake2b; the mirrors at 64 MiB and 256 GiB when
//! the primary is damaged), the `sys_chunk_array` bootstrap and the chunk
//! tree, SINGLE, DUP and RAID1/RAID1C3/C4 chunks (the copies on this
//! device; a tree block with a bad checksum is read from the next copy),
//! tree blocks checked against their parent (tree.rs), the default
//! subvolume (the root tree's "default" entry, else the FS tree, 5), inodes
//! with all four times (otime as the birth time) in nanoseconds, directories
//! in DIR_INDEX order, inline, regular, hole and preallocated extents,
//! zlib, zstd and LZO compressed extents (compress.rs), inline symlinks,
//! xattrs, and subvolumes nested in the tree (their directory entries are
//! followed into the subvolume's own tree, as the kernel shows them when the
//! default subvolume is mounted).
//!
//! Once a tree block has been used despite a checksum mismatch, `open`
//! reads a file only up to its last extent (a flipped bit in a damaged
//! leaf must not turn an inode's size into an exabyte of zeros), as the XFS
//! reader does with a damaged inode; a trailing hole is then cut off.
//!
//! Node ids: the inode number in the default subvolume; in a nested
//! subvolume, the inode number plus the subvolume's index (in the order
//! they were met) shifted left by 48.
//!
//! Every subvolume is listed with its path, UUIDs, read-only flag and
//! creation time (subvols.rs), and can be opened as a view of its own that
//! shares this one's metadata cache: the host layer mounts them where the
//! machine's fstab says (`subvol=@/var`) and reads snapshots (snapper's
//! `.snapshots/N/snapshot`) as older copies.
//!
//! Not covered: striped profiles (RAID0, RAID10, RAID5, RAID6) and other
//! devices of a multi-device filesystem (their chunks are errors), data
//! checksums (the csum tree is not read), the fsync log tree (a warning: its
//! changes are not replayed), extent tree v2, the RAID stripe tree, and
//! encrypted or otherwise encoded extents.

mod chunks;
mod compress;
mod file;
mod items;
mod subvols;
mod superblock;
mod tree;

use super::{DirEntry, FileKind, FileReader, FileSystem, Metadata, NodeId, Subvolume};
use crate::evidence::{ReadAt, Source};
use crate::util::corrupt;
use chunks::{CHUNK_ITEM, Chunk, ChunkMap};
use file::ExtentReader;
use items::{DIR_INDEX, INODE_ITEM, Inode, ROOT_ITEM, XATTR_ITEM};
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use superblock::Superblock;
use tree::{Key, Meta, Root};

/// The root tree, chunk tree and first filesystem tree, and the directory
/// in the root tree that holds "default".
const ROOT_TREE_DIR: u64 = 6;
const FS_TREE: u64 = 5;
const CHUNK_TREE_OBJECTID: u64 = 256;
const DIR_ITEM: u8 = 84;
/// Bits of a node id below the subvolume index.
const INO_BITS: u32 = 48;
/// Subvolumes a walk may enter.
const MAX_SUBVOLS: usize = 1 << 16;
/// Entries read from one directory.
const MAX_DIR_ENTRIES: usize = 10_000_000;
const MAX_SYMLINK: u64 = 4096;
const MAX_XATTRS: usize = 10_000;

/// A subvolume (filesystem tree) met so far.
#[derive(Clone, Copy, Debug)]
struct Subvol {
    id: u64,
    root: Root,
    /// Its top directory's inode number (256).
    dirid: u64,
}

pub struct Btrfs {
    /// Shared by the views of one filesystem's subvolumes.
    meta: Arc<Meta>,
    root_tree: Root,
    /// Index 0 is the default subvolume.
    subvols: Mutex<Vec<Subvol>>,
}

impl Btrfs {
    pub fn open(dev: Source) -> io::Result<Btrfs> {
        let (sb, notes) = Btrfs::superblock(&dev)?;
        let sys = ChunkMap::from_sys_array(&sb.sys_chunk_array)?;
        let mut meta = Meta::new(dev, sb, sys);
        for n in notes {
            meta.warn(n);
        }
        let chunk_root = Root { bytenr: meta.sb.chunk_root, level: meta.sb.chunk_root_level };
        let lo = Key::new(CHUNK_TREE_OBJECTID, CHUNK_ITEM, 0);
        let hi = Key::new(CHUNK_TREE_OBJECTID, CHUNK_ITEM, u64::MAX);
        let items = meta.search(chunk_root, lo, hi, usize::MAX, None).map_err(|e| corrupt(format!("chunk tree: {e}")))?;
        let mut all: BTreeMap<u64, Chunk> = BTreeMap::new();
        for (k, d) in &items {
            all.insert(k.offset, Chunk::parse(k.offset, d)?.0);
        }
        meta.chunks = ChunkMap::new(all.into_values().collect()).map_err(|e| corrupt(format!("chunk tree: {e}")))?;
        let sb = &meta.sb;
        if sb.num_devices > 1 {
            meta.warn(format!("one device (id {}) of a {}-device filesystem: data on the others cannot be read", sb.devid, sb.num_devices));
        }
        if sb.log_root != 0 {
            meta.warn(
                "the fsync log tree is not empty (the machine was not shut down cleanly): what was fsynced since the last commit is not replayed"
                    .into(),
            );
        }
        let root_tree = Root { bytenr: meta.sb.root, level: meta.sb.root_level };
        let fs = Btrfs { meta: Arc::new(meta), root_tree, subvols: Mutex::new(Vec::new()) };
        let default = fs.default_subvol()?;
        fs.show(default)
    }

    /// This view, showing subvolume `id` from its top directory.
    fn show(self, id: u64) -> io::Result<Btrfs> {
        let (root, dirid) = self.root_of(id)?;
        self.lock().push(Subvol { id, root, dirid });
        let top = self.inode(self.root())?;
        if FileKind::from_mode(top.mode) != FileKind::Dir {
            return Err(corrupt(format!("the top directory of subvolume {id} is not a directory")));
        }
        Ok(self)
    }

    /// The primary superblock, else the first good mirror (with a note).
    fn superblock(dev: &Source) -> io::Result<(Superblock, Vec<String>)> {
        let mut why = Vec::new();
        for at in superblock::COPIES {
            if at.saturating_add(superblock::SIZE as u64) > dev.len() {
                break;
            }
            let mut b = vec![0u8; superblock::SIZE];
            let parsed = dev.read_exact_at(at, &mut b).and_then(|_| Superblock::parse(&b, at));
            match parsed {
                Ok(sb) if why.is_empty() => return Ok((sb, Vec::new())),
                Ok(sb) => {
                    let note = format!("the primary superblock is damaged ({}); the copy at {at} was used", why.join("; "));
                    return Ok((sb, vec![note]));
                }
                Err(e) => why.push(format!("at {at}: {e}")),
            }
        }
        Err(corrupt(format!("no usable superblock: {}", why.join("; "))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subvol>> {
        self.subvols.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The subvolume the root tree's "default" entry names, else 5.
    fn default_subvol(&self) -> io::Result<u64> {
        let lo = Key::new(ROOT_TREE_DIR, DIR_ITEM, 0);
        let hi = Key::new(ROOT_TREE_DIR, DIR_ITEM, u64::MAX);
        for (_, d) in self.meta.search(self.root_tree, lo, hi, 1024, None)? {
            for item in items::dir_items(&d)? {
                if item.name == b"default" && item.location.kind == ROOT_ITEM {
                    return Ok(item.location.objectid);
                }
            }
        }
        Ok(FS_TREE)
    }

    /// A subvolume's tree root and top directory, from its ROOT_ITEM.
    fn root_of(&self, id: u64) -> io::Result<(Root, u64)> {
        let found = self.meta.search(self.root_tree, Key::new(id, ROOT_ITEM, 0), Key::new(id, ROOT_ITEM, u64::MAX), 64, None)?;
        let (_, d) = found.last().ok_or_else(|| corrupt(format!("subvolume {id} has no root item")))?;
        items::root_item(d, id)
    }

    /// The index of subvolume `id` among those met, added when new.
    fn subvol_index(&self, id: u64) -> io::Result<usize> {
        if let Some(i) = self.lock().iter().position(|s| s.id == id) {
            return Ok(i);
        }
        let (root, dirid) = self.root_of(id)?;
        let mut s = self.lock();
        if let Some(i) = s.iter().position(|s| s.id == id) {
            return Ok(i);
        }
        if s.len() >= MAX_SUBVOLS {
            return Err(corrupt(format!("more than {MAX_SUBVOLS} subvolumes")));
        }
        s.push(Subvol { id, root, dirid });
        Ok(s.len() - 1)
    }

    fn node_id(idx: usize, ino: u64) -> io::Result<NodeId> {
        if ino >> INO_BITS != 0 {
            return Err(corrupt(format!("inode number {ino} is beyond 2^{INO_BITS}")));
        }
        Ok(((idx as u64) << INO_BITS) | ino)
    }

    /// The subvolume and inode number of a node.
    fn split(&self, node: NodeId) -> io::Result<(Subvol, u64)> {
        let idx = (node >> INO_BITS) as usize;
        let sv = self.lock().get(idx).copied().ok_or_else(|| corrupt(format!("node {node}: no such subvolume")))?;
        Ok((sv, node & ((1 << INO_BITS) - 1)))
    }

    fn inode(&self, node: NodeId) -> io::Result<Inode> {
        let (sv, ino) = self.split(node)?;
        let d = self.meta.get(sv.root, Key::new(ino, INODE_ITEM, 0))?.ok_or_else(|| corrupt(format!("inode {ino} not found")))?;
        Inode::parse(&d, ino)
    }

    fn reader(&self, node: NodeId, size: u64) -> io::Result<ExtentReader<'_>> {
        let (sv, ino) = self.split(node)?;
        Ok(ExtentReader::new(&self.meta, sv.root, ino, size))
    }
}

impl FileSystem for Btrfs {
    fn kind(&self) -> &'static str {
        "btrfs"
    }
    fn label(&self) -> Option<String> {
        (!self.meta.sb.label.is_empty()).then(|| String::from_utf8_lossy(&self.meta.sb.label).into_owned())
    }
    fn uuid(&self) -> Option<String> {
        Some(self.meta.sb.uuid())
    }
    fn root(&self) -> NodeId {
        self.lock().first().map_or(256, |s| s.dirid)
    }

    fn read_dir(&self, dir: NodeId) -> io::Result<Vec<DirEntry>> {
        let (entries, damage) = self.read_dir_checked(dir)?;
        if let Some(d) = damage {
            self.meta.warn(format!("directory {dir}: {d}"));
        }
        Ok(entries)
    }

    fn read_dir_checked(&self, dir: NodeId) -> io::Result<(Vec<DirEntry>, Option<String>)> {
        let inode = self.inode(dir)?;
        if FileKind::from_mode(inode.mode) != FileKind::Dir {
            return Err(corrupt(format!("inode {dir} is not a directory")));
        }
        let (sv, ino) = self.split(dir)?;
        let idx = (dir >> INO_BITS) as usize;
        let mut damaged = Vec::new();
        let found = self.meta.search(
            sv.root,
            Key::new(ino, DIR_INDEX, 0),
            Key::new(ino, DIR_INDEX, u64::MAX),
            MAX_DIR_ENTRIES,
            Some(&mut damaged),
        )?;
        if found.len() >= MAX_DIR_ENTRIES {
            damaged.push(format!("more than {MAX_DIR_ENTRIES} entries; the rest are not listed"));
        }
        let mut out = Vec::with_capacity(found.len());
        for (k, d) in &found {
            let item = match items::dir_items(d).map(|v| v.into_iter().next()) {
                Ok(Some(item)) => item,
                Ok(None) => continue,
                Err(e) => {
                    damaged.push(format!("entry {}: {e}", k.offset));
                    continue;
                }
            };
            let node = match item.location.kind {
                INODE_ITEM => Btrfs::node_id(idx, item.location.objectid),
                ROOT_ITEM => self.subvol_index(item.location.objectid).and_then(|i| {
                    let dirid = self.lock().get(i).map_or(256, |s| s.dirid);
                    Btrfs::node_id(i, dirid)
                }),
                t => Err(corrupt(format!("an entry pointing at an item of type {t}"))),
            };
            match node {
                Ok(node) => out.push(DirEntry { name: item.name, node, kind: FileKind::from_dirent_type(item.kind) }),
                Err(e) => damaged.push(format!("{}: {e}", crate::util::bytes::escape(&item.name))),
            }
        }
        let note = (!damaged.is_empty()).then(|| {
            let n = damaged.len();
            let first: Vec<String> = damaged.into_iter().take(3).collect();
            format!("{n} part(s) unreadable: {}", first.join("; "))
        });
        Ok((out, note))
    }

    fn metadata(&self, node: NodeId) -> io::Result<Metadata> {
        let i = self.inode(node)?;
        let kind = FileKind::from_mode(i.mode);
        let rdev = matches!(kind, FileKind::CharDevice | FileKind::BlockDevice).then(|| ((i.rdev >> 20) as u32, (i.rdev & 0xfffff) as u32));
        Ok(Metadata {
            node,
            kind: Some(kind),
            size: i.size,
            mode: i.mode,
            uid: i.uid,
            gid: i.gid,
            nlink: i.nlink,
            mtime: Some(i.mtime),
            atime: Some(i.atime),
            ctime: Some(i.ctime),
            btime: Some(i.otime),
            rdev,
        })
    }

    fn open(&self, node: NodeId) -> io::Result<FileReader<'_>> {
        let i = self.inode(node)?;
        super::ensure_regular(FileKind::from_mode(i.mode), i.nlink, node)?;
        let mut size = i.size;
        if self.meta.damaged.load(std::sync::atomic::Ordering::Relaxed) {
            // One flipped bit in a damaged leaf can turn an empty file into
            // an exabyte of zeros: keep only what its extents can back.
            let (sv, ino) = self.split(node)?;
            size = size.min(ExtentReader::mapped_end(&self.meta, sv.root, ino)?);
        }
        Ok(Box::new(self.reader(node, size)?))
    }

    fn read_link(&self, node: NodeId) -> io::Result<Vec<u8>> {
        let i = self.inode(node)?;
        if FileKind::from_mode(i.mode) != FileKind::Symlink {
            return Err(corrupt("not a symbolic link"));
        }
        if i.size > MAX_SYMLINK {
            return Err(corrupt(format!("symlink target of {} bytes (PATH_MAX is 4096)", i.size)));
        }
        let mut out = Vec::new();
        self.reader(node, i.size)?.read_to_end(&mut out)?;
        Ok(out)
    }

    fn warnings(&self) -> Vec<String> {
        self.meta.warnings.list()
    }

    fn xattrs(&self, node: NodeId) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (sv, ino) = self.split(node)?;
        let found = self.meta.search(sv.root, Key::new(ino, XATTR_ITEM, 0), Key::new(ino, XATTR_ITEM, u64::MAX), MAX_XATTRS, None)?;
        let mut out = Vec::new();
        for (_, d) in found {
            out.extend(items::dir_items(&d)?.into_iter().map(|x| (x.name, x.data)));
        }
        Ok(out)
    }

    fn compression(&self, node: NodeId) -> Option<&'static str> {
        let (sv, ino) = self.split(node).ok()?;
        let extents = ExtentReader::first_extents(&self.meta, sv.root, ino, 64).ok()?;
        extents.iter().find_map(|e| e.compression.name())
    }

    fn subvolumes(&self) -> io::Result<Vec<Subvolume>> {
        self.list_subvolumes()
    }

    fn subvolume(&self, id: u64) -> io::Result<Arc<dyn FileSystem>> {
        if !subvols::is_subvolume_id(id) {
            return Err(corrupt(format!("{id} is not a subvolume id")));
        }
        let view = Btrfs { meta: self.meta.clone(), root_tree: self.root_tree, subvols: Mutex::new(Vec::new()) };
        Ok(Arc::new(view.show(id)?))
    }
}
