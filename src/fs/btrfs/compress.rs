//! Compressed extents: zlib (a zlib stream, flate2), zstd (one frame,
//! ruzstd) and LZO in Btrfs's own framing, decoded by the small LZO1X
//! decompressor below (no pure-Rust LZO crate is a dependency; written from
//! the kernel's description of the stream, Documentation/staging/lzo.rst).
//!
//! Btrfs LZO framing (btrfs wiki "Compression"): a 4-byte little-endian
//! total length (header included), then segments, each a 4-byte length and
//! an independent LZO1X stream of at most one sector of output; a segment
//! header never straddles a sector boundary (the tail of the sector is
//! padding then).
//!
//! Every decoder stops at the extent's `ram_bytes`: nothing inflates past
//! what the extent item says it holds, and `ram_bytes` itself is bounded by
//! the caller (128 KiB, Btrfs's largest compressed extent).

use super::items::Compression;
use crate::util::bytes::u32_at;
use crate::util::corrupt;
use std::io::{self, Read};

/// Decompresses one extent (or inline item) to at most `ram` bytes.
pub fn decompress(c: Compression, data: &[u8], ram: usize, sectorsize: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(ram);
    match c {
        Compression::None => out.extend_from_slice(&data[..data.len().min(ram)]),
        Compression::Zlib => {
            flate2::read::ZlibDecoder::new(data).take(ram as u64).read_to_end(&mut out).map_err(|e| corrupt(format!("zlib: {e}")))?;
        }
        Compression::Zstd => {
            let d = ruzstd::decoding::StreamingDecoder::new(data).map_err(|e| corrupt(format!("zstd: {e}")))?;
            d.take(ram as u64).read_to_end(&mut out).map_err(|e| corrupt(format!("zstd: {e}")))?;
        }
        Compression::Lzo => lzo_framed(data, ram, sectorsize, &mut out).map_err(|e| corrupt(format!("lzo: {e}")))?,
    }
    Ok(out)
}

fn lzo_framed(data: &[u8], ram: usize, sectorsize: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let total = u32_at(data, 0) as usize;
    if data.len() < 4 || total < 4 || total > data.len() {
        return Err(format!("total length {total} in {} bytes", data.len()));
    }
    let mut pos = 4;
    while pos < total && out.len() < ram {
        let left_in_sector = sectorsize - pos % sectorsize;
        if left_in_sector < 4 {
            pos += left_in_sector;
        }
        if pos + 4 > total {
            break;
        }
        let seg = u32_at(data, pos) as usize;
        pos += 4;
        if seg == 0 || seg > total - pos {
            return Err(format!("segment of {seg} bytes at {pos} past the total {total}"));
        }
        lzo1x(&data[pos..pos + seg], out, ram)?;
        pos += seg;
    }
    Ok(())
}

