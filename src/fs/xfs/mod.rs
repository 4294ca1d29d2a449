//! Our own read-only XFS reader.
//!
//! Written from the XFS on-disk format documentation ("XFS Algorithms & Data
//! Structures") rather than taken from a crate: xfs-core and keramics return
//! wrong data for files outside allocation group 0, where block numbers stop
//! being linear (see superblock.rs).
//!
//! Covered: v4 and v5 (CRC) superblocks, every allocation group, v1/v2/v3
//! inodes, local/extents/btree data forks (attribute forks are skipped via
//! `di_forkoff`), unwritten extents and holes as zeros, short-form, block,
//! leaf, node and btree directories (read through their data blocks), file
//! types in entries (ftype) or from the inode, inline and remote symlinks,
//! legacy and bigtime timestamps, creation time on v3 inodes, large extent
//! counters (nrext64). Superblock and inode CRCs are verified (a mismatch is
//! a warning); other metadata CRCs are not, but magic numbers, owners and
//! bounds are. A dirty internal log (a snapshot of a running machine) is
//! replayed in memory (`log/`): the filesystem is read through the replay's
//! overlay of 512-byte sectors, and the on-disk view is kept beside it for
//! comparison. An external log cannot be read; a dirty state is then unknown.

mod attr;
mod bmap;
mod dir;
mod inode;
mod log;
mod superblock;

use super::replay::{self, Overlay, Replay, Replaying, Status};
use super::{DirEntry, FileKind, FileReader, FileSystem, Metadata, NodeId, OpenOptions};
use crate::evidence::{ReadAt, Source};
use crate::util::bytes::{be_u32_at, be_u64_at};
use crate::util::corrupt;
use inode::{Format, Inode};
use std::io::{self, Cursor};
use std::sync::Arc;
use superblock::Superblock;

/// Directories with more data than this are refused (a corrupt size must
/// not make us read gigabytes); millions of entries stay far below it.
const MAX_DIR_BYTES: u64 = 256 << 20;
/// Linux's PATH_MAX; XFS itself allows 1024.
const MAX_SYMLINK: u64 = 4096;
/// v5 remote symlink block header (`XSLM`): magic, offset, bytes, crc,
/// uuid, owner, blkno, lsn.
const SYMLINK_HDR: usize = 56;

pub struct Xfs {
    dev: Source,
    sb: Superblock,
    warnings: crate::util::warnings::Warnings,
    /// What the log replay did, when the log needed one.
    replay: Option<Replay>,
    /// With a replay that changed anything: the overlay this view reads
    /// through, and the filesystem as it lies on disk.
    replayed: Option<(Arc<Overlay>, Arc<Xfs>)>,
}

impl Xfs {
    /// Opens the filesystem, replaying a dirty internal log in memory unless
    /// `opts.replay` is off.
    pub fn open_with(dev: Source, opts: OpenOptions) -> io::Result<Xfs> {
        let mut disk = Xfs::open_as_is(dev.clone())?;
        if disk.sb.log_start == 0 {
            disk.warn("the log is on an external device; its state is unknown".into());
            return Ok(disk);
        }
        if !opts.replay {
            match log::needs_recovery(&disk.dev, &disk.sb) {
                Ok(false) => {}
                Ok(true) => {
                    let r = Replay {
                        log: log::LOG,
                        status: Status::NotReplayed,
                        reason: Some("--no-replay".into()),
                        unit: log::BB,
                        ..Replay::default()
                    };
                    disk.warn(format!("the log needs recovery (the machine was not shut down cleanly): {}", r.message()));
                    disk.replay = Some(r);
                }
                Err(e) => disk.warn(format!("the log's state is unknown ({e}); files are read as they lie on disk")),
            }
            return Ok(disk);
        }
        let out = log::recover(&disk.dev, &disk.sb);
        if out.clean {
            return Ok(disk);
        }
        let unit = log::BB;
        Ok(replay::open_replayed(dev, unit, out.patches, out.replay, disk, Xfs::open_as_is))
    }

    pub fn open(dev: Source) -> io::Result<Xfs> {
        Xfs::open_with(dev, OpenOptions::default())
    }

    /// The filesystem exactly as `dev` holds it.
    fn open_as_is(dev: Source) -> io::Result<Xfs> {
        let mut raw = [0u8; 512];
        dev.read_exact_at(0, &mut raw)?;
        let sb = Superblock::parse(&raw)?;
        let fs = Xfs { dev, sb, warnings: Default::default(), replay: None, replayed: None };
        if !fs.sb.checksum_ok(&raw) {
            fs.warn("superblock checksum mismatch; continuing".into());
        }
        if fs.sb.needs_repair() {
            fs.warn("the superblock is flagged as needing xfs_repair; reading anyway".into());
        }
        let root = fs.sb.root_ino;
        let r = fs.inode(root)?;
        if r.kind() != FileKind::Dir {
            return Err(corrupt(format!("root inode {root} is not a directory")));
        }
        Ok(fs)
    }

