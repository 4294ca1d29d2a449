use anyhow::Result;
use clap::{Parser, Subcommand};
use snapsift::collect::{self, HOSTS_FOLDER};
use snapsift::inspect::human;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Extract logs and shell histories from cloud VM disk snapshots, offline.
///
/// snapsift opens disk images without mounting them and without root —
/// raw/dd and split raw, VMDK (incl. AWS streamOptimized exports), VHD, VHDX,
/// QCOW2, E01, GCP `.tar.gz` exports; MBR, GPT and LVM2; ext2/3/4, XFS, NTFS
/// and FAT — finds the machine's hostname and where it mounted each volume,
/// and copies the artifacts a responder needs into a "grep folder":
///
///   <CASE_DIR>/Host-Based Logs/<hostname>/<path as on the machine>
///
/// so that `grep -r`, `zgrep` or `rg -z` show the host and the original path
/// next to every hit, and a SIEM can ingest the folder as it is. Evidence is
/// opened read-only; nothing is ever overwritten; every file is hashed
/// (SHA-256) while copied and listed in a manifest with its timestamps.
#[derive(Parser)]
#[command(name = "snapsift", version, about, long_about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The AWS region of ebs:// snapshots (else AWS_REGION or the profile's).
    #[arg(long, global = true, value_name = "REGION")]
    region: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Copy logs and histories out of one or more disk images into a case folder.
    ///
    /// Each evidence file is a machine: all partitions of one disk belong to
    /// one host (an LVM volume group may span the disks given together),
    /// named from /etc/hostname (or /etc/HOSTNAME, /etc/sysconfig/network) or
    /// the Windows registry, else the image file's name. Volumes land where
    /// the machine mounted them (fstab; drive letters C/, E/ on Windows);
    /// unmounted ones under `_volumes/<partition>_<label>/`. Every volume but
    /// the OS one is also swept for application logs (*.log, log/, logs/).
    ///
    /// A file that would land on an existing one (the same host extracted
    /// twice, two hosts with one name) is written as `name__2.ext`; the
    /// manifest says which file came from where.
    ///
    /// Exit status: 0 all extracted; 1 finished, but some files could not be
    /// read or were cut short by a limit (see the manifest's `status`
    /// column); 2 some evidence could not be opened, or the command line is
    /// wrong.
    ///
    /// Many processes may extract into one case folder at once, on one
    /// machine or several sharing it over NFS (EFS, Filestore, Azure
    /// Files NFS): each takes its file names exclusively and keeps its own
    /// run-*/ folder; the case-level report, body file and manifest are
    /// rebuilt from the finished runs under a lock. With --jobs-file, each
    /// process extracts one job of a list (see --jobs-file).
    Extract(Box<ExtractArgs>),
    /// Show what an image holds: container format, partitions, filesystems,
    /// OS and hostname, and where each volume would be extracted.
    Inspect {
        #[arg(required = true, value_name = "EVIDENCE")]
        evidence: Vec<PathBuf>,
        /// Show volumes as they lie on disk, without replaying a dirty
        /// journal or log.
        #[arg(long)]
        no_replay: bool,
        /// Do not look for Volume Shadow Copy stores on NTFS volumes.
        #[arg(long)]
        no_vss: bool,
    },
    /// Print a CSV timeline of a case folder (from its body file, which every
    /// `extract` run appends to): one row per distinct time of each file,
    /// sorted, with `macb` flags (modified, accessed, changed, born), times
    /// in UTC. For plaso/mactime, use CASE_DIR/snapsift/bodyfile.txt itself.
    Timeline {
        #[arg(value_name = "CASE_DIR")]
        case: PathBuf,
        /// Only events at or after this time (`2024-05-01` or `2024-05-01T12:00:00Z`).
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// Only events at or before this time.
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
    },
    /// Rebuild a case's report, body file and case manifest from its run
    /// folders, and with --verify check every extracted file.
    ///
    /// Writes CASE_DIR/snapsift/report.html, bodyfile.txt (every finished
    /// run's lines), manifest.csv (every finished run's rows, after a `run`
    /// column) and case.json (which runs are in them). A run folder without
    /// a run.json is still running or was stopped: it is named, not read.
    /// Use it on a case assembled by many jobs, or copied between machines.
    ///
    /// Exit status: 0 rebuilt (and, with --verify, every file matches); 1
    /// --verify found a file missing or different from its manifest's
    /// SHA-256; 2 not a case folder, or the files could not be written.
    Report {
        /// The case folder (what `extract -o` wrote to).
        #[arg(value_name = "CASE_DIR")]
        case: PathBuf,
        /// Also re-read every file the manifests list and compare its
        /// SHA-256 with the manifest's (the first `size` bytes of a
        /// `prefix` row); files under `Host-Based Logs/` that no finished
        /// run lists are named too (a run still going or stopped, a copy
        /// that failed midway, a file added by hand), without failing.
        #[arg(long)]
        verify: bool,
    },
    /// List the targets (what is collected) and their path globs: the
    /// built-in ones, and those of any --targets-file.
    Targets {
        #[arg(long, value_name = "FILE")]
        targets_file: Vec<PathBuf>,
        #[arg(long, value_name = "FILE_OR_DIR")]
        artifacts_yaml: Vec<PathBuf>,
    },
}

