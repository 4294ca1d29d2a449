//! Our own read-only ext2/ext3/ext4 reader.
//!
//! Written from the kernel's on-disk format documentation
//! (Documentation/filesystems/ext4/) rather than taken from a crate: the
//! `ext4` crate rejects a whole directory when one name is not UTF-8, fails
//! on hashed directories with checksums, cannot read ext2/3 and returns stale
//! data for unwritten extents; `ext4-view` also leaks unwritten extents and
//! is `!Send` (see ../shared/research/crates.md).
//!
//! Covered: 1–64 KiB blocks, 32/64-bit group descriptors, meta_bg, flex_bg,
//! extents (unwritten extents read as zeros) and indirect blocks (holes),
//! linear and htree directories (read linearly: every htree leaf is an
//! ordinary directory block and index blocks look like empty entries),
//! inline data, fast and slow symlinks, non-UTF-8 names, all four timestamps
//! with nanoseconds and the 34-bit epoch extension, metadata_csum (superblock
//! and inode checksums verified; a mismatch is a warning, the data is still
//! read). A dirty journal (a snapshot of a running machine) is replayed in
//! memory (`jbd2.rs`): the filesystem is read through the replay's overlay,
//! and the on-disk view is kept beside it for comparison.

mod blockmap;
mod dir;
mod inode;
mod jbd2;
mod superblock;
mod xattr;

use super::extents::{Extent, MappedReader};
use super::replay::{self, Overlay, Replay, Replaying, Status};
use super::{DirEntry, FileKind, FileReader, FileSystem, Metadata, NodeId, OpenOptions};
use crate::evidence::{ReadAt, Source};
use crate::util::corrupt;
use inode::Inode;
use std::io::{self, Cursor};
use std::sync::Arc;
use superblock::Superblock;

/// Directories larger than this are refused (a corrupt size field must not
/// make us allocate gigabytes); real ones with millions of entries stay far
/// below it.
const MAX_DIR_BYTES: u64 = 128 << 20;

pub struct Ext {
    dev: Source,
    sb: Superblock,
    /// Inode table start block of every group.
    inode_tables: Vec<u64>,
    warnings: crate::util::warnings::Warnings,
    /// What the journal replay did, when the journal needed one.
    replay: Option<Replay>,
    /// With a replay that changed anything: the overlay this view reads
    /// through, and the filesystem as it lies on disk.
    replayed: Option<(Arc<Overlay>, Arc<Ext>)>,
}

impl Ext {
    /// Opens the filesystem, replaying a dirty journal in memory unless
    /// `opts.replay` is off.
    pub fn open_with(dev: Source, opts: OpenOptions) -> io::Result<Ext> {
        let mut disk = Ext::open_as_is(dev.clone())?;
        if !disk.sb.needs_recovery() {
            return Ok(disk);
        }
        let log = "jbd2 journal";
        if !opts.replay {
            let r = Replay { log, status: Status::NotReplayed, reason: Some("--no-replay".into()), ..Replay::default() };
            disk.warn(format!("the journal needs recovery (the machine was not shut down cleanly): {}", r.message()));
            disk.replay = Some(r);
            return Ok(disk);
        }
        let out = jbd2::replay(&disk);
        let unit = disk.block_size();
        Ok(replay::open_replayed(dev, unit, out.patches, out.replay, disk, Ext::open_as_is))
    }

    pub fn open(dev: Source) -> io::Result<Ext> {
        Ext::open_with(dev, OpenOptions::default())
    }

    /// The filesystem exactly as `dev` holds it.
    fn open_as_is(dev: Source) -> io::Result<Ext> {
        let mut raw = [0u8; 1024];
        dev.read_exact_at(1024, &mut raw)?;
        let sb = Superblock::parse(&raw)?;
        let fs = Ext { inode_tables: Vec::new(), dev, sb, warnings: Default::default(), replay: None, replayed: None };
        if !fs.sb.checksum_ok(&raw) {
            fs.warn("superblock checksum mismatch (metadata_csum); continuing".into());
        }
        let inode_tables = fs.read_group_descriptors()?;
        Ok(Ext { inode_tables, ..fs })
    }

    fn block_size(&self) -> u64 {
        self.sb.block_size
    }

    /// Reads whole blocks `[block, block+count)`.
    fn read_blocks(&self, block: u64, count: u64) -> io::Result<Vec<u8>> {
        let bs = self.block_size();
        if block.saturating_add(count) > self.sb.blocks_count {
            return Err(corrupt(format!("unreadable: block {block} is past the end of the filesystem ({} blocks)", self.sb.blocks_count)));
        }
        let mut buf = vec![0u8; (count * bs) as usize];
        self.dev.read_exact_at(block * bs, &mut buf)?;
        Ok(buf)
    }

