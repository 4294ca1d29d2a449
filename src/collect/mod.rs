//! Collect layer: plans the copies, runs them in parallel, writes the grep
//! folder and the manifest.
//!
//! Layout of a case folder:
//! ```text
//! <case>/Host-Based Logs/<hostname>/<path as on the machine>
//! <case>/Host-Based Logs/<hostname>/_volumes/<p2_label>/<path on that volume>
//! <case>/snapsift/run-<UTC time>/manifest.csv, run.json
//! ```

pub mod bodyfile;
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
pub mod replayed;
mod textlog;

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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
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
}

#[derive(Default, Debug, serde::Serialize)]
pub struct Counts {
    pub evidence: u64,
    pub evidence_failed: u64,
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
    /// Files of a shadow copy identical to the live volume's: listed, not
    /// written again.
    pub identical: u64,
    /// Shadow copy stores read.
    pub shadow_copies: u64,
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

/// `--max-output`: bytes promised to copies so far. A copy reserves its
/// size before it starts; the first one that does not fit stops all
/// further copies, so the run ends cleanly instead of on a full disk.
#[derive(Default)]
struct OutputBudget {
    cap: Option<u64>,
    used: AtomicU64,
    reached: AtomicBool,
}

impl OutputBudget {
    fn reserve(&self, n: u64) -> bool {
        let Some(cap) = self.cap else { return true };
        if self.reached.load(Relaxed) {
            return false;
        }
        let fits = self.used.fetch_update(Relaxed, Relaxed, |u| u.checked_add(n).filter(|&t| t <= cap)).is_ok();
        if !fits {
            self.reached.store(true, Relaxed);
        }
        fits
    }

    /// Gives back what a copy reserved but did not write.
    fn release(&self, n: u64) {
        if self.cap.is_some() {
            self.used.fetch_sub(n, Relaxed);
        }
    }

    fn reached(&self) -> bool {
        self.reached.load(Relaxed)
    }
}

struct Run<'a> {
    opts: &'a Options,
    manifest: Manifest,
    body: bodyfile::BodyFile,
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
    let run_dir = new_run_dir(&opts.case_dir, &started)?;
    let run = Run {
        opts,
        manifest: Manifest::create(&run_dir.join("manifest.csv"))?,
        body: bodyfile::BodyFile::open(&opts.case_dir.join("snapsift").join("bodyfile.txt"))?,
        dirs: copy::DirCache::default(),
        counters: Counters::default(),
        budget: OutputBudget { cap: opts.max_output, ..OutputBudget::default() },
        warnings: Mutex::new(Vec::new()),
        replays: Mutex::new(Vec::new()),
        activity: Mutex::new(BTreeMap::new()),
        findings: Mutex::new(Vec::new()),
        empty_histories: Mutex::new(Vec::new()),
        logins: Mutex::new(BTreeMap::new()),
    };
    // Reads the evidence files alongside the extraction, not after it.
    let hasher = opts.hash_evidence.then(|| hash_evidence::Hasher::start(evidence));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(opts.jobs.unwrap_or(0)).build()?;
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
                counts.evidence += 1;
                counts.evidence_failed += 1;
                let msg = format!("{}: {e:#}", path.display());
                run.warn(msg.clone());
                evidence_json.push(serde_json::json!({ "path": path, "error": format!("{e:#}") }));
                continue;
            }
        };
        if loaded.lvm_members_only {
            run.warn(format!("{}: holds only LVM physical volumes of a volume group read with another disk of this run", path.display()));
            evidence_json.push(describe(&loaded, &opts.case_dir));
            continue;
        }
        counts.hosts += 1;
        counts.volumes += loaded.host.volumes.len() as u64;
        counts.shadow_copies += loaded.host.volumes.iter().filter(|v| v.volume.as_ref().is_some_and(|x| x.shadow.is_some())).count() as u64;
        counts.containers += loaded.host.containers.iter().filter(|c| c.info.kind == ContainerKind::Container).count() as u64;
        counts.container_layers += loaded.host.containers.iter().filter(|c| c.info.kind == ContainerKind::Layer).count() as u64;
        for w in &loaded.host.warnings {
            run.warn(format!("{}: {w}", path.display()));
        }
        hosts.push(loaded.host.name.clone());
        let base = vec![HOSTS_FOLDER.to_string(), outpath::component(loaded.host.name.as_bytes())];
        pool.install(|| run.host(&loaded.path.display().to_string(), &loaded.host, &base));
        let unreadable = loaded.host.volumes.iter().filter(|v| v.unreadable).map(|v| (v.id(), v.problem.clone().unwrap_or_default()));
        for (volume, reason) in unreadable.chain(loaded.host.failed.iter().cloned()) {
            run.counters.errors.fetch_add(1, Relaxed);
            run.warn(format!("{} {volume}: {reason}", path.display()));
            let row = Row {
                evidence: path.display().to_string(),
                volume,
                kind: "volume".into(),
                status: Status::Error,
                reason,
                ..Row::default()
            };
            if let Err(e) = run.manifest.write(&row) {
                run.warn(format!("cannot write the manifest: {e}"));
            }
        }
        for (v, what) in loaded.host.volumes.iter().filter_map(|v| v.unsupported.map(|w| (v, w))) {
            let reason = format!("{what}: not supported by this version of snapsift; the volume was skipped");
            skipped.push(format!("{} {}: {reason}", path.display(), v.id()));
            let row = Row {
                evidence: path.display().to_string(),
                volume: v.id(),
                kind: "volume".into(),
                status: Status::Skipped,
                reason,
                ..Row::default()
            };
            if let Err(e) = run.manifest.write(&row) {
                run.warn(format!("cannot write the manifest: {e}"));
            }
        }
        for v in &loaded.host.volumes {
            if let Some(p) = v.problem.as_ref().filter(|_| !v.unreadable && v.unsupported.is_none()) {
                run.warn(format!("{} {}: {p}", path.display(), v.id()));
            }
            for w in v.fs.as_ref().map(|f| f.warnings()).unwrap_or_default() {
                run.warn(format!("{} {}: {w}", path.display(), v.id()));
            }
        }
        evidence_json.push(describe(&loaded, &opts.case_dir));
    }
    run.manifest.finish()?;
    run.body.finish()?;
    let c = &run.counters;
    counts.files = c.files.load(Relaxed);
    counts.bytes = c.bytes.load(Relaxed);
    counts.partial = c.partial.load(Relaxed);
    counts.errors = c.errors.load(Relaxed);
    counts.skipped = c.skipped.load(Relaxed);
    counts.symlinks = c.symlinks.load(Relaxed);
    counts.identical = c.identical.load(Relaxed);
    counts.truncated = c.truncated.load(Relaxed);
    counts.over_max_output = c.over_max_output.load(Relaxed);
    counts.journals_replayed = c.journals_replayed.load(Relaxed);
    counts.journal_changed = c.journal_changed.load(Relaxed);
    if let Some(h) = hasher {
        h.finish(&mut evidence_json);
    }
    let replays = run.replays.into_inner().unwrap_or_else(|p| p.into_inner());
    let activity = run.activity.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut findings = run.findings.into_inner().unwrap_or_else(|p| p.into_inner());
    findings.sort_by(|a, b| (&a.host, &a.path, &a.at).cmp(&(&b.host, &b.path, &b.at)));
    let warnings = run.warnings.into_inner().unwrap_or_else(|p| p.into_inner());
    let finished = Timestamp::now();
    let info = serde_json::json!({
        "snapsift_version": env!("CARGO_PKG_VERSION"),
        "command_line": opts.command_line,
        "case_dir": opts.case_dir,
        "started": started.iso8601(),
        "finished": finished.iso8601(),
        "evidence": evidence_json,
        "counts": counts,
        "journals": replays,
        "findings": findings,
        "skipped_volumes": skipped,
        // Host → {hour since the Unix epoch (UTC) → events in its converted logs}.
        "activity": activity,
        "warnings": warnings,
    });
    std::fs::write(run_dir.join("run.json"), serde_json::to_string_pretty(&info)? + "\n")?;
    Ok(Summary { counts, warnings, run_dir, seconds: clock.elapsed().as_secs_f64(), hosts, replays, skipped, findings })
}

