//! Planning: walk each volume guided by the target globs and list what to
//! copy. Directories no target can match are never read.

use crate::fs::{DirEntry, FileKind, FileSystem, Metadata, NodeId};
use crate::targets::{Matcher, State};
use rayon::prelude::*;
use std::collections::HashSet;

/// Bounds on one walk, so hostile metadata cannot make it endless.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Directory depth beyond which a walk stops (a loop of hard-linked
    /// directories, or hostile nesting). Linux paths are at most 4096
    /// bytes, so real trees are far shallower than the default 128.
    pub max_depth: usize,
    /// Entries examined per directory: a forged directory can list
    /// millions of names from a few blocks (blocks referenced many times).
    pub max_dir_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 128, max_dir_entries: 1_000_000 }
    }
}

pub struct Item {
    pub node: NodeId,
    /// The names from the volume's root to the file, raw bytes. Kept apart,
    /// never joined: a hostile name may itself contain `/`.
    pub comps: Vec<Vec<u8>>,
    pub meta: Option<Metadata>,
    pub target: String,
    pub kind: FileKind,
    /// Why it is listed but not copied (size limit, not a regular file), or
    /// why it could not be examined.
    pub skip: Option<String>,
    pub error: Option<String>,
    /// Said in the manifest beside a copied file (a symlink whose target
    /// was copied in its place).
    pub note: Option<String>,
}

/// Walks one filesystem through one or more target matchers ("lenses"),
/// each with its starting state: a mounted volume is seen both through the
/// OS targets (stepped through its mount point) and through the data-volume
/// sweep. Returns the items, and problems met on the way as error items.
pub fn walk(fs: &dyn FileSystem, lenses: &[(&Matcher, State)], limits: &Limits) -> Vec<Item> {
    let mut items = Vec::new();
    let mut visited: HashSet<NodeId> = HashSet::new();
    let start: Vec<State> = lenses.iter().map(|(_, s)| s.clone()).collect();
    let mut level: Vec<Pending> = vec![(fs.root(), Vec::new(), start, 0)];
    visited.insert(fs.root());
    // A sweep lists nearly every directory: the filesystem's one-pass
    // listing (NTFS: $MFT read in order) is then cheaper than reading them
    // one by one. Each directory is taken from it once (`visited`).
    let mut all = if lenses.iter().any(|(m, s)| m.sweeps(s)) { fs.list_all().and_then(Result::ok) } else { None };
    // Level by level, each level's directories listed at once and its
    // files examined at once: evidence read in place answers each read
    // after a network round trip, which a walk one directory at a time
    // would wait for in turn (a few hundred in a row).
    // Listings are cut to --max-dir-entries as they are read, and a level
    // is listed LEVEL_BATCH directories at a time: a forged level of many
    // directories sharing one huge listing holds a batch of them at once.
    let cut = |(mut e, damage): (Vec<DirEntry>, Option<String>)| {
        let n = e.len();
        e.truncate(limits.max_dir_entries);
        (e, n, damage)
    };
    let mut next_level = Vec::new();
    while !level.is_empty() || !next_level.is_empty() {
        if level.is_empty() {
            level = std::mem::take(&mut next_level);
        }
        let batch: Vec<Pending> = level.drain(..level.len().min(LEVEL_BATCH)).collect();
        let listed: Vec<_> = match &mut all {
            Some(all) => batch.into_iter().map(|p| (Ok(cut((all.remove(&p.0).unwrap_or_default(), None))), p)).collect(),
            None => batch.into_par_iter().map(|p| (fs.read_dir_checked(p.0).map(cut), p)).collect(),
        };
        let mut found = Vec::new();
        for (listing, (dir, comps, states, depth)) in listed {
            let entries = match listing {
                Ok((e, n, damage)) => {
                    // Damaged blocks skipped: the names there are unknown, so
                    // this row is all the manifest can say about their files.
                    if let Some(damage) = damage {
                        let why = format!("directory listed in part: {damage}; the entries there are missing");
                        items.push(error_item(dir, comps.clone(), FileKind::Dir, why));
                    }
                    if n > e.len() {
                        let why = format!("directory lists {n} entries; only the first {} were examined (--max-dir-entries)", e.len());
                        items.push(error_item(dir, comps.clone(), FileKind::Dir, why));
                    }
                    e
                }
                Err(e) => {
                    items.push(error_item(dir, comps, FileKind::Dir, format!("cannot list directory: {e}")));
                    continue;
                }
            };
            for e in entries {
                let mut child_comps = comps.clone();
                child_comps.push(e.name.clone());
                // The joined form is only for glob excludes.
                let child = joined(&child_comps);
                let mut next = Vec::with_capacity(lenses.len());
                let mut hits = Vec::new();
                for ((m, _), state) in lenses.iter().zip(&states) {
                    let (n, hit) = m.step(state, &e.name);
                    next.push(if e.kind == FileKind::Dir { m.prune(n, &child) } else { n });
                    if let Some(t) = hit {
                        hits.push((*m, t));
                    }
                }
                let alive = next.iter().any(|s| !s.is_dead());
                if !alive && hits.is_empty() {
                    continue;
                }
                let kind = match e.kind {
                    FileKind::Unknown => match fs.metadata(e.node) {
                        Ok(md) => md.kind(),
                        Err(err) => {
                            items.push(error_item(e.node, child_comps, FileKind::Unknown, err.to_string()));
                            continue;
                        }
                    },
                    k => k,
                };
                if kind == FileKind::Dir {
                    if !alive {
                        continue;
                    }
                    if depth + 1 >= limits.max_depth {
                        let why = format!("directory nesting deeper than {}; not entered (--max-depth)", limits.max_depth);
                        items.push(error_item(e.node, child_comps, kind, why));
                    } else if !visited.insert(e.node) {
                        items.push(error_item(e.node, child_comps, kind, "directory loop (already visited); not entered".into()));
                    } else {
                        next_level.push((e.node, child_comps, next, depth + 1));
                    }
                    continue;
                }
                // The first lens whose target takes the file (not excluded).
                let Some((m, t)) = hits.into_iter().find(|(m, t)| !m.excluded(*t, &child)) else { continue };
                found.push((m, t, e.node, child_comps, kind));
            }
        }
        items.par_extend(found.into_par_iter().map(|(m, t, node, comps, kind)| examine(fs, m, t, node, comps, kind)));
    }
    items
}

