//! LZX as WIM archives and WOF-compressed files (`compact /exe:lzx`) use it:
//! one chunk of at most 32 KiB in, its known number of bytes out.
//!
//! Written from the LZX format as Microsoft documents it for cabinets
//! ([MS-PATCH] LZX DELTA, whose base format this is) with the differences
//! the WIM/WOF variant has, as wimlib's and the kernel's `ntfs3`
//! documentation describe them:
//!
//! - a 32 KiB window, so 30 offset slots and 496 main-tree symbols; every
//!   chunk is decoded on its own (empty history, recent offsets 1, 1, 1,
//!   code lengths starting at 0);
//! - no header: CAB streams begin with a bit saying whether x86 call
//!   translation ("E8") is on and then the translation size; here it is
//!   always on, with the size fixed at 12,000,000, and undone on each chunk
//!   with positions counted from the chunk's start (CAB stops after 1 GiB of
//!   output; chunks never get there);
//! - a block header holds the 3-bit type and then one bit: set, the block
//!   is 32,768 bytes (the default size); clear, 16 bits of size follow
//!   (CAB always has 24 bits of size);
//! - no translation starts in a chunk's last 10 bytes (the documentation
//!   speaks of the last 6, meaning the 4 bytes after the E8 too; wimlib,
//!   which reads Microsoft's WIMs, stops at 10 as well), nor in a chunk of
//!   10 bytes or less.
//!
//! Blocks are verbatim (main and length trees, each sent as code-length
//! deltas through a 20-symbol pretree), aligned (the same plus an 8-symbol
//! tree for the low 3 bits of long offsets) or uncompressed (aligned to 16
//! bits — skipping a whole word when already aligned —, the three recent
//! offsets as 32-bit values, the bytes, a pad byte after an odd size). A
//! match may not cross the end of its block. The bitstream is 16-bit
//! little-endian words read most significant bit first.

use super::huffman::{Huffman, WINDOW};
use super::xpress::copy_match;

/// The largest chunk: the window.
const MAX_CHUNK: usize = 32768;
const SLOTS: usize = 30;
const MAIN_SYMBOLS: usize = 256 + 8 * SLOTS;
const LENGTH_SYMBOLS: usize = 249;
/// The E8 translation size WIM and WOF always use.
const E8_FILE_SIZE: i32 = 12_000_000;

/// Extra offset bits and base of each offset slot (slot 0–2: recent offsets).
const EXTRA: [u32; SLOTS] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const BASE: [u32; SLOTS] = [
    0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384,
    24576,
];

/// Reads the bitstream; words past the end read as zeros (counted, so that
/// using them is an error).
struct Bits<'a> {
    src: &'a [u8],
    pos: usize,
    /// Left-aligned: the next bit is bit 63.
    buf: u64,
    avail: u32,
    missing: u32,
}