    fn read_group_descriptors(&self) -> io::Result<Vec<u64>> {
        let sb = &self.sb;
        let groups = sb.group_count();
        let per_block = sb.block_size / sb.desc_size;
        let mut tables = Vec::with_capacity(groups as usize);
        let mut cached: Option<(u64, Vec<u8>)> = None;
        for g in 0..groups {
            let block = sb.descriptor_block(g / per_block);
            let buf = match cached.take() {
                Some((b, buf)) if b == block => buf,
                _ => self.read_blocks(block, 1)?,
            };
            let off = ((g % per_block) * sb.desc_size) as usize;
            let d = &buf[off..off + sb.desc_size as usize];
            tables.push(superblock::inode_table_of(d, sb.desc_size));
            cached = Some((block, buf));
        }
        Ok(tables)
    }

    fn inode(&self, ino: u64) -> io::Result<Inode> {
        let sb = &self.sb;
        if ino == 0 || ino > u64::from(sb.inodes_count) {
            return Err(corrupt(format!("inode {ino} out of range (1..={})", sb.inodes_count)));
        }
        let group = (ino - 1) / u64::from(sb.inodes_per_group);
        let index = (ino - 1) % u64::from(sb.inodes_per_group);
        let table =
            *self.inode_tables.get(group as usize).ok_or_else(|| corrupt(format!("inode {ino}: group {group} has no descriptor")))?;
        let off = table
            .checked_mul(sb.block_size)
            .and_then(|t| t.checked_add(index * sb.inode_size))
            .ok_or_else(|| corrupt(format!("inode {ino}: inode table offset overflows")))?;
        let mut raw = vec![0u8; sb.inode_size as usize];
        self.dev.read_exact_at(off, &mut raw)?;
        let inode = Inode::parse(ino, raw);
        if !inode.checksum_ok(sb) {
            self.warn(format!("inode {ino}: checksum mismatch (metadata_csum); read anyway"));
        }
        Ok(inode)
    }

    /// The block runs of an inode, for files, directories and slow symlinks.
    fn extents(&self, inode: &Inode) -> io::Result<Vec<Extent>> {
        if inode.uses_extents() { blockmap::extent_tree(self, inode) } else { blockmap::indirect(self, inode) }
    }

    /// The full content of an inode as a reader.
    fn content(&self, inode: &Inode) -> io::Result<FileReader<'_>> {
        if inode.has_inline_data() {
            return Ok(Box::new(Cursor::new(inode.inline_data(self.block_size())?)));
        }
        let extents = self.extents(inode)?;
        Ok(Box::new(MappedReader::new(&*self.dev, self.block_size(), self.sb.blocks_count, extents, inode.size)))
    }

    fn read_all(&self, inode: &Inode, max: u64) -> io::Result<Vec<u8>> {
        if inode.size > max {
            return Err(corrupt(format!("inode {}: size {} exceeds {max}", inode.ino, inode.size)));
        }
        // Capacity from a (possibly corrupt) size field is capped: the
        // buffer grows only as data really arrives.
        let mut out = Vec::with_capacity(inode.size.min(1 << 20) as usize);
        io::Read::read_to_end(&mut self.content(inode)?, &mut out)?;
        Ok(out)
    }
}

impl Replaying for Ext {
    fn warn(&self, msg: String) {
        self.warnings.add(msg);
    }
    fn take_warnings(&mut self, disk: &mut Ext) {
        self.warnings = std::mem::take(&mut disk.warnings);
    }
    fn set_replay(&mut self, replay: Replay, replayed: Option<(Arc<Overlay>, Arc<Ext>)>) {
        self.replay = Some(replay);
        self.replayed = replayed;
    }
}