/// Directories of one level listed at once.
const LEVEL_BATCH: usize = 64;

/// A directory to list: its node, its names from the root, each lens's
/// state there, its depth.
type Pending = (NodeId, Vec<Vec<u8>>, Vec<State>, usize);

/// `/a/b` from `["a", "b"]`.
pub fn joined(comps: &[Vec<u8>]) -> Vec<u8> {
    let mut p = Vec::new();
    for c in comps {
        p.push(b'/');
        p.extend_from_slice(c);
    }
    if p.is_empty() {
        p.push(b'/');
    }
    p
}

fn error_item(node: NodeId, comps: Vec<Vec<u8>>, kind: FileKind, error: String) -> Item {
    Item { node, comps, meta: None, target: String::new(), kind, skip: None, error: Some(error), note: None }
}

fn examine(fs: &dyn FileSystem, m: &Matcher, t: usize, node: NodeId, comps: Vec<Vec<u8>>, kind: FileKind) -> Item {
    let target = &m.targets[t];
    let meta = match fs.metadata(node) {
        Ok(md) => md,
        Err(e) => {
            let mut it = error_item(node, comps, kind, format!("cannot read metadata: {e}"));
            it.target = target.name.clone();
            return it;
        }
    };
    if kind == FileKind::Symlink
        && target.follow_links
        && let Some(it) = follow(fs, node, &comps, &target.name)
    {
        return it;
    }
    let skip = match kind {
        FileKind::File => {
            target.max_size.filter(|&max| meta.size > max).map(|max| format!("larger than the {max}-byte limit of target {}", target.name))
        }
        FileKind::Symlink => None,
        other => Some(format!("not a regular file ({other:?})")),
    };
    Item { node, comps, meta: Some(meta), target: target.name.clone(), kind, skip, error: None, note: None }
}

