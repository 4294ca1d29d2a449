//! MFT records ("FILE") and index blocks ("INDX"): the update sequence
//! fixups, and the attributes of one record.

use super::corrupt;
use super::runlist::{Run, decode_runs};
use crate::util::bytes::{slice, u8_at, u16_at, u32_at, u64_at};
use std::io;

pub const AT_STANDARD_INFORMATION: u32 = 0x10;
pub const AT_ATTRIBUTE_LIST: u32 = 0x20;
pub const AT_FILE_NAME: u32 = 0x30;
pub const AT_VOLUME_NAME: u32 = 0x60;
pub const AT_VOLUME_INFORMATION: u32 = 0x70;
pub const AT_DATA: u32 = 0x80;
pub const AT_INDEX_ROOT: u32 = 0x90;
pub const AT_INDEX_ALLOCATION: u32 = 0xA0;
pub const AT_BITMAP: u32 = 0xB0;
pub const AT_REPARSE_POINT: u32 = 0xC0;
const AT_END: u32 = 0xFFFF_FFFF;

/// Record header flags.
pub const FLAG_IN_USE: u16 = 0x0001;
pub const FLAG_DIRECTORY: u16 = 0x0002;

/// Attribute header flags.
pub const ATTR_COMPRESSED: u16 = 0x0001;
pub const ATTR_ENCRYPTED: u16 = 0x4000;

/// Applies the update sequence array in place. Every 512-byte stride of a
/// multi-sector structure ends in the update sequence number; the real
/// bytes are in the array. A mismatch means a torn (half-written) record.
pub fn apply_fixups(buf: &mut [u8], magic: &[u8; 4], what: &str) -> io::Result<()> {
    if buf.get(0..4) != Some(magic) {
        return Err(corrupt(format!("unreadable: {what}: no {} signature", String::from_utf8_lossy(magic))));
    }
    let usa_ofs = usize::from(u16_at(buf, 4));
    let usa_count = usize::from(u16_at(buf, 6));
    let strides = buf.len() / 512;
    if usa_count != strides + 1 || usa_ofs < 8 || usa_ofs + usa_count * 2 > buf.len().min(510) || !usa_ofs.is_multiple_of(2) {
        return Err(corrupt(format!(
            "unreadable: {what}: update sequence array ({usa_count} entries at {usa_ofs}) does not fit a {}-byte record",
            buf.len()
        )));
    }
    let usn = [buf[usa_ofs], buf[usa_ofs + 1]];
    for i in 0..strides {
        let end = i * 512 + 510;
        if buf[end..end + 2] != usn {
            return Err(corrupt(format!("unreadable: {what}: update sequence mismatch in sector {i} (a torn write)")));
        }
        let fix = usa_ofs + 2 + i * 2;
        let (a, b) = (buf[fix], buf[fix + 1]);
        buf[end] = a;
        buf[end + 1] = b;
    }
    Ok(())
}

/// One attribute as found in a record (one piece of it, when a non-resident
/// attribute is split over several records).
#[derive(Clone, Debug)]
pub struct Attr {
    pub typ: u32,
    /// UTF-16 code units of the attribute's name (empty for the unnamed one).
    pub name: Vec<u16>,
    pub flags: u16,
    pub body: Body,
}

#[derive(Clone, Debug)]
pub enum Body {
    Resident(Vec<u8>),
    NonResident(NonResident),
}

#[derive(Clone, Debug)]
pub struct NonResident {
    pub lowest_vcn: u64,
    pub highest_vcn: u64,
    /// log2 of the compression unit in clusters (0: not compressed).
    pub compression_unit: u8,
    /// Sizes are only meaningful in the piece starting at VCN 0.
    pub data_size: u64,
    pub initialized_size: u64,
    pub runs: Vec<Run>,
}

/// The header fields of an MFT record that say what it is.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub flags: u16,
    pub seq: u16,
    /// Base record when this is an extension record (0 for a base record,
    /// and for the extension records of $MFT itself).
    pub base: u64,
    /// The base record's sequence number, as the extension record has it.
    pub base_seq: u16,
    /// An extension record: the full base reference is not zero (record 0
    /// with its sequence number for $MFT's own).
    pub extension: bool,
}

impl Header {
    pub fn parse(b: &[u8]) -> Header {
        let base = u64_at(b, 32);
        Header {
            flags: u16_at(b, 22),
            seq: u16_at(b, 16),
            base: base & 0xFFFF_FFFF_FFFF,
            base_seq: (base >> 48) as u16,
            extension: base != 0,
        }
    }
}

/// A parsed MFT record.
pub struct Record {
    pub flags: u16,
    pub seq: u16,
    /// Base record when this is an extension record (0 for a base record).
    pub base: u64,
    pub attrs: Vec<Attr>,
}

impl Record {
    /// Parses a record whose fixups are already applied.
    pub fn parse(num: u64, b: &[u8]) -> io::Result<Record> {
        let h = Header::parse(b);
        let attrs = raw_attrs(num, b).map(|a| a.and_then(|a| parse_attr(num, a))).collect::<io::Result<_>>()?;
        Ok(Record { flags: h.flags, seq: h.seq, base: h.base, attrs })
    }
}

