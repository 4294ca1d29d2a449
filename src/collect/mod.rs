//! Collect layer: plans the copies, runs them in parallel, writes the grep
//! folder and the manifest.
//!
//! Layout of a case folder:
//! ```text
//! <case>/Host-Based Logs/<hostname>/<path as on the machine>
//! <case>/Host-Based Logs/<hostname>/_volumes/<p2_label>/<path on that volume>
//! <case>/snapsift/run-<UTC time>/manifest.csv, run.json, bodyfile.txt, claims.txt
//! ```
//!
//! Any number of processes may extract into one case folder at once: each
//! output name is taken with `O_EXCL` (and written down in the run's
//! `claims.txt`), each run has its own folder, and the case-level files
//! (`bodyfile.txt`, `report.html`, `manifest.csv`) are rebuilt from the
//! finished runs' folders by the report layer, under a lock.

pub mod bodyfile;
pub mod claims;
pub mod copy;
pub mod decompress;
pub mod evtxjson;
mod findings;
pub mod hash_evidence;
mod jsonscan;
pub mod logjson;
pub mod manifest;
pub mod outpath;
pub mod plan;
pub mod progress;
pub mod replayed;
pub mod textlog;

mod budget;
mod file;
mod hosts;
mod runjson;
mod twins;

use budget::OutputBudget;
use file::components;
use hosts::{Planned, VolumeJob, container_folder};
use runjson::describe;

use crate::evidence::OpenOptions;
use crate::fs::{FileKind, FileSystem};
use crate::host::containers::Kind as ContainerKind;
use crate::host::{self, Host, HostVolume, Loaded};
use crate::targets::{Finding, Matcher, Target, VolumeContext};
use crate::util::contain::contain;
use crate::util::time::Timestamp;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use manifest::{Manifest, Row, Status};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

pub const HOSTS_FOLDER: &str = "Host-Based Logs";

pub struct Options {
    pub case_dir: PathBuf,
    pub jobs: Option<usize>,
    pub quiet: bool,
    pub md5: bool,
    /// Overrides the detected hostname.
    pub host: Option<String>,
    /// Where compressed evidence is inflated (default: the case folder).
    pub temp_dir: Option<PathBuf>,
    pub targets: Vec<Target>,
    pub command_line: Vec<String>,
    /// Write `X.evtx.jsonl` beside each extracted `X.evtx`.
    pub evtx_json: bool,
    /// Write `X.jsonl` beside each systemd journal file.
    pub journal_json: bool,
    /// … beside each login record (wtmp, btmp, utmp, lastlog, wtmpdb,
    /// lastlog2).
    pub login_json: bool,
    /// … beside each audit log.
    pub audit_json: bool,
    /// Write a plain copy beside each compressed log (bounded).
    pub decompress: bool,
    /// Extract NTFS alternate data streams too (always listed).
    pub ads: bool,
    /// At most this many bytes of one file are copied (`--max-file-size`);
    /// the file is marked `truncated`.
    pub max_file_size: u64,
    /// No copy starts once this many bytes are written (`--max-output`).
    pub max_output: Option<u64>,
    /// Bounds on the directory walk.
    pub limits: plan::Limits,
    /// SHA-256 of every evidence file into run.json, read alongside.
    pub hash_evidence: bool,
    /// Replay dirty ext3/4 journals and XFS logs in memory (`--no-replay`:
    /// read volumes as they lie on disk).
    pub replay: bool,
    /// Read the Volume Shadow Copy stores of NTFS volumes (`--no-vss`: not).
    pub shadow_copies: bool,
    /// The run folder, made beforehand with [`create_run_dir`] (a job
    /// records it before extracting); None: made by `extract`.
    pub run_dir: Option<PathBuf>,
    /// The job of a list this run is (`--jobs-file`), for run.json.
    pub job: Option<serde_json::Value>,
    /// A bar, JSON lines or nothing (`--progress`).
    pub progress: progress::Mode,
    /// How often JSON progress is told.
    pub progress_interval: std::time::Duration,
}

