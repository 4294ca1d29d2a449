//! Filesystem layer: read-only filesystems behind one trait.
//!
//! Every reader (ext2/3/4 and NTFS on a volume, a directory on the analysis
//! host, and later XFS, tar layers and overlay views) exposes the same small API:
//! list a directory, stat a node, open a node's content, read a link. Nodes
//! are opaque numbers (inode numbers on ext). Implementations are `Send +
//! Sync` and take `&self`, so many threads read one filesystem at once.
// A parser of untrusted bytes: no panicking shortcuts (see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

pub mod btrfs;
pub mod exfat;
pub mod ext;
pub mod extents;
pub mod fat;
pub mod hostdir;
pub mod ntfs;
pub mod overlay;
pub mod replay;
pub mod tarlayer;
pub mod xfs;

use crate::evidence::{ReadAt, Source};
use crate::util::magic::Magic;
use crate::util::time::Timestamp;
use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Arc;

pub type NodeId = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    /// The directory entry does not say (ext2 without the filetype feature);
    /// `metadata` does.
    Unknown,
}

impl FileKind {
    /// From the `S_IFMT` bits of a Unix mode.
    pub fn from_mode(mode: u32) -> FileKind {
        match mode & 0o170000 {
            0o100000 => FileKind::File,
            0o040000 => FileKind::Dir,
            0o120000 => FileKind::Symlink,
            0o020000 => FileKind::CharDevice,
            0o060000 => FileKind::BlockDevice,
            0o010000 => FileKind::Fifo,
            0o140000 => FileKind::Socket,
            _ => FileKind::Unknown,
        }
    }
}

impl FileKind {
    /// From the file-type byte that Linux filesystems (ext's `filetype`,
    /// XFS's `ftype`) store in directory entries: the `DT_*` order.
    pub fn from_dirent_type(t: u8) -> FileKind {
        match t {
            1 => FileKind::File,
            2 => FileKind::Dir,
            3 => FileKind::CharDevice,
            4 => FileKind::BlockDevice,
            5 => FileKind::Fifo,
            6 => FileKind::Socket,
            7 => FileKind::Symlink,
            _ => FileKind::Unknown,
        }
    }
}

/// What `open` checks before reading a Unix inode's content: it must be a
/// regular file that is still in use.
pub fn ensure_regular(kind: FileKind, links: u32, node: NodeId) -> io::Result<()> {
    let bad = |m: String| Err(io::Error::new(io::ErrorKind::InvalidData, m));
    match kind {
        FileKind::File if links == 0 => bad(format!("inode {node} is not in use (deleted)")),
        FileKind::File => Ok(()),
        FileKind::Dir => bad("is a directory".into()),
        other => bad(format!("not a regular file ({other:?})")),
    }
}

#[derive(Clone, Debug)]
pub struct DirEntry {
    /// The name as stored: raw bytes, not necessarily UTF-8.
    pub name: Vec<u8>,
    pub node: NodeId,
    pub kind: FileKind,
}

#[derive(Clone, Debug, Default)]
pub struct Metadata {
    pub node: NodeId,
    pub kind: Option<FileKind>,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: Option<Timestamp>,
    pub atime: Option<Timestamp>,
    /// Inode change time (Unix ctime), not creation.
    pub ctime: Option<Timestamp>,
    /// Creation ("birth") time, where the filesystem records one.
    pub btime: Option<Timestamp>,
    /// (major, minor) of a character or block device node: overlayfs
    /// marks a deleted entry with a 0:0 character device.
    pub rdev: Option<(u32, u32)>,
}

impl Metadata {
    pub fn kind(&self) -> FileKind {
        self.kind.unwrap_or(FileKind::Unknown)
    }
}

/// A file's content as a stream. Sparse regions read as zeros.
pub type FileReader<'a> = Box<dyn Read + Send + 'a>;

/// Every directory reachable from the root with its entries, as `read_dir`
/// gives them (a directory with none may be absent).
pub type Listing = HashMap<NodeId, Vec<DirEntry>>;

