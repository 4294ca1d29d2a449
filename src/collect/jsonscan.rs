//! Just enough JSON to read a few members of one object in a rendered
//! record, as raw byte slices, without parsing (or allocating for) the rest.
//! The EVTX→JSON conversion reads four fields of `Event.System` from every
//! record; a serde parse of that object cost a quarter of the crate's own
//! rendering time, this walk a few percent (benches/evtx_json.rs).
//!
//! Values are not validated, only delimited: a string ends at its first
//! unescaped quote, an object or array at the bracket that closes it
//! (brackets inside strings do not count), anything else at the next `,`,
//! `}` or `]`. Input that ends too early or is not shaped like JSON gives
//! `None`, never a panic; nothing recurses, so nesting depth is free.

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while s.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

const ONES: u64 = 0x0101_0101_0101_0101;

/// The high bit of each zero byte of `x`. A false hit can only follow a
/// true one, so the lowest bit set is exact.
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & (ONES << 7)
}

/// From `s[j]` on, eight bytes at a time, the first byte that `hits` may
/// flag (SWAR: no per-call setup, unlike a SIMD search, which costs more
/// than it saves on the short spans read here); the caller checks that
/// byte, since `hits` may flag more than it asks for. Near the end of `s`
/// it stops early, and the caller goes on a byte at a time.
fn skip_plain(s: &[u8], mut j: usize, hits: impl Fn(u64) -> u64) -> usize {
    while let Some(w) = s.get(j..j + 8) {
        let hit = hits(u64::from_le_bytes(w.try_into().expect("eight bytes")));
        if hit != 0 {
            return j + hit.trailing_zeros() as usize / 8;
        }
        j += 8;
    }
    j
}

/// The end of the string whose opening quote is at `s[i]`, past its
/// closing quote.
fn string_end(s: &[u8], i: usize) -> Option<usize> {
    let quote_or_escape = |x: u64| zero_bytes(x ^ (ONES * b'"' as u64)) | zero_bytes(x ^ (ONES * b'\\' as u64));
    let mut j = i + 1;
    loop {
        j = skip_plain(s, j, quote_or_escape);
        match *s.get(j)? {
            b'"' => return Some(j + 1),
            b'\\' => j += 2, // an escape: the next byte is never the end
            _ => j += 1,
        }
    }
}

