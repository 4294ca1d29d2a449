//! Bounds-checked little-endian field readers for on-disk structures.
//!
//! Every parser reads untrusted bytes through these, so a short or corrupt
//! structure yields zero for a missing field instead of a panic; callers
//! validate the values that matter (magic numbers, sizes) themselves.

pub fn u8_at(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}

pub fn u16_at(b: &[u8], off: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(off..off.saturating_add(2)) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

pub fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off.saturating_add(4)) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

pub fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off.saturating_add(8)) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// A sub-slice that is empty instead of panicking when out of range.
pub fn slice(b: &[u8], off: usize, len: usize) -> &[u8] {
    b.get(off..off.saturating_add(len)).unwrap_or(&[])
}

pub fn be_u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([u8_at(b, off), u8_at(b, off + 1)])
}

pub fn be_u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off.saturating_add(4)) {
        a.copy_from_slice(s);
    }
    u32::from_be_bytes(a)
}

pub fn be_u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off.saturating_add(8)) {
        a.copy_from_slice(s);
    }
    u64::from_be_bytes(a)
}

/// A UUID stored in its text order (ext, XFS, Btrfs), lower case:
/// `5eedb7f5-0000-4000-8000-000000000001`.
pub fn uuid(b: &[u8]) -> String {
    let u = slice(b, 0, 16);
    let hex = |r: std::ops::Range<usize>| u.get(r).unwrap_or(&[]).iter().map(|b| format!("{b:02x}")).collect::<String>();
    format!("{}-{}-{}-{}-{}", hex(0..4), hex(4..6), hex(6..8), hex(8..10), hex(10..16))
}

/// A GUID as stored by Microsoft formats (first three fields little-endian),
/// in its usual upper-case text form.
pub fn guid(b: &[u8]) -> String {
    let s = slice(b, 0, 16);
    if s.len() < 16 {
        return String::new();
    }
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        u32_at(s, 0),
        u16_at(s, 4),
        u16_at(s, 6),
        s[8],
        s[9],
        s[10],
        s[11],
        s[12],
        s[13],
        s[14],
        s[15]
    )
}

/// Bytes from the evidence for messages: printable ASCII kept, everything
/// else (and `%`) as `%XX`, so a hostile name cannot forge a line or a
/// terminal escape.
pub fn escape(path: &[u8]) -> String {
    let mut s = String::with_capacity(path.len());
    for &b in path {
        if (0x20..0x7F).contains(&b) && b != b'%' {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}
