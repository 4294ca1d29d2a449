//! Tar header fields (POSIX ustar, GNU and PAX), shared by the evidence
//! layer (a disk inside a GCP `.tar.gz` export) and the filesystem layer
//! (container image layers).

use crate::util::corrupt;
use std::io;

pub const BLOCK: usize = 512;
/// Long names and PAX records are bounded before allocating.
pub const MAX_META: u64 = 1 << 20;

/// A numeric field: octal text, or base-256 when the top bit is set.
pub fn number(f: &[u8]) -> io::Result<u64> {
    if f.first().is_some_and(|&b| b & 0x80 != 0) {
        let mut v: u64 = 0;
        for (i, &b) in f.iter().enumerate() {
            let b = if i == 0 { b & 0x7F } else { b };
            v = v.checked_mul(256).and_then(|v| v.checked_add(u64::from(b))).ok_or_else(|| corrupt("tar number overflows"))?;
        }
        return Ok(v);
    }
    let s: String = f.iter().take_while(|&&b| b != 0).map(|&b| b as char).collect();
    let s = s.trim();
    if s.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(s, 8).map_err(|_| corrupt(format!("bad tar number {s:?}")))
}

/// A NUL-terminated field's bytes.
pub fn field(f: &[u8]) -> &[u8] {
    &f[..f.iter().position(|&b| b == 0).unwrap_or(f.len())]
}

/// Rounds a member size up to whole blocks.
pub fn padded(n: u64) -> u64 {
    n.div_ceil(BLOCK as u64).saturating_mul(BLOCK as u64)
}

/// PAX extended-header records `"<len> key=value\n"`, as raw bytes: values
/// such as `SCHILY.xattr.*` are binary, and paths need not be UTF-8.
pub fn pax_records(b: &[u8]) -> io::Result<Vec<(&[u8], &[u8])>> {
    let mut out = Vec::new();
    let mut rest = b;
    while !rest.is_empty() && rest[0] != 0 {
        let sp = rest.iter().position(|&c| c == b' ').ok_or_else(|| corrupt("bad PAX record"))?;
        let len: usize =
            std::str::from_utf8(&rest[..sp]).ok().and_then(|s| s.parse().ok()).ok_or_else(|| corrupt("bad PAX record length"))?;
        if len <= sp + 1 || len > rest.len() {
            return Err(corrupt(format!("bad PAX record length {len}")));
        }
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        rest = &rest[len..];
        if let Some(eq) = rec.iter().position(|&c| c == b'=') {
            out.push((&rec[..eq], &rec[eq + 1..]));
        }
    }
    Ok(out)
}

/// The name of a ustar/GNU header: `prefix/name` when the ustar prefix is
/// set (GNU headers use that space for other fields).
pub fn header_name(h: &[u8]) -> Vec<u8> {
    let name = field(&h[0..100]);
    let ustar = &h[257..263] == b"ustar\0";
    let prefix = if ustar { field(&h[345..500]) } else { &[][..] };
    if prefix.is_empty() { name.to_vec() } else { [prefix, b"/", name].concat() }
}
