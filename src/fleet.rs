//! One job of a list per process: `snapsift extract --jobs-file LIST
//! --index N -o CASE`, as a Kubernetes Indexed Job or an AWS Batch array
//! job runs it, many at once into one shared case folder.
//!
//! The list: one job (one machine) per line, its evidence files separated
//! by spaces or tabs (a path holding spaces in double quotes), and an
//! optional `host=NAME` field; `#` starts a comment, blank lines are
//! skipped; relative paths are from the list's folder. Lines are numbered
//! from 0, skipping comments and blank lines.
//!
//! A job's state is kept in the case, `snapsift/jobs/<key>.json` (the key
//! is a hash of its evidence paths and host name), updated under the job's
//! lock (`<key>.lock`): `started` with its run folder before anything is
//! extracted, `finished` with the exit status after. So the same job
//! started twice at once runs once (the second waits, then finds it done);
//! a finished job is not extracted again; and a job whose run was killed
//! is run again after that run's files are removed (its claim log says
//! which), so nothing is lost and nothing comes back as `__2`.

use crate::collect::{self, Summary, claims};
use crate::report::case::name;
use crate::util::lock::{Lock, write_atomic};
use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The environment variables that give a job's index when `--index` is not
/// given, in the order they are read.
pub const INDEX_VARS: [&str; 2] = ["JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX"];

/// One line of a job list.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its index (0 for the first job line).
    pub index: usize,
    /// Its line number in the list (from 1).
    pub line: usize,
    pub evidence: Vec<PathBuf>,
    /// `host=NAME`: the host name to use instead of the one found.
    pub host: Option<String>,
    /// What identifies the job in a case: a hash of its evidence paths as
    /// the list writes them (wherever the list is read from) and its host.
    pub key: String,
}

impl Job {
    pub fn key(&self) -> &str {
        &self.key
    }

    fn describe(&self) -> String {
        let ev: Vec<String> = self.evidence.iter().map(|p| p.display().to_string()).collect();
        let host = self.host.as_ref().map(|h| format!(" (host={h})")).unwrap_or_default();
        format!("job {} ({}{host})", self.index, ev.join(" "))
    }
}

/// A line's fields: split at spaces and tabs, `"…"` kept whole, `#` to the
/// end of the line a comment.
fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        if rest.starts_with('#') {
            break;
        }
        let (field, after) = if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"').ok_or("a double quote is not closed")?;
            let after = &q[end + 1..];
            if !after.is_empty() && !after.starts_with([' ', '\t']) {
                return Err("a closing double quote must end its field".into());
            }
            (q[..end].to_string(), after)
        } else {
            let end = rest.find([' ', '\t']).unwrap_or(rest.len());
            (rest[..end].to_string(), &rest[end..])
        };
        out.push(field);
        rest = after.trim_start();
    }
    Ok(out)
}

/// Reads a job list; relative paths are taken from `base` (the list's
/// folder). Any malformed line is an error naming it.
pub fn parse(text: &str, base: &Path) -> Result<Vec<Job>> {
    let mut jobs: Vec<Job> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = n + 1;
        if line.contains('\0') {
            bail!("line {at}: holds a NUL byte");
        }
        let f = fields(line).map_err(|e| anyhow!("line {at}: {e}"))?;
        if f.is_empty() {
            continue;
        }
        let mut job = Job { index: jobs.len(), line: at, evidence: Vec::new(), host: None, key: String::new() };
        let mut h = Sha256::new();
        for x in f {
            if let Some(h) = x.strip_prefix("host=") {
                if h.is_empty() || job.host.is_some() {
                    bail!("line {at}: host= needs one name (host=web01), given once");
                }
                job.host = Some(h.to_string());
            } else if x.is_empty() {
                bail!("line {at}: an empty path (\"\")");
            } else {
                h.update(x.as_bytes());
                h.update(b"\0");
                let p = PathBuf::from(&x);
                // A location (https://…) is kept as written.
                job.evidence.push(if p.is_absolute() || x.contains("://") { p } else { base.join(p) });
            }
        }
        h.update(b"host=");
        h.update(job.host.as_deref().unwrap_or("").as_bytes());
        job.key = crate::collect::copy::hex(&h.finalize()[..8]);
        if job.evidence.is_empty() {
            bail!("line {at}: names no evidence, only host=: give the machine's disk image(s) before or after it");
        }
        if let Some(same) = jobs.iter().find(|j| j.key() == job.key()) {
            bail!("line {at}: the same evidence and host as line {}: a job would be extracted twice", same.line);
        }
        jobs.push(job);
    }
    Ok(jobs)
}

/// The index: `--index`, else the first of [`INDEX_VARS`] that is set.
pub fn index(given: Option<usize>) -> Result<usize> {
    if let Some(i) = given {
        return Ok(i);
    }
    for var in INDEX_VARS {
        if let Ok(v) = std::env::var(var) {
            return v.trim().parse().map_err(|_| anyhow!("{var}={v:?} is not a job index (0, 1, 2 …)"));
        }
    }
    bail!(
        "--jobs-file needs the job's index: --index N, or {} in the environment (set by Kubernetes Indexed Jobs and AWS Batch array jobs)",
        INDEX_VARS.join(" or ")
    )
}

