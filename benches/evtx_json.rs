//! EVTX → JSON lines: snapsift's conversion (`collect::evtxjson::convert`,
//! which adds the host, path and Timesketch fields to every event) against
//! what `evtx_dump -t 1 -o jsonl` does with the same crate — one thread,
//! `records_json_bytes`, one line per record into a buffered file — on the
//! same files, in the same run, interleaved, best of 5, in CPU seconds of
//! the thread (both are single-threaded), and of the process for `evtx_dump`. Issue #8's goal:
//! snapsift ≥ 0.9 × the reference's throughput.
//!
//!   cargo bench --bench evtx_json [-- FILE.evtx…]
//!
//! Without arguments it takes every `.evtx` in ../shared/samples/evtx (real
//! third-party logs beside the checkout) and says so when there are none.
//! If an `evtx_dump` binary is on PATH it is timed too, as a process
//! writing to a file (`cargo install evtx` builds it).

use evtx::{EvtxParser, ParserSettings};
use snapsift::collect::evtxjson;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const RUNS: usize = 5;

/// The reference: evtx_dump's jsonl loop, minus argument parsing.
fn reference(src: &Path, out: &Path) -> u64 {
    let mut parser = EvtxParser::from_path(src)
        .expect("the reference opens the file")
        .with_configuration(ParserSettings::default().num_threads(1).indent(false));
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(out).expect("create"));
    let mut n = 0;
    for r in parser.records_json_bytes().flatten() {
        w.write_all(&r.data).and_then(|_| w.write_all(b"\n")).expect("write");
        n += 1;
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
        .args(["-t", "1", "-o", "jsonl"])
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

fn main() {
    let args: Vec<PathBuf> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).map(PathBuf::from).collect();
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
        v
    } else {
        args
    };
    let have_dump = Command::new("evtx_dump").arg("--version").stdout(Stdio::null()).status().is_ok();
    let work = std::env::temp_dir().join(format!("snapsift-evtx-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    println!(
        "{:<28} {:>9} {:>8} {:>14} {:>12} {:>12} {:>12} {:>7}",
        "file", "KiB", "records", "out KiB ref/ss", "reference s", "snapsift s", "evtx_dump s", "ratio"
    );
    let (mut total_ref, mut total_ss, mut total_dump) = (0.0, 0.0, 0.0);
    for f in &files {
        // snapsift writes X.evtx.jsonl beside X.evtx: work on a copy.
        let copy = work.join(f.file_name().expect("a file name"));
        std::fs::copy(f, &copy).expect("copy the sample");
        let (mut r_best, mut s_best, mut d_best) = (f64::MAX, f64::MAX, f64::MAX);
        let (mut records, mut converted, mut out_bytes) = (0, 0, 0);
        for _ in 0..RUNS {
            r_best = r_best.min(best(|| records = reference(&copy, &work.join("ref.jsonl"))));
            s_best = s_best.min(best(|| {
                let c = evtxjson::convert(&copy, "bench-host", "/Windows/System32/winevt/Logs/x.evtx")
                    .expect("snapsift converts the file");
                converted = c.records;
                out_bytes = std::fs::metadata(&c.path).map_or(0, |m| m.len());
                std::fs::remove_file(c.path).expect("remove the output");
            }));
            if have_dump {
                d_best = d_best.min(evtx_dump(&copy, &work.join("dump.jsonl")).unwrap_or(f64::NAN));
            }
        }
        assert_eq!(records, converted, "{}: both read the same records", f.display());
        total_ref += r_best;
        total_ss += s_best;
        total_dump += d_best;
        let ref_bytes = std::fs::metadata(work.join("ref.jsonl")).map_or(0, |m| m.len());
        let kib = std::fs::metadata(f).map(|m| m.len() / 1024).unwrap_or(0);
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        let dump = if have_dump { format!("{d_best:.4}") } else { "—".into() };
        // Throughput ratio: reference time / snapsift time (≥ 0.9 is the goal).
        println!(
            "{name:<28} {kib:>9} {records:>8} {:>14} {r_best:>12.4} {s_best:>12.4} {dump:>12} {:>7.2}",
            format!("{}/{}", ref_bytes / 1024, out_bytes / 1024),
            r_best / s_best
        );
    }
    println!("all files: snapsift's throughput is {:.2} x the reference's (goal >= 0.9)", total_ref / total_ss);
    if have_dump {
        println!("all files: snapsift's throughput is {:.2} x evtx_dump's", total_dump / total_ss);
    }
    let _ = std::fs::remove_dir_all(&work);
}
