//! XPRESS Huffman ("LZ77+Huffman"), the method of WOF-compressed files
//! made with `compact /exe:xpress4k|xpress8k|xpress16k`: one chunk of at
//! most 64 KiB in, its known number of bytes out.
//!
//! Written from Microsoft's [MS-XCA] §2.1–2.2 (LZ77+Huffman decompression):
//! 256 bytes of code lengths (4 bits per symbol, the even symbol in the low
//! nibble) for 512 symbols, then a stream of 16-bit little-endian words read
//! most significant bit first. Symbols below 256 are literals; symbol
//! 256 + 16·b + l is a match whose offset is `2^b` plus the next `b` bits,
//! and whose length is `l + 3`, or for `l = 15` continues in whole bytes
//! taken from the input between the words (one byte, then if it is 255 a
//! 16-bit length, then if that is 0 a 32-bit one). The bit register
//! refills lazily, as the specification's decoder does, because those
//! bytes are read from where the refills have got to. A new Huffman table
//! would start every 65,536 output bytes; WOF chunks are at most 16 KiB,
//! so a chunk is one block (a longer output is refused). Symbol 256 is an
//! ordinary match here: the output size, not an end symbol, ends a chunk.

use super::huffman::{Huffman, WINDOW};

/// The largest output of one Huffman block.
const BLOCK: usize = 65536;

/// The bit register of [MS-XCA]'s decoder: 16–32 bits on hand, refilled one
/// 16-bit word at a time when fewer than 16 remain.
struct Bits<'a> {
    src: &'a [u8],
    pos: usize,
    /// Left-aligned: the next bit is bit 31.
    buf: u32,
    avail: u32,
    /// Words past the end of the input, read as zeros.
    missing: u32,
}

