//! Canonical Huffman decoding tables, shared by the XPRESS and LZX decoders
//! of WOF-compressed files (`xpress.rs`, `lzx.rs`).
//!
//! Both formats send only the code length of each symbol; the codes are
//! canonical (shorter codes first, equal lengths in symbol order) and read
//! most significant bit first. A table answers "which symbol, how many bits"
//! for the next 16 bits of input: a primary table indexed by the first
//! `table_bits` of them, and for longer codes a subtable per primary slot.
//! Code lengths that over-subscribe the code space, or leave part of it
//! unused (except a code with no symbols at all, which LZX may send for a
//! tree it does not use), are refused: neither Microsoft's nor wimlib's
//! compressors write them.

/// Bits of input a lookup sees (the longest code is 16 bits, in LZX).
pub const WINDOW: u32 = 16;

/// Entry bit 31: a pointer to a subtable (base in bits 8–30, its index
/// width in bits 0–7). Otherwise, a leaf: symbol in bits 16–30, code length
/// in bits 0–7; 0 is a slot no code reaches.
const POINTER: u32 = 0x8000_0000;

#[derive(Debug)]
pub struct Huffman {
    table: Vec<u32>,
    table_bits: u32,
}

impl Huffman {
    /// Builds the table for `lens` (one code length per symbol, 0: unused;
    /// none longer than `max_len` ≤ 16). `table_bits` ≤ `max_len`.
    pub fn new(lens: &[u8], table_bits: u32, max_len: u32) -> Result<Huffman, String> {
        let max_len = max_len.min(WINDOW);
        let table_bits = table_bits.min(max_len);
        let mut count = [0u32; 17];
        for &l in lens {
            if u32::from(l) > max_len {
                return Err(format!("Huffman code length {l} (at most {max_len})"));
            }
            count[usize::from(l)] += 1;
        }
        // Kraft: the codes must fill the code space exactly.
        let mut left: i64 = 1;
        for c in &count[1..=max_len as usize] {
            left = left * 2 - i64::from(*c);
            if left < 0 {
                return Err("Huffman code lengths over-subscribe the code space".into());
            }
        }
        let mut table = vec![0u32; 1 << table_bits];
        if left == 1 << max_len {
            // No symbol at all: every lookup fails (see `decode`).
            return Ok(Huffman { table, table_bits });
        }
        if left != 0 {
            return Err("Huffman code lengths leave part of the code space unused".into());
        }
        // Symbols in canonical order: by length, then by value.
        let mut offset = [0usize; 18];
        for l in 1..=16 {
            offset[l + 1] = offset[l] + count[l] as usize;
        }
        let mut sorted = vec![0u16; offset[17]];
        for (sym, &l) in lens.iter().enumerate() {
            if l != 0 {
                let at = &mut offset[usize::from(l)];
                if let Some(s) = sorted.get_mut(*at) {
                    *s = sym as u16;
                }
                *at += 1;
            }
        }
        // The longest code under each primary slot sizes its subtable.
        let mut longest = vec![0u8; 1 << table_bits];
        let (mut code, mut len) = (0u32, 0u32);
        let codes: Vec<(u16, u32, u32)> = sorted
            .iter()
            .map(|&sym| {
                let l = u32::from(lens.get(usize::from(sym)).copied().unwrap_or(0));
                code <<= l - len;
                len = l;
                let c = code;
                code += 1;
                (sym, c, l)
            })
            .collect();
        for &(_, c, l) in &codes {
            if l > table_bits
                && let Some(m) = longest.get_mut((c >> (l - table_bits)) as usize)
            {
                *m = l as u8;
            }
        }
        for (slot, &m) in longest.iter().enumerate() {
            if m != 0 {
                let sub_bits = u32::from(m) - table_bits;
                let base = table.len() as u32;
                table.resize(table.len() + (1 << sub_bits), 0);
                table[slot] = POINTER | base << 8 | sub_bits;
            }
        }
        for (sym, c, l) in codes {
            let leaf = u32::from(sym) << 16 | l;
            let (start, n) = if l <= table_bits {
                ((c << (table_bits - l)) as usize, 1usize << (table_bits - l))
            } else {
                let ptr = table[(c >> (l - table_bits)) as usize];
                let sub_bits = ptr & 0xFF;
                let extra = l - table_bits;
                let base = (ptr & !POINTER) >> 8;
                let low = c & ((1 << extra) - 1);
                ((base + (low << (sub_bits - extra))) as usize, 1usize << (sub_bits - extra))
            };
            if let Some(s) = table.get_mut(start..start + n) {
                s.fill(leaf);
            }
        }
        Ok(Huffman { table, table_bits })
    }

    /// The symbol whose code begins `window` (the next [`WINDOW`] bits of
    /// input, first bit most significant) and its code length; None where
    /// no code matches (an empty code).
    #[inline]
    pub fn decode(&self, window: u32) -> Option<(u16, u32)> {
        let mut e = self.table.get((window >> (WINDOW - self.table_bits)) as usize).copied().unwrap_or(0);
        if e & POINTER != 0 {
            let sub_bits = e & 0xFF;
            let base = (e & !POINTER) >> 8;
            let idx = (window >> (WINDOW - self.table_bits - sub_bits)) & ((1 << sub_bits) - 1);
            e = self.table.get((base + idx) as usize).copied().unwrap_or(0);
        }
        (e != 0).then_some(((e >> 16) as u16, e & 0xFF))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_codes() {
        // B=1 bit (0), A=2 bits (10), C=3 bits (110), D=3 bits (111).
        let h = Huffman::new(&[2, 1, 3, 3], 2, 16).unwrap();
        assert_eq!(h.decode(0b0000_0000_0000_0000), Some((1, 1)));
        assert_eq!(h.decode(0b1000_0000_0000_0000), Some((0, 2)));
        assert_eq!(h.decode(0b1100_0000_0000_0000), Some((2, 3)));
        assert_eq!(h.decode(0b1110_0000_0000_0000), Some((3, 3)));
        // Long codes through subtables: 16-bit codes.
        let mut lens = vec![0u8; 20];
        lens[0] = 1;
        for l in 2..=15 {
            lens[l as usize - 1] = l;
        }
        lens[15] = 16;
        lens[16] = 16;
        let h = Huffman::new(&lens, 4, 16).unwrap();
        assert_eq!(h.decode(0xFFFF), Some((16, 16)));
        assert_eq!(h.decode(0xFFFE), Some((15, 16)));
        assert_eq!(h.decode(0xFFFC), Some((14, 15)));
        assert_eq!(h.decode(0x7FFF), Some((0, 1)));
    }

    #[test]
    fn refuses_bad_lengths() {
        assert!(Huffman::new(&[1, 1, 1], 4, 15).unwrap_err().contains("over-subscribe"));
        assert!(Huffman::new(&[1, 2], 4, 15).unwrap_err().contains("unused"));
        assert!(Huffman::new(&[16], 4, 15).is_err());
        let empty = Huffman::new(&[0; 8], 4, 15).unwrap();
        assert_eq!(empty.decode(0), None);
    }
}