pub trait FileSystem: Send + Sync {
    /// `ext4`, `ext3`, `ext2`, `directory`, …
    fn kind(&self) -> &'static str;
    /// The volume label and UUID, where the filesystem records them.
    fn label(&self) -> Option<String> {
        None
    }
    fn uuid(&self) -> Option<String> {
        None
    }
    fn root(&self) -> NodeId;
    /// The entries of a directory, without `.` and `..`.
    fn read_dir(&self, dir: NodeId) -> io::Result<Vec<DirEntry>>;
    /// `read_dir`, and what of the directory could not be read (damaged
    /// blocks skipped): the walk puts it in the manifest, since the files
    /// listed there are missing without a row of their own. Readers that can
    /// lose part of a directory override it (their `read_dir` warns).
    fn read_dir_checked(&self, dir: NodeId) -> io::Result<(Vec<DirEntry>, Option<String>)> {
        Ok((self.read_dir(dir)?, None))
    }
    fn metadata(&self, node: NodeId) -> io::Result<Metadata>;
    fn open(&self, node: NodeId) -> io::Result<FileReader<'_>>;
    /// A symbolic link's target, as stored.
    fn read_link(&self, node: NodeId) -> io::Result<Vec<u8>>;
    /// Problems noticed so far (checksum mismatches, dirty journal, …).
    fn warnings(&self) -> Vec<String>;
    /// Named data streams besides a file's content (NTFS alternate data
    /// streams such as `Zone.Identifier`): (name, size). None elsewhere.
    fn streams(&self, _node: NodeId) -> io::Result<Vec<(Vec<u8>, u64)>> {
        Ok(Vec::new())
    }
    /// Opens one of [`FileSystem::streams`].
    fn open_stream(&self, _node: NodeId, _name: &[u8]) -> io::Result<FileReader<'_>> {
        Err(io::Error::new(io::ErrorKind::NotFound, "this filesystem has no named streams"))
    }
    /// A name in upper case by the filesystem's own table (NTFS `$UpCase`),
    /// for comparing names as the OS that wrote the volume does. None: no
    /// table (callers fold ASCII).
    fn fold_case(&self, _name: &[u8]) -> Option<Vec<u8>> {
        None
    }
    /// Every directory at once, from one pass over the filesystem's own
    /// tables (NTFS: $MFT in large sequential reads), for a walk that would
    /// list nearly every directory anyway. None: not offered here (or
    /// failed: Some(Err)); read directories one by one.
    fn list_all(&self) -> Option<io::Result<Listing>> {
        None
    }
    /// Extended attributes as (full name such as `trusted.overlay.opaque`,
    /// value). Overlay layers mark opaque directories with them.
    fn xattrs(&self, _node: NodeId) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(Vec::new())
    }
    /// What replaying the journal or log did to this view; None when the
    /// filesystem has none, or it needed no replay.
    fn replay(&self) -> Option<replay::Replay> {
        None
    }
    /// The same filesystem as it lies on disk, when a replay changed what
    /// this view shows: files are compared between the two.
    fn on_disk(&self) -> Option<Arc<dyn FileSystem>> {
        None
    }
    /// Whether the replay changed the content of `node` (its size, the
    /// blocks it maps, or a block it maps was replayed), so the on-disk
    /// view's node of that number reads differently. Metadata alone (times,
    /// mode) does not count: the replayed row carries those.
    fn replay_changed(&self, _node: NodeId) -> bool {
        false
    }
    /// A regular file's content for positional reads (a registry hive read
    /// cell by cell, never whole), where the filesystem can give it
    /// cheaply; None: read it through `open`.
    fn file_at(&self, _node: NodeId) -> Option<io::Result<Box<dyn crate::evidence::ReadAt + '_>>> {
        None
    }
    /// Where a node's content comes from when this is a view over other
    /// filesystems (the layer of a container's union view); None elsewhere.
    fn provenance(&self, _node: NodeId) -> Option<String> {
        None
    }
    /// How the filesystem stores a node's content when compressed (NTFS:
    /// `lznt1`, `wof-xpress4k`, `wof-lzx`, …); None when stored plainly.
    fn compression(&self, _node: NodeId) -> Option<&'static str> {
        None
    }
    /// The separate trees the filesystem holds (Btrfs subvolumes and
    /// snapshots, the top level included), which a machine mounts on their
    /// own (fstab `subvol=`) or keeps as older copies. Empty elsewhere.
    fn subvolumes(&self) -> io::Result<Vec<Subvolume>> {
        Ok(Vec::new())
    }
    /// One of [`FileSystem::subvolumes`] as a filesystem of its own, its top
    /// directory as the root (what `mount -o subvolid=` shows).
    fn subvolume(&self, _id: u64) -> io::Result<Arc<dyn FileSystem>> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "this filesystem has no subvolumes"))
    }
}