#[derive(Default, Debug, serde::Serialize)]
pub struct Counts {
    pub evidence: u64,
    pub evidence_failed: u64,
    /// Of `evidence_failed`, those damaged or of a kind snapsift does not
    /// read: opening them again would give the same answer.
    pub evidence_failed_for_good: u64,
    pub hosts: u64,
    pub volumes: u64,
    pub containers: u64,
    /// Layer folders extracted alone (under `containers/_layers/`): their
    /// runtime's records that would place them in a container are missing.
    pub container_layers: u64,
    pub files: u64,
    pub bytes: u64,
    pub partial: u64,
    pub errors: u64,
    pub skipped: u64,
    pub symlinks: u64,
    /// Files of a shadow copy or Btrfs snapshot identical to the live
    /// volume's: listed, not written again.
    pub identical: u64,
    /// Shadow copy stores read.
    pub shadow_copies: u64,
    /// Btrfs snapshots read (snapper's and others).
    pub btrfs_snapshots: u64,
    /// Copied only up to `--max-file-size`.
    pub truncated: u64,
    /// Not copied because `--max-output` was reached.
    pub over_max_output: u64,
    /// Volumes whose journal or log was replayed, and the files the replay
    /// changed, created or removed (each removed or changed one also
    /// extracted as it lies on disk, under `_before-journal/`).
    pub journals_replayed: u64,
    pub journal_changed: u64,
}

impl Counts {
    fn add_host(&mut self, host: &Host) {
        self.hosts += 1;
        self.volumes += host.volumes.len() as u64;
        self.shadow_copies += host.volumes.iter().filter(|v| v.volume.as_ref().is_some_and(|x| x.shadow.is_some())).count() as u64;
        self.btrfs_snapshots += host.volumes.iter().filter(|v| v.is_snapshot() && v.subvol.is_some()).count() as u64;
        self.containers += host.containers.iter().filter(|c| c.info.kind == ContainerKind::Container).count() as u64;
        self.container_layers += host.containers.iter().filter(|c| c.info.kind == ContainerKind::Layer).count() as u64;
    }

    /// What the per-file workers counted.
    fn add_files(&mut self, c: &Counters) {
        self.files = c.files.load(Relaxed);
        self.bytes = c.bytes.load(Relaxed);
        self.partial = c.partial.load(Relaxed);
        self.errors = c.errors.load(Relaxed);
        self.skipped = c.skipped.load(Relaxed);
        self.symlinks = c.symlinks.load(Relaxed);
        self.identical = c.identical.load(Relaxed);
        self.truncated = c.truncated.load(Relaxed);
        self.over_max_output = c.over_max_output.load(Relaxed);
        self.journals_replayed = c.journals_replayed.load(Relaxed);
        self.journal_changed = c.journal_changed.load(Relaxed);
    }
}

pub struct Summary {
    pub counts: Counts,
    pub warnings: Vec<String>,
    pub run_dir: PathBuf,
    pub seconds: f64,
    pub hosts: Vec<String>,
    /// One line a volume whose journal or log needed replay: what was done.
    pub replays: Vec<String>,
    /// One line a volume skipped because snapsift does not read what it
    /// holds (HFS+, LUKS, …): said even with `--quiet`.
    pub skipped: Vec<String>,
    /// Traces of tampering and hiding (run.json's `findings`).
    pub findings: Vec<Finding>,
}

impl Summary {
    /// 0 everything extracted, 1 some files unreadable or left out by a
    /// limit, 2 some evidence could not be opened.
    pub fn exit_code(&self) -> i32 {
        let c = &self.counts;
        if c.evidence_failed > 0 {
            2
        } else if c.errors + c.partial + c.truncated + c.over_max_output > 0 {
            1
        } else {
            0
        }
    }
}