/// A symlink resolved inside this filesystem (never on the analysis host):
/// the regular file it names, to be copied under the link's own path.
fn follow(fs: &dyn FileSystem, link: NodeId, comps: &[Vec<u8>], target: &str) -> Option<Item> {
    let node = crate::fs::lookup(fs, &joined(comps)).ok()??;
    let meta = fs.metadata(node).ok().filter(|m| m.kind() == FileKind::File)?;
    let to = fs.read_link(link).ok()?;
    Some(Item {
        node,
        comps: comps.to_vec(),
        meta: Some(meta),
        target: target.to_string(),
        kind: FileKind::File,
        skip: None,
        error: None,
        note: Some(format!("symlink to {}: its target's content was copied", crate::util::bytes::escape(&to))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::hostdir::HostDir;
    use crate::fs::{DirEntry, FileReader};
    use crate::targets::VolumeContext;
    use std::io;
    use std::sync::Mutex;

    /// A filesystem that records every directory it is asked to list, and
    /// offers a one-pass listing when `one_pass` is set.
    struct Counting {
        inner: HostDir,
        listed: Mutex<Vec<Vec<u8>>>,
        one_pass: bool,
        listed_all: Mutex<u32>,
    }

    impl Counting {
        fn new(root: &std::path::Path, one_pass: bool) -> Self {
            Counting { inner: HostDir::open(root).unwrap(), listed: Mutex::new(Vec::new()), one_pass, listed_all: Mutex::new(0) }
        }
    }

    impl FileSystem for Counting {
        fn kind(&self) -> &'static str {
            "counting"
        }
        fn root(&self) -> NodeId {
            self.inner.root()
        }
        fn read_dir(&self, dir: NodeId) -> io::Result<Vec<DirEntry>> {
            let entries = self.inner.read_dir(dir)?;
            let names = entries.iter().map(|e| e.name.clone()).collect::<Vec<_>>().join(&b","[..]);
            self.listed.lock().unwrap().push(names);
            Ok(entries)
        }
        fn metadata(&self, node: NodeId) -> io::Result<Metadata> {
            self.inner.metadata(node)
        }
        fn open(&self, node: NodeId) -> io::Result<FileReader<'_>> {
            self.inner.open(node)
        }
        fn read_link(&self, node: NodeId) -> io::Result<Vec<u8>> {
            self.inner.read_link(node)
        }
        fn warnings(&self) -> Vec<String> {
            Vec::new()
        }
        fn list_all(&self) -> Option<io::Result<crate::fs::Listing>> {
            if !self.one_pass {
                return None;
            }
            *self.listed_all.lock().unwrap() += 1;
            let mut all = crate::fs::Listing::new();
            let mut stack = vec![self.inner.root()];
            while let Some(d) = stack.pop() {
                let entries = self.inner.read_dir(d).unwrap();
                stack.extend(entries.iter().filter(|e| e.kind == FileKind::Dir).map(|e| e.node));
                all.insert(d, entries);
            }
            Some(Ok(all))
        }
    }

    #[test]
    fn the_walk_never_lists_a_directory_no_target_can_match() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in ["usr/lib/deep/er", "var/log/nginx", "var/cache/apt", "home/alice/Documents", "opt/app"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("usr/lib/deep/er/marker-usr"), "x").unwrap();
        std::fs::write(r.join("var/cache/apt/marker-cache"), "x").unwrap();
        std::fs::write(r.join("home/alice/Documents/marker-docs"), "x").unwrap();
        std::fs::write(r.join("var/log/nginx/access.log"), "x").unwrap();
        std::fs::write(r.join("home/alice/.bash_history"), "x").unwrap();
        let fs = Counting::new(r, false);
        let homes = vec![b"/root".to_vec(), b"/home/alice".to_vec()];
        let m = Matcher::new(
            &crate::targets::selected(&[]),
            &VolumeContext { os: crate::host::OsFamily::Linux, is_os_root: true, homes: &homes },
        )
        .unwrap();
        let items = walk(&fs, &[(&m, m.start())], &Limits::default());
        let mut got: Vec<_> = items.iter().map(|i| String::from_utf8_lossy(&joined(&i.comps)).into_owned()).collect();
        got.sort();
        assert_eq!(got, ["/home/alice/.bash_history", "/var/log/nginx/access.log"]);
        let listed = fs.listed.lock().unwrap();
        // root, /var, /var/log, /var/log/nginx, /home, /home/alice, /opt,
        // /opt/app (for /opt/*/logs) — nothing else.
        assert_eq!(listed.len(), 8, "{:?}", listed.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect::<Vec<_>>());
        for l in listed.iter() {
            let s = String::from_utf8_lossy(l);
            assert!(!s.contains("marker"), "listed a directory no target matches: {s}");
        }
    }

    #[test]
    fn the_os_sweep_skips_usr_without_listing_it() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in ["usr/share/doc/app", "opt/app/logs", "var/cache/apt"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("usr/share/doc/app/marker-changes.log"), "x").unwrap();
        std::fs::write(r.join("var/cache/apt/marker-term.log"), "x").unwrap();
        std::fs::write(r.join("opt/app/logs/server.log"), "x").unwrap();
        let fs = Counting::new(r, false);
        let targets = crate::targets::selected(&["os-volume-sweep"]);
        let m = Matcher::new(&targets, &VolumeContext { os: crate::host::OsFamily::Linux, is_os_root: true, homes: &[] }).unwrap();
        let got: Vec<_> = walk(&fs, &[(&m, m.start())], &Limits::default())
            .iter()
            .map(|i| String::from_utf8_lossy(&joined(&i.comps)).into_owned())
            .collect();
        assert_eq!(got, ["/opt/app/logs/server.log"]);
        for l in fs.listed.lock().unwrap().iter() {
            assert!(!String::from_utf8_lossy(l).contains("marker"), "walked into an excluded folder");
        }
    }

    /// A sweep takes the filesystem's one-pass listing instead of listing
    /// directories one by one, with the same result; targets naming their
    /// directories still read only those.
    #[test]
    fn a_sweep_uses_the_one_pass_listing() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in ["app/logs/old", "data/db", "usr/lib", "var/log/nginx"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        for f in ["app/logs/a.txt", "app/logs/old/b.log.1", "data/db/x.log", "data/db/y.bin", "var/log/nginx/access.log"] {
            std::fs::write(r.join(f), "x").unwrap();
        }
        let sweep = Matcher::new(
            &crate::targets::selected(&[]),
            &VolumeContext { os: crate::host::OsFamily::Linux, is_os_root: false, homes: &[] },
        )
        .unwrap();
        let names = |items: Vec<Item>| {
            let mut v: Vec<_> = items.iter().map(|i| String::from_utf8_lossy(&joined(&i.comps)).into_owned()).collect();
            v.sort();
            v
        };
        let (by_dir, one_pass) = (Counting::new(r, false), Counting::new(r, true));
        let want = names(walk(&by_dir, &[(&sweep, sweep.start())], &Limits::default()));
        assert_eq!(want.len(), 4, "{want:?}");
        assert_eq!(names(walk(&one_pass, &[(&sweep, sweep.start())], &Limits::default())), want);
        assert_eq!(*one_pass.listed_all.lock().unwrap(), 1);
        assert!(one_pass.listed.lock().unwrap().is_empty(), "listed a directory by itself");
        let os =
            Matcher::new(&crate::targets::selected(&[]), &VolumeContext { os: crate::host::OsFamily::Linux, is_os_root: true, homes: &[] })
                .unwrap();
        // /var/log and /app (linux-app-logs) are named: no one-pass listing.
        assert_eq!(
            names(walk(&one_pass, &[(&os, os.start())], &Limits::default())),
            ["/app/logs/a.txt", "/app/logs/old/b.log.1", "/var/log/nginx/access.log"]
        );
        assert_eq!(*one_pass.listed_all.lock().unwrap(), 1, "named directories are read one by one");
    }
}
