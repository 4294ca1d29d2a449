//! Glob matching one path component at a time, so a directory walk can ask
//! "can anything below this directory match?" before reading it.
//!
//! Each pattern is split at `/` into components; `**` matches any number of
//! components (zero included). A walk carries a [`State`]: the set of
//! (pattern, position) pairs still alive. That is a small NFA over names.

use super::{Target, VolumeContext};
use globset::{GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

enum Comp {
    AnyDepth,
    Literal(Vec<u8>, bool),
    Glob(GlobMatcher),
}

impl Comp {
    fn matches(&self, name: &[u8]) -> bool {
        match self {
            Comp::AnyDepth => true,
            Comp::Literal(l, ci) => {
                if *ci {
                    l.eq_ignore_ascii_case(name)
                } else {
                    l == name
                }
            }
            Comp::Glob(g) => g.is_match(Path::new(OsStr::from_bytes(name))),
        }
    }
}

struct Pattern {
    target: usize,
    comps: Vec<Comp>,
}

/// The compiled targets for one volume.
pub struct Matcher {
    patterns: Vec<Pattern>,
    excludes: Vec<Option<GlobSet>>,
    pub targets: Vec<Target>,
}

/// Positions alive in the patterns, after the path walked so far.
#[derive(Clone, Debug, Default)]
pub struct State(Vec<(u32, u32)>);

impl State {
    /// Nothing below can match: do not descend.
    pub fn is_dead(&self) -> bool {
        self.0.is_empty()
    }
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', ']', '{', '}', '\\'])
}

impl Matcher {
    pub fn new(targets: &[Target], ctx: &VolumeContext) -> anyhow::Result<Matcher> {
        let mut patterns = Vec::new();
        let mut excludes = Vec::new();
        let mut kept = Vec::new();
        for t in targets.iter().filter(|t| t.applies_to(ctx)) {
            let ti = kept.len();
            for p in t.expanded_paths(ctx) {
                let mut comps = Vec::new();
                for c in p.split('/').filter(|c| !c.is_empty()) {
                    comps.push(if c == "**" {
                        Comp::AnyDepth
                    } else if !has_meta(c) {
                        Comp::Literal(c.as_bytes().to_vec(), t.case_insensitive)
                    } else {
                        let g = GlobBuilder::new(c)
                            .case_insensitive(t.case_insensitive)
                            .literal_separator(true)
                            .backslash_escape(true)
                            .build()
                            .map_err(|e| anyhow::anyhow!("target {}: bad glob {p:?}: {e}", t.name))?;
                        Comp::Glob(g.compile_matcher())
                    });
                }
                patterns.push(Pattern { target: ti, comps });
            }
            let ex = if t.exclude.is_empty() {
                None
            } else {
                let mut b = GlobSetBuilder::new();
                for e in &t.exclude {
                    let g = GlobBuilder::new(e)
                        .case_insensitive(t.case_insensitive)
                        .literal_separator(true)
                        .build()
                        .map_err(|err| anyhow::anyhow!("target {}: bad exclude {e:?}: {err}", t.name))?;
                    b.add(g);
                }
                Some(b.build()?)
            };
            excludes.push(ex);
            kept.push(t.clone());
        }
        Ok(Matcher { patterns, excludes, targets: kept })
    }

    /// The state at the volume's root.
    pub fn start(&self) -> State {
        let mut s = Vec::new();
        for (i, _) in self.patterns.iter().enumerate() {
            self.add(&mut s, i as u32, 0);
        }
        State(s)
    }

    /// The state for a volume mounted at `mount` (e.g. `/var/log`): the
    /// patterns stepped through the mount point's components, so
    /// `/var/log/**` matches the volume's root entries.
    pub fn start_below(&self, mount: &str) -> State {
        mount.split('/').filter(|c| !c.is_empty()).fold(self.start(), |s, c| self.step(&s, c.as_bytes()).0)
    }

    /// Adds a position, and the positions after any `**` it may skip.
    fn add(&self, s: &mut Vec<(u32, u32)>, p: u32, mut i: u32) {
        let comps = &self.patterns[p as usize].comps;
        loop {
            if !s.contains(&(p, i)) {
                s.push((p, i));
            }
            match comps.get(i as usize) {
                Some(Comp::AnyDepth) => i += 1,
                _ => break,
            }
        }
    }

    /// Steps into a child called `name`. Returns the child's state and, if a
    /// pattern ends exactly here, the index of the first target it belongs
    /// to (for a file: "collect this").
    pub fn step(&self, state: &State, name: &[u8]) -> (State, Option<usize>) {
        let mut next = Vec::new();
        for &(p, i) in &state.0 {
            let comps = &self.patterns[p as usize].comps;
            let Some(c) = comps.get(i as usize) else { continue };
            if !c.matches(name) {
                continue;
            }
            match c {
                Comp::AnyDepth => self.add(&mut next, p, i),
                _ => self.add(&mut next, p, i + 1),
            }
        }
        let done = next
            .iter()
            .filter(|&&(p, i)| i as usize == self.patterns[p as usize].comps.len())
            .map(|&(p, _)| self.patterns[p as usize].target)
            .min();
        // Positions at the end of a pattern cannot match anything deeper.
        next.retain(|&(p, i)| (i as usize) < self.patterns[p as usize].comps.len());
        (State(next), done)
    }