/// Which evidence `--hash-evidence` hashes.
#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum HashEvidence {
    /// Evidence files; refused for a location read in place.
    Local,
    /// Locations read in place too: their whole disk is downloaded once.
    All,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum ProgressArg {
    Bar,
    Json,
    None,
}

/// `snapsift extract`'s arguments (the help text is the subcommand's).
#[derive(clap::Args)]
struct ExtractArgs {
    /// Disk images (raw/dd, split raw `.001` or `xaa`, VMDK, VHD, VHDX,
    /// QCOW2, E01, `.gz`, GCP `.tar.gz`) or directories holding an
    /// already-extracted root. Give all the disks of one machine together.
    /// An image may also be an https:// link read in place, fetching only
    /// the blocks needed (an Azure disk export link, a presigned S3 URL, a
    /// signed GCS URL; quote it for the shell): its signature is never
    /// written anywhere. An EBS snapshot is read the same way, given as
    /// ebs://snap-… (a build with the `aws` feature; see --region).
    #[arg(required_unless_present = "jobs_file", conflicts_with = "jobs_file", value_name = "EVIDENCE")]
    evidence: Vec<PathBuf>,
    /// Extract one job of this list (instead of EVIDENCE): the job at
    /// --index, or at $JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs), or
    /// at $AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch array jobs). One job (one
    /// machine) per line: its evidence files separated by spaces or tabs
    /// (all the disks of one machine on one line; a path with spaces in
    /// "double quotes"), optionally `host=NAME` to name the host; `#`
    /// starts a comment; blank lines are skipped; relative paths are from
    /// the list's folder. Indexes count job lines from 0. The line
    /// `/evidence/db01-root.vmdk /evidence/db01-data.vmdk host=db01` is one
    /// job: a machine of two disks, named db01.
    ///
    /// A job is done once per case: started again (the same index twice, a
    /// retried pod) it waits for a run still going, then says it is done
    /// and exits with that run's status. If its run was killed, the
    /// files that run made are removed and the job is run again, so the
    /// case ends as if it had run once. State: CASE_DIR/snapsift/jobs/.
    /// An index past the end or a malformed line is an error (exit 2).
    #[arg(long, value_name = "LIST")]
    jobs_file: Option<PathBuf>,
    /// The job of --jobs-file to run (from 0; default: the environment's
    /// JOB_COMPLETION_INDEX, then AWS_BATCH_JOB_ARRAY_INDEX).
    #[arg(long, value_name = "N", requires = "jobs_file")]
    index: Option<usize>,
    /// Case folder to write into (created if missing; shared by many runs).
    #[arg(short, long, value_name = "CASE_DIR")]
    output: PathBuf,
    /// Copy with this many threads (default: one per CPU, and at least 8
    /// when evidence is read in place, whose reads wait on the network).
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,
    /// No progress bar and no summary.
    #[arg(short, long)]
    quiet: bool,
    /// How progress is shown on stderr: `bar` (the default: a progress bar
    /// and a summary when stderr is a terminal, the summary alone when it
    /// is not, as in a job's log), `json` (one JSON object per line, for
    /// CloudWatch, Kubernetes logs or any parser: `started`, `volume` for
    /// each volume opened, `progress` every --progress-interval with
    /// bytes and files done, rate and estimate, `warning`, `job`, and
    /// `finished` with the summary and the exit status; nothing else is
    /// printed), or `none` (the summary alone).
    #[arg(long, value_name = "MODE", value_enum, default_value_t = ProgressArg::Bar)]
    progress: ProgressArg,
    /// Seconds between `progress` events with --progress json.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    progress_interval: f64,
    /// Use this hostname instead of the one found in the image (with
    /// --jobs-file: `host=NAME` on the job's line).
    #[arg(long, value_name = "NAME", conflicts_with = "jobs_file")]
    host: Option<String>,
    /// Also compute MD5 of every file (SHA-256 is always computed).
    #[arg(long)]
    md5: bool,
    /// Where compressed images (.gz, .tar.gz) are inflated (default: CASE_DIR).
    /// Needs as much free space as the uncompressed disk's used data.
    #[arg(long, value_name = "DIR")]
    temp_dir: Option<PathBuf>,
    /// Add targets from a TOML file in the built-in format (see
    /// `snapsift targets` and src/targets/builtin.toml): name,
    /// description, os, scope, paths (globs, `**`, %%users.homedir%%),
    /// exclude, case_insensitive, max_size. Repeatable.
    #[arg(long, value_name = "FILE")]
    targets_file: Vec<PathBuf>,
    /// Load ForensicArtifacts definitions (the YAML of plaso and GRR) from
    /// a file or a folder of them; name the artifacts to collect with
    /// --target (e.g. --target WindowsEventLogs). Repeatable.
    #[arg(long, value_name = "FILE_OR_DIR")]
    artifacts_yaml: Vec<PathBuf>,
    /// Collect only these targets (repeatable; optional ones included).
    #[arg(long = "target", value_name = "NAME")]
    only: Vec<String>,
    /// Leave these targets out (repeatable).
    #[arg(long = "exclude-target", value_name = "NAME")]
    exclude: Vec<String>,
    /// Do not write `X.evtx.jsonl` (one JSON event per line, greppable and
    /// ready for Timesketch/Elastic) beside each extracted `X.evtx`.
    #[arg(long)]
    no_evtx_json: bool,
    /// Do not write `X.journal.jsonl` beside each systemd journal file
    /// (every entry as `journalctl -o json --all` renders it, with the
    /// host, the path and the Timesketch fields).
    #[arg(long)]
    no_journal_json: bool,
    /// Do not write `X.jsonl` beside login records (wtmp, btmp, utmp,
    /// lastlog, wtmpdb's wtmp.db, lastlog2.db).
    #[arg(long)]
    no_login_json: bool,
    /// Do not write `audit.log.jsonl` (events grouped, hex values decoded
    /// as `ausearch -i` does) beside each audit log.
    #[arg(long)]
    no_audit_json: bool,
    /// Also write a plain copy beside each compressed log (auth.log.2.gz →
    /// auth.log.2; .gz, .xz, .zst, .bz2), so plain grep sees the text. The
    /// original is kept; an archive inflating past 100× its size (at least
    /// 64 MiB, at most 4 GiB) is stopped and reported.
    #[arg(long)]
    decompress: bool,
    /// Also extract NTFS alternate data streams (always listed in the
    /// manifest), beside their file as `name:stream` — e.g. the
    /// `Zone.Identifier` that records where a download came from.
    #[arg(long)]
    ads: bool,
    /// Also sweep the OS volume for application logs (*.log, log/ and
    /// logs/ folders) outside /var/log, e.g. under /opt, /srv, /home or
    /// C:\inetpub. Pseudo filesystems, package caches and /usr are left out.
    #[arg(long)]
    sweep_os: bool,
    /// Copy at most SIZE bytes of any one file (suffixes K, M, G, T; 0 for
    /// no limit). A larger file is copied up to SIZE, marked `truncated` in
    /// the manifest, and the exit status is 1. The default, 32G, is far
    /// above any real log, and stops a forged or pathological sparse
    /// file (a lastlog of 1 TiB, an 8 EiB XFS file) from costing hours
    /// of hashing zeros.
    #[arg(long, value_name = "SIZE", default_value = "32G", value_parser = parse_size)]
    max_file_size: u64,
    /// Start no more copies once SIZE bytes have been written (suffixes K,
    /// M, G, T), so a run ends cleanly instead of on a full disk: files not
    /// copied are listed as `skipped` with reason `--max-output reached`,
    /// and the exit status is 1. Default: no limit.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_output: Option<u64>,
    /// Enter directories at most this deep (a forged directory loop or
    /// nesting is reported in the manifest, not followed).
    #[arg(long, value_name = "N", default_value_t = 128)]
    max_depth: usize,
    /// Examine at most this many entries of one directory (the rest are
    /// reported in the manifest).
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    max_dir_entries: usize,
    /// Also record the SHA-256 of every evidence file (segments, extents
    /// and parents too) in run.json, read by a thread of its own while the
    /// extraction runs. Refused for a location read in place (ebs://,
    /// s3://, gs://, https://), where it means downloading the whole disk;
    /// `--hash-evidence=all` does that too, once, beside the extraction.
    #[arg(long, value_enum, value_name = "WHICH", num_args = 0..=1, require_equals = true, default_missing_value = "local")]
    hash_evidence: Option<HashEvidence>,
    /// Read every volume as it lies on disk. By default a dirty ext3/ext4
    /// journal or XFS log (a snapshot of a running machine) is replayed
    /// in memory, never into the evidence, so the grep folder shows what
    /// the machine had; the on-disk versions of the files the replay
    /// changed go to `<host>/_before-journal/`.
    #[arg(long)]
    no_replay: bool,
    /// Leave out Volume Shadow Copies. By default each shadow copy store of
    /// an NTFS volume (System Restore, scheduled copies of a file server,
    /// backup agents) is read as the volume was when the copy was made:
    /// its files go to `<host>/_vss/<N>-<creation time>/C/…` (a cleared
    /// Security.evtx is often still whole there); a file identical to the
    /// live volume's is listed in the manifest but not written again.
    #[arg(long)]
    no_vss: bool,
    /// Let the owner's group read the case (directories 0750, files
    /// 0640), for a team folder or workers sharing one case. By default
    /// only the owner can (0700 and 0600, whatever the umask): the case
    /// holds every user's shell history, where typed passwords and
    /// tokens end up.
    #[arg(long)]
    group_readable: bool,
}

