//! How a run shows its progress: a bar on a terminal (the default; nothing
//! when stderr is not a terminal, as in a job's log), nothing, or JSON
//! lines on stderr for machines (`--progress json`): one object a line,
//! each with `event` and `time`:
//!
//! - `started`: the run folder, the case, the evidence, the job;
//! - `volume`: each volume opened (evidence, host, volume, filesystem,
//!   mount point, output folder, problem);
//! - `progress`: a host's copying, every interval and at its end:
//!   bytes and files done and in all, rate (bytes/s) and estimate (s);
//! - `warning`: each warning, as it happens;
//! - `job`: what a job found of an earlier run of it;
//! - `finished`: the summary (counts, hosts, findings, run folder) and the
//!   exit status (written by `main`, which knows it).
//!
//! Each line is written with one `write(2)`, so lines of threads (and of
//! processes sharing a log) never mix.

use serde_json::{Value, json};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// A bar when stderr is a terminal, else nothing.
    #[default]
    Bar,
    /// JSON lines on stderr.
    Json,
    /// Nothing.
    Off,
}

/// Writes one event as a JSON line on stderr: `{"event":…,"time":…,…}`.
pub fn event(kind: &str, fields: Value) {
    let mut obj = json!({ "event": kind, "time": crate::util::time::Timestamp::now().iso8601() });
    if let (Some(o), Value::Object(f)) = (obj.as_object_mut(), fields) {
        o.extend(f);
    }
    let mut line = obj.to_string();
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

struct Shared {
    bytes: AtomicU64,
    files: AtomicU64,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// A host's copying, told every `interval` as `progress` events (JSON
/// mode only; otherwise it counts and says nothing).
pub struct Ticker {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    pub fn start(mode: Mode, host: &str, bytes_total: u64, files_total: u64, interval: Duration) -> Ticker {
        let shared = Arc::new(Shared { bytes: AtomicU64::new(0), files: AtomicU64::new(0), stop: Mutex::new(false), wake: Condvar::new() });
        let thread = (mode == Mode::Json).then(|| {
            let s = shared.clone();
            let host = host.to_string();
            let began = Instant::now();
            std::thread::spawn(move || {
                let tell = |done: bool| {
                    let (b, f) = (s.bytes.load(Relaxed), s.files.load(Relaxed));
                    let secs = began.elapsed().as_secs_f64();
                    let rate = if secs > 0.0 { b as f64 / secs } else { 0.0 };
                    let eta = if done { Some(0.0) } else { (rate > 0.0).then(|| bytes_total.saturating_sub(b) as f64 / rate) };
                    event(
                        "progress",
                        json!({ "host": host, "bytes": b, "bytes_total": bytes_total, "files": f, "files_total": files_total,
                                "rate_bytes_per_s": rate.round(), "eta_s": eta.map(|e| (e * 10.0).round() / 10.0), "done": done }),
                    );
                };
                tell(false);
                let mut stop = s.stop.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    let (g, _) = s.wake.wait_timeout(stop, interval.max(Duration::from_millis(100))).unwrap_or_else(|p| p.into_inner());
                    stop = g;
                    if *stop {
                        break;
                    }
                    tell(false);
                }
                drop(stop);
                tell(true);
            })
        });
        Ticker { shared, thread }
    }

    pub fn bytes(&self, n: u64) {
        self.shared.bytes.fetch_add(n, Relaxed);
    }

    pub fn file(&self) {
        self.shared.files.fetch_add(1, Relaxed);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
