//! Reading Volume Shadow Copy stores against reading their live volume:
//! `cargo bench --bench vss -- IMAGE` (an NTFS volume image with stores,
//! e.g. ../shared/samples/vss/vsstest.qcow2). Reads the live volume and
//! each store whole, best of 3, and prints `what<TAB>bytes<TAB>seconds`;
//! benches/vss.sh also times libvshadow's `vshadowmount` on the same stores
//! in the same run and prints the ratios.

use snapsift::evidence::{self, OpenOptions, ReadAt};
use std::time::Instant;

fn whole(src: &dyn ReadAt, buf: &mut [u8]) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let (mut off, mut sum) = (0u64, 0u64);
        while off < src.len() {
            let n = src.read_at(off, buf).expect("read");
            assert!(n > 0);
            sum = sum.wrapping_add(u64::from(buf[n - 1]));
            off += n as u64;
        }
        std::hint::black_box(sum);
        best = best.min(start.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    let Some(image) = std::env::args().skip(1).find(|a| !a.starts_with("--")) else {
        eprintln!("usage: cargo bench --bench vss -- IMAGE  (see benches/vss.sh)");
        return;
    };
    let ev = evidence::open(std::path::Path::new(&image), &OpenOptions::default()).expect("open");
    let mut buf = vec![0u8; 1 << 20];
    println!("live\t{}\t{:.3}", ev.source.len(), whole(&*ev.source, &mut buf));
    let shadows = snapsift::volume::vss::find(&ev.source).expect("no shadow copies on this volume");
    for (info, store) in &shadows.stores {
        println!("vss{}\t{}\t{:.3}", info.number, store.len(), whole(&**store, &mut buf));
    }
}
