//! EVTX → JSON lines: snapsift's conversion (`collect::evtxjson::convert`,
//! which adds the host, path and Timesketch fields to every event) against
//! what `evtx_dump -t 1 -o jsonl --recover-records` does with the same
//! crate (the settings snapsift converts with: `evtxjson::settings`) — one thread,
//! `chunks_json_bytes` (a chunk's records rendered into one buffer), one
//! write per chunk into a buffered file — on the
//! same files, in the same run, interleaved, best of 11, in CPU seconds of
//! the thread (both are single-threaded), and of the process for
//! `evtx_dump`. Issue #8's goal: snapsift ≥ 0.9 × the reference's
//! throughput. snapsift is timed twice: converting (the same work as the
//! reference, plus the added fields), and converting while hashing its
//! output for the manifest, as `extract` runs it; the hash is work
//! `evtx_dump` does not do, so it is shown apart.
//!
//!   cargo bench --bench evtx_json [-- FILE.evtx…]
//!
//! Without arguments it takes every `.evtx` in ../shared/samples/evtx (real
//! third-party logs beside the checkout), plus the largest of them tiled ten
//! times over (`tiled`), and says so when there are none.
//! If an `evtx_dump` binary is on PATH it is timed too, as a process
//! writing to a file (`cargo install evtx` builds it).