/// `snapsift/run-<time>`, with a suffix if two runs start in one second.
fn new_run_dir(case: &Path, t: &Timestamp) -> Result<PathBuf> {
    let base = case.join("snapsift");
    std::fs::create_dir_all(&base)?;
    for n in 1..1000 {
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
    let bar = progress_bar(opts.quiet, 0, "inflating");
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

fn progress_bar(quiet: bool, len: u64, msg: &'static str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
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

/// One file to copy, with what the replay did to its path.
struct Planned {
    item: plan::Item,
    /// The manifest's `journal` column.
    change: &'static str,
    /// Its on-disk version, when the replay may only have appended to it.
    grown: Option<plan::Item>,
}

/// Per-volume context shared by the copy threads.
struct VolumeJob<'a> {
    evidence: String,
    hv: &'a HostVolume,
    /// The view read: the volume's filesystem, or its on-disk view beside a
    /// replayed one.
    fs: Arc<dyn FileSystem>,
    /// The manifest's `view` column for its files.
    view: &'static str,
    /// `<case>/Host-Based Logs/<host>/<prefix…>`
    out_root: Vec<String>,
    /// Beside a replayed view: its on-disk view, under `_before-journal/`.
    before: Option<Box<VolumeJob<'a>>>,
    /// A replayed view's account of what the replay did to its files.
    tally: Option<Tally>,
    /// The host's users by UID, from its `/etc/passwd` (lastlog names them).
    users: Arc<HashMap<u32, String>>,
    /// For a shadow copy: the live volume it is a copy of, whose identical
    /// files are not written again.
    live: Option<Arc<dyn FileSystem>>,
}

/// What a replay did to one volume's collected files, for the summary.
struct Tally {
    /// `<evidence> <volume>: <the replay's message>; of the files collected, the replay`
    line: String,
    changed: usize,
    new: usize,
    removed: usize,
    /// Of the changed: only appended to, or the same bytes after all
    /// (known once copied).
    appended: AtomicU64,
    same: AtomicU64,
    /// `<host>/_before-journal`
    before: String,
}

impl Tally {
    fn message(&self) -> String {
        let appended = self.appended.load(Relaxed) as usize;
        let changed = self.changed.saturating_sub(self.same.load(Relaxed) as usize);
        let grown = if appended > 0 { format!(" ({appended} only appended to)") } else { String::new() };
        let apart = changed.saturating_sub(appended) + self.removed;
        let before = if apart > 0 { format!("; as they lie on disk: {}", self.before) } else { String::new() };
        format!("{} changed {changed}{grown}, created {} and removed {}{before}", self.line, self.new, self.removed)
    }
}

impl VolumeJob<'_> {
    /// `<host>/<path on the machine>`: the body file's name for a file.
    /// The host's folder name.
    fn host(&self) -> &str {
        self.out_root.get(1).map_or("", String::as_str)
    }

    fn body_name(&self, comps: &[String]) -> String {
        self.out_root[1..].iter().chain(comps).cloned().collect::<Vec<_>>().join("/")
    }
}

impl Run<'_> {
    fn warn(&self, w: String) {
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

    /// Plans and copies one host's files into `base` (`Host-Based
    /// Logs/<host>`), then each of its containers' into
    /// `base/containers/<folder>`.
    fn host(&self, evidence: &str, host: &Host, base: &[String]) {
        let homes: &[Vec<u8>] = host.volumes.iter().find(|v| v.is_os_root).map_or(&[], |v| &v.homes);
        let os_ctx = VolumeContext { os: host.os.family, is_os_root: true, homes };
        let other_ctx = VolumeContext { os: host.os.family, is_os_root: false, homes: &[] };
        // Where this machine's own configuration puts logs and histories.
        let (found, findings) = crate::targets::configured::configured(host);
        let host_folder = base.get(1).map(String::as_str).unwrap_or("");
        for f in findings {
            self.found(host_folder, f);
        }
        // Found first: the first target that takes a file names it in the
        // manifest, and "config:nginx" says more than a built-in glob.
        let targets: Vec<Target> = found.into_iter().chain(self.opts.targets.iter().cloned()).collect();
        let (os_targets, other_targets) = match (Matcher::new(&targets, &os_ctx), Matcher::new(&self.opts.targets, &other_ctx)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                self.warn(format!("targets: {e:#}"));
                return;
            }
        };
        let users = Arc::new(host_users(host));
        let mut plans: Vec<(VolumeJob, Vec<Planned>)> = Vec::new();
        for hv in &host.volumes {
            let Some(fs) = hv.fs.clone() else { continue };
            // The OS root (or a snapshot of it): the OS targets. A mounted
            // volume: the OS targets below its mount point, and the
            // data-volume sweep. Any other volume: the sweep.
            let mut lenses = Vec::new();
            if hv.reads_as_os_root() {
                lenses.push((&os_targets, os_targets.start()));
            } else {
                if let Some(m) = &hv.mount_point {
                    lenses.push((&os_targets, os_targets.start_below(m)));
                }
                lenses.push((&other_targets, other_targets.start()));
            }
            // A replayed volume is walked twice, the views side by side.
            let walk = |f: &dyn FileSystem| plan::walk(f, &lenses, &self.opts.limits);
            let (items, disk_items) = match fs.on_disk() {
                Some(disk) => {
                    let (a, b) = rayon::join(|| walk(&*fs), || walk(&*disk));
                    (a, Some(b))
                }
                None => (walk(&*fs), None),
            };
            let prefix = hv.out_prefix.iter().map(|c| outpath::component(c.as_bytes()));
            let out_root: Vec<String> = base.iter().cloned().chain(prefix.clone()).collect();
            let evidence = evidence.to_string();
            let replay = fs.replay();
            let live = shadow_of(host, hv);
            let (Some(disk), Some(disk_items)) = (fs.on_disk(), disk_items) else {
                // Nothing replayed: as on disk, said so if a replay was due.
                let view = if let Some(r) = &replay {
                    self.replays.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{evidence} {}: {}", hv.id(), r.message()));
                    replayed::VIEW_ON_DISK
                } else {
                    ""
                };
                let items = items.into_iter().map(|i| Planned { item: i, change: "", grown: None }).collect();
                plans.push((VolumeJob { evidence, hv, fs, view, out_root, before: None, tally: None, users: users.clone(), live }, items));
                continue;
            };
            let replayed::Compared { tags, grown, before } = replayed::compare(&*fs, &items, disk_items);
            let on_machine_root: Vec<String> = out_root[2..].to_vec();
            for (d, tag) in &before {
                let now = items.iter().find(|i| i.comps == d.comps).and_then(|i| i.meta.as_ref()).map(|m| m.size);
                let path = format!("/{}", on_machine_root.iter().cloned().chain(components(&d.comps)).collect::<Vec<_>>().join("/"));
                if let Some(f) = findings::login_records_cut(&path, now, d.meta.as_ref().map_or(0, |m| m.size), tag) {
                    self.found(base.get(1).map_or("", String::as_str), f);
                }
            }
            let before_root: Vec<String> = base.iter().cloned().chain([replayed::BEFORE_FOLDER.to_string()]).chain(prefix).collect();
            let tagged = |t: &str| tags.iter().filter(|&&x| x == t).count();
            let (changed, new) = (tagged(replayed::CHANGED), tagged(replayed::NEW));
            let removed = before.iter().filter(|(_, t)| *t == replayed::REMOVED).count();
            self.counters.journals_replayed.fetch_add(1, Relaxed);
            self.counters.journal_changed.fetch_add((changed + new + removed) as u64, Relaxed);
            let r = replay.map(|r| r.message()).unwrap_or_default();
            let tally = Tally {
                line: format!("{evidence} {}: {r}; of the files collected, the replay", hv.id()),
                changed,
                new,
                removed,
                appended: AtomicU64::new(0),
                same: AtomicU64::new(0),
                before: before_root[1..].join("/"),
            };
            let view = replayed::VIEW_REPLAYED;
            let twin_job = VolumeJob {
                evidence: evidence.clone(),
                hv,
                fs: disk.clone(),
                view: replayed::VIEW_BEFORE,
                out_root: before_root.clone(),
                before: None,
                tally: None,
                users: users.clone(),
                live: None,
            };
            let planned = items.into_iter().zip(tags).zip(grown).map(|((i, t), g)| Planned { item: i, change: t, grown: g }).collect();
            plans.push((
                VolumeJob {
                    evidence: evidence.clone(),
                    hv,
                    fs,
                    view,
                    out_root,
                    before: Some(Box::new(twin_job)),
                    tally: Some(tally),
                    users: users.clone(),
                    live: None,
                },
                planned,
            ));
            let view = replayed::VIEW_BEFORE;
            let before = before.into_iter().map(|(i, t)| Planned { item: i, change: t, grown: None }).collect();
            plans.push((
                VolumeJob {
                    evidence,
                    hv,
                    fs: disk,
                    view,
                    out_root: before_root,
                    before: None,
                    tally: None,
                    users: users.clone(),
                    live: None,
                },
                before,
            ));
        }
        let total: u64 = plans
            .iter()
            .flat_map(|(_, items)| items.iter().map(|p| &p.item))
            .filter(|i| i.kind == FileKind::File && i.skip.is_none())
            .filter_map(|i| i.meta.as_ref().map(|m| m.size))
            .sum();
        let bar = progress_bar(self.opts.quiet, total, "copying");
        // All volumes' files in one queue, largest first, one file per task:
        // a 2 GiB log on the data volume starts early instead of leaving a
        // core idle at the end (or while the OS volume's small files go).
        let mut queue: Vec<(&VolumeJob, &Planned)> = plans.iter().flat_map(|(job, items)| items.iter().map(move |p| (job, p))).collect();
        queue.sort_by_key(|(_, p)| std::cmp::Reverse(p.item.meta.as_ref().map_or(0, |m| m.size)));
        queue.par_iter().with_max_len(1).for_each(|&(job, p)| {
            let rows = contain(|| self.planned(job, p, &|n| bar.inc(n))).unwrap_or_else(|panic| {
                self.counters.errors.fetch_add(1, Relaxed);
                vec![Row {
                    evidence: job.evidence.clone(),
                    volume: job.hv.id(),
                    image_path: outpath::display_components(&p.item.comps),
                    view: job.view,
                    journal: p.change,
                    status: Status::Error,
                    reason: format!("snapsift failed on this file, the run went on (a bug: please report it): {panic}"),
                    ..Row::default()
                }]
            });
            for row in rows {
                if let Err(e) = self.manifest.write(&row) {
                    self.warn(format!("cannot write the manifest: {e}"));
                }
            }
        });
        bar.finish_and_clear();
        let empty = std::mem::take(&mut *self.empty_histories.lock().unwrap_or_else(|p| p.into_inner()));
        let logins = self.logins.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (h, path) in empty {
            if let Some(f) = logins.get(&h).and_then(|users| findings::empty_history(&path, users)) {
                self.found(&h, f);
            }
        }
        for t in plans.iter().filter_map(|(job, _)| job.tally.as_ref()) {
            self.replays.lock().unwrap_or_else(|p| p.into_inner()).push(t.message());
        }
        for c in &host.containers {
            let Some(child) = &c.host else { continue };
            let mut sub = base.to_vec();
            sub.extend(container_folder(&c.folder));
            self.host(evidence, child, &sub);
            for v in &child.volumes {
                for w in v.fs.as_ref().map(|f| f.warnings()).unwrap_or_default() {
                    self.warn(format!("{evidence} container {}: {w}", c.folder));
                }
            }
        }
    }

    /// One planned file's rows: its own, and for a file the replay grew,
    /// its on-disk version's (inside the replayed copy, or copied apart).
    fn planned(&self, job: &VolumeJob, p: &Planned, progress: &dyn Fn(u64)) -> Vec<Row> {
        let (Some(disk), Some(twin_job)) = (&p.grown, &job.before) else {
            return vec![Row { journal: p.change, ..self.item(job, &p.item, None, progress).0 }];
        };
        let size = disk.meta.as_ref().map_or(0, |m| m.size);
        let check = twin_job.fs.open(disk.node).ok().map(|r| copy::Prefix::new(r, size));
        let (mut row, kept) = self.item(job, &p.item, check, progress);
        let Some(h) = kept else {
            row.journal = replayed::CHANGED;
            let (twin, _) = self.item(twin_job, disk, None, progress);
            return vec![row, Row { journal: replayed::CHANGED, ..twin }];
        };
        if p.item.meta.as_ref().is_some_and(|m| m.size == size) {
            // Touched by the replay, same bytes (a block rewritten as it was).
            row.journal = replayed::UNCHANGED;
            self.counters.journal_changed.fetch_sub(1, Relaxed);
            if let Some(t) = &job.tally {
                t.same.fetch_add(1, Relaxed);
            }
            return vec![row];
        }
        row.journal = replayed::APPENDED;
        if let Some(t) = &job.tally {
            t.appended.fetch_add(1, Relaxed);
        }
        let mut twin = self.row(twin_job, disk);
        twin.journal = replayed::APPENDED;
        twin.status = Status::Prefix;
        twin.output_path = row.output_path.clone();
        twin.sha256 = h.sha256;
        twin.md5 = h.md5.unwrap_or_default();
        twin.reason = format!("as it lies on disk: the first {size} bytes of {} (the replay appended the rest)", row.output_path);
        vec![row, twin]
    }

    /// A file's row before anything is done with it.
    fn row(&self, job: &VolumeJob, it: &plan::Item) -> Row {
        let fs = &*job.fs;
        let ts = |t: Option<Timestamp>| t.map(|t| t.iso8601()).unwrap_or_default();
        let mut row = Row {
            evidence: job.evidence.clone(),
            volume: job.hv.id(),
            filesystem: fs.kind().to_string(),
            layer: fs.provenance(it.node).unwrap_or_default(),
            compression: fs.compression(it.node).unwrap_or_default(),
            view: job.view,
            inode: it.node.to_string(),
            target: it.target.clone(),
            image_path: outpath::display_components(&it.comps),
            kind: format!("{:?}", it.kind).to_lowercase(),
            status: Status::Ok,
            ..Row::default()
        };
        if let Some(m) = &it.meta {
            row.size = m.size.to_string();
            row.mtime = ts(m.mtime);
            row.atime = ts(m.atime);
            row.ctime = ts(m.ctime);
            row.btime = ts(m.btime);
        }
        row
    }

    /// Copies one file (comparing its first bytes with `check`, if given):
    /// its row, and the hashes of the compared bytes when they matched.
    fn item(&self, job: &VolumeJob, it: &plan::Item, check: Option<copy::Prefix>, progress: &dyn Fn(u64)) -> (Row, Option<copy::Hashes>) {
        let c = &self.counters;
        let fs = &*job.fs;
        let mut row = self.row(job, it);
        if let Some(e) = &it.error {
            c.errors.fetch_add(1, Relaxed);
            row.status = Status::Error;
            row.reason = e.clone();
            return (row, None);
        }
        if let Some(s) = &it.skip {
            c.skipped.fetch_add(1, Relaxed);
            row.status = Status::Skipped;
            row.reason = s.clone();
            return (row, None);
        }
        if it.kind == FileKind::Symlink {
            // Recorded, never created: a link in the case folder could point
            // anywhere on the analysis host.
            c.symlinks.fetch_add(1, Relaxed);
            row.status = Status::Symlink;
            match fs.read_link(it.node) {
                Ok(t) => {
                    row.reason = format!("-> {}", outpath::display(&t));
                    let path = job.body_name(&components(&it.comps));
                    if let Some(f) = findings::history_link(&on_machine(&path), &t) {
                        self.found(job.host(), f);
                    }
                }
                Err(e) => row.reason = format!("link target unreadable: {e}"),
            }
            if let Some(m) = &it.meta {
                let name = format!("{} -> {}", job.body_name(&components(&it.comps)), row.reason.trim_start_matches("-> "));
                self.body_line(&name, it, m, "");
            }
            return (row, None);
        }
        let comps = components(&it.comps);
        let Some((name, parents)) = comps.split_last() else {
            c.errors.fetch_add(1, Relaxed);
            row.status = Status::Error;
            row.reason = "empty path".into();
            return (row, None);
        };
        let mut dir_comps = job.out_root.clone();
        dir_comps.extend(parents.iter().cloned());
        let meta = it.meta.as_ref().expect("planned files have metadata");
        if let Some(live) = &job.live
            && let Some(h) = self.same_as_live(&**live, fs, it, meta)
        {
            progress(meta.size);
            c.identical.fetch_add(1, Relaxed);
            row.status = Status::Identical;
            row.sha256 = h.sha256;
            row.md5 = h.md5.unwrap_or_default();
            row.reason = "identical to the live volume's file at the same path: not written again".into();
            self.body_line(&job.body_name(&comps), it, meta, &row.md5);
            return (row, None);
        }
        let reserved = meta.size.min(self.opts.max_file_size);
        if !self.budget.reserve(reserved) {
            self.left_out(&mut row);
            return (row, None);
        }
        let mut lines = findings::is_text_log(name).then(|| textlog::LineHours::new(meta.mtime.map(|t| t.secs)));
        let result = self.dirs.ensure(&self.opts.case_dir, &dir_comps).and_then(|dir| {
            let done = copy::copy_checking(fs.open(it.node)?, meta, &dir, name, self.copy_options(), progress, check, lines.as_mut())?;
            self.streams(job, it, &row, meta, &dir, name);
            Ok(done)
        });
        self.budget.release(reserved.saturating_sub(result.as_ref().map_or(0, |d| d.bytes)));
        let mut kept = None;
        match result {
            Ok(mut done) => {
                kept = done.prefix.take();
                let complete = self.copied(&mut row, &done);
                self.body_line(&job.body_name(&comps), it, meta, &row.md5);
                if self.opts.evtx_json && name.to_ascii_lowercase().ends_with(".evtx") {
                    self.evtx_to_json(job, &row, &done.path);
                }
                if let Some(f) = logjson::Format::of(name).filter(|f| self.converts(*f)) {
                    self.log_to_json(job, &row, &done.path, f);
                }
                if self.opts.decompress && decompress::plain_name(name).is_some() {
                    self.decompress(job, &row, &done.path, name);
                }
                let path = on_machine(&job.body_name(&comps));
                if findings::is_history(name) && meta.size == 0 {
                    self.empty_histories.lock().unwrap_or_else(|p| p.into_inner()).push((job.host().to_string(), path));
                } else if let Some(l) = &lines {
                    for f in findings::text_log(&path, l, &row.mtime) {
                        self.found(job.host(), f);
                    }
                }
                c.bytes.fetch_add(done.bytes, Relaxed);
                if complete {
                    c.files.fetch_add(1, Relaxed);
                    row.reason = it.note.clone().unwrap_or_default();
                }
            }
            Err(e) => {
                c.errors.fetch_add(1, Relaxed);
                row.status = Status::Error;
                row.reason = e.to_string();
            }
        }
        (row, kept)
    }
}