/// A tree of a filesystem that can be mounted on its own (a Btrfs
/// subvolume or snapshot).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Subvolume {
    pub id: u64,
    /// From the top level, as `btrfs subvolume list` prints it
    /// (`@/.snapshots/2/snapshot`); empty for the top level itself.
    pub path: String,
    pub uuid: Option<String>,
    /// The subvolume this one is a snapshot of, when it is one.
    pub parent_uuid: Option<String>,
    /// When it was made (a snapshot: when it was taken).
    pub created: Option<crate::util::time::Timestamp>,
    pub readonly: bool,
    /// The one this view of the filesystem shows.
    pub shown: bool,
}

/// What a probe of a volume found.
pub enum Probe {
    Found(Arc<dyn FileSystem>),
    /// Recognised but not readable by this version (NTFS, LVM, …).
    Unsupported(&'static str),
    /// Recognised as a filesystem of ours but failed to open.
    Damaged(&'static str, String),
    /// The volume's bytes could not be read at all (past the image's end).
    Unreadable(String),
    Unknown,
}

/// How filesystems are opened.
#[derive(Clone, Copy, Debug)]
pub struct OpenOptions {
    /// Replay a dirty ext3/4 journal or XFS log in memory (`--no-replay`
    /// reads the volume as it lies on disk).
    pub replay: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { replay: true }
    }
}

/// Identifies the filesystem on a volume by its magic numbers and opens it.
pub fn probe(vol: &Source) -> Probe {
    probe_with(vol, OpenOptions::default())
}

/// [`probe`] with options.
pub fn probe_with(vol: &Source, opts: OpenOptions) -> Probe {
    let mut b = vec![0u8; 8192];
    let n = match vol.read_at(0, &mut b) {
        Ok(n) => n,
        Err(e) => return Probe::Unreadable(format!("unreadable: {e}")),
    };
    if n == 0 && !vol.is_empty() {
        return Probe::Unreadable("unreadable: the image ends before this volume starts".into());
    }
    b.truncate(n);
    let is = |m: Magic| m.in_head(&b);
    let far = |m: Magic| m.found_by(|off, buf| vol.read_exact_at(off, buf).is_ok());
    let opened = |kind: &'static str, fs: io::Result<Arc<dyn FileSystem>>| match fs {
        Ok(fs) => Probe::Found(fs),
        Err(e) => Probe::Damaged(kind, e.to_string()),
    };
    if is(Magic::Ext) {
        // INCOMPAT_JOURNAL_DEV: another filesystem's external journal.
        if b.get(1024 + 0x60).is_some_and(|f| f & 0x8 != 0) {
            return Probe::Unsupported("ext3/4 external journal device (the journal of another filesystem)");
        }
        return opened("ext2/3/4", ext::Ext::open_with(vol.clone(), opts).map(|f| Arc::new(f) as _));
    }
    if is(Magic::Xfs) {
        return opened("XFS", xfs::Xfs::open_with(vol.clone(), opts).map(|f| Arc::new(f) as _));
    }
    if far(Magic::Btrfs) {
        return opened("Btrfs", btrfs::Btrfs::open(vol.clone()).map(|f| Arc::new(f) as _));
    }
    if is(Magic::Ntfs) {
        return opened("NTFS", ntfs::Ntfs::open(vol.clone()).map(|f| Arc::new(f) as _));
    }
    // mkswap keeps the first KiB (boot code) and pvcreate may too: their
    // signatures win over a stale FAT boot sector.
    if is(Magic::Lvm2) {
        return Probe::Unsupported("LVM2 physical volume");
    }
    if is(Magic::Swap) {
        return Probe::Unsupported("Linux swap");
    }
    if is(Magic::Fat) && fat::looks_like(&b) {
        return opened("FAT", fat::Fat::open(vol.clone()).map(|f| Arc::new(f) as _));
    }
    if is(Magic::Exfat) {
        return opened("exFAT", exfat::Exfat::open(vol.clone()).map(|f| Arc::new(f) as _));
    }
    // Recognised, not read: named so that a skipped volume says what it
    // holds. All but the last four are within the 8 KiB read.
    let unsupported = [
        (Magic::BitLocker, "BitLocker"),
        (Magic::Luks, "LUKS (encrypted)"),
        (Magic::Apfs, "APFS container"),
        (Magic::HfsPlus, "HFS+"),
        (Magic::Hfsx, "HFSX (case-sensitive HFS+)"),
        (Magic::HfsWrapped, "HFS+ wrapped in HFS"),
        (Magic::Refs, "ReFS"),
        (Magic::F2fs, "F2FS"),
        (Magic::Squashfs, "squashfs"),
        (Magic::Iso9660, "ISO 9660 (CD/DVD image)"),
        (Magic::Udf, "UDF"),
        (Magic::Jfs, "JFS"),
        (Magic::ReiserFs, "ReiserFS"),
    ];
    match unsupported.iter().find(|(m, _)| if m.reach() <= b.len() { is(*m) } else { far(*m) }) {
        Some((_, name)) => Probe::Unsupported(name),
        None => probe_backup_boot(vol),
    }
}