    /// Whether a `**` is alive in `state`: a walk from here lists every
    /// directory below (bar excluded ones), whatever they are called.
    pub fn sweeps(&self, state: &State) -> bool {
        state.0.iter().any(|&(p, i)| matches!(self.patterns[p as usize].comps.get(i as usize), Some(Comp::AnyDepth)))
    }

    /// Drops the positions of targets whose excludes cover everything below
    /// directory `dir` (`usr/**`), so such a directory is not walked.
    pub fn prune(&self, state: State, dir: &[u8]) -> State {
        let mut probe = dir.to_vec();
        probe.extend_from_slice(b"/.snapsift-probe");
        State(state.0.into_iter().filter(|&(p, _)| !self.excluded(self.patterns[p as usize].target, &probe)).collect())
    }

    /// Whether target `t` excludes the full path `path` (absolute, in the volume).
    pub fn excluded(&self, t: usize, path: &[u8]) -> bool {
        self.excludes
            .get(t)
            .and_then(|e| e.as_ref())
            .is_some_and(|g| g.is_match(Path::new(OsStr::from_bytes(path.strip_prefix(b"/").unwrap_or(path)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(m: &Matcher, path: &str) -> (bool, Option<String>) {
        let mut s = m.start();
        let mut hit = None;
        for c in path.split('/').filter(|c| !c.is_empty()) {
            let (n, h) = m.step(&s, c.as_bytes());
            s = n;
            hit = h;
        }
        let t = hit.filter(|&t| !m.excluded(t, path.as_bytes())).map(|t| m.targets[t].name.clone());
        (!s.is_dead(), t)
    }

    #[test]
    fn os_root_selects_logs_and_histories_only() {
        let homes = vec![b"/root".to_vec(), b"/home/alice".to_vec(), b"/var/lib/postgresql".to_vec()];
        let ctx = VolumeContext { os: crate::host::OsFamily::Linux, is_os_root: true, homes: &homes };
        let m = Matcher::new(&crate::targets::selected(&[]), &ctx).unwrap();
        assert_eq!(walk(&m, "/var/log/auth.log").1.as_deref(), Some("linux-logs"));
        assert_eq!(walk(&m, "/var/log/nginx/a/b/access.log.2.gz").1.as_deref(), Some("linux-logs"));
        assert_eq!(walk(&m, "/home/alice/.bash_history").1.as_deref(), Some("shell-history"));
        assert_eq!(walk(&m, "/home/alice/.bash_history.1").1.as_deref(), Some("shell-history"));
        assert_eq!(walk(&m, "/var/lib/postgresql/.psql_history").1.as_deref(), Some("shell-history"));
        assert_eq!(walk(&m, "/home/alice/.local/share/fish/fish_history").1.as_deref(), Some("shell-history"));
        assert_eq!(walk(&m, "/home/alice/notes.txt").1, None);
        assert_eq!(walk(&m, "/etc/passwd").1, None);
        // Directories no target can reach are dead: never read.
        assert!(!walk(&m, "/usr").0);
        // Named directories, not a sweep of the volume.
        assert!(!m.sweeps(&m.start()));
        assert!(m.sweeps(&m.start_below("/var/log")));
        assert!(!walk(&m, "/home/bob").0, "bob is not in the home list given");
        assert!(walk(&m, "/var").0);
        assert!(walk(&m, "/var/log/deep/er").0);
    }

    #[test]
    fn other_volumes_get_the_application_log_sweep() {
        let ctx = VolumeContext { os: crate::host::OsFamily::Unknown, is_os_root: false, homes: &[] };
        let m = Matcher::new(&crate::targets::selected(&[]), &ctx).unwrap();
        let t = |p| walk(&m, p).1;
        assert_eq!(t("/app/logs/server.log").as_deref(), Some("application-logs"));
        assert_eq!(t("/x/server.LOG").as_deref(), Some("application-logs"));
        assert_eq!(t("/archive/old.log.2024-05-01").as_deref(), Some("application-logs"));
        assert_eq!(t("/app/logs/server.log.2.gz").as_deref(), Some("application-logs"));
        assert_eq!(t("/tomcat/Logs/catalina.out").as_deref(), Some("application-logs"));
        assert_eq!(t("/LogFiles/W3SVC1/u_ex240501.log").as_deref(), Some("application-logs"));
        assert_eq!(t("/kafka/00000000000000000000.log"), None);
        assert_eq!(t("/db/data.bin"), None);
        assert_eq!(t("/alice/.bash_history").as_deref(), Some("shell-history"));
        assert_eq!(t("/var/log/messages").as_deref(), Some("application-logs"), "below a log folder");
        assert_eq!(t("/var/lib/messages"), None);
        assert!(m.sweeps(&m.start()), "the application-log sweep lists every directory");
    }
}
