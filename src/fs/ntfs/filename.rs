//! `$FILE_NAME` keys, names, times and reparse points.

use crate::util::bytes::{slice, u8_at, u16_at, u32_at, u64_at};
use crate::util::time::Timestamp;

pub const NS_DOS: u8 = 2;

/// FILE_ATTRIBUTE_* bits kept in $STANDARD_INFORMATION and $FILE_NAME.
pub const FILE_ATTR_READONLY: u32 = 0x0001;
pub const FILE_ATTR_REPARSE: u32 = 0x0400;
/// Set in $FILE_NAME for directories (it has a $I30 index).
pub const FILE_ATTR_DIR_INDEX: u32 = 0x1000_0000;

pub const TAG_MOUNT_POINT: u32 = 0xA000_0003;
pub const TAG_SYMLINK: u32 = 0xA000_000C;
pub const TAG_WOF: u32 = 0x8000_0017;

pub struct FileName {
    /// The parent directory's record number and sequence number.
    pub parent: u64,
    pub parent_seq: u16,
    pub attributes: u32,
    pub namespace: u8,
    /// UTF-8 (WTF-8 for unpaired surrogates), see [`utf16_to_bytes`].
    pub name: Vec<u8>,
}

impl FileName {
    pub fn parse(b: &[u8]) -> Option<FileName> {
        let len = usize::from(u8_at(b, 64));
        let raw = slice(b, 66, len * 2);
        if raw.len() != len * 2 || len == 0 {
            return None;
        }
        let units: Vec<u16> = raw.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        let parent = u64_at(b, 0);
        Some(FileName {
            parent: parent & 0xFFFF_FFFF_FFFF,
            parent_seq: (parent >> 48) as u16,
            attributes: u32_at(b, 56),
            namespace: u8_at(b, 65),
            name: utf16_to_bytes(&units),
        })
    }
}

/// UTF-16LE names as bytes: UTF-8 for valid UTF-16 (lossless), and an
/// unpaired surrogate (Windows allows them) as its 3-byte generalised UTF-8
/// form ("WTF-8"), so distinct names stay distinct and nothing is replaced.
pub fn utf16_to_bytes(units: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(units.len());
    for r in char::decode_utf16(units.iter().copied()) {
        match r {
            Ok(c) => {
                let mut tmp = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
            Err(e) => {
                let u = e.unpaired_surrogate();
                out.extend_from_slice(&[0xE0 | (u >> 12) as u8, 0x80 | (u >> 6 & 0x3F) as u8, 0x80 | (u & 0x3F) as u8]);
            }
        }
    }
    out
}

/// The inverse of [`utf16_to_bytes`]: UTF-16 code units from UTF-8 in which
/// surrogates may stand alone. None for bytes that are not of that form.
pub fn bytes_to_utf16(b: &[u8]) -> Option<Vec<u16>> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let (len, init) = match c {
            0x00..=0x7F => (1, u32::from(c)),
            0xC2..=0xDF => (2, u32::from(c & 0x1F)),
            0xE0..=0xEF => (3, u32::from(c & 0x0F)),
            0xF0..=0xF4 => (4, u32::from(c & 0x07)),
            _ => return None,
        };
        let tail = b.get(i + 1..i + len)?;
        if tail.iter().any(|&t| t & 0xC0 != 0x80) {
            return None;
        }
        let cp = tail.iter().fold(init, |a, &t| a << 6 | u32::from(t & 0x3F));
        // Overlong and out-of-range forms are not what utf16_to_bytes makes.
        let min = [0, 0, 0x80, 0x800, 0x1_0000][len];
        if cp < min || cp > 0x10_FFFF {
            return None;
        }
        match u16::try_from(cp) {
            Ok(u) => out.push(u),
            Err(_) => {
                let v = cp - 0x1_0000;
                out.extend([0xD800 | (v >> 10) as u16, 0xDC00 | (v & 0x3FF) as u16]);
            }
        }
        i += len;
    }
    Some(out)
}

/// FILETIME (100 ns intervals since 1601-01-01 UTC) to Unix time.
pub fn filetime(ft: u64) -> Timestamp {
    Timestamp::from_filetime(ft)
}

/// A reparse point's tag and, for symlinks and junctions, the target: the
/// print name if there is one, else the substitute name (`\??\C:\…`).
pub fn reparse_target(b: &[u8]) -> (u32, Option<Vec<u8>>) {
    let tag = u32_at(b, 0);
    let data = slice(b, 8, usize::from(u16_at(b, 4)));
    let path_start = match tag {
        TAG_SYMLINK => 12, // the four name fields, then 4 bytes of flags
        TAG_MOUNT_POINT => 8,
        _ => return (tag, None),
    };
    let name = |off: usize, len: usize| -> Vec<u16> {
        slice(data, path_start + off, len).chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect()
    };
    let subst = name(usize::from(u16_at(data, 0)), usize::from(u16_at(data, 2)));
    let print = name(usize::from(u16_at(data, 4)), usize::from(u16_at(data, 6)));
    let pick = if print.is_empty() { subst } else { print };
    (tag, (!pick.is_empty()).then(|| utf16_to_bytes(&pick)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_times() {
        let s: Vec<u16> = "r\u{e9}sum\u{e9} \u{1F600}".encode_utf16().collect();
        assert_eq!(utf16_to_bytes(&s), "r\u{e9}sum\u{e9} \u{1F600}".as_bytes());
        assert_eq!(utf16_to_bytes(&[0x61, 0xD800, 0x62]), b"a\xED\xA0\x80b");
        for units in [s.clone(), vec![0x61, 0xD800, 0x62], vec![0xDC00, 0xD83D], vec![]] {
            assert_eq!(bytes_to_utf16(&utf16_to_bytes(&units)), Some(units));
        }
        for bad in [&b"\xff"[..], b"\xc3", b"\xc0\x80", b"\xe0\x80\x80", b"\xf4\x90\x80\x80", b"a\x80"] {
            assert_eq!(bytes_to_utf16(bad), None, "{bad:?}");
        }
        assert_eq!(filetime(116_444_736_000_000_000), Timestamp::new(0, 0));
        // 2024-05-01T12:00:00.1234567Z
        assert_eq!(filetime(133_590_384_001_234_567), Timestamp::new(1_714_564_800, 123_456_700));
        assert_eq!(filetime(0).secs, -11_644_473_600);
    }
}