impl Run<'_> {
    /// The hashes of a shadow copy's file when the live volume has the
    /// same bytes at the same path.
    fn same_as_live(
        &self,
        live: &dyn FileSystem,
        fs: &dyn FileSystem,
        it: &plan::Item,
        meta: &crate::fs::Metadata,
    ) -> Option<copy::Hashes> {
        let path: Vec<u8> = it.comps.iter().flat_map(|c| std::iter::once(b'/').chain(c.iter().copied())).collect();
        let node = crate::fs::lookup(live, &path).ok()??;
        if live.metadata(node).ok()?.size != meta.size {
            return None;
        }
        copy::identical(fs.open(it.node).ok()?, live.open(node).ok()?, self.opts.md5, &|_| {}).ok()?
    }
}

/// The live volume's filesystem, when `hv` is a shadow copy of it.
fn shadow_of(host: &Host, hv: &HostVolume) -> Option<Arc<dyn FileSystem>> {
    let v = hv.volume.as_ref().filter(|v| v.shadow.is_some())?;
    let of = v.snapshot_of.as_deref()?;
    host.volumes.iter().find(|o| o.volume.as_ref().is_some_and(|x| x.shadow.is_none() && x.id() == of))?.fs.clone()
}

/// UID → name from the host's `/etc/passwd` (on its OS root), if readable.
fn host_users(host: &Host) -> HashMap<u32, String> {
    let Some(fs) = host.volumes.iter().find(|v| v.is_os_root).and_then(|v| v.fs.as_deref()) else { return HashMap::new() };
    match crate::fs::lookup(fs, b"/etc/passwd") {
        Ok(Some(node)) => crate::fs::read_small(fs, node, 16 << 20).map(|t| crate::convert::lastlog::passwd_users(&t)).unwrap_or_default(),
        _ => HashMap::new(),
    }
}

