//! The only way snapsift names anything it writes.
//!
//! A name from the evidence becomes one safe path component on the analysis
//! host, kept as the machine wrote it wherever the host can store it: never
//! `.`, `..`, empty, or containing `/` or NUL; bytes that are not UTF-8 and
//! control characters are written as `%XX`, and so is a `%` that would
//! otherwise read as such an escape (followed by two hex digits), so the
//! mapping is reversible: decode each `%XX` to get the original bytes.
//! `Microsoft-Windows-Sysmon%4Operational.evtx` keeps its name, as Windows
//! writes it. Over-long names are cut and given a hash suffix so they stay
//! unique.

use sha2::{Digest, Sha256};

/// Linux NAME_MAX is 255 bytes; leave room for a `__N` duplicate suffix.
const MAX_NAME: usize = 240;

fn escape_into(out: &mut String, bytes: &[u8], keep: impl Fn(char) -> bool) {
    let mut at = 0;
    for chunk in bytes.utf8_chunks() {
        for (i, ch) in chunk.valid().char_indices() {
            let literal = if ch == '%' { !starts_escape(&bytes[at + i..]) } else { keep(ch) };
            if literal {
                out.push(ch);
            } else {
                let mut b = [0u8; 4];
                for byte in ch.encode_utf8(&mut b).bytes() {
                    out.push_str(&format!("%{byte:02X}"));
                }
            }
        }
        at += chunk.valid().len();
        for byte in chunk.invalid() {
            out.push_str(&format!("%{byte:02X}"));
        }
        at += chunk.invalid().len();
    }
}

/// Whether `s` (starting at a `%`) would decode as an escape: `%` and two
/// hex digits.
fn starts_escape(s: &[u8]) -> bool {
    matches!(s, [b'%', a, b, ..] if a.is_ascii_hexdigit() && b.is_ascii_hexdigit())
}

/// One file or directory name from the evidence as a safe output name.
pub fn component(name: &[u8]) -> String {
    let mut s = String::with_capacity(name.len());
    escape_into(&mut s, name, |c| !c.is_control() && c != '/');
    match s.as_str() {
        "" => return "%00".into(),
        "." => return "%2E".into(),
        ".." => return "%2E%2E".into(),
        _ => {}
    }
    if s.len() > MAX_NAME {
        let mut cut = 200;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        let h = Sha256::digest(name);
        let hex: String = h[..8].iter().map(|b| format!("{b:02x}")).collect();
        s = format!("{}~{hex}", &s[..cut]);
    }
    s
}

/// A path inside the evidence for display in the manifest and messages:
/// printable ASCII kept, everything else (and `%`) as `%XX`, so every
/// manifest is plain ASCII whatever the names hold.
pub fn display(path: &[u8]) -> String {
    crate::util::bytes::escape(path)
}

/// A path inside the evidence given as its names, for the manifest: each
/// name as in [`display`] and with a `/` inside a name written `%2F`, so
/// the path is unambiguous.
pub fn display_components(comps: &[Vec<u8>]) -> String {
    if comps.is_empty() {
        return "/".into();
    }
    comps.iter().map(|c| format!("/{}", display(c).replace('/', "%2F"))).collect()
}

/// The name used for the `n`-th file (n ≥ 2) that maps to an existing
/// output path: `access.log` → `access__2.log`, `auth.log.2.gz` →
/// `auth.log.2__2.gz`, `.bash_history` → `.bash_history__2`. The extension
/// is kept so `zgrep` and SIEM file patterns still apply.
pub fn duplicate(name: &str, n: u32) -> String {
    match name.rfind('.') {
        Some(i) if i > 0 => format!("{}__{n}{}", &name[..i], &name[i..]),
        _ => format!("{name}__{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_become_safe_components() {
        assert_eq!(component(b".."), "%2E%2E");
        assert_eq!(component(b"."), "%2E");
        assert_eq!(component(b""), "%00");
        assert_eq!(component(b"a/b"), "a%2Fb");
        assert_eq!(component(b"../../etc/passwd"), "..%2F..%2Fetc%2Fpasswd");
        assert_eq!(component(b"bad-\xff\xfe-name.log"), "bad-%FF%FE-name.log");
        assert_eq!(component(b"new\nline"), "new%0Aline");
        assert_eq!(component(b"100%"), "100%");
        assert_eq!(component(b"a%2Fb"), "a%252Fb");
        assert_eq!(component(b"%4"), "%4");
        assert_eq!(component(b"50%ff"), "50%25ff");
        assert_eq!(component(b"Microsoft-Windows-Sysmon%4Operational.evtx"), "Microsoft-Windows-Sysmon%4Operational.evtx");
        assert_eq!(component(b"a\\b"), "a\\b");
        assert_eq!(component("журнал.log".as_bytes()), "журнал.log");
        let long = vec![b'x'; 300];
        let c = component(&long);
        assert!(c.len() <= MAX_NAME && c.contains('~'));
        assert_ne!(c, component(&[b'x'; 301]));
    }

    /// The README's decoding rule: each `%` and two hex digits is a byte.
    fn decode(s: &str) -> Vec<u8> {
        let b = s.as_bytes();
        let (mut out, mut i) = (Vec::new(), 0);
        while i < b.len() {
            match b.get(i..i + 3).and_then(|h| std::str::from_utf8(&h[1..]).ok().filter(|_| h[0] == b'%')) {
                Some(hex) if hex.bytes().all(|c| c.is_ascii_hexdigit()) => {
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                }
                _ => {
                    out.push(b[i]);
                    i += 1;
                }
            }
        }
        out
    }

    #[test]
    fn names_decode_back_to_their_bytes() {
        let alphabet: &[u8] = b"%%%aF09g/.\\\x00\n\xff\xc3\xa9 ";
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 12) as usize;
            let name: Vec<u8> = (0..len).map(|i| alphabet[((x >> (i * 5)) % alphabet.len() as u64) as usize]).collect();
            if matches!(&name[..], b"" | b"." | b"..") {
                continue;
            }
            let c = component(&name);
            assert!(!c.contains('/') && !c.contains('\0'), "{c:?}");
            assert_eq!(decode(&c), name, "{c:?}");
        }
    }

    #[test]
    fn display_is_ascii_and_reversible() {
        assert_eq!(display(b"/var/log/bad-\xff.log"), "/var/log/bad-%FF.log");
        assert_eq!(display(b"/a b/100%"), "/a b/100%25");
    }

    #[test]
    fn duplicates_keep_the_extension() {
        assert_eq!(duplicate("access.log", 2), "access__2.log");
        assert_eq!(duplicate("auth.log.2.gz", 3), "auth.log.2__3.gz");
        assert_eq!(duplicate(".bash_history", 2), ".bash_history__2");
        assert_eq!(duplicate("messages", 2), "messages__2");
    }
}
