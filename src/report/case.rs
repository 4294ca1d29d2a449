//! The case as a whole, from its run folders: every process that extracts
//! into a case writes only its own `run-*/` folder and the files it claims
//! under `Host-Based Logs/`; the case-level files are rebuilt from the
//! finished runs (those with a run.json, written last) under the case's
//! lock (`snapsift/case.lock`), each written to a temporary file and renamed
//! over the old one, so no writer ever sees or leaves half of one:
//!
//! - `snapsift/bodyfile.txt`: every finished run's `bodyfile.txt`, in order
//!   (after `bodyfile-earlier.txt`, the lines of runs made by versions that
//!   appended to the case's file directly);
//! - `snapsift/manifest.csv`: every finished run's manifest rows, each
//!   after a `run` column;
//! - `snapsift/report.html`;
//! - `snapsift/case.json`: which runs are in them, and which are not.
//!
//! [`verify`] checks every file the manifests list against its SHA-256.
// Reads untrusted bytes: no panicking shortcuts (see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

use crate::collect::{HOSTS_FOLDER, claims, manifest};
use crate::util::lock::{Lock, write_atomic, write_atomic_with};
use anyhow::{Context, Result};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The case's lock file, held while the case-level files are rebuilt.
pub const LOCK: &str = "case.lock";
/// Body-file lines of runs made before runs kept their own.
pub const EARLIER_BODY: &str = "bodyfile-earlier.txt";

/// A case's run folders, by state.
#[derive(Default)]
pub struct Runs {
    /// With a run.json: finished.
    pub finished: Vec<PathBuf>,
    /// Neither finished nor reclaimed: still running, or killed.
    pub unfinished: Vec<PathBuf>,
    /// Killed, and their files removed by a rerun of their job.
    pub reclaimed: Vec<PathBuf>,
}

/// The `run-*` folders of `case`, oldest first.
pub fn runs(case: &Path) -> Result<Runs> {
    let dir = case.join("snapsift");
    let mut all: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("{} has no snapsift folder: is it a snapsift case folder?", case.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("run-")))
        .filter(|p| p.symlink_metadata().is_ok_and(|m| m.is_dir()))
        .collect();
    all.sort();
    let mut r = Runs::default();
    for p in all {
        // Made by a run killed before it began: holds nothing.
        if std::fs::read_dir(&p).is_ok_and(|mut d| d.next().is_none()) {
            continue;
        }
        if p.join("run.json").is_file() {
            r.finished.push(p);
        } else if p.join(claims::RECLAIMED).is_file() {
            r.reclaimed.push(p);
        } else {
            r.unfinished.push(p);
        }
    }
    Ok(r)
}

/// A run folder's name (`run-20261207T141506Z`).
pub fn name(p: &Path) -> String {
    p.file_name().unwrap_or_default().to_string_lossy().into_owned()
}

/// What [`rebuild`] wrote.
pub struct Rebuilt {
    pub report: PathBuf,
    pub runs: usize,
    /// Manifest rows in the case manifest.
    pub rows: usize,
    pub unfinished: Vec<String>,
    pub reclaimed: Vec<String>,
}

/// Set by a run that finished while another process was rebuilding: the
/// rebuild is done again once that one ends.
pub const STALE: &str = "case.stale";

/// Rebuilds the case-level files after a run finished, without queueing
/// behind other processes: if one is rebuilding, it is asked to rebuild
/// again when done (which then includes this run), and this returns None
/// at once. Hundreds of jobs ending together cost a few rebuilds, not one
/// each.
pub fn rebuild_soon(case: &Path) -> Result<Option<Rebuilt>> {
    let dir = case.join("snapsift");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stale = dir.join(STALE);
    let mut last = None;
    // Marked stale first, the lock tried second; the holder clears the
    // mark before it reads the runs and looks at it again after letting
    // the lock go: a run finished at any moment is in some rebuild.
    std::fs::File::create(&stale).with_context(|| format!("cannot write {}", stale.display()))?;
    while stale.exists() {
        let Some(lock) = Lock::try_exclusive(&dir.join(LOCK))? else { break };
        let _ = std::fs::remove_file(&stale);
        last = Some(rebuild_locked(case)?);
        drop(lock);
    }
    Ok(last)
}

/// Rebuilds the case-level body file, manifest, report and case.json from
/// the finished runs, holding the case's lock.
pub fn rebuild(case: &Path) -> Result<Rebuilt> {
    let dir = case.join("snapsift");
    if !dir.is_dir() {
        anyhow::bail!(
            "{} is not a snapsift case folder (it has no snapsift/ folder): give the folder `extract -o` wrote to",
            case.display()
        );
    }
    let _lock = Lock::exclusive(&dir.join(LOCK))?;
    let _ = std::fs::remove_file(dir.join(STALE));
    rebuild_locked(case)
}