/// A file's names from the evidence as safe output components.
fn components(comps: &[Vec<u8>]) -> Vec<String> {
    comps.iter().map(|c| outpath::component(c)).collect()
}

impl Run<'_> {
    fn copy_options(&self) -> copy::CopyOptions {
        copy::CopyOptions { md5: self.opts.md5, max_size: self.opts.max_file_size }
    }

    /// A path in the case folder as the manifest gives it (relative).
    fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.opts.case_dir).unwrap_or(p).to_string_lossy().into_owned()
    }

    /// Fills a row from a finished copy; false if the copy is not the whole
    /// file (then the row says `partial` or `truncated`, and why).
    fn copied(&self, row: &mut Row, done: &copy::Copied) -> bool {
        row.output_path = self.rel(&done.path);
        row.sha256 = done.sha256.clone();
        row.md5 = done.md5.clone().unwrap_or_default();
        let (status, reason, counter) = match (&done.partial, &done.truncated) {
            (Some(p), _) => (Status::Partial, p, &self.counters.partial),
            (None, Some(t)) => (Status::Truncated, t, &self.counters.truncated),
            (None, None) => return true,
        };
        counter.fetch_add(1, Relaxed);
        row.status = status;
        row.reason = reason.clone();
        false
    }

    /// A row for a copy not started because `--max-output` was reached.
    fn left_out(&self, row: &mut Row) {
        self.counters.over_max_output.fetch_add(1, Relaxed);
        row.status = Status::Skipped;
        row.reason = "--max-output reached".into();
        row.output_path.clear();
        row.sha256.clear();
    }

    /// A derived file (`.jsonl`, plain copy) is not started once
    /// `--max-output` is reached.
    fn over_budget(&self, row: &mut Row) -> bool {
        if !self.budget.reached() {
            return false;
        }
        self.left_out(row);
        if let Err(e) = self.manifest.write(row) {
            self.warn(format!("cannot write the manifest: {e}"));
        }
        true
    }

    /// A derived file (`.jsonl`, plain copy) just written, whose size is
    /// known only now: kept if it fits in `--max-output`, else removed and
    /// its row says so, so the case never holds more than the cap.
    fn kept_within_budget(&self, row: &mut Row, written: &Path, bytes: u64) -> bool {
        if self.budget.reserve(bytes) {
            return true;
        }
        let _ = std::fs::remove_file(written);
        self.left_out(row);
        false
    }

    /// Lists a file's named streams (NTFS ADS) in the manifest, and with
    /// `--ads` extracts each beside it as `name:stream`.
    fn streams(&self, job: &VolumeJob, it: &plan::Item, file_row: &Row, meta: &crate::fs::Metadata, dir: &Path, name: &str) {
        let fs = job.hv.fs.as_deref().expect("planned volumes have a filesystem");
        let Ok(streams) = fs.streams(it.node) else { return };
        for (sname, size) in streams {
            let stream = String::from_utf8_lossy(&sname).into_owned();
            let mut row = Row {
                kind: "ads".into(),
                // The column describes the file's content (for a WOF file,
                // its WofCompressedData stream is this raw form).
                compression: "",
                image_path: format!("{}:{}", file_row.image_path, outpath::display(&sname)),
                size: size.to_string(),
                sha256: String::new(),
                md5: String::new(),
                output_path: String::new(),
                ..file_row.clone()
            };
            let reserved = size.min(self.opts.max_file_size);
            if !self.opts.ads {
                row.status = Status::Skipped;
                row.reason = format!("alternate data stream of {size} bytes; extract with --ads");
            } else if !self.budget.reserve(reserved) {
                self.left_out(&mut row);
            } else {
                let smeta = crate::fs::Metadata { size, ..meta.clone() };
                let out_name = outpath::component(format!("{name}:{stream}").as_bytes());
                let copied =
                    fs.open_stream(it.node, &sname).and_then(|r| copy::copy_file(r, &smeta, dir, &out_name, self.copy_options(), &|_| {}));
                self.budget.release(reserved.saturating_sub(copied.as_ref().map_or(0, |d| d.bytes)));
                match copied {
                    Ok(done) => {
                        row.status = Status::Ok;
                        row.reason = "alternate data stream".into();
                        self.copied(&mut row, &done);
                    }
                    Err(e) => {
                        row.status = Status::Error;
                        row.reason = format!("alternate data stream unreadable: {e}");
                        self.counters.errors.fetch_add(1, Relaxed);
                    }
                }
            }
            if let Err(e) = self.manifest.write(&row) {
                self.warn(format!("cannot write the manifest: {e}"));
            }
        }
    }

    fn converts(&self, f: logjson::Format) -> bool {
        use logjson::Format::*;
        match f {
            Journal => self.opts.journal_json,
            Utmp | Lastlog | WtmpDb | Lastlog2 => self.opts.login_json,
            Audit => self.opts.audit_json,
        }
    }

    /// Converts an extracted binary log (journal, login records, audit log)
    /// and records its `.jsonl` twin in the manifest.
    fn log_to_json(&self, job: &VolumeJob, log_row: &Row, log_path: &Path, format: logjson::Format) {
        let mut row =
            Row { kind: "jsonl".into(), target: format.target().into(), status: Status::Ok, md5: String::new(), ..log_row.clone() };
        if self.over_budget(&mut row) {
            return;
        }
        let host = job.out_root.get(1).map(String::as_str).unwrap_or("");
        let ctx = crate::convert::Context { host, source_path: &log_row.image_path };
        let twin = contain(|| logjson::write_twin(log_path, format, &ctx, &job.users))
            .unwrap_or_else(|panic| Err(std::io::Error::other(format!("the converter failed on it (a bug: please report it): {panic}"))));
        match twin {
            Ok(t) => {
                if self.kept_within_budget(&mut row, &t.path, t.bytes) {
                    row.output_path = self.rel(&t.path);
                    row.size = t.bytes.to_string();
                    row.sha256 = t.sha256;
                    row.reason = logjson::reason(format, &t.converted, &log_row.output_path);
                    self.saw(host, &t.converted.hours);
                    if !t.converted.users.is_empty() {
                        self.logins
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(host.to_string())
                            .or_default()
                            .extend(t.converted.users.iter().cloned());
                    }
                    let path = output_on_machine(&log_row.output_path);
                    let size = log_row.size.parse().unwrap_or(0);
                    let appended = matches!(format, logjson::Format::Utmp | logjson::Format::Audit);
                    let found = [
                        findings::login_records(format, &path, size, t.converted.entries, t.converted.blank),
                        findings::gap(&path, &t.converted.hours),
                        appended.then(|| findings::mtime_before_last_entry(&path, &log_row.mtime, t.converted.last.as_deref())).flatten(),
                    ];
                    found.into_iter().flatten().for_each(|f| self.found(host, f));
                }
            }
            Err(e) => {
                row.status = Status::Skipped;
                row.output_path = String::new();
                row.sha256 = String::new();
                row.reason = format!("not converted to JSON lines: {e}");
            }
        }
        if let Err(e) = self.manifest.write(&row) {
            self.warn(format!("cannot write the manifest: {e}"));
        }
    }

    /// Converts an extracted `.evtx` and records the `.jsonl` in the manifest.
    fn evtx_to_json(&self, job: &VolumeJob, evtx_row: &Row, evtx_path: &Path) {
        let host = job.out_root.get(1).map(String::as_str).unwrap_or("");
        let mut row = Row { kind: "jsonl".into(), target: "evtx-json".into(), status: Status::Ok, ..evtx_row.clone() };
        if self.over_budget(&mut row) {
            return;
        }
        let converted = contain(|| evtxjson::convert(evtx_path, host, &evtx_row.image_path, true))
            .unwrap_or_else(|panic| Err(std::io::Error::other(format!("the evtx crate failed on it: {panic}"))));
        match converted {
            Ok(c) => {
                let bytes = std::fs::metadata(&c.path).map_or(0, |m| m.len());
                if self.kept_within_budget(&mut row, &c.path, bytes) {
                    row.output_path = self.rel(&c.path);
                    row.sha256 = c.sha256;
                    row.md5 = String::new();
                    row.reason = format!("{} events converted from {}", c.records, evtx_row.output_path);
                    self.saw(host, &c.hours);
                    let path = output_on_machine(&evtx_row.output_path);
                    for n in &c.notable {
                        if let Some(f) = findings::event(n.event_id, &n.channel, &path, n.record, n.time.clone()) {
                            self.found(host, f);
                        }
                    }
                    if let Some(f) = findings::gap(&path, &c.hours) {
                        self.found(host, f);
                    }
                    if c.recovered > 0 {
                        row.reason += &format!(" ({} of them carved from unallocated space: \"recovered\":true)", c.recovered);
                    }
                    if let (Some(f), Some(l)) = (&c.first, &c.last) {
                        row.reason += &format!("; events from {f} to {l}");
                    }
                    if c.failed > 0 {
                        row.reason += &format!("; {} records could not be parsed (damaged chunks)", c.failed);
                    }
                }
            }
            Err(e) => {
                row.status = Status::Skipped;
                row.reason = format!("EVTX not converted to JSON: {e}");
            }
        }
        if let Err(e) = self.manifest.write(&row) {
            self.warn(format!("cannot write the manifest: {e}"));
        }
    }

    /// Writes and records the plain copy of a compressed log.
    fn decompress(&self, job: &VolumeJob, packed_row: &Row, packed: &Path, name: &str) {
        let mut row = Row { kind: "decompressed".into(), status: Status::Ok, md5: String::new(), ..packed_row.clone() };
        if self.over_budget(&mut row) {
            return;
        }
        let outcome = contain(|| decompress::decompress(packed, name))
            .unwrap_or_else(|panic| Err(std::io::Error::other(format!("the decompressor failed on it: {panic}"))));
        match outcome {
            Ok(decompress::Outcome::Written { path, bytes, sha256 }) => {
                if self.kept_within_budget(&mut row, &path, bytes) {
                    row.output_path = self.rel(&path);
                    row.size = bytes.to_string();
                    row.sha256 = sha256;
                    row.reason = format!("decompressed from {}", packed_row.output_path);
                    // A rotated binary log (`wtmp.1.gz`) is converted from its plain copy.
                    if let Some(f) = decompress::plain_name(name).and_then(logjson::Format::of).filter(|f| self.converts(*f)) {
                        let plain = Row { output_path: row.output_path.clone(), ..packed_row.clone() };
                        self.log_to_json(job, &plain, &path, f);
                    }
                }
            }
            Ok(decompress::Outcome::Refused(why)) => {
                row.status = Status::Skipped;
                row.output_path = String::new();
                row.sha256 = String::new();
                row.reason = why;
            }
            Err(e) => {
                row.status = Status::Skipped;
                row.output_path = String::new();
                row.sha256 = String::new();
                row.reason = format!("not decompressed: {e}");
            }
        }
        if let Err(e) = self.manifest.write(&row) {
            self.warn(format!("cannot write the manifest: {e}"));
        }
    }

    fn body_line(&self, name: &str, it: &plan::Item, m: &crate::fs::Metadata, md5: &str) {
        if let Err(e) = self.body.add(name, it.node, it.kind, m, md5) {
            self.warn(format!("cannot write the body file: {e}"));
        }
    }
}