/// Nothing recognised at the start: an NTFS volume whose boot sector is
/// damaged still has its backup copy in the volume's last sector.
fn probe_backup_boot(vol: &Source) -> Probe {
    // The last sector: 512 bytes, or 4096 on a 4Kn disk.
    let found = [512u64, 4096]
        .iter()
        .any(|&s| vol.len().checked_sub(s).is_some_and(|at| Magic::Ntfs.found_by(|off, b| vol.read_exact_at(at + off, b).is_ok())));
    if !found {
        return Probe::Unknown;
    }
    match ntfs::Ntfs::open(vol.clone()) {
        Ok(fs) => {
            fs.note("the boot sector is damaged; the backup boot sector (the volume's last sector) was used".into());
            Probe::Found(Arc::new(fs))
        }
        Err(e) => Probe::Damaged("NTFS", e.to_string()),
    }
}

/// Reads a whole small file (configuration files such as /etc/hostname),
/// refusing anything larger than `max` bytes.
pub fn read_small(fs: &dyn FileSystem, node: NodeId, max: u64) -> io::Result<Vec<u8>> {
    let meta = fs.metadata(node)?;
    if meta.size > max {
        return Err(io::Error::other(format!("{} bytes is more than the {max} expected", meta.size)));
    }
    let mut out = Vec::with_capacity(meta.size as usize);
    fs.open(node)?.take(max).read_to_end(&mut out)?;
    Ok(out)
}

/// Resolves an absolute path case-insensitively (an exact match first), as
/// Windows resolves names on NTFS: through the filesystem's own table where
/// it has one ([`FileSystem::fold_case`]), else by ASCII case folding.
/// Links are not followed.
pub fn lookup_ci(fs: &dyn FileSystem, path: &str) -> Option<NodeId> {
    let mut node = fs.root();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        let comp = comp.as_bytes();
        let entries = fs.read_dir(node).ok()?;
        let want = fs.fold_case(comp);
        let same = |name: &[u8]| match (&want, fs.fold_case(name)) {
            (Some(w), Some(n)) => *w == n,
            _ => name.eq_ignore_ascii_case(comp),
        };
        let exact = entries.iter().find(|e| e.name == comp);
        node = exact.or_else(|| entries.iter().find(|e| same(&e.name)))?.node;
    }
    Some(node)
}

/// Resolves an absolute path inside the filesystem, following symbolic links
/// *inside the image* (never on the analysis host), at most 40 of them as
/// Linux does. Returns `None` when a component does not exist.
pub fn lookup(fs: &dyn FileSystem, path: &[u8]) -> io::Result<Option<NodeId>> {
    let mut budget = 40;
    resolve(fs, path, &mut budget, 0)
}

