//! WOF ("system compression", `compact /exe:…`): files whose data the
//! Windows Overlay Filter keeps compressed in a named stream.
//!
//! Such a file has reparse tag `IO_REPARSE_TAG_WOF` (0x80000017) with data
//! WOF_EXTERNAL_INFO {version 1, provider} and, for the file provider (2),
//! FILE_PROVIDER_EXTERNAL_INFO_V1 {version 1, algorithm: 0 XPRESS 4 KiB
//! chunks, 1 LZX 32 KiB, 2 XPRESS 8 KiB, 3 XPRESS 16 KiB}. Its unnamed
//! stream is sparse, with the original size; the data is in the stream
//! `WofCompressedData`: a table with one entry per chunk after the first
//! (the end of each chunk, counted from the end of the table; 4 bytes each
//! below 4 GiB of original size, else 8), then the chunks. A chunk whose
//! stored size equals its size is stored raw. Provider 1 (WIMBoot) keeps
//! the data in a WIM file elsewhere: reported, not decoded.
//!
//! The decoders (`xpress.rs`, `lzx.rs`) are our own, written from the
//! public format descriptions: on crates.io `xpress-huffman` (one release,
//! XPRESS only) and `compcol` (a general no_std collection) decode XPRESS
//! Huffman, `lzxd` decodes LZX DELTA as cabinets and XNB files use it (a
//! window sliding across chunks, an E8 header, 24-bit block sizes: not the
//! WIM/WOF variant), and the `ntfs` crate does not read WOF; no crate covers
//! both with the untrusted-input checks a forensic reader needs, and each
//! decoder is a few hundred lines. wimlib and the ntfs-3g plugin
//! (GPL/LGPL) served as descriptions to check details against, not as code.
//!
//! Memory stays bounded: one chunk (at most 32 KiB) is decoded at a time
//! through positional reads, and the chunk table is read in windows of
//! [`TABLE_WINDOW`] entries (also when it is checked whole at open).

use std::io::{self, Read};

/// Chunk-table entries held at once.
const TABLE_WINDOW: u64 = 8192;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Xpress4k,
    Lzx,
    Xpress8k,
    Xpress16k,
}

impl Algorithm {
    pub fn chunk_size(self) -> u64 {
        match self {
            Algorithm::Xpress4k => 4096,
            Algorithm::Xpress8k => 8192,
            Algorithm::Xpress16k => 16384,
            Algorithm::Lzx => 32768,
        }
    }

    /// The manifest's `compression` value.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Xpress4k => "wof-xpress4k",
            Algorithm::Xpress8k => "wof-xpress8k",
            Algorithm::Xpress16k => "wof-xpress16k",
            Algorithm::Lzx => "wof-lzx",
        }
    }
}

/// What a WOF reparse point says.
#[derive(Debug, PartialEq, Eq)]
pub enum Wof {
    /// The file provider: decodable.
    File(Algorithm),
    /// WIMBoot: the data is in a WIM file.
    Wim,
    /// Anything else: why it cannot be read.
    Unreadable(String),
}

impl Wof {
    /// From the whole $REPARSE_POINT value (tag, length, reserved, data).
    pub fn parse(rp: &[u8]) -> Wof {
        let u32_at = |off: usize| rp.get(off..off + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let (Some(version), Some(provider)) = (u32_at(8), u32_at(12)) else {
            return Wof::Unreadable(format!("WOF reparse data of {} bytes is too short", rp.len()));
        };
        if version != 1 {
            return Wof::Unreadable(format!("WOF reparse data version {version} (1 expected)"));
        }
        match provider {
            1 => Wof::Wim,
            2 => match (u32_at(16), u32_at(20)) {
                (Some(1), Some(a)) => match a {
                    0 => Wof::File(Algorithm::Xpress4k),
                    1 => Wof::File(Algorithm::Lzx),
                    2 => Wof::File(Algorithm::Xpress8k),
                    3 => Wof::File(Algorithm::Xpress16k),
                    _ => Wof::Unreadable(format!("unknown WOF compression algorithm {a}")),
                },
                (Some(v), Some(_)) => Wof::Unreadable(format!("WOF file provider data version {v} (1 expected)")),
                _ => Wof::Unreadable(format!("WOF reparse data of {} bytes is too short for the file provider", rp.len())),
            },
            p => Wof::Unreadable(format!("unknown WOF provider {p}")),
        }
    }
}

/// Positional reads of the `WofCompressedData` stream (all of `buf`, or an error).
pub type ReadAt<'a> = Box<dyn Fn(u64, &mut [u8]) -> io::Result<()> + Send + 'a>;

/// The decoded content of a WOF-compressed file, chunk by chunk.
pub struct WofReader<'a> {
    read_at: ReadAt<'a>,
    alg: Algorithm,
    /// Original size; compressed stream size.
    size: u64,
    stream_len: u64,
    chunks: u64,
    entry_size: u64,
    table_len: u64,
    /// Table entries `window.0 ..` (entry i: the end of chunk i).
    window: (u64, Vec<u64>),
    pos: u64,
    chunk: Option<u64>,
    data: Vec<u8>,
    raw: Vec<u8>,
}