impl<'a> Bits<'a> {
    fn at(src: &'a [u8], pos: usize) -> Bits<'a> {
        Bits { src, pos, buf: 0, avail: 0, missing: 0 }
    }

    #[inline]
    fn ensure(&mut self, n: u32) {
        while self.avail < n {
            let w = match self.src.get(self.pos..self.pos + 2) {
                Some(w) => u64::from(u16::from_le_bytes([w[0], w[1]])),
                None => {
                    self.missing += 1;
                    0
                }
            };
            self.pos += 2;
            self.buf |= w << (48 - self.avail);
            self.avail += 16;
        }
    }

    #[inline]
    fn peek(&self, n: u32) -> u32 {
        if n == 0 { 0 } else { (self.buf >> (64 - n)) as u32 }
    }

    #[inline]
    fn consume(&mut self, n: u32) {
        self.buf <<= n;
        self.avail -= n;
    }

    #[inline]
    fn read(&mut self, n: u32) -> u32 {
        self.ensure(n);
        let v = self.peek(n);
        self.consume(n);
        v
    }

    #[inline]
    fn symbol(&mut self, h: &Huffman, what: &str) -> Result<u16, String> {
        self.ensure(WINDOW);
        let (sym, n) = h.decode(self.peek(WINDOW)).ok_or_else(|| format!("LZX {what} tree has no code for the input"))?;
        self.consume(n);
        Ok(sym)
    }

    /// Where an uncompressed block's bytes begin: the next 16-bit boundary,
    /// or one word further when the stream is already on one.
    fn raw_start(&self) -> usize {
        let words = (self.avail / 16) as usize;
        if !self.avail.is_multiple_of(16) { self.pos - 2 * words } else { self.pos - 2 * words + 2 }
    }

    fn check(&self) -> Result<(), String> {
        if self.missing * 16 > self.avail {
            return Err("LZX data ends before the chunk is complete".into());
        }
        Ok(())
    }
}

/// Reads code lengths for `lens` as deltas from their previous values,
/// through a pretree sent first.
fn read_lengths(bits: &mut Bits, lens: &mut [u8]) -> Result<(), String> {
    let mut pre = [0u8; 20];
    for l in &mut pre {
        *l = bits.read(4) as u8;
    }
    let pretree = Huffman::new(&pre, 8, 15).map_err(|e| format!("LZX pretree: {e}"))?;
    let mut i = 0;
    while i < lens.len() {
        let sym = bits.symbol(&pretree, "pretree")?;
        let delta = |old: u8, sym: u16| ((u16::from(old) + 17 - sym) % 17) as u8;
        let (run, value) = match sym {
            0..=16 => (1, delta(lens[i], sym)),
            17 => (4 + bits.read(4) as usize, 0),
            18 => (20 + bits.read(5) as usize, 0),
            _ => {
                let run = 4 + bits.read(1) as usize;
                let s = bits.symbol(&pretree, "pretree")?;
                if s > 17 {
                    return Err(format!("LZX pretree: symbol {s} after a run of equal lengths"));
                }
                (run, delta(lens[i], s))
            }
        };
        let end = (i + run).min(lens.len());
        lens[i..end].fill(value);
        i = end;
    }
    Ok(())
}

/// Decodes `src` into `out` (cleared first), which ends up exactly
/// `out_len` bytes long, or an error naming the defect.
pub fn decompress(src: &[u8], out: &mut Vec<u8>, out_len: usize) -> Result<(), String> {
    out.clear();
    if out_len > MAX_CHUNK {
        return Err(format!("LZX chunk of {out_len} bytes (at most {MAX_CHUNK})"));
    }
    out.reserve(out_len);
    let mut main_lens = [0u8; MAIN_SYMBOLS];
    let mut length_lens = [0u8; LENGTH_SYMBOLS];
    let mut recent = [1u32; 3];
    let mut bits = Bits::at(src, 0);
    while out.len() < out_len {
        let kind = bits.read(3);
        if !(1..=3).contains(&kind) {
            return Err(format!("LZX block type {kind} (1, 2 or 3 expected)"));
        }
        let size = if bits.read(1) == 1 { 32768 } else { bits.read(16) as usize };
        if size == 0 || size > out_len - out.len() {
            return Err(format!("LZX block of {size} bytes at byte {} of a {out_len}-byte chunk", out.len()));
        }
        match kind {
            1 | 2 => {
                let mut aligned_lens = [0u8; 8];
                if kind == 2 {
                    for l in &mut aligned_lens {
                        *l = bits.read(3) as u8;
                    }
                }
                let aligned =
                    if kind == 2 { Some(Huffman::new(&aligned_lens, 7, 7).map_err(|e| format!("LZX aligned tree: {e}"))?) } else { None };
                read_lengths(&mut bits, &mut main_lens[..256])?;
                read_lengths(&mut bits, &mut main_lens[256..])?;
                read_lengths(&mut bits, &mut length_lens)?;
                let main = Huffman::new(&main_lens, 11, 16).map_err(|e| format!("LZX main tree: {e}"))?;
                let lengths = Huffman::new(&length_lens, 10, 16).map_err(|e| format!("LZX length tree: {e}"))?;
                block(&mut bits, out, size, &main, &lengths, aligned.as_ref(), &mut recent)?;
            }
            3 => {
                let start = bits.raw_start();
                let header = src.get(start..start + 12).ok_or("LZX uncompressed block runs past the end of the compressed data")?;
                for (r, b) in recent.iter_mut().zip(header.chunks_exact(4)) {
                    *r = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
                if recent.contains(&0) {
                    return Err("LZX uncompressed block has a recent offset of 0".into());
                }
                let data =
                    src.get(start + 12..start + 12 + size).ok_or("LZX uncompressed block runs past the end of the compressed data")?;
                out.extend_from_slice(data);
                bits = Bits::at(src, start + 12 + size + (size & 1));
            }
            _ => {}
        }
    }
    bits.check()?;
    undo_e8(out);
    Ok(())
}

/// One verbatim or aligned block of `size` bytes.
fn block(
    bits: &mut Bits,
    out: &mut Vec<u8>,
    size: usize,
    main: &Huffman,
    lengths: &Huffman,
    aligned: Option<&Huffman>,
    recent: &mut [u32; 3],
) -> Result<(), String> {
    let end = out.len() + size;
    while out.len() < end {
        let sym = bits.symbol(main, "main")?;
        if sym < 256 {
            out.push(sym as u8);
            continue;
        }
        let sym = usize::from(sym - 256);
        let header = sym & 7;
        let slot = sym >> 3;
        let mut len = header + 2;
        if header == 7 {
            len += usize::from(bits.symbol(lengths, "length")?);
        }
        let offset = if slot < 3 {
            // Not a true LRU: R2 used leaves R1 where it is.
            recent.swap(slot, 0);
            recent[0]
        } else {
            let extra_bits = EXTRA.get(slot).copied().ok_or_else(|| format!("LZX offset slot {slot}"))?;
            let extra = match aligned {
                Some(a) if extra_bits >= 3 => bits.read(extra_bits - 3) << 3 | u32::from(bits.symbol(a, "aligned offset")?),
                _ => bits.read(extra_bits),
            };
            let o = BASE[slot] + extra - 2;
            recent[2] = recent[1];
            recent[1] = recent[0];
            recent[0] = o;
            o
        };
        let offset = offset as usize;
        if offset > out.len() {
            return Err(format!("LZX match reaches before the start of the output (offset {offset} at byte {})", out.len()));
        }
        if len > end - out.len() {
            return Err(format!("LZX match of {len} bytes runs past the end of its block (at byte {} of {end})", out.len()));
        }
        copy_match(out, offset, len);
    }
    Ok(())
}

/// Undoes the x86 call translation: a 32-bit value after an E8 byte that
/// was made absolute (relative to the chunk's start) is made relative again.
fn undo_e8(data: &mut [u8]) {
    if data.len() <= 10 {
        return;
    }
    let limit = data.len() - 10;
    let mut i = 0;
    while i < limit {
        let Some(found) = memchr::memchr(0xE8, &data[i..limit]) else { break };
        i += found;
        let pos = i as i32;
        let b = &mut data[i + 1..i + 5];
        let abs = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if abs >= -pos && abs < E8_FILE_SIZE {
            let rel = if abs >= 0 { abs - pos } else { abs + E8_FILE_SIZE };
            b.copy_from_slice(&rel.to_le_bytes());
        }
        i += 5;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct BitWriter {
        acc: u64,
        n: u32,
        out: Vec<u8>,
    }

    impl BitWriter {
        fn put(&mut self, v: u32, bits: u32) {
            for i in (0..bits).rev() {
                self.acc = self.acc << 1 | u64::from(v >> i & 1);
                self.n += 1;
                if self.n == 16 {
                    self.out.extend((self.acc as u16).to_le_bytes());
                    self.acc = 0;
                    self.n = 0;
                }
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

    /// Sends `new` code lengths as deltas from `old` through a pretree
    /// that codes symbols 0–16 (0–14 in 4 bits, 15 and 16 in 5).
    fn lengths(w: &mut BitWriter, old: &[u8], new: &[u8]) {
        let pre: Vec<u8> = (0..20)
            .map(|s| {
                if s < 15 {
                    4
                } else if s < 17 {
                    5
                } else {
                    0
                }
            })
            .collect();
        for &l in &pre {
            w.put(u32::from(l), 4);
        }
        let codes = canonical(&pre);
        for (o, n) in old.iter().zip(new) {
            let (c, l) = codes[((u32::from(*o) + 17 - u32::from(*n)) % 17) as usize];
            w.put(c, l);
        }
    }

    /// Main tree: 256 literals and 224 match symbols in 9 bits, the last 16
    /// match symbols in 8 (a complete code).
    fn main_lens() -> Vec<u8> {
        let mut l = vec![9u8; MAIN_SYMBOLS];
        for x in &mut l[256 + 224..] {
            *x = 8;
        }
        l
    }

    fn canonical(lens: &[u8]) -> Vec<(u32, u32)> {
        let mut order: Vec<usize> = (0..lens.len()).filter(|&i| lens[i] != 0).collect();
        order.sort_by_key(|&i| (lens[i], i));
        let mut codes = vec![(0, 0); lens.len()];
        let (mut code, mut len) = (0u32, 0u32);
        for i in order {
            let l = u32::from(lens[i]);
            code <<= l - len;
            len = l;
            codes[i] = (code, l);
            code += 1;
        }
        codes
    }

    /// A chunk: one verbatim block with `syms` (main symbols with any
    /// verbatim extra bits).
    fn verbatim(size: usize, syms: &[(u16, u32, u32)]) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.put(1, 3);
        if size == 32768 {
            w.put(1, 1);
        } else {
            w.put(0, 1);
            w.put(size as u32, 16);
        }
        let ml = main_lens();
        lengths(&mut w, &[0; 256], &ml[..256]);
        lengths(&mut w, &[0; MAIN_SYMBOLS - 256], &ml[256..]);
        // Length tree: two symbols of 1 bit.
        let mut ll = vec![0u8; LENGTH_SYMBOLS];
        ll[0] = 1;
        ll[1] = 1;
        lengths(&mut w, &[0; LENGTH_SYMBOLS], &ll);
        let codes = canonical(&ml);
        for &(s, eb, e) in syms {
            let (c, l) = codes[usize::from(s)];
            w.put(c, l);
            w.put(e, eb);
        }
        w.finish()
    }

    #[test]
    fn verbatim_block_and_e8() {
        // "abc", then slot 3 (offset 1), length 2 + 1: "ccc"; then slot 6
        // (2 extra bits, 0: offset 8 + 0 - 2 = 6), length 2: "ab"; then
        // recent offset R0 (6) again, length 2 + 7 + 1 (length symbol 1).
        let sym = |slot: u16, hdr: u16| 256 + slot * 8 + hdr;
        let c = verbatim(
            18,
            &[
                (u16::from(b'a'), 0, 0),
                (u16::from(b'b'), 0, 0),
                (u16::from(b'c'), 0, 0),
                (sym(3, 1), 0, 0),
                (sym(6, 0), 2, 0),
                (sym(0, 7), 1, 1),
            ],
        );
        let mut out = Vec::new();
        decompress(&c, &mut out, 18).unwrap();
        assert_eq!(out, b"abccccabccccabcccc");
        // E8 translation undone on a 16-byte chunk: E8 at 0, absolute 5 → relative 5 - 0.
        let mut d = vec![0xE8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        undo_e8(&mut d);
        assert_eq!(&d[..5], &[0xE8, 7, 0, 0, 0]);
        let mut d = vec![0, 0xE8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        undo_e8(&mut d);
        assert_eq!(&d[..6], &[0, 0xE8, 6, 0, 0, 0]);
        // Negative absolute (compensating): -1 at position 1 → -1 + 12000000.
        let mut d = vec![0, 0xE8, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        undo_e8(&mut d);
        assert_eq!(&d[2..6], &(E8_FILE_SIZE - 1).to_le_bytes());
        // In the last 10 bytes: untouched.
        let mut d = vec![0, 0, 0, 0, 0, 0, 0xE8, 7, 0, 0, 0, 0, 0, 0, 0, 0];
        undo_e8(&mut d);
        assert_eq!(d[7], 7);
    }

    #[test]
    fn uncompressed_block() {
        let mut w = BitWriter::default();
        w.put(3, 3);
        w.put(0, 1);
        w.put(5, 16);
        let mut c = w.finish(); // 20 bits: padded to 32; the raw part starts after
        c.extend(1u32.to_le_bytes());
        c.extend(1u32.to_le_bytes());
        c.extend(1u32.to_le_bytes());
        c.extend(b"hello\0");
        let mut out = Vec::new();
        decompress(&c, &mut out, 5).unwrap();
        assert_eq!(out, b"hello");
    }

    #[test]
    fn refuses_corrupt_chunks() {
        let mut out = Vec::new();
        let sym = |slot: u16, hdr: u16| 256 + slot * 8 + hdr;
        // A match before the start of the output.
        let c = verbatim(10, &[(u16::from(b'a'), 0, 0), (sym(5, 0), 1, 1)]);
        assert!(decompress(&c, &mut out, 10).unwrap_err().contains("reaches before the start"));
        // A match past the end of its block.
        let c = verbatim(4, &[(u16::from(b'a'), 0, 0), (sym(3, 5), 0, 0)]);
        assert!(decompress(&c, &mut out, 4).unwrap_err().contains("past the end of its block"));
        // A block larger than the chunk; a bad block type.
        let c = verbatim(40, &[]);
        assert!(decompress(&c, &mut out, 10).unwrap_err().contains("LZX block of 40 bytes"));
        let mut bad = c.clone();
        bad[1] = (bad[1] & 0x1F) | 0xE0; // type 7
        assert!(decompress(&bad, &mut out, 10).unwrap_err().contains("block type"));
        // Cut short.
        let c = verbatim(10, &[(u16::from(b'a'), 0, 0)]);
        assert!(decompress(&c[..c.len() - 2], &mut out, 10).is_err());
        // (zero bits past the end decode as a long match here)
        assert!(decompress(&c, &mut out, 10).is_err());
        assert!(decompress(&[], &mut out, 10).is_err());
        // All-zero pretree lengths: the pretree has no codes.
        let mut w = BitWriter::default();
        w.put(1, 3);
        w.put(1, 1);
        for _ in 0..20 {
            w.put(0, 4);
        }
        let e = decompress(&w.finish(), &mut out, 32768).unwrap_err();
        assert!(e.contains("no code"), "{e}");
        // Over-subscribed pretree (every length 1).
        let mut w = BitWriter::default();
        w.put(1, 3);
        w.put(1, 1);
        for _ in 0..20 {
            w.put(1, 4);
        }
        assert!(decompress(&w.finish(), &mut out, 32768).unwrap_err().contains("over-subscribe"));
        // An uncompressed block cut short, and one with a zero offset.
        let mut w = BitWriter::default();
        w.put(3, 3);
        w.put(0, 1);
        w.put(5, 16);
        let mut c = w.finish();
        c.extend([0u8; 12]);
        assert!(decompress(&c, &mut out, 5).unwrap_err().contains("recent offset of 0"));
        c.truncate(10);
        assert!(decompress(&c, &mut out, 5).unwrap_err().contains("past the end"));
    }
}
