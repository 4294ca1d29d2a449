//! Full-disk read throughput of snapsift's evidence layer, one file per
//! argument: `cargo bench --bench read_throughput -- FILE...`.
//! Prints `file<TAB>bytes<TAB>seconds` per file (best of 3). Driven by
//! benches/formats.sh, which also times `qemu-img convert -O raw` on the
//! same files in the same run and prints the ratios.

use snapsift::evidence::{self, OpenOptions};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let files: Vec<PathBuf> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).map(PathBuf::from).collect();
    if files.is_empty() {
        eprintln!("usage: cargo bench --bench read_throughput -- FILE...  (see benches/formats.sh)");
        return;
    }
    let mut buf = vec![0u8; 8 << 20];
    for f in files {
        let mut best = f64::MAX;
        let mut total = 0u64;
        for _ in 0..3 {
            let start = Instant::now();
            let ev = evidence::open(&f, &OpenOptions::default()).expect("open");
            let len = ev.source.len();
            let mut off = 0u64;
            let mut sum = 0u64;
            while off < len {
                let n = ev.source.read_at(off, &mut buf).expect("read");
                assert!(n > 0);
                // Touch the data so nothing is optimised away.
                sum = sum.wrapping_add(u64::from(buf[n - 1]));
                off += n as u64;
            }
            std::hint::black_box(sum);
            total = len;
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!("{}\t{total}\t{best:.3}", f.display());
    }
}