fn corrupt(msg: String) -> io::Error {
    crate::util::corrupt(format!("unreadable: WOF-compressed data: {msg}"))
}

impl<'a> WofReader<'a> {
    /// Checks the whole chunk table (in windows) so that a damaged one is
    /// an error before any byte is read.
    pub fn new(read_at: ReadAt<'a>, stream_len: u64, size: u64, alg: Algorithm) -> io::Result<WofReader<'a>> {
        let cs = alg.chunk_size();
        let chunks = size.div_ceil(cs);
        let entry_size = if size > u64::from(u32::MAX) { 8 } else { 4 };
        let table_len = chunks.saturating_sub(1).saturating_mul(entry_size);
        if table_len > stream_len {
            return Err(corrupt(format!(
                "the chunk table ({table_len} bytes for {chunks} chunks) is longer than the WofCompressedData stream ({stream_len} bytes)"
            )));
        }
        let mut r = WofReader {
            read_at,
            alg,
            size,
            stream_len,
            chunks,
            entry_size,
            table_len,
            window: (0, Vec::new()),
            pos: 0,
            chunk: None,
            data: Vec::new(),
            raw: Vec::new(),
        };
        for i in 0..chunks {
            r.location(i)?;
        }
        Ok(r)
    }

    /// Table entry `i` (the end of chunk `i`, relative to the table's end).
    fn entry(&mut self, i: u64) -> io::Result<u64> {
        let (first, ref v) = self.window;
        if let Some(e) = i.checked_sub(first).and_then(|k| v.get(k as usize)) {
            return Ok(*e);
        }
        let n = TABLE_WINDOW.min(self.chunks - 1 - i);
        let mut buf = vec![0u8; (n * self.entry_size) as usize];
        (self.read_at)(i * self.entry_size, &mut buf)?;
        let v: Vec<u64> = if self.entry_size == 4 {
            buf.chunks_exact(4).map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect()
        } else {
            buf.chunks_exact(8).map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])).collect()
        };
        let e = v.first().copied().unwrap_or(0);
        self.window = (i, v);
        Ok(e)
    }

    /// Where chunk `i` is stored, relative to the table's end, checked.
    fn location(&mut self, i: u64) -> io::Result<(u64, u64)> {
        let data_len = self.stream_len - self.table_len;
        let start = if i == 0 { 0 } else { self.entry(i - 1)? };
        let end = if i + 1 == self.chunks { data_len } else { self.entry(i)? };
        if end > data_len {
            return Err(corrupt(format!(
                "chunk table entry {i} points past the stream (chunk {i} ends at {end}, the chunks take {data_len} bytes)"
            )));
        }
        if end < start {
            return Err(corrupt(format!("chunk table entry {i} decreases ({end} after {start})")));
        }
        let stored = end - start;
        let want = self.chunk_len(i);
        if stored == 0 || stored > want {
            return Err(corrupt(format!("chunk {i} is stored in {stored} bytes for {want} bytes of data")));
        }
        Ok((start, end))
    }

    fn chunk_len(&self, i: u64) -> u64 {
        let cs = self.alg.chunk_size();
        cs.min(self.size - i * cs)
    }

    fn load(&mut self, i: u64) -> io::Result<()> {
        let (start, end) = self.location(i)?;
        let want = self.chunk_len(i) as usize;
        self.raw.resize((end - start) as usize, 0);
        (self.read_at)(self.table_len + start, &mut self.raw)?;
        if self.raw.len() == want {
            std::mem::swap(&mut self.data, &mut self.raw);
        } else {
            let r = match self.alg {
                Algorithm::Lzx => super::lzx::decompress(&self.raw, &mut self.data, want),
                _ => super::xpress::decompress(&self.raw, &mut self.data, want),
            };
            r.map_err(|e| corrupt(format!("chunk {i}: {e}")))?;
        }
        self.chunk = Some(i);
        Ok(())
    }
}

impl Read for WofReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let cs = self.alg.chunk_size();
        let i = self.pos / cs;
        if self.chunk != Some(i) {
            self.chunk = None;
            self.load(i)?;
        }
        let at = (self.pos - i * cs) as usize;
        let src = self.data.get(at..).unwrap_or(&[]);
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

