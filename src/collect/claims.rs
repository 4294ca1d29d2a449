//! The names a run takes in the case folder, written down before and after
//! each is taken (`run-*/claims.txt`), so that a rerun of a job whose
//! earlier run was killed can remove exactly that run's files before
//! extracting again: nothing is lost, nothing comes back as `__2`.
//!
//! Every output file is created with `O_CREAT | O_EXCL` (a name that exists
//! is never overwritten, whichever process made it). Before trying a name
//! the run appends `try\t<path>`, after getting it `got\t<path>`, each line
//! one `write(2)` straight to the file (no buffer a kill could lose). A
//! killed run's `got` names are its own. A `try` without its `got` (killed
//! between the two) is its own only if the file exists and no other run
//! ever tried or listed that name; otherwise it is left alone and said.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const FILE: &str = "claims.txt";

/// A run's claim log.
pub struct Claims {
    case: PathBuf,
    out: Mutex<File>,
}

impl Claims {
    /// `run_dir/claims.txt`, for paths under `case`.
    pub fn create(run_dir: &Path, case: &Path) -> io::Result<Claims> {
        let out = OpenOptions::new().append(true).create_new(true).open(run_dir.join(FILE))?;
        Ok(Claims { case: case.to_path_buf(), out: Mutex::new(out) })
    }

    /// One line, in one write: `what\t<path relative to the case>`. Output
    /// names never hold a control character (`outpath`), so a tab and a
    /// newline cannot occur in them.
    pub fn note(&self, what: &str, path: &Path) -> io::Result<()> {
        let rel = path.strip_prefix(&self.case).unwrap_or(path);
        let line = format!("{what}\t{}\n", rel.to_string_lossy());
        self.out.lock().unwrap_or_else(|p| p.into_inner()).write_all(line.as_bytes())
    }
}

/// What a run's claim log says: the names it got, and those it tried.
#[derive(Default)]
pub struct Claimed {
    pub got: HashSet<String>,
    pub tried: HashSet<String>,
}

pub fn read(run_dir: &Path) -> Claimed {
    let mut c = Claimed::default();
    let text = std::fs::read_to_string(run_dir.join(FILE)).unwrap_or_default();
    for line in text.lines() {
        match line.split_once('\t') {
            Some(("got", p)) => {
                c.got.insert(p.to_string());
            }
            Some(("try", p)) => {
                c.tried.insert(p.to_string());
            }
            _ => {}
        }
    }
    c
}

/// What [`reclaim`] did.
#[derive(Default, Debug)]
pub struct Reclaimed {
    pub removed: usize,
    /// Names the killed run tried but may not have taken (another run
    /// tried them too): left in place.
    pub left: Vec<String>,
}

/// Removes the files a run that did not finish (`dead`, a `run-*` folder)
/// created in `case`, and marks it reclaimed by `by`. `others`: every other
/// run folder of the case but those reclaimed already (their files are
/// gone), whose claims and manifests say which names may be theirs.
pub fn reclaim(case: &Path, dead: &Path, others: &[PathBuf], by: &str) -> io::Result<Reclaimed> {
    let claimed = read(dead);
    let mut done = Reclaimed::default();
    let remove = |rel: &str| match std::fs::remove_file(case.join(rel)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    };
    for rel in &claimed.got {
        done.removed += remove(rel)? as usize;
    }
    let unsure: Vec<&String> = claimed.tried.difference(&claimed.got).filter(|r| case.join(r).symlink_metadata().is_ok()).collect();
    if !unsure.is_empty() {
        let mut theirs: HashSet<String> = HashSet::new();
        for o in others {
            let c = read(o);
            theirs.extend(c.got);
            theirs.extend(c.tried);
            // Runs of versions before claim logs: their manifest.
            if let Ok(text) = std::fs::read_to_string(o.join("manifest.csv")) {
                theirs.extend(
                    super::manifest::parse(&text).into_iter().filter_map(|mut r| r.remove("output_path")).filter(|p| !p.is_empty()),
                );
            }
        }
        for rel in unsure {
            if theirs.contains(rel) {
                done.left.push(rel.clone());
            } else {
                done.removed += remove(rel)? as usize;
            }
        }
    }
    let note = format!(
        "This run did not finish (killed or crashed). {by} ran its job again: it removed the {} file(s) this run had created{}.\n",
        done.removed,
        if done.left.is_empty() {
            String::new()
        } else {
            format!(" and left {} it may not have created: {}", done.left.len(), done.left.join(", "))
        }
    );
    crate::util::lock::write_atomic(&dead.join(RECLAIMED), note.as_bytes())?;
    Ok(done)
}

/// In a run folder: written when a rerun of its job removed its files.
pub const RECLAIMED: &str = "reclaimed.txt";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_runs_files_are_removed_and_no_other() {
        let case = tempfile::tempdir().unwrap();
        let c = case.path();
        let (dead, other) = (c.join("run-a"), c.join("run-b"));
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        let mine = Claims::create(&dead, c).unwrap();
        let theirs = Claims::create(&other, c).unwrap();
        for (who, name, got) in [(&mine, "a.log", true), (&mine, "b.log", false), (&theirs, "c.log", false), (&mine, "c.log", false)] {
            let p = c.join(name);
            who.note("try", &p).unwrap();
            std::fs::write(&p, name).unwrap();
            if got {
                who.note("got", &p).unwrap();
            }
        }
        let r = reclaim(c, &dead, &[other], "run-c").unwrap();
        assert_eq!(r.removed, 2, "a.log (got) and b.log (tried, no one else did)");
        assert_eq!(r.left, vec!["c.log".to_string()]);
        assert!(!c.join("a.log").exists() && !c.join("b.log").exists() && c.join("c.log").exists());
        assert!(std::fs::read_to_string(dead.join(RECLAIMED)).unwrap().contains("removed the 2 file(s)"));
    }
}
