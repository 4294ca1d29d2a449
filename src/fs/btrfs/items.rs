//! The items of a filesystem tree that the reader decodes (btrfs wiki
//! "On-disk Format"; `include/uapi/linux/btrfs_tree.h`): `btrfs_inode_item`
//! (160 bytes), `btrfs_dir_item` (30 bytes, then name and data; DIR_ITEM
//! and XATTR_ITEM pack several after one another on a hash collision),
//! `btrfs_file_extent_item` (21 bytes of header, then inline data or the
//! 32-byte disk reference) and `btrfs_root_item`.

use super::tree::{Key, Root};
use crate::util::bytes::{u8_at, u16_at, u32_at, u64_at};
use crate::util::corrupt;
use crate::util::time::Timestamp;
use std::io;

pub const INODE_ITEM: u8 = 1;
pub const XATTR_ITEM: u8 = 24;
pub const DIR_INDEX: u8 = 96;
pub const EXTENT_DATA: u8 = 108;
pub const ROOT_ITEM: u8 = 132;
pub const INODE_REF: u8 = 12;
pub const ROOT_REF: u8 = 156;

pub struct Inode {
    pub size: u64,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub rdev: u64,
    pub atime: Timestamp,
    pub ctime: Timestamp,
    pub mtime: Timestamp,
    pub otime: Timestamp,
}

fn timespec(b: &[u8], off: usize) -> Timestamp {
    Timestamp::new(u64_at(b, off) as i64, u32_at(b, off + 8))
}

impl Inode {
    pub const LEN: usize = 160;

    pub fn parse(b: &[u8], ino: u64) -> io::Result<Inode> {
        if b.len() < Inode::LEN {
            return Err(corrupt(format!("inode {ino}: item of {} bytes", b.len())));
        }
        Ok(Inode {
            size: u64_at(b, 16),
            nlink: u32_at(b, 40),
            uid: u32_at(b, 44),
            gid: u32_at(b, 48),
            mode: u32_at(b, 52),
            rdev: u64_at(b, 56),
            atime: timespec(b, 112),
            ctime: timespec(b, 124),
            mtime: timespec(b, 136),
            otime: timespec(b, 148),
        })
    }
}

/// One entry of a DIR_ITEM, DIR_INDEX or XATTR_ITEM.
pub struct DirItem {
    pub location: Key,
    pub kind: u8,
    pub name: Vec<u8>,
    pub data: Vec<u8>,
}

/// Every entry packed in one item.
pub fn dir_items(b: &[u8]) -> io::Result<Vec<DirItem>> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < b.len() {
        let location = Key::parse(b, off).ok_or_else(|| corrupt("directory item truncated"))?;
        let data_len = u16_at(b, off + 25) as usize;
        let name_len = u16_at(b, off + 27) as usize;
        let kind = u8_at(b, off + 29);
        let name_at = off + 30;
        let end = name_at + name_len + data_len;
        if end > b.len() || off + 30 > b.len() {
            return Err(corrupt("directory item: name and data past the item"));
        }
        out.push(DirItem { location, kind, name: b[name_at..name_at + name_len].to_vec(), data: b[name_at + name_len..end].to_vec() });
        off = end;
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Zlib,
    Lzo,
    Zstd,
}

impl Compression {
    fn parse(c: u8) -> io::Result<Compression> {
        Ok(match c {
            0 => Compression::None,
            1 => Compression::Zlib,
            2 => Compression::Lzo,
            3 => Compression::Zstd,
            c => return Err(corrupt(format!("unknown compression type {c}"))),
        })
    }