/// The attributes of a record whose fixups are applied, each as its bytes
/// (header and value), up to the end marker. Each is at least 16 bytes, so
/// this ends within the record; a zero or oversized length is corrupt.
pub fn raw_attrs(num: u64, b: &[u8]) -> impl Iterator<Item = io::Result<&[u8]>> {
    let used = (u32_at(b, 24) as usize).min(b.len());
    let mut off = usize::from(u16_at(b, 20));
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || off + 8 > used {
            return None;
        }
        let typ = u32_at(b, off);
        if typ == AT_END {
            return None;
        }
        let len = u32_at(b, off + 4) as usize;
        if len < 16 || off + len > used || !len.is_multiple_of(8) {
            failed = true;
            return Some(Err(corrupt(format!("unreadable: MFT record {num}: attribute at {off} has length {len}"))));
        }
        let a = &b[off..off + len];
        off += len;
        Some(Ok(a))
    })
}

/// The type of an attribute given as its bytes.
pub fn attr_type(a: &[u8]) -> u32 {
    u32_at(a, 0)
}

/// The value of a resident attribute given as its bytes (None when it is
/// non-resident or its value lies outside it).
pub fn resident_value(a: &[u8]) -> Option<&[u8]> {
    if u8_at(a, 8) != 0 {
        return None;
    }
    let vlen = u32_at(a, 16) as usize;
    let v = slice(a, usize::from(u16_at(a, 20)), vlen);
    (v.len() == vlen).then_some(v)
}

fn parse_attr(num: u64, a: &[u8]) -> io::Result<Attr> {
    let typ = attr_type(a);
    let non_resident = u8_at(a, 8) != 0;
    let name_len = usize::from(u8_at(a, 9));
    let name_off = usize::from(u16_at(a, 10));
    let flags = u16_at(a, 12);
    let name_bytes = slice(a, name_off, name_len * 2);
    if name_bytes.len() != name_len * 2 {
        return Err(corrupt(format!("unreadable: MFT record {num}: attribute {typ:#x} name out of bounds")));
    }
    let name = name_bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    let body = if !non_resident {
        let v = resident_value(a)
            .ok_or_else(|| corrupt(format!("unreadable: MFT record {num}: resident attribute {typ:#x} value out of bounds")))?;
        Body::Resident(v.to_vec())
    } else {
        let lowest_vcn = u64_at(a, 16);
        let highest_vcn = u64_at(a, 24);
        let mp_off = usize::from(u16_at(a, 32));
        let runs = decode_runs(a.get(mp_off..).unwrap_or(&[]), lowest_vcn)
            .map_err(|e| corrupt(format!("unreadable: MFT record {num}: attribute {typ:#x}: {e}")))?;
        Body::NonResident(NonResident {
            lowest_vcn,
            highest_vcn,
            compression_unit: u8_at(a, 34),
            data_size: u64_at(a, 48),
            initialized_size: u64_at(a, 56),
            runs,
        })
    };
    Ok(Attr { typ, name, flags, body })
}

/// The entries of an $ATTRIBUTE_LIST: (type, name, starting VCN, record).
pub fn attribute_list(data: &[u8]) -> Vec<(u32, Vec<u16>, u64, u64)> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 26 <= data.len() {
        let len = usize::from(u16_at(data, off + 4));
        if len < 26 || off + len > data.len() {
            break;
        }
        let e = &data[off..off + len];
        let name_len = usize::from(u8_at(e, 6));
        let name_off = usize::from(u8_at(e, 7));
        let name = slice(e, name_off, name_len * 2).chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        out.push((u32_at(e, 0), name, u64_at(e, 8), u64_at(e, 16) & 0xFFFF_FFFF_FFFF));
        off += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Vec<u8> {
        let mut b = vec![0u8; 1024];
        b[0..4].copy_from_slice(b"FILE");
        b[4] = 0x30; // update sequence array at 48, 3 entries
        b[6] = 3;
        b[0x30..0x36].copy_from_slice(&[0x07, 0x00, 0xAA, 0xBB, 0xCC, 0xDD]);
        b[510..512].copy_from_slice(&[0x07, 0x00]);
        b[1022..1024].copy_from_slice(&[0x07, 0x00]);
        b
    }

    #[test]
    fn fixups_restore_sector_ends_and_catch_torn_writes() {
        let mut b = record();
        apply_fixups(&mut b, b"FILE", "test").unwrap();
        assert_eq!(&b[510..512], &[0xAA, 0xBB]);
        assert_eq!(&b[1022..1024], &[0xCC, 0xDD]);
        let mut torn = record();
        torn[1022] = 0x08;
        let e = apply_fixups(&mut torn, b"FILE", "test").unwrap_err().to_string();
        assert!(e.contains("torn"), "{e}");
        let mut bad = record();
        bad[6] = 200; // array larger than the first sector
        assert!(apply_fixups(&mut bad, b"FILE", "test").is_err());
        assert!(apply_fixups(&mut record(), b"INDX", "test").is_err());
    }
}
