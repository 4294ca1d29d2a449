//! LZNT1, the compression of NTFS compressed files.
//!
//! A compression unit holds chunks, each inflating to (at most) 4096
//! bytes. A chunk starts with a 16-bit header: bits 0–11 are the chunk's
//! size minus 3, bit 15 says whether it is compressed; a zero header ends
//! the unit. A compressed chunk is groups of a flag byte and eight tokens:
//! a clear bit is a literal byte, a set bit a 16-bit back-reference whose
//! split between offset and length depends on how far into the chunk the
//! output is (the more output, the more offset bits).

const CHUNK: usize = 4096;

/// Inflates one compression unit into exactly `out_len` bytes (what the
/// chunks do not cover reads as zeros).
pub fn decompress(src: &[u8], out_len: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(out_len);
    let mut pos = 0;
    while pos + 2 <= src.len() && out.len() < out_len {
        let h = usize::from(u16::from_le_bytes([src[pos], src[pos + 1]]));
        if h == 0 {
            break;
        }
        let size = (h & 0x0FFF) + 1;
        let body = src.get(pos + 2..pos + 2 + size).ok_or("LZNT1 chunk runs past the compressed data")?;
        let start = out.len();
        if h & 0x8000 == 0 {
            out.extend_from_slice(body);
        } else {
            chunk(body, &mut out, start)?;
        }
        if out.len() - start > CHUNK {
            return Err("LZNT1 chunk inflates to more than 4096 bytes".into());
        }
        // Every chunk but the last stands for a full 4096 bytes.
        out.resize(start + CHUNK, 0);
        pos += 2 + size;
    }
    out.resize(out_len, 0);
    Ok(out)
}

fn chunk(src: &[u8], out: &mut Vec<u8>, start: usize) -> Result<(), String> {
    let mut i = 0;
    while i < src.len() {
        let flags = src[i];
        i += 1;
        for bit in 0..8 {
            if i >= src.len() {
                return Ok(());
            }
            if flags >> bit & 1 == 0 {
                out.push(src[i]);
                i += 1;
                continue;
            }
            if i + 2 > src.len() {
                return Err("LZNT1 token cut short".into());
            }
            let t = usize::from(u16::from_le_bytes([src[i], src[i + 1]]));
            i += 2;
            let done = out.len() - start;
            if done == 0 {
                return Err("LZNT1 back-reference before any output".into());
            }
            // Offset bits: 4 up to 16 bytes of output, one more for each
            // doubling after that (12 at most in a 4 KiB chunk).
            let mut len_bits = 12u32;
            let mut d = done - 1;
            while d >= 0x10 {
                len_bits -= 1;
                d >>= 1;
            }
            let offset = (t >> len_bits) + 1;
            let len = (t & ((1 << len_bits) - 1)) + 3;
            if offset > done {
                return Err(format!("LZNT1 back-reference {offset} bytes before the chunk start"));
            }
            if done + len > CHUNK {
                return Err("LZNT1 chunk inflates to more than 4096 bytes".into());
            }
            // Byte by byte: the source may overlap what is being written.
            let from = out.len() - offset;
            for k in 0..len {
                let c = out[from + k];
                out.push(c);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflates_literals_and_overlapping_references() {
        // "abc" then a reference 3 back, length 6: "abcabcabc".
        // Output so far 3 → 12 length bits; token = (3-1)<<12 | (6-3).
        let t: u16 = (2 << 12) | 3;
        let body = [0b0000_1000, b'a', b'b', b'c', t.to_le_bytes()[0], t.to_le_bytes()[1]];
        let mut src = vec![];
        let h: u16 = 0x8000 | 0x3000 | (body.len() as u16 - 1);
        src.extend_from_slice(&h.to_le_bytes());
        src.extend_from_slice(&body);
        let out = decompress(&src, 16).unwrap();
        assert_eq!(&out[..9], b"abcabcabc");
        assert!(out[9..].iter().all(|&b| b == 0));
        // Reference before the start is an error, not a panic.
        let bad = [0x05, 0xB0, 0x01, 0x00, 0x10, b'x'];
        assert!(decompress(&bad, 4096).is_err());
    }

    #[test]
    fn random_input_never_panics() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..3000 {
            let src: Vec<u8> = (0..len % 700)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Valid-looking chunk headers now and then.
                    if x.is_multiple_of(97) { 0xB0 } else { x as u8 }
                })
                .collect();
            if let Ok(out) = decompress(&src, 65536) {
                assert_eq!(out.len(), 65536);
            }
        }
    }
}