impl ExtractArgs {
    /// The collect layer's options: the switches turned into what they mean.
    fn options(&self) -> Result<collect::Options> {
        let enable: &[&str] = if self.sweep_os { &["os-volume-sweep"] } else { &[] };
        let targets = snapsift::targets::choose(&self.targets_file, &self.artifacts_yaml, &self.only, &self.exclude, enable)?;
        Ok(collect::Options {
            case_dir: self.output.clone(),
            jobs: self.jobs,
            quiet: self.quiet,
            md5: self.md5,
            host: self.host.clone(),
            temp_dir: self.temp_dir.clone(),
            targets,
            evtx_json: !self.no_evtx_json,
            journal_json: !self.no_journal_json,
            login_json: !self.no_login_json,
            audit_json: !self.no_audit_json,
            decompress: self.decompress,
            ads: self.ads,
            max_file_size: if self.max_file_size == 0 { u64::MAX } else { self.max_file_size },
            max_output: self.max_output,
            limits: collect::plan::Limits { max_depth: self.max_depth, max_dir_entries: self.max_dir_entries },
            hash_evidence: self.hash_evidence.is_some(),
            replay: !self.no_replay,
            shadow_copies: !self.no_vss,
            run_dir: None,
            job: None,
            progress: match self.progress {
                ProgressArg::Bar => collect::progress::Mode::Bar,
                ProgressArg::Json => collect::progress::Mode::Json,
                ProgressArg::None => collect::progress::Mode::Off,
            },
            progress_interval: std::time::Duration::from_secs_f64(self.progress_interval.clamp(0.1, 86_400.0)),
            command_line: std::env::args().map(|a| snapsift::evidence::remote::redact_arg(&a)).collect(),
        })
    }
}