/// One LZO1X stream appended to `out`, which may not grow past `max`.
/// Matches reach back only into this stream's own output.
pub fn lzo1x(inp: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), String> {
    let base = out.len();
    let mut ip = 0usize;
    let byte = |ip: &mut usize| -> Result<usize, String> {
        let b = *inp.get(*ip).ok_or("input ends inside an instruction")?;
        *ip += 1;
        Ok(b as usize)
    };
    // A length continued by zero bytes (255 each) and a final non-zero one.
    let ext = |ip: &mut usize| -> Result<usize, String> {
        let mut n = 0usize;
        loop {
            match byte(ip)? {
                0 => {
                    n += 255;
                    if n > max {
                        return Err("run length past the output size".into());
                    }
                }
                b => return Ok(n + b),
            }
        }
    };
    let literals = |ip: &mut usize, out: &mut Vec<u8>, n: usize| -> Result<(), String> {
        let s = inp.get(*ip..*ip + n).ok_or("literals past the input")?;
        if out.len() + n > max {
            return Err("output past the extent's size".into());
        }
        out.extend_from_slice(s);
        *ip += n;
        Ok(())
    };
    // Number of literals the previous instruction copied (4: four or more).
    let mut state;
    match inp.first() {
        Some(&b) if b > 17 => {
            ip = 1;
            let n = b as usize - 17;
            literals(&mut ip, out, n)?;
            state = n.min(4);
        }
        Some(_) => state = 0,
        None => return Err("empty stream".into()),
    }
    loop {
        let t = byte(&mut ip)?;
        let (len, dist, s);
        if t < 16 {
            if state == 0 {
                let n = if t == 0 { 15 + ext(&mut ip)? } else { t } + 3;
                literals(&mut ip, out, n)?;
                state = 4;
                continue;
            }
            let h = byte(&mut ip)?;
            (len, dist) = if state < 4 { (2, (h << 2) + ((t >> 2) & 3) + 1) } else { (3, (h << 2) + ((t >> 2) & 3) + 2049) };
            s = t & 3;
        } else if t < 32 {
            len = if t & 7 == 0 { 7 + ext(&mut ip)? } else { t & 7 } + 2;
            let d = byte(&mut ip)? | (byte(&mut ip)? << 8);
            dist = 16384 + ((t & 8) << 11) + (d >> 2);
            s = d & 3;
            if dist == 16384 {
                return Ok(());
            }
        } else if t < 64 {
            len = if t & 31 == 0 { 31 + ext(&mut ip)? } else { t & 31 } + 2;
            let d = byte(&mut ip)? | (byte(&mut ip)? << 8);
            dist = (d >> 2) + 1;
            s = d & 3;
        } else {
            len = if t < 128 { 3 + ((t >> 5) & 1) } else { 5 + ((t >> 5) & 3) };
            dist = (byte(&mut ip)? << 3) + ((t >> 2) & 7) + 1;
            s = t & 3;
        }
        if dist > out.len() - base {
            return Err(format!("match {dist} bytes back, {} written", out.len() - base));
        }
        if out.len() + len > max {
            return Err("output past the extent's size".into());
        }
        let from = out.len() - dist;
        for i in 0..len {
            let b = out[from + i];
            out.push(b);
        }
        literals(&mut ip, out, s)?;
        state = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lzo1x_literals_matches_and_end() {
        // 3 literals in the first byte (17 + 3); a 01LDDDSS match of 4
        // from 3 back (L=1, D=2, H=0); a match of 3 from 3 back that
        // carries one literal (S=1); the end marker (0x11, distance 16384).
        let inp = [20, b'a', b'b', b'c', 0x40 | 0x20 | (2 << 2), 0, 0x40 | (2 << 2) | 1, 0, b'X', 0x11, 0, 0];
        let mut out = Vec::new();
        lzo1x(&inp, &mut out, 100).unwrap();
        assert_eq!(out, b"abcabcabcaX");
        // Bounded: the same stream into 5 bytes fails rather than grows.
        assert!(lzo1x(&inp, &mut Vec::new(), 5).is_err());
        // A match before the start of the stream.
        assert!(lzo1x(&[18, b'a', 0x40 | (2 << 2), 0], &mut Vec::new(), 100).is_err());
        // Truncated.
        assert!(lzo1x(&inp[..6], &mut Vec::new(), 100).is_err());
    }

    #[test]
    fn framing_skips_sector_tails_and_bounds_output() {
        // Two segments of "abc" (3 literals: 17 + 3); with 16-byte sectors
        // the first ends at 15, so the second header starts at 16.
        let seg = [20u8, b'a', b'b', b'c', 0x11, 0, 0];
        let mut d = vec![0u8; 4];
        d.extend_from_slice(&(seg.len() as u32).to_le_bytes());
        d.extend_from_slice(&seg);
        d.push(0);
        d.extend_from_slice(&(seg.len() as u32).to_le_bytes());
        d.extend_from_slice(&seg);
        let n = d.len() as u32;
        d[..4].copy_from_slice(&n.to_le_bytes());
        assert_eq!(decompress(Compression::Lzo, &d, 100, 16).unwrap(), b"abcabc");
        assert_eq!(decompress(Compression::Lzo, &d, 3, 16).unwrap(), b"abc");
        d[..4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(decompress(Compression::Lzo, &d, 100, 16).is_err());
    }
}
