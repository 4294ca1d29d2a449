//! The journal file's header and objects, from systemd's
//! docs/JOURNAL_FILE_FORMAT.md and src/libsystemd/sd-journal/journal-def.h.
//!
//! All integers are little-endian; every object starts on an 8-byte
//! boundary with a 16-byte header (type, flags, size). Only what `-o json`
//! needs is read: the main entry array chain (from the header), entry
//! objects and the data objects their items point to. Hash tables, field
//! objects and tags are never used, so a lying hash table changes nothing.

use super::reader::Reader;
use crate::util::bytes::{u8_at, u32_at, u64_at};
use std::io;

pub const SIGNATURE: &[u8; 8] = b"LPKSHHRH";
/// `offsetof(Header, n_data)`: systemd's HEADER_SIZE_MIN (the first
/// version's header); later versions append fields, up to 272 bytes in 254.
pub const HEADER_SIZE_MIN: u64 = 208;

pub const INCOMPAT_COMPRESSED_XZ: u32 = 1 << 0;
pub const INCOMPAT_COMPRESSED_LZ4: u32 = 1 << 1;
pub const INCOMPAT_KEYED_HASH: u32 = 1 << 2;
pub const INCOMPAT_COMPRESSED_ZSTD: u32 = 1 << 3;
pub const INCOMPAT_COMPACT: u32 = 1 << 4;
const INCOMPAT_KNOWN: u32 =
    INCOMPAT_COMPRESSED_XZ | INCOMPAT_COMPRESSED_LZ4 | INCOMPAT_KEYED_HASH | INCOMPAT_COMPRESSED_ZSTD | INCOMPAT_COMPACT;

pub const OBJECT_DATA: u8 = 1;
pub const OBJECT_ENTRY: u8 = 3;
pub const OBJECT_ENTRY_ARRAY: u8 = 6;

/// Object flags: how a data object's payload is compressed.
pub const OBJECT_COMPRESSED_XZ: u8 = 1 << 0;
pub const OBJECT_COMPRESSED_LZ4: u8 = 1 << 1;
pub const OBJECT_COMPRESSED_ZSTD: u8 = 1 << 2;
pub const OBJECT_COMPRESSION_MASK: u8 = OBJECT_COMPRESSED_XZ | OBJECT_COMPRESSED_LZ4 | OBJECT_COMPRESSED_ZSTD;

/// journal-def.h's VALID_REALTIME / VALID_MONOTONIC bound.
pub const TIME_MAX: u64 = 1 << 55;

pub struct Header {
    pub incompatible: u32,
    pub state: u8,
    pub seqnum_id: [u8; 16],
    pub header_size: u64,
    pub arena_size: u64,
    pub n_entries: u64,
    pub entry_array_offset: u64,
}

impl Header {
    pub fn read(r: &mut Reader) -> io::Result<Header> {
        let b = r.get(0, HEADER_SIZE_MIN as usize).map_err(|_| super::corrupt_at(0, "shorter than a journal header"))?;
        if b.get(..8) != Some(SIGNATURE.as_slice()) {
            return Err(super::corrupt_at(0, "not a systemd journal file (no LPKSHHRH signature)"));
        }
        let mut seqnum_id = [0u8; 16];
        seqnum_id.copy_from_slice(b.get(72..88).unwrap_or(&[0; 16]));
        let h = Header {
            incompatible: u32_at(b, 12),
            state: u8_at(b, 16),
            seqnum_id,
            header_size: u64_at(b, 88),
            arena_size: u64_at(b, 96),
            n_entries: u64_at(b, 152),
            entry_array_offset: u64_at(b, 176),
        };
        if h.header_size < HEADER_SIZE_MIN || !h.header_size.is_multiple_of(8) {
            return Err(super::corrupt_at(88, format!("header_size {} is not a journal header's", h.header_size)));
        }
        Ok(h)
    }

    pub fn compact(&self) -> bool {
        self.incompatible & INCOMPAT_COMPACT != 0
    }

    pub fn unknown_incompatible(&self) -> u32 {
        self.incompatible & !INCOMPAT_KNOWN
    }

    /// Size of an entry object's item and of an entry array's item.
    pub fn item_size(&self) -> u64 {
        if self.compact() { 4 } else { 16 }
    }

    pub fn array_item_size(&self) -> u64 {
        if self.compact() { 4 } else { 8 }
    }

    /// Where a data object's payload starts (compact data objects carry
    /// their tail entry array's offset and count first).
    pub fn data_payload_offset(&self) -> u64 {
        if self.compact() { 72 } else { 64 }
    }

    pub fn state_name(&self) -> &'static str {
        match self.state {
            0 => "OFFLINE",
            1 => "ONLINE",
            2 => "ARCHIVED",
            _ => "unknown",
        }
    }

    /// Reads `off`'s object header and checks it: aligned, inside the file,
    /// of `kind`, at least `min` bytes. Returns the object's size.
    pub fn object(&self, r: &mut Reader, off: u64, kind: u8, min: u64) -> Result<(u8, u64), ObjError> {
        if !off.is_multiple_of(8) || off < self.header_size {
            return Err(ObjError::Bad(format!("offset {off:#x} is not an object's")));
        }
        let b = r.get(off, 16).map_err(|_| ObjError::Past(off))?;
        let (t, flags, size) = (u8_at(b, 0), u8_at(b, 1), u64_at(b, 8));
        if t != kind {
            return Err(ObjError::Bad(format!("object at {off:#x} has type {t}, not {kind}")));
        }
        if size < min {
            return Err(ObjError::Bad(format!("object at {off:#x} has size {size}")));
        }
        if off.checked_add(size).is_none_or(|e| e > r.len) {
            return Err(ObjError::Past(off));
        }
        Ok((flags, size))
    }
}

/// Why an object could not be read.
pub enum ObjError {
    /// It starts or ends past the end of the file (a truncated copy).
    Past(u64),
    /// Its header is not what the reference says it is.
    Bad(String),
}

impl ObjError {
    pub fn message(&self) -> String {
        match self {
            ObjError::Past(off) => format!("object at {off:#x} runs past the end of the file"),
            ObjError::Bad(m) => m.clone(),
        }
    }
}

/// An entry object's header fields.
pub struct Entry {
    pub seqnum: u64,
    pub realtime: u64,
    pub monotonic: u64,
    pub boot_id: [u8; 16],
    pub xor_hash: u64,
}

pub const ENTRY_ITEMS: u64 = 64;
pub const ARRAY_ITEMS: u64 = 24;

impl Entry {
    pub fn parse(b: &[u8]) -> Entry {
        let mut boot_id = [0u8; 16];
        boot_id.copy_from_slice(b.get(40..56).unwrap_or(&[0; 16]));
        Entry { seqnum: u64_at(b, 16), realtime: u64_at(b, 24), monotonic: u64_at(b, 32), boot_id, xor_hash: u64_at(b, 56) }
    }

    /// journal-file.c's check of an entry object (journal_file_check_object).
    pub fn valid(&self) -> bool {
        self.seqnum > 0 && self.realtime > 0 && self.realtime < TIME_MAX && self.monotonic < TIME_MAX
    }
}

/// The `k`th item offset of an entry (items start at 64) or entry array
/// (items start at 24), `size` bytes each (4 or 8; regular entry items are
/// 16 bytes, the offset then the hash).
pub fn item(b: &[u8], at: usize, size: u64) -> u64 {
    if size == 4 { u64::from(u32_at(b, at)) } else { u64_at(b, at) }
}