/// The evidence with each https:// link registered under its redacted
/// name; --hash-evidence refused for a location (it would download the
/// disk) unless it says `all`.
fn locations(evidence: &[PathBuf], hash: Option<HashEvidence>) -> Result<Vec<PathBuf>> {
    let evidence = snapsift::evidence::remote::locations(evidence)?;
    if let (Some(HashEvidence::Local), Some(remote)) = (hash, evidence.iter().find(|p| snapsift::evidence::remote::is_url(p))) {
        anyhow::bail!(
            "--hash-evidence reads every byte of the evidence: for {} that is downloading the whole disk. Leave it out (the files extracted are hashed anyway), or give --hash-evidence=all to download and hash it once, beside the extraction",
            remote.display()
        );
    }
    Ok(evidence)
}

/// `32G`, `500M`, `4096`: a byte count with an optional binary suffix.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("{s:?}: the unit must be K, M, G or T")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = num.trim().parse().map_err(|_| format!("{s:?} is not a size (e.g. 500M, 32G)"))?;
    n.checked_mul(1 << shift).ok_or_else(|| format!("{s:?} is too large"))
}

fn main() -> ExitCode {
    // `snapsift targets | head` must end quietly, as other Unix tools do,
    // instead of panicking on the closed pipe.
    // SAFETY: restoring the default disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let json = matches!(&cli.command, Command::Extract(a) if a.progress == ProgressArg::Json);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if json => {
            collect::progress::event("finished", serde_json::json!({ "exit_status": 2, "error": format!("{e:#}") }));
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("snapsift: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    if let Some(region) = &cli.region {
        snapsift::evidence::remote::set_region(region);
    }
    match cli.command {
        Command::Extract(args) => extract(*args),
        Command::Inspect { evidence, no_replay, no_vss } => inspect(&evidence, no_replay, no_vss),
        Command::Report { case, verify } => report(&case, verify),
        Command::Timeline { case, from, to } => timeline(&case, from, to),
        Command::Targets { targets_file, artifacts_yaml } => list_targets(&targets_file, &artifacts_yaml),
    }
}