fn describe(l: &Loaded, case: &Path) -> serde_json::Value {
    let host_dir = Path::new(HOSTS_FOLDER).join(outpath::component(l.host.name.as_bytes()));
    let vols: Vec<_> = l
        .host
        .volumes
        .iter()
        .map(|v| {
            let out = v.out_prefix.iter().fold(host_dir.clone(), |p, c| p.join(outpath::component(c.as_bytes())));
            serde_json::json!({
                "id": v.id(),
                "offset": v.volume.as_ref().map(|x| x.offset),
                "size": v.volume.as_ref().map(|x| x.size),
                "partition_type": v.volume.as_ref().map(|x| x.kind.clone()),
                "partition_name": v.volume.as_ref().and_then(|x| x.name.clone()),
                "partition_guid": v.volume.as_ref().and_then(|x| x.guid.clone()),
                "filesystem": v.fs.as_ref().map(|f| f.kind()),
                "label": v.fs.as_ref().and_then(|f| f.label()),
                "uuid": v.fs.as_ref().and_then(|f| f.uuid()),
                "os_root": v.is_os_root,
                "mount_point": v.mount_point,
                "lv": v.volume.as_ref().and_then(|x| x.lv.clone()),
                "snapshot_of": v.volume.as_ref().and_then(|x| x.snapshot_of.clone()),
                "shadow_copy": v.volume.as_ref().and_then(|x| x.shadow.as_ref()).map(|s| serde_json::json!({
                    "number": s.number,
                    "created": s.created.iso8601(),
                    "store_id": s.store_id,
                    "copy_id": s.copy_id,
                })),
                "output_folder": v.fs.as_ref().map(|_| out),
                "problem": v.problem,
                "journal": v.fs.as_ref().and_then(|f| f.replay()).map(|r| {
                    let mut j = serde_json::json!(r);
                    j["message"] = r.message().into();
                    j
                }),
            })
        })
        .collect();
    let _ = case;
    serde_json::json!({
        "path": l.path,
        "files": l.files,
        "format": l.format,
        "size": l.size,
        "partitioning": l.scheme,
        "sector_size": l.sector_size,
        "notes": l.notes,
        "folded": l.folded,
        "lvm_members_only": l.lvm_members_only,
        "host": l.host.name,
        "hostname_source": l.host.name_source,
        "os": l.host.os,
        "volumes": vols,
        "containers": l.host.containers.iter().map(|c| serde_json::json!({
            "folder": container_folder(&c.folder).iter().fold(host_dir.clone(), |p, c| p.join(c)),
            "info": c.info,
            "problems": c.problems,
        })).collect::<Vec<_>>(),
        "warnings": l.host.warnings,
    })
}

/// A container's output folder under its host's: `containers/<folder>`,
/// each `/`-separated part of the folder (`_layers/3`) a component.
fn container_folder(folder: &str) -> Vec<String> {
    std::iter::once("containers".to_string()).chain(folder.split('/').map(|p| outpath::component(p.as_bytes()))).collect()
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