    pub fn name(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Zlib => Some("zlib"),
            Compression::Lzo => Some("lzo"),
            Compression::Zstd => Some("zstd"),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Data {
    /// Bytes stored in the item (compressed when the extent says so).
    Inline(Vec<u8>),
    /// On disk: `disk_num_bytes` at `disk_bytenr` (0: a hole), of which the
    /// file uses the `num_bytes` from `offset` (of the decompressed data).
    Regular { disk_bytenr: u64, disk_num_bytes: u64, offset: u64 },
    /// Allocated but never written: zeros.
    Prealloc,
}

#[derive(Clone, Debug)]
pub struct Extent {
    /// Where in the file it starts.
    pub file_offset: u64,
    /// How many bytes of the file it covers.
    pub len: u64,
    pub ram_bytes: u64,
    pub compression: Compression,
    pub data: Data,
}

impl Extent {
    pub fn parse(file_offset: u64, b: &[u8]) -> io::Result<Extent> {
        if b.len() < 21 {
            return Err(corrupt(format!("file extent at {file_offset}: item of {} bytes", b.len())));
        }
        let ram_bytes = u64_at(b, 8);
        let compression = Compression::parse(u8_at(b, 16))?;
        if u8_at(b, 17) != 0 || u16_at(b, 18) != 0 {
            return Err(corrupt(format!("file extent at {file_offset}: encrypted or encoded data is not supported")));
        }
        let typ = u8_at(b, 20);
        if typ == 0 {
            let data = b[21..].to_vec();
            let len = if compression == Compression::None { data.len() as u64 } else { ram_bytes };
            return Ok(Extent { file_offset, len, ram_bytes, compression, data: Data::Inline(data) });
        }
        if b.len() < 53 {
            return Err(corrupt(format!("file extent at {file_offset}: item of {} bytes", b.len())));
        }
        let (disk_bytenr, disk_num_bytes, offset, len) = (u64_at(b, 21), u64_at(b, 29), u64_at(b, 37), u64_at(b, 45));
        let data = match typ {
            1 => Data::Regular { disk_bytenr, disk_num_bytes, offset },
            2 => Data::Prealloc,
            t => return Err(corrupt(format!("file extent at {file_offset}: type {t}"))),
        };
        if file_offset.checked_add(len).is_none() {
            return Err(corrupt(format!("file extent at {file_offset}: length {len}")));
        }
        Ok(Extent { file_offset, len, ram_bytes, compression, data })
    }
}

/// A subvolume's tree root and its top directory, from its ROOT_ITEM.
pub fn root_item(b: &[u8], id: u64) -> io::Result<(Root, u64)> {
    // Items from before generation_v2 are 239 bytes.
    if b.len() < 239 {
        return Err(corrupt(format!("root item of tree {id}: {} bytes", b.len())));
    }
    let root = Root { bytenr: u64_at(b, 176), level: u8_at(b, 238) };
    if root.level >= super::tree::MAX_LEVEL {
        return Err(corrupt(format!("root item of tree {id}: level {}", root.level)));
    }
    Ok((root, u64_at(b, 168)))
}

/// What a subvolume's ROOT_ITEM says of it beyond its tree: read-only or
/// not, its UUID, the UUID of the subvolume it is a snapshot of, and when
/// it was made. Items from before generation_v2 (239 bytes) have none of
/// the UUIDs and times.
pub struct RootInfo {
    pub readonly: bool,
    pub uuid: Option<[u8; 16]>,
    pub parent_uuid: Option<[u8; 16]>,
    pub otime: Option<Timestamp>,
}

pub fn root_info(b: &[u8]) -> RootInfo {
    const RDONLY: u64 = 1;
    let uuid_at = |off: usize| -> Option<[u8; 16]> {
        let u: [u8; 16] = b.get(off..off + 16)?.try_into().ok()?;
        (u != [0; 16]).then_some(u)
    };
    RootInfo {
        readonly: u64_at(b, 208) & RDONLY != 0,
        uuid: uuid_at(247),
        parent_uuid: uuid_at(263),
        otime: (b.len() >= 351).then(|| timespec(b, 339)).filter(|t| t.secs != 0 || t.nanos != 0),
    }
}

/// A ROOT_REF: subvolume `child` sits in directory `dirid` of its parent's
/// tree under `name`.
pub fn root_ref(b: &[u8]) -> io::Result<(u64, Vec<u8>)> {
    let len = u16_at(b, 16) as usize;
    let name = b.get(18..18 + len).ok_or_else(|| corrupt("root reference: name past the item"))?;
    Ok((u64_at(b, 0), name.to_vec()))
}

/// The first name of an INODE_REF: (name); the key's offset is the parent.
pub fn inode_ref_name(b: &[u8]) -> io::Result<Vec<u8>> {
    let len = u16_at(b, 8) as usize;
    Ok(b.get(10..10 + len).ok_or_else(|| corrupt("inode reference: name past the item"))?.to_vec())
}
