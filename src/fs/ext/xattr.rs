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

/// Parses the entry table at `values[table_at..]`, value offsets measured
/// from the start of `values` (the block for an attribute block, the first
/// entry for the inode body), with the kernel's checks
/// (`ext4_xattr_check_entries`): every entry and the end marker inside the
/// region, and every value after the end marker and inside the region. A
/// table that fails them is damaged as a whole, as the kernel treats it:
/// bytes of the table itself must never be taken for a value.
pub fn entries(values: &[u8], table_at: usize) -> Result<Vec<Entry<'_>>, String> {
    let mut out = Vec::new();
    let mut off = table_at;
    loop {
        let e = values.get(off..).filter(|e| e.len() >= 4).ok_or("the attribute table has no end marker")?;
        if u32_at(e, 0) == 0 {
            break;
        }
        let name_len = u8_at(e, 0) as usize;
        let next = off + (16 + name_len).div_ceil(4) * 4;
        let name =
            values.get(off + 16..off + 16 + name_len).filter(|_| next < values.len()).ok_or("an attribute entry runs past its area")?;
        let value_off = u16_at(e, 2) as usize;
        let inum = u64::from(u32_at(e, 4));
        let size = u32_at(e, 8) as usize;
        out.push((u8_at(e, 1), name, value_off, inum, size));
        off = next;
    }
    let table_end = off + 4;
    out.into_iter()
        .map(|(index, name, value_off, inum, size)| {
            let value = if inum != 0 {
                Value::Inode(inum, size as u64)
            } else if size == 0 {
                Value::Inline(&[])
            } else {
                if value_off < table_end {
                    return Err(format!("an attribute value at offset {value_off} overlaps the attribute table (it ends at {table_end})"));
                }
                let fits = value_off.checked_add(size.div_ceil(4) * 4).is_some_and(|end| end <= values.len());
                match values.get(value_off..value_off + size).filter(|_| fits) {
                    Some(v) => Value::Inline(v),
                    None => return Err(format!("an attribute value of {size} bytes at offset {value_off} runs past its area")),
                }
            };
            Ok(Entry { index, name, value })
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of one `system.data` entry (index 7, name "data") whose value
    /// sits at `value_off` with `size` bytes, in a 96-byte area.
    fn body(value_off: u16, size: u32) -> Vec<u8> {
        let mut b = vec![0u8; 96];
        b[0] = 4;
        b[1] = 7;
        b[2..4].copy_from_slice(&value_off.to_le_bytes());
        b[8..12].copy_from_slice(&size.to_le_bytes());
        b[16..20].copy_from_slice(b"data");
        // The entry takes 20 bytes, the end marker 4: values from 24 on.
        for (i, x) in b[24..].iter_mut().enumerate() {
            *x = i as u8 + 1;
        }
        b
    }

    #[test]
    fn values_lie_after_the_table_and_inside_the_area() {
        let b = body(24, 10);
        let e = entries(&b, 0).unwrap();
        assert!(matches!(e[0].value, Value::Inline(v) if v == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
        // f_ea_value_crash: the value at offset 0 is the table's own bytes.
        assert!(entries(&body(0, 10), 0).err().is_some_and(|e| e.contains("overlaps the attribute table")));
        assert!(entries(&body(20, 10), 0).is_err());
        // Past the area, or past it once rounded to 4 bytes.
        assert!(entries(&body(90, 10), 0).is_err());
        assert!(entries(&body(89, 7), 0).is_err());
        assert!(entries(&body(88, 8), 0).is_ok());
        // No end marker before the area ends.
        let mut b = body(24, 4);
        b.truncate(20);
        assert!(entries(&b, 0).is_err());
    }
}