fn rebuild_locked(case: &Path) -> Result<Rebuilt> {
    let dir = case.join("snapsift");
    let runs = runs(case)?;
    let body = dir.join("bodyfile.txt");
    let earlier = dir.join(EARLIER_BODY);
    // A case begun by a version that appended every run's lines to the
    // case's body file: those lines are kept, once, before the runs' own.
    if runs.finished.iter().any(|r| !r.join("bodyfile.txt").exists()) && body.exists() && !earlier.exists() {
        std::fs::rename(&body, &earlier).with_context(|| format!("cannot keep {}", body.display()))?;
    }
    write_atomic_with(&body, |w| {
        for part in std::iter::once(earlier.clone()).chain(runs.finished.iter().map(|r| r.join("bodyfile.txt"))) {
            match std::fs::File::open(&part) {
                Ok(mut f) => {
                    std::io::copy(&mut f, w)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })
    .with_context(|| format!("cannot write {}", body.display()))?;
    let mut rows = 0;
    write_atomic_with(&dir.join("manifest.csv"), |w| {
        writeln!(w, "run,{}", manifest::COLUMNS.join(","))?;
        for r in &runs.finished {
            rows += append_manifest(&r.join("manifest.csv"), &name(r), w)?;
        }
        Ok(())
    })
    .context("cannot write the case manifest")?;
    let unfinished: Vec<String> = runs.unfinished.iter().map(|p| name(p)).collect();
    let reclaimed: Vec<String> = runs.reclaimed.iter().map(|p| name(p)).collect();
    let report = super::write_runs(case, &runs.finished, &unfinished)?;
    let index = serde_json::json!({
        "snapsift_version": env!("CARGO_PKG_VERSION"),
        "rebuilt": crate::util::time::Timestamp::now().iso8601(),
        "runs": runs.finished.iter().map(|p| name(p)).collect::<Vec<_>>(),
        "manifest_rows": rows,
        // Without a run.json: still running, or stopped (killed, crashed).
        "unfinished": unfinished,
        // Stopped, and their files removed by a rerun of their job.
        "reclaimed": reclaimed,
    });
    write_atomic(&dir.join("case.json"), (serde_json::to_string_pretty(&index)? + "\n").as_bytes())?;
    Ok(Rebuilt { report, runs: runs.finished.len(), rows, unfinished, reclaimed })
}

/// Appends a run's manifest to the case manifest, each record after the
/// run's name; how many records. A manifest with this version's columns is
/// streamed record by record (a quoted field may span lines: a record
/// starts where the quotes before it balance), so memory does not grow with
/// the run; one with other columns (an earlier version's) is parsed and
/// its columns put in this version's order.
fn append_manifest(path: &Path, run: &str, w: &mut dyn Write) -> std::io::Result<usize> {
    use std::io::BufRead;
    let Ok(f) = std::fs::File::open(path) else { return Ok(0) };
    let mut r = std::io::BufReader::new(f);
    let mut header = String::new();
    r.read_line(&mut header)?;
    let run = manifest::field(run);
    let mut rows = 0;
    if header.trim_end_matches(['\r', '\n']) != manifest::COLUMNS.join(",") {
        let mut text = header;
        r.read_to_string(&mut text)?;
        for row in manifest::parse(&text) {
            let fields: Vec<String> = manifest::COLUMNS.iter().map(|c| manifest::field(row.get(*c).map_or("", String::as_str))).collect();
            writeln!(w, "{run},{}", fields.join(","))?;
            rows += 1;
        }
        return Ok(rows);
    }
    let (mut line, mut open) = (Vec::new(), false);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if !open {
            write!(w, "{run},")?;
            rows += 1;
        }
        w.write_all(&line)?;
        if line.iter().filter(|&&b| b == b'"').count() % 2 == 1 {
            open = !open;
        }
    }
    if !line.is_empty() && !line.ends_with(b"\n") {
        w.write_all(b"\n")?;
    }
    Ok(rows)
}

/// What [`verify`] found.
#[derive(Default)]
pub struct Verified {
    /// Listed files checked, and their bytes.
    pub checked: u64,
    pub bytes: u64,
    /// `path: why` for each listed file whose SHA-256 differs.
    pub mismatched: Vec<String>,
    /// Listed files that are not in the case folder.
    pub missing: Vec<String>,
    /// Files under `Host-Based Logs/` no finished run lists (a run still
    /// going or stopped, a copy that failed midway, or added by hand).
    pub unlisted: Vec<String>,
}

impl Verified {
    pub fn ok(&self) -> bool {
        self.mismatched.is_empty() && self.missing.is_empty()
    }
}

/// Re-reads every file the finished runs' manifests list with a SHA-256
/// (a row `prefix`: its first `size` bytes) and compares; lists files no
/// finished run accounts for.
pub fn verify(case: &Path) -> Result<Verified> {
    let runs = runs(case)?;
    let mut listed: Vec<(String, String, Option<u64>)> = Vec::new();
    for r in &runs.finished {
        let f = std::fs::File::open(r.join("manifest.csv")).with_context(|| format!("cannot read {}/manifest.csv", r.display()))?;
        for row in manifest::records(std::io::BufReader::new(f)) {
            let row = row.with_context(|| format!("cannot read {}/manifest.csv", r.display()))?;
            let (Some(out), Some(sha)) = (row.get("output_path"), row.get("sha256")) else { continue };
            if out.is_empty() || sha.is_empty() {
                continue;
            }
            let prefix = (row.get("status").map(String::as_str) == Some("prefix"))
                .then(|| row.get("size").and_then(|s| s.parse().ok()).unwrap_or(0));
            listed.push((out.clone(), sha.clone(), prefix));
        }
    }
    let hashed: Vec<std::io::Result<(String, u64)>> =
        listed.par_iter().map(|(out, _, prefix)| sha256_of(&case.join(out), *prefix)).collect();
    let mut v = Verified::default();
    for ((out, want, _), got) in listed.iter().cloned().zip(hashed) {
        match got {
            Ok((h, n)) => {
                v.checked += 1;
                v.bytes += n;
                if h != want {
                    v.mismatched.push(format!("{out}: SHA-256 {h}, the manifest says {want}"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => v.missing.push(out),
            Err(e) => v.mismatched.push(format!("{out}: cannot read: {e}")),
        }
    }
    let known: HashSet<&str> = listed.iter().map(|(o, _, _)| o.as_str()).collect();
    let mut stack = vec![case.join(HOSTS_FOLDER)];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(_) => {
                    let rel = p.strip_prefix(case).unwrap_or(&p).to_string_lossy().into_owned();
                    if !known.contains(rel.as_str()) {
                        v.unlisted.push(rel);
                    }
                }
                Err(_) => {}
            }
        }
    }
    v.mismatched.sort();
    v.missing.sort();
    v.unlisted.sort();
    Ok(v)
}

/// The SHA-256 of a file (of its first `prefix` bytes, if given) and the
/// bytes hashed.
fn sha256_of(path: &Path, prefix: Option<u64>) -> std::io::Result<(String, u64)> {
    let f = std::fs::File::open(path)?;
    let mut r = f.take(prefix.unwrap_or(u64::MAX));
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = crate::util::read_full(&mut r, &mut buf)?;
        if k == 0 {
            break;
        }
        sha.update(&buf[..k]);
        n += k as u64;
    }
    Ok((crate::collect::copy::hex(&sha.finalize()), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Streamed or parsed, a run's records come out as the CSV reader reads
    /// them, each after the run's name: a quoted field with a comma, a quote
    /// and a line break in it stays one record.
    #[test]
    fn manifests_are_appended_record_by_record() {
        let d = tempfile::tempdir().unwrap();
        let cols = manifest::COLUMNS;
        let row =
            |path: &str| cols.iter().map(|c| manifest::field(if *c == "image_path" { path } else { "x" })).collect::<Vec<_>>().join(",");
        let tricky = "/var/log/a,b \"c\"\nd.log";
        let current = format!("{}\n{}\n{}\n", cols.join(","), row(tricky), row("/plain"));
        std::fs::write(d.path().join("now.csv"), &current).unwrap();
        // An earlier version's manifest: fewer columns, in another order.
        std::fs::write(d.path().join("old.csv"), "image_path,evidence\n/old,e\n").unwrap();
        let mut out = Vec::new();
        assert_eq!(append_manifest(&d.path().join("now.csv"), "run-1", &mut out).unwrap(), 2);
        assert_eq!(append_manifest(&d.path().join("old.csv"), "run-0", &mut out).unwrap(), 1);
        let text = format!("run,{}\n{}", cols.join(","), String::from_utf8(out).unwrap());
        let rows = manifest::parse(&text);
        let got: Vec<(&str, &str)> = rows.iter().map(|r| (r["run"].as_str(), r["image_path"].as_str())).collect();
        assert_eq!(got, [("run-1", tricky), ("run-1", "/plain"), ("run-0", "/old")]);
        assert_eq!(rows[2]["evidence"], "e");
    }
}