impl FileSystem for Ext {
    fn kind(&self) -> &'static str {
        self.sb.kind()
    }
    fn label(&self) -> Option<String> {
        self.sb.label()
    }
    fn uuid(&self) -> Option<String> {
        Some(self.sb.uuid())
    }
    fn root(&self) -> NodeId {
        2
    }

    fn read_dir(&self, dir: NodeId) -> io::Result<Vec<DirEntry>> {
        let (entries, damage) = self.read_dir_checked(dir)?;
        if let Some(d) = damage {
            self.warn(format!("directory inode {dir}: {d}"));
        }
        Ok(entries)
    }

    fn read_dir_checked(&self, dir: NodeId) -> io::Result<(Vec<DirEntry>, Option<String>)> {
        let inode = self.inode(dir)?;
        if inode.kind() != FileKind::Dir {
            return Err(corrupt(format!("inode {dir} is not a directory")));
        }
        let filetype = self.sb.has_filetype();
        if inode.has_inline_data() {
            let data = inode.inline_data(self.block_size())?;
            return Ok((dir::parse_inline(&data, filetype), None));
        }
        let data = self.read_all(&inode, MAX_DIR_BYTES)?;
        let (entries, damaged) = dir::parse_blocks(&data, self.block_size() as usize, filetype);
        Ok((entries, (damaged > 0).then(|| format!("{damaged} damaged block(s) skipped"))))
    }

    fn metadata(&self, node: NodeId) -> io::Result<Metadata> {
        let i = self.inode(node)?;
        Ok(Metadata {
            node,
            kind: Some(i.kind()),
            size: i.size,
            mode: i.mode,
            uid: i.uid,
            gid: i.gid,
            nlink: i.links,
            mtime: Some(i.mtime),
            atime: Some(i.atime),
            ctime: Some(i.ctime),
            btime: i.crtime,
            rdev: i.rdev(),
        })
    }

    fn open(&self, node: NodeId) -> io::Result<FileReader<'_>> {
        let inode = self.inode(node)?;
        super::ensure_regular(inode.kind(), inode.links, node)?;
        self.content(&inode)
    }

    fn read_link(&self, node: NodeId) -> io::Result<Vec<u8>> {
        let inode = self.inode(node)?;
        if inode.kind() != FileKind::Symlink {
            return Err(corrupt("not a symbolic link"));
        }
        if inode.size > 4096 {
            return Err(corrupt(format!("symlink target of {} bytes (PATH_MAX is 4096)", inode.size)));
        }
        if inode.is_fast_symlink(self.sb.cluster_size) {
            return Ok(inode.block_area()[..inode.size as usize].to_vec());
        }
        self.read_all(&inode, 4096)
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.list()
    }

    fn replay(&self) -> Option<Replay> {
        self.replay.clone()
    }

    fn on_disk(&self) -> Option<Arc<dyn FileSystem>> {
        self.replayed.as_ref().map(|(_, disk)| disk.clone() as Arc<dyn FileSystem>)
    }

    fn replay_changed(&self, node: NodeId) -> bool {
        let Some((overlay, disk)) = &self.replayed else { return false };
        let (Ok(now), Ok(before)) = (self.inode(node), disk.inode(node)) else { return true };
        // Content, not metadata: an atime or mode the journal updated does
        // not make a second copy.
        if now.size != before.size || now.kind() != before.kind() || now.links.min(1) != before.links.min(1) {
            return true;
        }
        if now.has_inline_data() || before.has_inline_data() || now.is_fast_symlink(self.sb.cluster_size) {
            return now.block_area() != before.block_area()
                || now.inline_data(self.block_size()).ok() != before.inline_data(self.block_size()).ok();
        }
        // The same runs of blocks, none of them journaled (data=journal
        // puts file data in the journal too).
        match (self.extents(&now), disk.extents(&before)) {
            (Ok(a), Ok(b)) if a == b => {
                let bs = self.block_size();
                a.iter().any(|e| overlay.touches(e.physical.saturating_mul(bs), e.len.saturating_mul(bs)))
            }
            _ => true,
        }
    }

    fn xattrs(&self, node: NodeId) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let inode = self.inode(node)?;
        let block = if inode.xattr_block() != 0 { Some(self.read_blocks(inode.xattr_block(), 1)?) } else { None };
        let mut entries = inode.body_xattrs().map_err(|e| corrupt(format!("inode {node}: extended attributes in the inode: {e}")))?;
        match &block {
            Some(b) if b.len() > xattr::BLOCK_HEADER && crate::util::bytes::u32_at(b, 0) == xattr::MAGIC => entries.extend(
                xattr::entries(b, xattr::BLOCK_HEADER)
                    .map_err(|e| corrupt(format!("inode {node}: extended attribute block {}: {e}", inode.xattr_block())))?,
            ),
            Some(_) => self.warn(format!("inode {node}: extended attribute block {} has a bad magic number", inode.xattr_block())),
            None => {}
        }
        let mut out = Vec::new();
        for e in entries {
            let value = match e.value {
                xattr::Value::Inline(v) => v.to_vec(),
                // ea_inode: the value is another inode's content (bounded as
                // the kernel bounds xattr values, 64 KiB).
                xattr::Value::Inode(ino, size) if size <= 65536 => self.read_all(&self.inode(ino)?, 65536)?,
                xattr::Value::Inode(ino, size) => {
                    return Err(corrupt(format!("inode {node}: attribute value in inode {ino} of {size} bytes")));
                }
            };
            out.push((xattr::full_name(e.index, e.name), value));
        }
        Ok(out)
    }
}