fn resolve(fs: &dyn FileSystem, path: &[u8], budget: &mut u32, depth: u32) -> io::Result<Option<NodeId>> {
    // Keep the chain of directories so `..` can go up without parent links;
    // `..` at the root stays at the root, so nothing resolves outside.
    let mut stack = vec![fs.root()];
    let comps: Vec<&[u8]> = path.split(|&c| c == b'/').filter(|c| !c.is_empty() && *c != b".").collect();
    for (i, comp) in comps.iter().enumerate() {
        if *comp == b".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let dir = *stack.last().unwrap_or(&fs.root());
        let Some(e) = fs.read_dir(dir)?.into_iter().find(|e| e.name == *comp) else {
            return Ok(None);
        };
        let kind = match e.kind {
            FileKind::Unknown => fs.metadata(e.node)?.kind(),
            k => k,
        };
        if kind == FileKind::Symlink {
            if *budget == 0 || depth > 40 {
                return Err(io::Error::other("too many levels of symbolic links"));
            }
            *budget -= 1;
            let target = fs.read_link(e.node)?;
            // Rebuild the path: the link's directory (for a relative
            // target), the target, then the remaining components.
            let mut rest = Vec::new();
            if !target.starts_with(b"/") {
                for d in &comps[..i] {
                    rest.extend_from_slice(b"/");
                    rest.extend_from_slice(d);
                }
                rest.extend_from_slice(b"/");
            }
            rest.extend_from_slice(&target);
            for r in &comps[i + 1..] {
                rest.extend_from_slice(b"/");
                rest.extend_from_slice(r);
            }
            return resolve(fs, &rest, budget, depth + 1);
        }
        stack.push(e.node);
    }
    Ok(stack.last().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every filesystem named but not read is named by its signature, at
    /// its place (the ones no tool here can make: HFS+ and HFSX need
    /// hfsprogs, ReFS Windows; the rest are also in images/refusals.img).
    #[test]
    fn unread_filesystems_are_named_by_their_signatures() {
        let cases: [(usize, &[u8], &str); 10] = [
            (32, b"NXSB", "APFS container"),
            (1024, b"H+\x00\x04", "HFS+"),
            (1024, b"HX\x00\x05", "HFSX (case-sensitive HFS+)"),
            (3, b"ReFS\0\0\0\0", "ReFS"),
            (1024, &0xF2F5_2010u32.to_le_bytes(), "F2FS"),
            (0, b"hsqs", "squashfs"),
            (0x8001, b"CD001", "ISO 9660 (CD/DVD image)"),
            (0x8001, b"BEA01", "UDF"),
            (0x8000, b"JFS1", "JFS"),
            (0x10034, b"ReIsEr2Fs", "ReiserFS"),
        ];
        for (at, magic, want) in cases {
            let mut v = vec![0u8; 0x20000];
            v[at..at + magic.len()].copy_from_slice(magic);
            let src: Source = Arc::new(v);
            match probe(&src) {
                Probe::Unsupported(what) => assert_eq!(what, want),
                _ => panic!("{want}: not named"),
            }
        }
        let src: Source = Arc::new(vec![0u8; 0x20000]);
        assert!(matches!(probe(&src), Probe::Unknown));
        // Btrfs is read now: its signature alone is a damaged Btrfs, not an unread one.
        let mut v = vec![0u8; 0x20000];
        v[0x10040..0x10048].copy_from_slice(b"_BHRfS_M");
        let src: Source = Arc::new(v);
        assert!(matches!(probe(&src), Probe::Damaged("Btrfs", _)), "a bare Btrfs signature");
        // mkswap over a FAT volume keeps its boot sector: swap, not FAT.
        let mut v = vec![0u8; 0x20000];
        v[11..13].copy_from_slice(&512u16.to_le_bytes());
        v[13] = 8;
        v[14] = 1;
        v[16] = 2;
        v[82..90].copy_from_slice(b"FAT32   ");
        v[510..512].copy_from_slice(&[0x55, 0xAA]);
        assert!(fat::looks_like(&v));
        v[4086..4096].copy_from_slice(b"SWAPSPACE2");
        let src: Source = Arc::new(v);
        assert!(matches!(probe(&src), Probe::Unsupported("Linux swap")), "swap over a stale FAT boot sector");
    }
}