    /// Reads one filesystem block by its (AG-split) number.
    fn read_fsblock(&self, fsb: u64) -> io::Result<Vec<u8>> {
        let linear = self.sb.linear_block(fsb)?;
        let mut buf = vec![0u8; self.sb.block_size as usize];
        self.dev.read_exact_at(linear * self.sb.block_size, &mut buf)?;
        Ok(buf)
    }

    fn inode(&self, ino: u64) -> io::Result<Inode> {
        let off = self.sb.inode_offset(ino)?;
        let mut raw = vec![0u8; self.sb.inode_size as usize];
        self.dev.read_exact_at(off, &mut raw)?;
        let inode = Inode::parse(ino, raw, &self.sb)?;
        if !inode.checksum_ok {
            self.warn(format!("inode {ino}: checksum mismatch; read anyway, up to its last allocated block"));
        }
        Ok(inode)
    }

    fn reader(&self, inode: &Inode) -> io::Result<FileReader<'_>> {
        match inode.format {
            Format::Local => {
                // Only directories and symlinks are stored in the inode; a
                // size past the fork would take bytes that are not the file's.
                let fork = inode.data_fork();
                let data = fork.get(..inode.size as usize).ok_or_else(|| {
                    corrupt(format!("inode {}: {} bytes stored in the inode, whose data fork holds {}", inode.ino, inode.size, fork.len()))
                })?;
                Ok(Box::new(Cursor::new(data.to_vec())))
            }
            Format::Device => Ok(Box::new(io::empty())),
            Format::Extents | Format::Btree => {
                let extents = bmap::extents(self, inode)?;
                let mut size = inode.size;
                if !inode.checksum_ok {
                    // One flipped bit in di_size can turn an empty file into
                    // an exabyte of zeros; a damaged inode keeps only what
                    // its extents can back.
                    let mapped = extents.iter().map(|e| (e.logical + e.len).saturating_mul(self.sb.block_size)).max();
                    size = size.min(mapped.unwrap_or(0));
                }
                Ok(Box::new(bmap::reader(self, extents, size)))
            }
        }
    }

    /// A directory's entries from all its data blocks.
    fn read_dir_blocks(&self, inode: &Inode) -> io::Result<(Vec<DirEntry>, Option<String>)> {
        let extents = bmap::extents(self, inode)?;
        let dbs = self.sb.dir_block_size;
        let bs = self.sb.block_size;
        // Directory blocks that have any mapped filesystem block below the
        // leaf offset, in order.
        let mut blocks: Vec<u64> = Vec::new();
        let mut bytes = 0u64;
        for e in &extents {
            let first = e.logical.saturating_mul(bs);
            let end = e.logical.saturating_add(e.len).saturating_mul(bs).min(dir::LEAF_OFFSET);
            let mut db = first / dbs;
            while db * dbs < end {
                if blocks.last() != Some(&db) {
                    bytes += dbs;
                    if bytes > MAX_DIR_BYTES {
                        return Err(corrupt(format!("directory inode {}: more than {MAX_DIR_BYTES} bytes of data blocks", inode.ino)));
                    }
                    blocks.push(db);
                }
                db += 1;
            }
        }
        // Overlapping extents (corruption) must not list a block twice.
        blocks.sort_unstable();
        blocks.dedup();
        let mut reader = bmap::reader(self, extents, dir::LEAF_OFFSET);
        let mut out = Vec::new();
        let mut damaged = 0;
        for db in blocks {
            let b = reader.read_range(db * dbs, dbs as usize)?;
            if !dir::parse_data_block(&b, self.sb.is_v5(), self.sb.has_ftype(), inode.ino, &mut out) {
                damaged += 1;
            }
        }
        Ok((out, (damaged > 0).then(|| format!("{damaged} unreadable data block(s) skipped"))))
    }

    /// A remote symlink's target: its blocks, each with an `XSLM` header
    /// on v5.
    fn remote_symlink(&self, inode: &Inode) -> io::Result<Vec<u8>> {
        let extents = bmap::extents(self, inode)?;
        let bs = self.sb.block_size;
        let mut out = Vec::new();
        // 4096 bytes need at most 8 blocks even at 512 bytes each.
        let mut budget = 8;
        for e in &extents {
            for i in 0..e.len {
                if out.len() as u64 >= inode.size || budget == 0 {
                    break;
                }
                budget -= 1;
                let mut b = vec![0u8; bs as usize];
                self.dev.read_exact_at((e.physical + i) * bs, &mut b)?;
                let payload = if self.sb.is_v5() {
                    if b.get(0..4) != Some(b"XSLM") || be_u64_at(&b, 32) != inode.ino {
                        return Err(corrupt(format!("symlink inode {}: bad remote block header", inode.ino)));
                    }
                    let n = (be_u32_at(&b, 8) as usize).min(b.len() - SYMLINK_HDR);
                    b[SYMLINK_HDR..SYMLINK_HDR + n].to_vec()
                } else {
                    b
                };
                out.extend_from_slice(&payload);
            }
        }
        out.truncate(inode.size as usize);
        Ok(out)
    }
}