#[derive(Default)]
struct Counters {
    files: AtomicU64,
    bytes: AtomicU64,
    partial: AtomicU64,
    errors: AtomicU64,
    skipped: AtomicU64,
    symlinks: AtomicU64,
    identical: AtomicU64,
    truncated: AtomicU64,
    over_max_output: AtomicU64,
    journals_replayed: AtomicU64,
    journal_changed: AtomicU64,
}

struct Run<'a> {
    opts: &'a Options,
    manifest: Manifest,
    body: bodyfile::BodyFile,
    claims: claims::Claims,
    dirs: copy::DirCache,
    counters: Counters,
    budget: OutputBudget,
    warnings: Mutex<Vec<String>>,
    replays: Mutex<Vec<String>>,
    findings: Mutex<Vec<Finding>>,
    /// Empty shell histories (host, path) and, per host, the users of the
    /// sessions in its login records: an empty history of a user who logged
    /// in is a finding, decided once the host's files are all read.
    empty_histories: Mutex<Vec<(String, String)>>,
    logins: Mutex<BTreeMap<String, std::collections::BTreeSet<String>>>,
    /// Per host (its folder name): events per hour in its converted logs.
    activity: Mutex<BTreeMap<String, crate::util::time::Hourly>>,
}

/// Extracts every piece of evidence, in turn, into one case folder.
pub fn extract(evidence: &[PathBuf], opts: &Options) -> Result<Summary> {
    let started = Timestamp::now();
    let clock = std::time::Instant::now();
    std::fs::create_dir_all(&opts.case_dir).with_context(|| format!("cannot create the case folder {}", opts.case_dir.display()))?;
    let run_dir = match &opts.run_dir {
        Some(d) => d.clone(),
        None => create_run_dir(&opts.case_dir)?,
    };
    let run = Run {
        opts,
        manifest: Manifest::create(&run_dir.join("manifest.csv"))?,
        // The run's own body file: the case's is rebuilt from every
        // finished run's (report::case), never appended to by two writers.
        body: bodyfile::BodyFile::open(&run_dir.join("bodyfile.txt"))?,
        claims: claims::Claims::create(&run_dir, &opts.case_dir)?,
        dirs: copy::DirCache::default(),
        counters: Counters::default(),
        budget: OutputBudget::new(opts.max_output),
        warnings: Mutex::new(Vec::new()),
        replays: Mutex::new(Vec::new()),
        activity: Mutex::new(BTreeMap::new()),
        findings: Mutex::new(Vec::new()),
        empty_histories: Mutex::new(Vec::new()),
        logins: Mutex::new(BTreeMap::new()),
    };
    if opts.progress == progress::Mode::Json {
        progress::event(
            "started",
            serde_json::json!({ "run": run_dir, "case": opts.case_dir, "evidence": evidence, "job": opts.job, "version": env!("CARGO_PKG_VERSION") }),
        );
    }
    // Reads the evidence files alongside the extraction, not after it.
    let hasher = opts.hash_evidence.then(|| hash_evidence::Hasher::start(evidence));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(opts.jobs.unwrap_or_else(|| default_threads(evidence))).build()?;
    let mut counts = Counts::default();
    let mut evidence_json = Vec::new();
    let mut hosts = Vec::new();
    let mut skipped = Vec::new();
    // All evidence is opened first: an LVM volume group may span disks.
    for (path, loaded) in evidence.iter().zip(load(evidence, opts)) {
        let loaded = match loaded {
            // Read as part of another image given with it (said there).
            Ok(None) => continue,
            Ok(Some(l)) => {
                if let Some(h) = &hasher {
                    h.add(&l.files);
                }
                counts.evidence += 1;
                for n in l.folded_notes() {
                    run.warn(format!("{}: {n}", path.display()));
                }
                l
            }
            Err(e) => {
                evidence_json.push(run.unopened(path, &e, &mut counts));
                continue;
            }
        };
        if loaded.lvm_members_only {
            run.warn(format!("{}: holds only LVM physical volumes of a volume group read with another disk of this run", path.display()));
            evidence_json.push(describe(&loaded, &opts.case_dir));
            continue;
        }
        counts.add_host(&loaded.host);
        for w in &loaded.host.warnings {
            run.warn(format!("{}: {w}", path.display()));
        }
        hosts.push(loaded.host.name.clone());
        if opts.progress == progress::Mode::Json {
            for v in &loaded.host.volumes {
                progress::event(
                    "volume",
                    serde_json::json!({ "evidence": path, "host": loaded.host.name, "volume": v.id(),
                        "filesystem": v.fs.as_ref().map(|f| f.kind()), "mount_point": v.mount_point,
                        "os_root": v.is_os_root, "output": v.out_prefix.join("/"), "problem": v.problem }),
                );
            }
        }
        let base = vec![HOSTS_FOLDER.to_string(), outpath::component(loaded.host.name.as_bytes())];
        pool.install(|| run.host(&loaded.path.display().to_string(), &loaded.host, &base));
        run.volumes_not_read(path, &loaded.host, &mut skipped);
        evidence_json.push(describe(&loaded, &opts.case_dir));
    }
    run.manifest.finish()?;
    run.body.finish()?;
    counts.add_files(&run.counters);
    if let Some(h) = hasher {
        h.finish(&mut evidence_json);
    }
    let replays = run.replays.into_inner().unwrap_or_else(|p| p.into_inner());
    let activity = run.activity.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut findings = run.findings.into_inner().unwrap_or_else(|p| p.into_inner());
    findings.sort_by(|a, b| (&a.host, &a.path, &a.at).cmp(&(&b.host, &b.path, &b.at)));
    let warnings = run.warnings.into_inner().unwrap_or_else(|p| p.into_inner());
    let finished = Timestamp::now();
    let summary = Summary { counts, warnings, run_dir, seconds: clock.elapsed().as_secs_f64(), hosts, replays, skipped, findings };
    runjson::write(&summary, opts, (started, finished), evidence_json, &activity)?;
    Ok(summary)
}