/// Entry `index` of the list at `list`.
pub fn load(list: &Path, index: usize) -> Result<Job> {
    let text = std::fs::read_to_string(list).with_context(|| format!("cannot read the job list {}", list.display()))?;
    let base = list.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let jobs = parse(&text, base).with_context(|| format!("the job list {} is malformed", list.display()))?;
    match jobs.get(index) {
        Some(j) => Ok(j.clone()),
        None if jobs.is_empty() => {
            bail!("the job list {} holds no job (only comments or blank lines): nothing to do for index {index}", list.display())
        }
        None => bail!(
            "index {index} is past the end of the job list {}: it holds {} job(s), indexes 0 to {} (a Kubernetes Job's completions or an AWS Batch array size must match it)",
            list.display(),
            jobs.len(),
            jobs.len() - 1
        ),
    }
}

/// What became of a job.
pub enum Outcome {
    /// Extracted now; `note` says what was found of an earlier run.
    Ran { summary: Box<Summary>, note: Option<String> },
    /// Already done: why nothing was extracted, and its exit status then.
    Done { note: String, exit: u8 },
}

fn machine() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return String::new();
    }
    String::from_utf8_lossy(buf.split(|&b| b == 0).next().unwrap_or_default()).into_owned()
}

/// Runs `job` into `opts.case_dir` (see the module's description);
/// `say` prints what is found on the way (a job waited for, a run reclaimed).
pub fn run(job: &Job, list: &Path, opts: &mut collect::Options, say: &dyn Fn(&str)) -> Result<Outcome> {
    let case = opts.case_dir.clone();
    let jobs_dir = case.join("snapsift").join("jobs");
    std::fs::create_dir_all(&jobs_dir).with_context(|| format!("cannot create {}", jobs_dir.display()))?;
    let key = job.key().to_string();
    let lock_path = jobs_dir.join(format!("{key}.lock"));
    let _lock = match Lock::try_exclusive(&lock_path)? {
        Some(l) => l,
        None => {
            say(&format!("{} is being extracted by another process: waiting for it to end", job.describe()));
            Lock::exclusive(&lock_path)?
        }
    };
    let marker = jobs_dir.join(format!("{key}.json"));
    let mut note = None;
    let earlier: serde_json::Value = match std::fs::read_to_string(&marker) {
        Ok(t) => serde_json::from_str(&t).with_context(|| format!("{} is damaged: delete it to run the job again", marker.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::Value::Null,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", marker.display())),
    };
    let run_name = earlier["run"].as_str().unwrap_or("").to_string();
    // A run folder removed by hand since: nothing of it to finish or remove.
    let earlier_run = Some(case.join("snapsift").join(&run_name)).filter(|d| !run_name.is_empty() && !run_name.contains('/') && d.is_dir());
    let redo = format!("to extract it again anyway, delete {} (its copies are then written as name__2)", marker.display());
    match (earlier["state"].as_str(), earlier_run) {
        (Some("finished"), _) => {
            let exit = earlier["exit_status"].as_u64().unwrap_or(0) as u8;
            let unopened = exit == 2 && earlier["files"].as_u64() == Some(0);
            // Markers written before `open_may_pass` existed: run again.
            if unopened && earlier["open_may_pass"].as_bool() != Some(false) {
                note = Some(format!(
                    "{} ran before ({run_name}) but its evidence could not be opened and nothing was extracted: running it again",
                    job.describe()
                ));
            } else {
                let what = if unopened {
                    "could not open its evidence, which is damaged or of a kind snapsift does not read (its run.json says which); a rerun would not change that"
                } else {
                    "already extracted it into this case"
                };
                return Ok(Outcome::Done {
                    note: format!("{}: {run_name} {what} (exit status {exit}): nothing done; {redo}", job.describe()),
                    exit,
                });
            }
        }
        (Some("started"), Some(dead)) => {
            if let Some(end) = std::fs::read_to_string(dead.join("run.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .map(|v| End::of_run_json(&v))
            {
                // Killed after its run had finished, before it said so.
                let exit = end.exit;
                write_marker(&marker, job, list, &key, "finished", &run_name, Some(end))?;
                return Ok(Outcome::Done {
                    note: format!(
                        "{} had been extracted by {run_name}, which was stopped before it recorded so: recorded now; {redo}",
                        job.describe()
                    ),
                    exit,
                });
            }
            let runs = crate::report::case::runs(&case)?;
            // Not the runs reclaimed before: the files they made are gone,
            // and a name they tried is no sign of a file of theirs.
            let others: Vec<PathBuf> = runs.finished.into_iter().chain(runs.unfinished).filter(|p| p != &dead).collect();
            let new_run = collect::create_run_dir(&case)?;
            let r = claims::reclaim(&case, &dead, &others, &name(&new_run))?;
            let left = if r.left.is_empty() {
                String::new()
            } else {
                format!("; {} file(s) it may not have made were left in place: {}", r.left.len(), r.left.join(", "))
            };
            note = Some(format!(
                "{}: its earlier run {run_name} did not finish (killed or crashed): its {} file(s) were removed and the job is run again as {}{left}",
                job.describe(),
                r.removed,
                name(&new_run)
            ));
            opts.run_dir = Some(new_run);
        }
        _ => {}
    }
    if let Some(n) = &note {
        say(n);
    }
    let run_dir = match opts.run_dir.clone() {
        Some(d) => d,
        None => collect::create_run_dir(&case)?,
    };
    opts.run_dir = Some(run_dir.clone());
    opts.host = job.host.clone();
    opts.job = Some(serde_json::json!({ "list": list, "index": job.index, "line": job.line, "key": key, "earlier": note }));
    write_marker(&marker, job, list, &key, "started", &name(&run_dir), None)?;
    let summary = collect::extract(&job.evidence, opts)?;
    let c = &summary.counts;
    let end = End { exit: summary.exit_code() as u8, files: c.files, open_may_pass: c.evidence_failed > c.evidence_failed_for_good };
    write_marker(&marker, job, list, &key, "finished", &name(&run_dir), Some(end))?;
    Ok(Outcome::Ran { summary: Box::new(summary), note })
}

/// How a job's run ended, as its marker records it.
struct End {
    exit: u8,
    files: u64,
    /// Some evidence could not be opened for a reason that may pass (a
    /// link, a missing file), rather than damage or an unread format: with
    /// nothing extracted, the job is run again.
    open_may_pass: bool,
}

impl End {
    fn of_run_json(v: &serde_json::Value) -> End {
        let count = |k: &str| v["counts"][k].as_u64().unwrap_or(0);
        End {
            exit: v["exit_status"].as_u64().unwrap_or(0) as u8,
            files: count("files"),
            open_may_pass: count("evidence_failed") > count("evidence_failed_for_good"),
        }
    }
}

fn write_marker(path: &Path, job: &Job, list: &Path, key: &str, state: &str, run: &str, end: Option<End>) -> Result<()> {
    let now = crate::util::time::Timestamp::now().iso8601();
    let v = serde_json::json!({
        "job": key,
        "index": job.index,
        "list": list,
        "line": job.line,
        "evidence": job.evidence,
        "host": job.host,
        "state": state,
        "run": run,
        "machine": machine(),
        "pid": std::process::id(),
        "updated": now,
        "exit_status": end.as_ref().map(|e| e.exit),
        "files": end.as_ref().map(|e| e.files),
        "open_may_pass": end.as_ref().map(|e| e.open_may_pass),
    });
    write_atomic(path, (serde_json::to_string_pretty(&v)? + "\n").as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_as_documented() {
        let text =
            "# web tier\n\nweb01.vmdk\n  /ev/db-root.img /ev/db-data.img host=db01  # two disks\n\"/ev/with space.img\"\tother.vhdx\n";
        let jobs = parse(text, Path::new("/lists")).unwrap();
        assert_eq!(jobs.len(), 3);
        assert_eq!((jobs[0].index, jobs[0].line, &jobs[0].evidence), (0, 3, &vec![PathBuf::from("/lists/web01.vmdk")]));
        assert_eq!(
            jobs[0].key,
            parse("web01.vmdk", Path::new("/elsewhere")).unwrap()[0].key,
            "the key is the line's, not where the list is read"
        );
        assert_eq!(jobs[1].evidence, vec![PathBuf::from("/ev/db-root.img"), PathBuf::from("/ev/db-data.img")]);
        assert_eq!(jobs[1].host.as_deref(), Some("db01"));
        assert_eq!(jobs[2].evidence, vec![PathBuf::from("/ev/with space.img"), PathBuf::from("/lists/other.vhdx")]);
        assert_ne!(jobs[0].key(), jobs[1].key());
        let url = parse("\"https://example.com/disk.vhd?sig=x\"", Path::new("/lists")).unwrap();
        assert_eq!(url[0].evidence, vec![PathBuf::from("https://example.com/disk.vhd?sig=x")], "a location is not a path");
    }

    #[test]
    fn malformed_lists_say_which_line() {
        for (text, want) in [
            ("a.img\n\"b.img\n", "line 2: a double quote is not closed"),
            ("host=x\n", "line 1: names no evidence"),
            ("a.img host=\n", "line 1: host= needs one name"),
            ("a.img host=x host=y\n", "line 1: host= needs one name"),
            ("a.img\n# c\na.img\n", "line 3: the same evidence and host as line 1"),
            ("\"a\"b\n", "line 1: a closing double quote"),
            ("a\0b\n", "line 1: holds a NUL byte"),
        ] {
            let e = format!("{:#}", parse(text, Path::new("/")).unwrap_err());
            assert!(e.contains(want), "{text:?}: {e}");
        }
        assert!(parse("a.img host=x\na.img host=y\n", Path::new("/")).is_ok(), "one disk, two names: two jobs");
    }

    #[test]
    fn the_index_comes_from_the_flag_first() {
        assert_eq!(index(Some(3)).unwrap(), 3);
    }
}