use evtx::EvtxParser;
use snapsift::collect::evtxjson;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Best of this many (`RUNS=N` to change): the VMs this runs on are noisy.
fn runs() -> usize {
    std::env::var("RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(11)
}

/// The reference: evtx_dump 0.15.1's jsonl loop (`EvtxDump::run` and
/// `dump_chunk`), minus argument parsing.
fn reference(src: &Path, out: &Path) -> u64 {
    let mut parser = EvtxParser::from_path(src).expect("the reference opens the file").with_configuration(evtxjson::settings());
    let mut w = BufWriter::new(std::fs::File::create(out).expect("create"));
    let mut n = 0;
    for chunk in parser.chunks_json_bytes(false) {
        w.write_all(&chunk.data).expect("write");
        n += chunk.records().count() as u64;
    }
    w.flush().expect("flush");
    n
}

/// CPU time (user + system) of the children waited for so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// The `evtx_dump` binary, if installed: the CPU time of its process.
fn evtx_dump(src: &Path, out: &Path) -> Option<f64> {
    let file = std::fs::File::create(out).ok()?;
    let t = children_cpu();
    let st = Command::new("evtx_dump")
        .args(["-t", "1", "-o", "jsonl", "--recover-records"])
        .arg(src)
        .stdout(file)
        .stderr(Stdio::null())
        .status()
        .ok()?;
    st.success().then(|| children_cpu() - t)
}

/// CPU time of this thread (both sides are single-threaded): unlike wall
/// time it does not count what other processes on a busy machine take.
fn thread_cpu() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn best(mut f: impl FnMut()) -> f64 {
    let t = thread_cpu();
    f();
    thread_cpu() - t
}

/// A log of a production server's size (tens of MiB), made from a sample:
/// its header and chunks, the chunks repeated `times` (each chunk stands
/// alone, with its own string and template tables), the header's chunk
/// count, last chunk number and CRC-32 set to match. On 2 MiB samples the
/// `evtx_dump` process's start-up (about 1.2 ms) is a fifth of its time;
/// here it is noise.
fn tiled(sample: &Path, times: usize, out: &Path) -> Option<PathBuf> {
    let data = std::fs::read(sample).ok()?;
    let (head, chunks) = data.split_at_checked(4096)?;
    let n = chunks.len() / 65536;
    let total = u16::try_from(n * times).ok()?;
    let mut header = head.to_vec();
    header[16..24].copy_from_slice(&(u64::from(total) - 1).to_le_bytes());
    header[42..44].copy_from_slice(&total.to_le_bytes());
    let crc = snapsift::util::crc::crc32(&header[..120]);
    header[124..128].copy_from_slice(&crc.to_le_bytes());
    let name = format!("{}-x{times}.evtx", sample.file_stem()?.to_string_lossy());
    let path = out.join(name);
    let mut file = std::fs::File::create(&path).ok()?;
    file.write_all(&header).ok()?;
    for _ in 0..times {
        file.write_all(&chunks[..n * 65536]).ok()?;
    }
    Some(path)
}

fn main() {
    let args: Vec<PathBuf> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).map(PathBuf::from).collect();
    let work = std::env::temp_dir().join(format!("snapsift-evtx-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    let files: Vec<PathBuf> = if args.is_empty() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples/evtx");
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "evtx")).collect())
            .unwrap_or_default();
        v.sort();
        if v.is_empty() {
            println!("evtx_json: no .evtx files given and none in {}: nothing to measure", dir.display());
            return;
        }
        // The largest sample, ten times over.
        if let Some(big) = v.iter().max_by_key(|p| std::fs::metadata(p).map_or(0, |m| m.len())) {
            let dir = work.join("tiled");
            std::fs::create_dir_all(&dir).expect("work dir");
            v.extend(tiled(big, 10, &dir));
        }
        v
    } else {
        args
    };
    let have_dump = Command::new("evtx_dump").arg("--version").stdout(Stdio::null()).status().is_ok();
    println!(
        "{:<28} {:>9} {:>8} {:>14} {:>11} {:>11} {:>11} {:>11} {:>7} {:>7}",
        "file", "KiB", "records", "out KiB ref/ss", "reference", "snapsift", "+ sha256", "evtx_dump", "ratio", "+sha"
    );
    let (mut total_ref, mut total_ss, mut total_hashed, mut total_dump) = (0.0, 0.0, 0.0, 0.0);
    for f in &files {
        // snapsift writes X.evtx.jsonl beside X.evtx: work on a copy.
        let copy = work.join(f.file_name().expect("a file name"));
        std::fs::copy(f, &copy).expect("copy the sample");
        let (mut r_best, mut s_best, mut h_best, mut d_best) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
        let (mut records, mut converted, mut out_bytes) = (0, 0, 0);
        // Each side's output of the run before is deleted before timing it:
        // freeing a file's pages is the bench's housekeeping, not conversion.
        let mut snapsift = |hash: bool| {
            let mut out = None;
            let t = best(|| {
                out = Some(
                    evtxjson::convert(&copy, "bench-host", "/Windows/System32/winevt/Logs/x.evtx", hash, None)
                        .expect("snapsift converts the file"),
                )
            });
            let c = out.expect("converted");
            converted = c.records;
            out_bytes = std::fs::metadata(&c.path).map_or(0, |m| m.len());
            std::fs::remove_file(c.path).expect("remove the output");
            t
        };
        for _ in 0..runs() {
            let _ = std::fs::remove_file(work.join("ref.jsonl"));
            r_best = r_best.min(best(|| records = reference(&copy, &work.join("ref.jsonl"))));
            s_best = s_best.min(snapsift(false));
            h_best = h_best.min(snapsift(true));
            if have_dump {
                let _ = std::fs::remove_file(work.join("dump.jsonl"));
                d_best = d_best.min(evtx_dump(&copy, &work.join("dump.jsonl")).unwrap_or(f64::NAN));
            }
        }
        assert_eq!(records, converted, "{}: both read the same records", f.display());
        total_ref += r_best;
        total_ss += s_best;
        total_hashed += h_best;
        total_dump += d_best;
        let ref_bytes = std::fs::metadata(work.join("ref.jsonl")).map_or(0, |m| m.len());
        let kib = std::fs::metadata(f).map(|m| m.len() / 1024).unwrap_or(0);
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        let dump = if have_dump { format!("{:.2} ms", d_best * 1e3) } else { "—".into() };
        let ms = |t: f64| format!("{:.2} ms", t * 1e3);
        // Throughput ratios: reference time / snapsift time (≥ 0.9 is the goal).
        println!(
            "{name:<28} {kib:>9} {records:>8} {:>14} {:>11} {:>11} {:>11} {dump:>11} {:>7.2} {:>7.2}",
            format!("{}/{}", ref_bytes / 1024, out_bytes / 1024),
            ms(r_best),
            ms(s_best),
            ms(h_best),
            r_best / s_best,
            r_best / h_best
        );
    }
    println!(
        "all files: snapsift converts at {:.2} x the reference's throughput (goal >= 0.9); {:.2} x with the SHA-256 of its output for the manifest",
        total_ref / total_ss,
        total_ref / total_hashed
    );
    if have_dump {
        println!(
            "all files: {:.2} x the throughput of the evtx_dump process (CPU, start-up included); {:.2} x with the SHA-256",
            total_dump / total_ss,
            total_dump / total_hashed
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}