/// A new `<case>/snapsift/run-<time>` folder, with a suffix if other runs
/// (of this process or others sharing the case) started in the same
/// second: `mkdir` either makes it or fails, so no two runs share one.
pub fn create_run_dir(case: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(case).with_context(|| format!("cannot create the case folder {}", case.display()))?;
    let t = Timestamp::now();
    let base = case.join("snapsift");
    std::fs::create_dir_all(&base)?;
    for n in 1..100_000 {
        let name = if n == 1 { format!("run-{}", t.compact()) } else { format!("run-{}-{n}", t.compact()) };
        let p = base.join(name);
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("cannot create a run folder under {}", base.display())
}

fn load(paths: &[PathBuf], opts: &Options) -> Vec<Result<Option<Loaded>>> {
    let bar = progress_bar(opts, 0, "inflating");
    let cb = |_: &Path, done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let eo = OpenOptions { temp_dir: Some(opts.temp_dir.clone().unwrap_or_else(|| opts.case_dir.clone())), progress: Some(&cb) };
    let l = host::load_all_with(
        paths,
        &eo,
        host::Reading {
            fs: crate::fs::OpenOptions { replay: opts.replay },
            volumes: crate::volume::Options { shadow_copies: opts.shadow_copies },
        },
        opts.host.as_deref(),
    );
    bar.finish_and_clear();
    l
}

fn progress_bar(opts: &Options, len: u64, msg: &'static str) -> ProgressBar {
    if opts.quiet || opts.progress != progress::Mode::Bar || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(msg);
    bar
}

impl Run<'_> {
    /// Evidence that could not be opened: counted, warned about, and its
    /// run.json entry (the error and its kind).
    fn unopened(&self, path: &Path, e: &anyhow::Error, counts: &mut Counts) -> serde_json::Value {
        counts.evidence += 1;
        counts.evidence_failed += 1;
        let kind = e.downcast_ref::<crate::evidence::OpenError>().map(|o| o.kind);
        if kind.is_some_and(|k| !k.may_pass()) {
            counts.evidence_failed_for_good += 1;
        }
        self.warn(format!("{}: {e:#}", path.display()));
        serde_json::json!({ "path": path, "error": format!("{e:#}"), "error_kind": kind.map(|k| k.as_str()) })
    }

    /// A row and a warning for each volume of `host` not read (unreadable,
    /// or of a kind snapsift does not read: also in `skipped`), and the
    /// warnings of those read, each said once (views of one Btrfs
    /// filesystem share its warnings).
    fn volumes_not_read(&self, path: &Path, host: &Host, skipped: &mut Vec<String>) {
        let row = |volume: String, status: Status, reason: String| {
            let row = Row { evidence: path.display().to_string(), volume, kind: "volume".into(), status, reason, ..Row::default() };
            if let Err(e) = self.manifest.write(&row) {
                self.warn(format!("cannot write the manifest: {e}"));
            }
        };
        let unreadable = host.volumes.iter().filter(|v| v.unreadable).map(|v| (v.id(), v.problem.clone().unwrap_or_default()));
        for (volume, reason) in unreadable.chain(host.failed.iter().cloned()) {
            self.counters.errors.fetch_add(1, Relaxed);
            self.warn(format!("{} {volume}: {reason}", path.display()));
            row(volume, Status::Error, reason);
        }
        for (v, what) in host.volumes.iter().filter_map(|v| v.unsupported.map(|w| (v, w))) {
            let reason = format!("{what}: not supported by this version of snapsift; the volume was skipped");
            skipped.push(format!("{} {}: {reason}", path.display(), v.id()));
            row(v.id(), Status::Skipped, reason);
        }
        let mut said = std::collections::HashSet::new();
        for v in &host.volumes {
            if let Some(p) = v.problem.as_ref().filter(|_| !v.unreadable && v.unsupported.is_none()) {
                self.warn(format!("{} {}: {p}", path.display(), v.id()));
            }
            for w in v.fs.as_ref().map(|f| f.warnings()).unwrap_or_default() {
                if said.insert(w.clone()) {
                    self.warn(format!("{} {}: {w}", path.display(), v.id()));
                }
            }
        }
    }

    fn warn(&self, w: String) {
        if self.opts.progress == progress::Mode::Json {
            progress::event("warning", serde_json::json!({ "message": w }));
        }
        self.warnings.lock().unwrap_or_else(|p| p.into_inner()).push(w);
    }

    /// A trace of tampering or hiding on `host` (its folder name).
    fn found(&self, host: &str, mut f: Finding) {
        f.host = host.to_string();
        self.findings.lock().unwrap_or_else(|p| p.into_inner()).push(f);
    }

    /// Events of a converted log, counted per hour for `host`'s activity.
    fn saw(&self, host: &str, hours: &crate::util::time::Hourly) {
        self.activity.lock().unwrap_or_else(|p| p.into_inner()).entry(host.to_string()).or_default().merge(hours);
    }
}

/// `<host>/var/log/wtmp` (a path under the host's folder) → `/var/log/wtmp`,
/// the file as it is on the machine (or in `_volumes/…`, `_before-journal/…`).
fn on_machine(under_host: &str) -> String {
    format!("/{}", under_host.split_once('/').map_or("", |(_, p)| p))
}

/// [`on_machine`] of a manifest's `output_path` (`Host-Based Logs/<host>/…`).
fn output_on_machine(output_path: &str) -> String {
    on_machine(output_path.split_once('/').map_or("", |(_, p)| p))
}

/// Threads when `--jobs` is not given: one per CPU; at least
/// [`REMOTE_THREADS`] when evidence is read in place, where a thread mostly
/// waits on the network (each has one read in flight).
fn default_threads(evidence: &[PathBuf]) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    match evidence.iter().any(|p| crate::evidence::remote::is_url(p)) {
        true => cpus.max(REMOTE_THREADS),
        false => cpus,
    }
}

const REMOTE_THREADS: usize = 8;