impl Replaying for Xfs {
    fn warn(&self, msg: String) {
        self.warnings.add(msg);
    }
    fn take_warnings(&mut self, disk: &mut Xfs) {
        self.warnings = std::mem::take(&mut disk.warnings);
    }
    fn set_replay(&mut self, replay: Replay, replayed: Option<(Arc<Overlay>, Arc<Xfs>)>) {
        self.replay = Some(replay);
        self.replayed = replayed;
    }
}

impl FileSystem for Xfs {
    fn kind(&self) -> &'static str {
        "xfs"
    }
    fn label(&self) -> Option<String> {
        self.sb.label()
    }
    fn uuid(&self) -> Option<String> {
        Some(self.sb.uuid())
    }
    fn root(&self) -> NodeId {
        self.sb.root_ino
    }

    fn read_dir(&self, node: NodeId) -> io::Result<Vec<DirEntry>> {
        let (entries, damage) = self.read_dir_checked(node)?;
        if let Some(d) = damage {
            self.warn(format!("directory inode {node}: {d}"));
        }
        Ok(entries)
    }

    fn read_dir_checked(&self, node: NodeId) -> io::Result<(Vec<DirEntry>, Option<String>)> {
        let inode = self.inode(node)?;
        if inode.kind() != FileKind::Dir {
            return Err(corrupt(format!("inode {node} is not a directory")));
        }
        match inode.format {
            Format::Local => {
                let (entries, damaged) = dir::parse_shortform(inode.data_fork(), self.sb.has_ftype());
                Ok((entries, damaged.then(|| "short-form entries past the inode skipped".to_string())))
            }
            Format::Extents | Format::Btree => self.read_dir_blocks(&inode),
            Format::Device => Err(corrupt(format!("directory inode {node} has a device fork"))),
        }
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
            nlink: i.nlink,
            mtime: Some(i.mtime),
            atime: Some(i.atime),
            ctime: Some(i.ctime),
            btime: i.crtime,
            rdev: i.rdev(),
        })
    }

    fn open(&self, node: NodeId) -> io::Result<FileReader<'_>> {
        let inode = self.inode(node)?;
        super::ensure_regular(inode.kind(), inode.nlink, node)?;
        self.reader(&inode)
    }

    fn read_link(&self, node: NodeId) -> io::Result<Vec<u8>> {
        let inode = self.inode(node)?;
        if inode.kind() != FileKind::Symlink {
            return Err(corrupt("not a symbolic link"));
        }
        if inode.size > MAX_SYMLINK {
            return Err(corrupt(format!("symlink target of {} bytes (PATH_MAX is 4096)", inode.size)));
        }
        match inode.format {
            Format::Local => {
                let fork = inode.data_fork();
                fork.get(..inode.size as usize)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| corrupt(format!("symlink inode {node}: target is longer than the inode")))
            }
            Format::Extents | Format::Btree => self.remote_symlink(&inode),
            Format::Device => Err(corrupt(format!("symlink inode {node} has a device fork"))),
        }
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
        // Content, not metadata: times or mode the log updated do not make
        // a second copy.
        if now.size != before.size || now.kind() != before.kind() || now.nlink.min(1) != before.nlink.min(1) || now.format != before.format
        {
            return true;
        }
        match now.format {
            Format::Local | Format::Device => {
                let n = now.size as usize;
                now.data_fork().get(..n.min(now.data_fork().len())) != before.data_fork().get(..n.min(before.data_fork().len()))
            }
            // The same runs of blocks; XFS never logs file data, but a
            // block the replay rebuilt is not the file's old content.
            Format::Extents | Format::Btree => match (bmap::extents(self, &now), bmap::extents(disk, &before)) {
                (Ok(a), Ok(b)) => {
                    if a != b {
                        return true;
                    }
                    let bs = self.sb.block_size;
                    a.iter().any(|e| overlay.touches(e.physical.saturating_mul(bs), e.len.saturating_mul(bs)))
                }
                _ => true,
            },
        }
    }

    fn xattrs(&self, node: NodeId) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (attrs, remote) = attr::read(self, &self.inode(node)?)?;
        if remote > 0 {
            self.warn(format!("inode {node}: {remote} extended attribute value(s) in remote blocks not read"));
        }
        Ok(attrs)
    }
}