impl<'a> Bits<'a> {
    fn new(src: &'a [u8], pos: usize) -> Bits<'a> {
        let mut b = Bits { src, pos, buf: 0, avail: 32, missing: 0 };
        b.buf = b.word() << 16 | b.word();
        b
    }

    /// The next 16-bit word of input (zeros past its end: a decoder may load
    /// a word ahead of what it uses; `finish` checks none was used).
    fn word(&mut self) -> u32 {
        let w = match self.src.get(self.pos..self.pos + 2) {
            Some(w) => u32::from(u16::from_le_bytes([w[0], w[1]])),
            None => {
                self.missing += 1;
                0
            }
        };
        self.pos += 2;
        w
    }

    #[inline]
    fn peek(&self, n: u32) -> u32 {
        if n == 0 { 0 } else { self.buf >> (32 - n) }
    }

    #[inline]
    fn consume(&mut self, n: u32) {
        // n ≤ 16 ≤ avail
        self.buf = if n >= 32 { 0 } else { self.buf << n };
        self.avail -= n;
        if self.avail < 16 {
            let w = self.word();
            self.buf |= w << (16 - self.avail);
            self.avail += 16;
        }
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let b = self.src.get(self.pos..self.pos + N).ok_or("XPRESS match length runs past the end of the compressed data")?;
        self.pos += N;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// Whether every bit used was in the input.
    fn finish(&self) -> Result<(), String> {
        if self.missing * 16 > self.avail {
            return Err("XPRESS data ends before the chunk is complete".into());
        }
        Ok(())
    }
}

/// Decodes `src` into `out` (cleared first), which ends up exactly
/// `out_len` bytes long, or an error naming the defect.
pub fn decompress(src: &[u8], out: &mut Vec<u8>, out_len: usize) -> Result<(), String> {
    out.clear();
    if out_len > BLOCK {
        return Err(format!("XPRESS chunk of {out_len} bytes (at most {BLOCK})"));
    }
    out.reserve(out_len);
    let table = src.get(..256).ok_or_else(|| format!("XPRESS chunk of {} bytes is shorter than its 256-byte Huffman table", src.len()))?;
    let mut lens = [0u8; 512];
    for (i, b) in table.iter().enumerate() {
        lens[2 * i] = b & 0x0F;
        lens[2 * i + 1] = b >> 4;
    }
    let huff = Huffman::new(&lens, 11, 15).map_err(|e| format!("XPRESS: {e}"))?;
    let mut bits = Bits::new(src, 256);
    while out.len() < out_len {
        let (sym, n) = huff.decode(bits.peek(WINDOW)).ok_or("XPRESS Huffman table has no codes")?;
        bits.consume(n);
        if sym < 256 {
            out.push(sym as u8);
            continue;
        }
        let sym = u32::from(sym - 256);
        let mut len = (sym & 15) as usize;
        let offset_bits = sym >> 4;
        if len == 15 {
            len = usize::from(bits.bytes::<1>()?[0]);
            if len == 255 {
                len = usize::from(u16::from_le_bytes(bits.bytes::<2>()?));
                if len == 0 {
                    len = u32::from_le_bytes(bits.bytes::<4>()?) as usize;
                }
                len = len.checked_sub(15).ok_or("XPRESS match length below 15 in its long form")?;
            }
            len += 15;
        }
        len += 3;
        let offset = (1usize << offset_bits) | bits.peek(offset_bits) as usize;
        bits.consume(offset_bits);
        if offset > out.len() {
            return Err(format!("XPRESS match reaches before the start of the output (offset {offset} at byte {})", out.len()));
        }
        if len > out_len - out.len() {
            return Err(format!("XPRESS match of {len} bytes runs past the end of the chunk (at byte {} of {out_len})", out.len()));
        }
        copy_match(out, offset, len);
    }
    bits.finish()
}

/// Appends `len` bytes copied from `offset` back (1 ≤ offset ≤ out.len()),
/// overlapping when the offset is shorter than the length: then the copy
/// repeats the last `offset` bytes, one period at a time.
#[inline]
pub(super) fn copy_match(out: &mut Vec<u8>, offset: usize, len: usize) {
    let start = out.len() - offset;
    if offset >= len {
        out.extend_from_within(start..start + len);
    } else if offset == 1 {
        let b = out.last().copied().unwrap_or(0);
        out.resize(out.len() + len, b);
    } else {
        let mut left = len;
        while left > 0 {
            let n = left.min(offset);
            out.extend_from_within(start..start + n);
            left -= n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk with a flat code of 9-bit codes for all 512 symbols.
    fn flat(symbols: &[(u16, u32, u32)]) -> Vec<u8> {
        let mut v = vec![0x99u8; 256];
        let mut w = BitWriter::default();
        for &(sym, extra_bits, extra) in symbols {
            w.put(u32::from(sym), 9);
            w.put(extra, extra_bits);
        }
        v.extend(w.finish());
        v
    }

    #[derive(Default)]
    struct BitWriter {
        acc: u64,
        n: u32,
        out: Vec<u8>,
    }

    impl BitWriter {
        fn put(&mut self, v: u32, bits: u32) {
            self.acc = self.acc << bits | u64::from(v) & ((1 << bits) - 1);
            self.n += bits;
            while self.n >= 16 {
                let w = (self.acc >> (self.n - 16)) as u16;
                self.out.extend(w.to_le_bytes());
                self.n -= 16;
            }
        }
        fn finish(mut self) -> Vec<u8> {
            if self.n > 0 {
                let pad = 16 - self.n;
                self.put(0, pad);
            }
            self.out
        }
    }

    #[test]
    fn literals_and_matches() {
        // "ab", then a match of length 4 (sym 256 + 16·1 + 1: offset 2 + 0).
        let c = flat(&[(u16::from(b'a'), 0, 0), (u16::from(b'b'), 0, 0), (256 + 16 + 1, 1, 0)]);
        let mut out = Vec::new();
        decompress(&c, &mut out, 6).unwrap();
        assert_eq!(out, b"ababab");
    }

    #[test]
    fn refuses_corrupt_chunks() {
        let mut out = Vec::new();
        // A match before the output starts.
        let c = flat(&[(u16::from(b'a'), 0, 0), (256 + 16 * 2, 2, 0)]);
        let e = decompress(&c, &mut out, 10).unwrap_err();
        assert!(e.contains("reaches before the start"), "{e}");
        // A match past the end of the chunk.
        let c = flat(&[(u16::from(b'a'), 0, 0), (256 + 14, 0, 0)]);
        assert!(decompress(&c, &mut out, 5).unwrap_err().contains("past the end of the chunk"));
        // Cut short: a literal's worth of bits for ten bytes of output.
        let c = flat(&[(u16::from(b'a'), 0, 0)]);
        assert!(decompress(&c, &mut out, 10).unwrap_err().contains("ends before"));
        assert!(decompress(&c[..100], &mut out, 10).unwrap_err().contains("shorter than its 256-byte"));
        // Over-subscribed and empty tables.
        let mut c = flat(&[(u16::from(b'a'), 0, 0)]);
        c[0] = 0x11;
        assert!(decompress(&c, &mut out, 1).unwrap_err().contains("over-subscribe"));
        c[..256].fill(0);
        assert!(decompress(&c, &mut out, 1).unwrap_err().contains("no codes"));
        // A long length form below 15, and a length byte past the end.
        let mut c = flat(&[(u16::from(b'a'), 0, 0), (256 + 15, 0, 0)]);
        let e = decompress(&c, &mut out, 100).unwrap_err();
        assert!(e.contains("past the end of the compressed data") || e.contains("ends before"), "{e}");
        c.extend([255, 3, 0]);
        assert!(decompress(&c, &mut out, 100).is_err());
    }
}