/// The end of the JSON value starting at `s[i]` (no leading whitespace).
pub fn value_end(s: &[u8], i: usize) -> Option<usize> {
    match *s.get(i)? {
        b'"' => string_end(s, i),
        b'{' | b'[' => {
            // `"`, or a bracket: `[`/`]` become `{`/`}` with bit 5 set.
            let structural = |x: u64| {
                let y = x | (ONES * 0x20);
                zero_bytes(x ^ (ONES * b'"' as u64)) | zero_bytes(y ^ (ONES * b'{' as u64)) | zero_bytes(y ^ (ONES * b'}' as u64))
            };
            let (mut depth, mut j) = (0usize, i);
            loop {
                j = skip_plain(s, j, structural);
                match *s.get(j)? {
                    b'"' => {
                        j = string_end(s, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        b',' | b'}' | b']' | b':' => None,
        _ => {
            let n = s[i..].iter().position(|c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace());
            Some(n.map_or(s.len(), |n| i + n))
        }
    }
}

/// Walks the object at `s[i]`: calls `f(key, start)` for each member, the
/// key as written between its quotes (escapes left as they are), `start`
/// where its value begins; `f` reads the value as it likes (skips it with
/// [`value_end`], or walks into it) and returns where it ends. Returns the
/// end of the object, or `None` if `s[i]` does not start a whole object.
pub fn walk_object<'a>(s: &'a [u8], i: usize, mut f: impl FnMut(&'a [u8], usize) -> Option<usize>) -> Option<usize> {
    if s.get(i) != Some(&b'{') {
        return None;
    }
    let mut j = skip_ws(s, i + 1);
    if s.get(j) == Some(&b'}') {
        return Some(j + 1);
    }
    loop {
        if s.get(j) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(s, j)?;
        let key = &s[j + 1..key_end - 1];
        j = skip_ws(s, key_end);
        if s.get(j) != Some(&b':') {
            return None;
        }
        j = f(key, skip_ws(s, j + 1))?;
        j = skip_ws(s, j);
        match s.get(j)? {
            b',' => j = skip_ws(s, j + 1),
            b'}' => return Some(j + 1),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls `f(key, value)` for each member of the object at `s[i]`, the
    /// value as its raw JSON text (see [`walk_object`]).
    fn members<'a>(s: &'a [u8], i: usize, mut f: impl FnMut(&'a [u8], &'a [u8])) -> Option<usize> {
        walk_object(s, i, |k, v| {
            let end = value_end(s, v)?;
            f(k, &s[v..end]);
            Some(end)
        })
    }

    /// The raw value of `key` in the object `obj` (raw JSON text), if it is an
    /// object holding that key.
    fn member<'a>(obj: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
        let mut found = None;
        members(obj, 0, |k, v| {
            if found.is_none() && k == key {
                found = Some(v);
            }
        })?;
        found
    }

    fn all(s: &str) -> Option<Vec<(String, String)>> {
        let mut v = Vec::new();
        let s = s.as_bytes();
        members(s, 0, |k, x| v.push((String::from_utf8_lossy(k).into(), String::from_utf8_lossy(x).into())))?;
        Some(v)
    }

    #[test]
    fn members_are_delimited_as_serde_json_reads_them() {
        let doc = r#"{"a":1,"b":"x\"}{","c":{"d":[1,{"e":"]"}],"f":null}, "g" : true ,"h":-1.5e3,"i":[]}"#;
        let got = all(doc).unwrap();
        let want: serde_json::Map<String, serde_json::Value> = serde_json::from_str(doc).unwrap();
        assert_eq!(got.len(), want.len());
        for (k, raw) in &got {
            assert_eq!(&serde_json::from_str::<serde_json::Value>(raw).unwrap(), &want[k], "{k}");
        }
        assert_eq!(member(doc.as_bytes(), b"g"), Some(&b"true"[..]));
        assert_eq!(member(doc.as_bytes(), b"d"), None, "only the object's own members");
        assert_eq!(all("{}").unwrap(), vec![]);
    }

    #[test]
    fn every_length_and_position_reads_alike() {
        // Strings and arrays across the eight-byte steps, with the quote,
        // escape and bracket at every offset from a step's start.
        for n in 0..20 {
            for m in 0..20 {
                let (a, b) = ("a".repeat(n), "é".repeat(m));
                let doc = format!(r#"{{"k{a}":"{a}\"{b}\\","x":[{b:?},{{"y{b}":"]}}{a}"}}],"z":[[{n}]]}}"#);
                let want: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&doc).expect(&doc);
                let got = all(&doc).expect(&doc);
                assert_eq!(got.len(), want.len(), "{doc}");
                for (k, raw) in &got {
                    let k: String = serde_json::from_str(&format!("\"{k}\"")).unwrap();
                    assert_eq!(&serde_json::from_str::<serde_json::Value>(raw).unwrap(), &want[&k], "{doc}");
                }
            }
        }
    }

    #[test]
    fn malformed_or_cut_input_is_none_not_a_panic() {
        for bad in [
            "",
            "{",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":1",
            "{\"a\":\"x",
            "{\"a\":\"x\\",
            "{\"a\":{\"b\":1}",
            "{\"a\":1,",
            "{a:1}",
            "{\"a\" 1}",
            "{\"a\":1 2}",
            "[1]",
            "{\"a\":}",
            "{\"a\":]}",
            "{\"a\":[}",
        ] {
            assert!(all(bad).is_none(), "{bad:?}");
        }
        // Bytes after the object are not its business.
        assert_eq!(members(b"{\"a\":1}garbage", 0, |_, _| {}), Some(7));
    }
}
