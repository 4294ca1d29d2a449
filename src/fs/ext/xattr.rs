//! ext extended attributes: the entries in the inode body (after
//! `i_extra_isize`) and in the external attribute block (`i_file_acl`).
//! Both use the same entry layout; only where values are measured from
//! differs (the first entry in the body, the block start in a block).
//! Values kept in their own inode (`ea_inode`) are read from that inode.

use crate::util::bytes::{u8_at, u16_at, u32_at};

pub const MAGIC: u32 = 0xEA02_0000;
/// Block header: magic, refcount, blocks, hash, checksum, reserved.
pub const BLOCK_HEADER: usize = 32;

/// One entry as stored: the name's namespace index, the name without its
/// prefix, and where the value is.
pub struct Entry<'a> {
    pub index: u8,
    pub name: &'a [u8],
    pub value: Value<'a>,
}

pub enum Value<'a> {
    Inline(&'a [u8]),
    /// `ea_inode`: the value is the content of this inode.
    Inode(u64, u64),
}

/// Parses the entries starting at `entries`, with value offsets measured
/// from the start of `values`. Stops at the end marker, at the end of the
/// region, or at the first entry that does not fit (a damaged region yields
/// the entries before the damage).
pub fn entries<'a>(entries: &'a [u8], values: &'a [u8]) -> Vec<Entry<'a>> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off + 16 <= entries.len() {
        let e = &entries[off..];
        let name_len = u8_at(e, 0) as usize;
        if name_len == 0 && u32_at(e, 0) == 0 {
            break;
        }
        let Some(name) = e.get(16..16 + name_len) else { break };
        let value_off = u16_at(e, 2) as usize;
        let inum = u64::from(u32_at(e, 4));
        let size = u32_at(e, 8) as usize;
        let value = if inum != 0 {
            Value::Inode(inum, size as u64)
        } else {
            match values.get(value_off..value_off.saturating_add(size)) {
                Some(v) => Value::Inline(v),
                None => break,
            }
        };
        out.push(Entry { index: u8_at(e, 1), name, value });
        off += (16 + name_len).div_ceil(4) * 4;
    }
    out
}

/// The full attribute name: the namespace prefix for the index, then the
/// stored name (`4` + `overlay.opaque` → `trusted.overlay.opaque`).
pub fn full_name(index: u8, name: &[u8]) -> Vec<u8> {
    let prefix: &[u8] = match index {
        1 => b"user.",
        2 => b"system.posix_acl_access",
        3 => b"system.posix_acl_default",
        4 => b"trusted.",
        6 => b"security.",
        7 => b"system.",
        8 => b"system.richacl",
        _ => b"",
    };
    [prefix, name].concat()
}
