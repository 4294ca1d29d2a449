//! JSON rendering of field values as journalctl's `-o json` does it
//! (src/shared/logs-show.c, `update_json_data`): a value that is valid,
//! "printable" UTF-8 (basic/utf8.c's `utf8_is_printable`) is a string,
//! anything else an array of its bytes as numbers.

/// systemd's `utf8_is_printable`: valid UTF-8 (no overlong forms, no
/// surrogates, nothing past U+10FFFF: what Rust's `from_utf8` checks too),
/// none of systemd's invalid code points (U+FDD0..U+FDEF, U+xFFFE/U+xFFFF),
/// and no control characters but tab and newline (C0, DEL and C1).
pub fn printable(b: &[u8]) -> bool {
    // The common case, printable ASCII, in one pass.
    if b.iter().all(|&c| (0x20..0x7f).contains(&c) || c == b'\t' || c == b'\n') {
        return true;
    }
    let Ok(s) = std::str::from_utf8(b) else { return false };
    s.chars().all(|c| {
        let u = c as u32;
        !((u < 0x20 && c != '\t' && c != '\n') || (0x7f..=0x9f).contains(&u) || (0xfdd0..=0xfdef).contains(&u) || u & 0xfffe == 0xfffe)
    })
}

/// `"s"` with JSON escapes (`"`, `\`, control bytes), for bytes known to
/// be valid UTF-8.
pub fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    for (i, &c) in s.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\t' => b"\\t",
            b'\r' => b"\\r",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(s.get(start..i).unwrap_or_default());
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 15)]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(s.get(start..).unwrap_or_default());
    out.push(b'"');
}

/// `[98,105,110]`.
pub fn push_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.reserve(b.len() * 4 + 2);
    out.push(b'[');
    for (i, &c) in b.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if c >= 100 {
            out.push(b'0' + c / 100);
        }
        if c >= 10 {
            out.push(b'0' + c / 10 % 10);
        }
        out.push(b'0' + c % 10);
    }
    out.push(b']');
}

/// A value as journalctl renders it.
#[cfg(test)]
pub fn push_value(out: &mut Vec<u8>, v: &[u8]) {
    if printable(v) { push_str(out, v) } else { push_bytes(out, v) }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex without leading zeros (`%llx`).
pub fn push_hex(out: &mut Vec<u8>, v: u64) {
    let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
    for k in (0..digits).rev() {
        out.push(HEX[((v >> (k * 4)) & 15) as usize]);
    }
}

/// A 128-bit id as 32 lowercase hex digits.
pub fn push_id(out: &mut Vec<u8>, id: &[u8; 16]) {
    for &b in id {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

/// journal-file.c's `journal_field_valid(…, allow_protected = true)`: 1 to
/// 64 of `A-Z`, `0-9`, `_`, not starting with a digit.
pub fn field_name_valid(n: &[u8]) -> bool {
    !n.is_empty() && n.len() <= 64 && !n[0].is_ascii_digit() && n.iter().all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_as_journalctl_does() {
        let r = |v: &[u8]| {
            let mut o = Vec::new();
            push_value(&mut o, v);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(r(b"a\"b\\c\td\ne"), r#""a\"b\\c\td\ne""#);
        assert_eq!(r("caf\u{e9} \u{1f511}".as_bytes()), "\"caf\u{e9} \u{1f511}\"");
        assert_eq!(r(b"bin\x00"), "[98,105,110,0]");
        assert_eq!(r(b"\x1b[0m"), "[27,91,48,109]");
        assert_eq!(r(b"\x7f"), "[127]");
        assert_eq!(r("\u{85}".as_bytes()), "[194,133]");
        assert_eq!(r("\u{fffe}".as_bytes()), "[239,191,190]");
        assert_eq!(r("\u{fdd0}".as_bytes()), "[239,183,144]");
        assert_eq!(r(b"\xc0\xaf"), "[192,175]");
        assert_eq!(r(b"cr\r"), "[99,114,13]");
        assert_eq!(r(b""), "\"\"");
        let mut o = Vec::new();
        push_str(&mut o, b"\x01\r");
        assert_eq!(o, br#""\u0001\r""#);
        let mut h = Vec::new();
        push_hex(&mut h, 0);
        h.push(b' ');
        push_hex(&mut h, 0x0006_0a24_181e_4000);
        h.push(b' ');
        push_hex(&mut h, u64::MAX);
        assert_eq!(h, b"0 60a24181e4000 ffffffffffffffff");
        assert!(field_name_valid(b"_BOOT_ID") && field_name_valid(b"MESSAGE2"));
        assert!(!field_name_valid(b"2X") && !field_name_valid(b"msg") && !field_name_valid(b"") && !field_name_valid(&[b'A'; 65]));
    }
}