fn extract(args: ExtractArgs) -> Result<u8> {
    // Everything this run creates is private to its owner (or
    // group): the umask applies to every file and folder made below,
    // including the evidence inflated into the case. An existing
    // case folder keeps its own mode.
    // SAFETY: umask is set before any thread starts.
    unsafe {
        libc::umask(if args.group_readable { 0o027 } else { 0o077 });
    }
    let mut opts = args.options()?;
    let json = args.progress == ProgressArg::Json;
    let (output, quiet) = (&args.output, args.quiet || json);
    // What was read (for the summary of remote reads).
    let evidence: Vec<PathBuf>;
    let mut s = match &args.jobs_file {
        None => {
            evidence = locations(&args.evidence, args.hash_evidence)?;
            collect::extract(&evidence, &opts)?
        }
        Some(list) => {
            let mut job = snapsift::fleet::load(list, snapsift::fleet::index(args.index)?)?;
            // https:// links: registered, and named without their signature
            // everywhere (the job's state, run.json).
            job.evidence = locations(&job.evidence, args.hash_evidence)?;
            evidence = job.evidence.clone();
            let say = |m: &str| {
                if json {
                    collect::progress::event("job", serde_json::json!({ "index": job.index, "message": m }));
                } else {
                    eprintln!("snapsift: {m}");
                }
            };
            match snapsift::fleet::run(&job, list, &mut opts, &say)? {
                snapsift::fleet::Outcome::Done { note, exit } => {
                    if json {
                        collect::progress::event(
                            "finished",
                            serde_json::json!({ "exit_status": exit, "job": job.index, "already_done": true, "message": note }),
                        );
                    } else {
                        eprintln!("snapsift: {note}");
                    }
                    return Ok(exit);
                }
                snapsift::fleet::Outcome::Ran { summary, .. } => *summary,
            }
        }
    };
    // The report reads the whole case folder, every run's manifest.
    if let Err(e) = snapsift::report::write(output) {
        s.warnings.push(format!("the HTML report could not be written: {e:#}"));
    }
    if json {
        collect::progress::event(
            "finished",
            serde_json::json!({
                "exit_status": s.exit_code(),
                "run": s.run_dir,
                "hosts": s.hosts,
                "counts": s.counts,
                "seconds": s.seconds,
                "skipped_volumes": s.skipped,
                "findings": s.findings.len(),
                "warnings": s.warnings.len(),
                "report": output.join("snapsift").join("report.html"),
            }),
        );
        return Ok(s.exit_code() as u8);
    }
    print_summary(&s, &evidence, output, quiet);
    Ok(s.exit_code() as u8)
}

