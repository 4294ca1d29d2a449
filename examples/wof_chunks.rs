//! Decodes WOF chunks (XPRESS Huffman or LZX) from a file that
//! benches/wof.py writes, `rounds` times, and prints the decoding speed:
//! `cargo run --release --example wof_chunks -- CHUNKS [ROUNDS]`. Each record:
//! one byte (1 LZX, 0 XPRESS), the output size and the input size as 32-bit
//! little-endian numbers, the compressed bytes, then the expected output.

use std::time::Instant;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: wof_chunks CHUNKS [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(5);
    let data = std::fs::read(path)?;
    let mut chunks = Vec::new();
    let mut at = 0;
    let u32_at = |p: usize| u32::from_le_bytes([data[p], data[p + 1], data[p + 2], data[p + 3]]) as usize;
    while at < data.len() {
        let (lzx, out_len, in_len) = (data[at] == 1, u32_at(at + 1), u32_at(at + 5));
        let src = &data[at + 9..at + 9 + in_len];
        let want = &data[at + 9 + in_len..at + 9 + in_len + out_len];
        chunks.push((lzx, src, want));
        at += 9 + in_len + out_len;
    }
    let mut out = Vec::new();
    for (lzx, src, want) in &chunks {
        snapsift::fs::ntfs::decode_wof_chunk(*lzx, src, &mut out, want.len()).map_err(std::io::Error::other)?;
        assert!(out == *want, "a chunk decodes to other bytes");
    }
    let total: usize = chunks.iter().map(|c| c.2.len()).sum();
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        for (lzx, src, want) in &chunks {
            let _ = snapsift::fs::ntfs::decode_wof_chunk(*lzx, src, &mut out, want.len());
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("{} chunks, {} bytes out: best of {rounds} {:.4} s, {:.1} MB/s", chunks.len(), total, best, total as f64 / best / 1e6);
    Ok(())
}