/// Fuzzing entry: the reparse parser, both decoders and the chunk-table
/// reader on arbitrary bytes (never a panic, never unbounded work).
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    let _ = Wof::parse(data);
    let Some((&sel, rest)) = data.split_first() else { return };
    let mut out = Vec::new();
    let len = usize::from(sel & 0x3F) * 512 + 1;
    match sel >> 6 {
        0 => {
            let _ = super::xpress::decompress(rest, &mut out, len.min(16384));
        }
        1 => {
            let _ = super::lzx::decompress(rest, &mut out, len);
        }
        k => {
            let alg = if k == 2 { Algorithm::Xpress4k } else { Algorithm::Lzx };
            let size = u64::from(u16::from_le_bytes([rest.first().copied().unwrap_or(0), rest.get(1).copied().unwrap_or(0)])) * 64;
            let stream = rest.get(2..).unwrap_or(&[]).to_vec();
            let slen = stream.len() as u64;
            let read_at: ReadAt = Box::new(move |pos, buf| {
                let s = stream.get(pos as usize..).and_then(|s| s.get(..buf.len())).ok_or_else(|| io::Error::other("past the end"))?;
                buf.copy_from_slice(s);
                Ok(())
            });
            if let Ok(r) = WofReader::new(read_at, slen, size, alg) {
                let _ = io::copy(&mut r.take(4 << 20), &mut io::sink());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(stream: Vec<u8>, size: u64, alg: Algorithm) -> io::Result<WofReader<'static>> {
        let len = stream.len() as u64;
        let read_at: ReadAt = Box::new(move |pos, buf| {
            let s = stream.get(pos as usize..).and_then(|s| s.get(..buf.len())).ok_or_else(|| io::Error::other("past the end"))?;
            buf.copy_from_slice(s);
            Ok(())
        });
        WofReader::new(read_at, len, size, alg)
    }

    fn rp(provider: u32, alg: u32) -> Vec<u8> {
        let mut v = vec![0x17, 0, 0, 0x80, 16, 0, 0, 0];
        for x in [1u32, provider, 1, alg] {
            v.extend(x.to_le_bytes());
        }
        v
    }

    #[test]
    fn reparse_data() {
        assert_eq!(Wof::parse(&rp(2, 1)), Wof::File(Algorithm::Lzx));
        assert_eq!(Wof::parse(&rp(2, 3)), Wof::File(Algorithm::Xpress16k));
        assert_eq!(Wof::parse(&rp(1, 0)), Wof::Wim);
        assert!(matches!(Wof::parse(&rp(2, 9)), Wof::Unreadable(m) if m.contains("algorithm 9")));
        assert!(matches!(Wof::parse(&rp(5, 0)), Wof::Unreadable(m) if m.contains("provider 5")));
        assert!(matches!(Wof::parse(&rp(2, 0)[..18]), Wof::Unreadable(m) if m.contains("too short")));
    }

    #[test]
    fn raw_chunks_and_table() {
        // Three 4 KiB chunks stored raw (the last one 100 bytes): table of
        // two entries, 4096 and 8192.
        let data: Vec<u8> = (0..8292u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut s = Vec::new();
        s.extend(4096u32.to_le_bytes());
        s.extend(8192u32.to_le_bytes());
        s.extend(&data);
        let mut out = Vec::new();
        reader(s.clone(), data.len() as u64, Algorithm::Xpress4k).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        // An empty file: no chunks.
        let mut out = Vec::new();
        reader(Vec::new(), 0, Algorithm::Lzx).unwrap().read_to_end(&mut out).unwrap();
        assert!(out.is_empty());
        // Damaged tables.
        let mut bad = s.clone();
        bad[4..8].copy_from_slice(&9000u32.to_le_bytes());
        let e = reader(bad, 8292, Algorithm::Xpress4k).err().unwrap().to_string();
        assert!(e.contains("chunk table entry 1 points past the stream"), "{e}");
        let mut bad = s.clone();
        bad[4..8].copy_from_slice(&4000u32.to_le_bytes());
        let e = reader(bad, 8292, Algorithm::Xpress4k).err().unwrap().to_string();
        assert!(e.contains("chunk table entry 1 decreases"), "{e}");
        let mut bad = s.clone();
        bad[0..4].copy_from_slice(&5000u32.to_le_bytes());
        let e = reader(bad, 8292, Algorithm::Xpress4k).err().unwrap().to_string();
        assert!(e.contains("chunk 0 is stored in 5000 bytes for 4096"), "{e}");
        // Sizes larger than the data: the table alone is past the stream.
        let e = reader(vec![0; 6], 1 << 20, Algorithm::Xpress4k).err().unwrap().to_string();
        assert!(e.contains("longer than the WofCompressedData stream"), "{e}");
        // A compressed chunk that does not decode: an error at read time.
        let mut bad = s;
        bad.truncate(8 + 8192 + 50);
        let mut out = Vec::new();
        let e = reader(bad, 8292, Algorithm::Xpress4k).unwrap().read_to_end(&mut out).unwrap_err().to_string();
        assert!(e.contains("chunk 2: XPRESS"), "{e}");
    }

    #[test]
    fn fuzz_entry_survives() {
        for seed in 0..200u32 {
            let v: Vec<u8> = (0..600u32).map(|i| (i.wrapping_mul(seed + 3).wrapping_add(seed) >> 3) as u8).collect();
            fuzz(&v);
        }
    }
}