/// The end of an extraction, for people: what was read and written, what
/// was skipped or failed, where to look.
fn print_summary(s: &collect::Summary, evidence: &[PathBuf], output: &Path, quiet: bool) {
    // A volume skipped is not an empty one: said whatever --quiet says.
    for line in &s.skipped {
        eprintln!("snapsift: skipped {line}");
    }
    if quiet {
        return;
    }
    for p in evidence {
        if let Some((size, st)) = snapsift::evidence::remote::stats_of(p) {
            let got = st.bytes.load(std::sync::atomic::Ordering::Relaxed);
            eprintln!(
                "snapsift: {}: read in place, {} of {} fetched ({:.1} %) in {} requests ({} retried)",
                p.display(),
                human(got),
                human(size),
                100.0 * got as f64 / size.max(1) as f64,
                st.requests.load(std::sync::atomic::Ordering::Relaxed),
                st.retries.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
    }
    let c = &s.counts;
    eprintln!(
        "snapsift: {} evidence, {} host(s) [{}], {} volume(s): {} files ({}) extracted in {:.1} s",
        c.evidence,
        c.hosts,
        s.hosts.join(", "),
        c.volumes,
        c.files,
        human(c.bytes),
        s.seconds
    );
    if c.containers > 0 {
        eprintln!("  {} container(s), each under <host>/containers/ as the container saw its files", c.containers);
    }
    if c.container_layers > 0 {
        eprintln!(
            "  {} container layer(s) extracted alone under <host>/containers/_layers/: the runtime's records that place them in containers are missing (see the warnings)",
            c.container_layers
        );
    }
    if c.shadow_copies > 0 {
        eprintln!("  {} shadow copy store(s) read, each under <host>/_vss/<N>-<made>/", c.shadow_copies);
    }
    if c.btrfs_snapshots > 0 {
        eprintln!("  {} Btrfs snapshot(s) read, each under <host>/_snapshots/<N>-<taken>/", c.btrfs_snapshots);
    }
    if c.identical > 0 {
        eprintln!("  {} files of those copies identical to the live volume's (listed, not written again)", c.identical);
    }
    if c.symlinks + c.skipped > 0 {
        eprintln!("  {} symlinks recorded, {} files skipped (see manifest)", c.symlinks, c.skipped);
    }
    if c.errors + c.partial > 0 {
        eprintln!("  {} files could not be read, {} only partly: their rows in the manifest say why", c.errors, c.partial);
    }
    if c.truncated > 0 {
        eprintln!("  {} files larger than --max-file-size copied only in part (manifest: truncated)", c.truncated);
    }
    if c.over_max_output > 0 {
        eprintln!(
            "  --max-output reached: copying stopped after {}; {} files not copied (manifest: skipped, --max-output reached)",
            human(c.bytes),
            c.over_max_output
        );
    }
    for r in &s.replays {
        eprintln!("  {r}");
    }
    if !s.findings.is_empty() {
        eprintln!("  {} finding(s) of tampering or hiding (run.json \"findings\", the top of the report):", s.findings.len());
        for f in s.findings.iter().take(10) {
            let at = if f.at.is_empty() { String::new() } else { format!(" ({})", f.at) };
            eprintln!("    {} {}{at}: {}", f.host, f.path, f.meaning);
        }
    }
    for w in s.warnings.iter().take(20) {
        eprintln!("  warning: {w}");
    }
    if s.warnings.len() > 20 {
        eprintln!("  … {} more warnings in run.json", s.warnings.len() - 20);
    }
    eprintln!("  output:   {}", output.join(HOSTS_FOLDER).display());
    eprintln!("  manifest: {}", s.run_dir.join("manifest.csv").display());
    eprintln!("  report:   {}", output.join("snapsift").join("report.html").display());
}

fn inspect(evidence: &[PathBuf], no_replay: bool, no_vss: bool) -> Result<u8> {
    let evidence = snapsift::evidence::remote::locations(evidence)?;
    let mut code = 0;
    let opts = snapsift::evidence::OpenOptions::default();
    let reading = snapsift::host::Reading {
        fs: snapsift::fs::OpenOptions { replay: !no_replay },
        volumes: snapsift::volume::Options { shadow_copies: !no_vss },
    };
    for (path, loaded) in evidence.iter().zip(snapsift::host::load_all_with(&evidence, &opts, reading, None)) {
        match loaded {
            Ok(Some(l)) => print!("{}", snapsift::inspect::render(&l)),
            // Part of another image given with it: said in that one's notes.
            Ok(None) => {}
            Err(e) => {
                eprintln!("snapsift: {}: {e:#}", path.display());
                code = 2;
            }
        }
    }
    Ok(code)
}

fn report(case: &Path, verify: bool) -> Result<u8> {
    // The rebuilt files are as private as the case: its group may
    // read them only if it may read the case's snapsift folder.
    use std::os::unix::fs::PermissionsExt;
    let group = std::fs::metadata(case.join("snapsift")).is_ok_and(|m| m.permissions().mode() & 0o050 != 0);
    // SAFETY: umask is set before any thread starts.
    unsafe {
        libc::umask(if group { 0o027 } else { 0o077 });
    }
    let r = snapsift::report::case::rebuild(case)?;
    eprintln!("snapsift: rebuilt from {} finished run(s), {} manifest row(s): {}", r.runs, r.rows, r.report.display());
    eprintln!("  body file: {}", case.join("snapsift/bodyfile.txt").display());
    eprintln!("  case manifest: {}", case.join("snapsift/manifest.csv").display());
    if !r.unfinished.is_empty() {
        eprintln!(
            "  {} run(s) without a run.json (still running, or stopped): not included: {}",
            r.unfinished.len(),
            r.unfinished.join(", ")
        );
    }
    if !r.reclaimed.is_empty() {
        eprintln!(
            "  {} run(s) stopped and redone by a rerun of their job (their files removed): {}",
            r.reclaimed.len(),
            r.reclaimed.join(", ")
        );
    }
    if !verify {
        return Ok(0);
    }
    let v = snapsift::report::case::verify(case)?;
    for m in v.mismatched.iter().take(50) {
        eprintln!("  DIFFERS: {m}");
    }
    for m in v.missing.iter().take(50) {
        eprintln!("  MISSING: {m}");
    }
    let more = (v.mismatched.len() + v.missing.len()).saturating_sub(100);
    if more > 0 {
        eprintln!("  … and {more} more");
    }
    if !v.unlisted.is_empty() {
        eprintln!(
            "  {} file(s) under {HOSTS_FOLDER}/ no finished run lists (a run still going or stopped, a failed copy, or added by hand):",
            v.unlisted.len()
        );
        for u in v.unlisted.iter().take(20) {
            eprintln!("    {u}");
        }
    }
    if v.ok() {
        eprintln!("snapsift: verified {} file(s) ({}): every SHA-256 matches its manifest", v.checked, human(v.bytes));
        Ok(0)
    } else {
        eprintln!(
            "snapsift: verify FAILED: {} file(s) differ and {} are missing of {} listed; see above",
            v.mismatched.len(),
            v.missing.len(),
            v.checked as usize + v.missing.len()
        );
        Ok(1)
    }
}

fn timeline(case: &Path, from: Option<String>, to: Option<String>) -> Result<u8> {
    let parse = |s: Option<String>, end: bool| -> Result<Option<i64>> {
        s.map(|s| {
            let t = snapsift::util::time::parse_iso(&s)
                .ok_or_else(|| anyhow::anyhow!("cannot read time {s:?}: use 2024-05-01 or 2024-05-01T12:00:00Z"))?;
            // A bare date as the end of a range means the whole day.
            Ok(if end && !s.contains(['T', ' ']) { t + 86_399 } else { t })
        })
        .transpose()
    };
    let (from, to) = (parse(from, false)?, parse(to, true)?);
    let stdout = std::io::stdout();
    let n = snapsift::timeline::write(case, from, to, &mut stdout.lock())?;
    eprintln!("snapsift: {n} timeline rows");
    Ok(0)
}

fn list_targets(targets_file: &[PathBuf], artifacts_yaml: &[PathBuf]) -> Result<u8> {
    for t in snapsift::targets::available(targets_file, artifacts_yaml)? {
        let opt = if t.optional { ", optional" } else { "" };
        println!("{}  (os: {}, volumes: {:?}{opt})", t.name, t.os, t.scope);
        println!("    {}", t.description);
        for p in &t.paths {
            println!("    {p}");
        }
        for p in &t.exclude {
            println!("    except {p}");
        }
        if let Some(m) = t.max_size {
            println!("    files over {} are listed, not copied", human(m));
        }
        println!();
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("4096"), Ok(4096));
        assert_eq!(super::parse_size("32G"), Ok(32 << 30));
        assert_eq!(super::parse_size("1t"), Ok(1 << 40));
        assert_eq!(super::parse_size("500 M"), Ok(500 << 20));
        assert!(super::parse_size("12Q").is_err());
        assert!(super::parse_size("G").is_err());
        assert!(super::parse_size("99999999999T").is_err());
    }
}
