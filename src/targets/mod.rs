//! Targets layer: artifact definitions (what to collect) as path globs.
//!
//! Definitions are data (`builtin.toml`, compiled in) so that users can add
//! their own in the same format. A [`Matcher`] compiles the targets that
//! apply to one volume and drives the directory walk: it says, name by name,
//! whether a path can still match, so directories no target can reach are
//! never read.
// Reads untrusted bytes: no panicking shortcuts (see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

pub mod artifacts;
pub mod configured;
pub mod finding;
mod matcher;

pub use finding::Finding;
pub use matcher::{Matcher, State};

use crate::host::OsFamily;
use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The volume holding the operating system's root.
    Os,
    /// Every other volume.
    Other,
    Any,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub name: String,
    pub description: String,
    /// `linux`, `windows` or `any`.
    #[serde(default = "any")]
    pub os: String,
    pub scope: Scope,
    #[serde(default)]
    pub paths: Vec<String>,
    /// Use another target's paths (declared before this one).
    #[serde(default)]
    pub paths_from: Option<String>,
    /// Off unless asked for (e.g. `--sweep-os`).
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub case_insensitive: bool,
    /// Files larger than this are listed in the manifest but not copied.
    pub max_size: Option<u64>,
    /// A matching symlink is resolved inside the image and the file it
    /// names copied under the link's path (Kubernetes' /var/log/containers).
    #[serde(default)]
    pub follow_links: bool,
}

fn any() -> String {
    "any".into()
}

#[derive(Deserialize)]
struct File {
    target: Vec<Target>,
}

const BUILTIN: &str = include_str!("builtin.toml");

/// The targets shipped with snapsift.
// Compiled-in text, not evidence: a unit test parses it.
#[allow(clippy::expect_used)]
pub fn builtin() -> Vec<Target> {
    parse(BUILTIN).expect("builtin.toml is valid (checked by a unit test)")
}

/// Parses a targets file in the built-in format.
pub fn parse(text: &str) -> Result<Vec<Target>> {
    let f: File = toml::from_str(text).context("invalid targets definition")?;
    let mut out: Vec<Target> = Vec::with_capacity(f.target.len());
    for mut t in f.target {
        if let Some(from) = &t.paths_from {
            let src = out
                .iter()
                .find(|o| &o.name == from)
                .with_context(|| format!("target {}: paths_from names no earlier target {from:?}", t.name))?;
            t.paths = src.paths.clone();
        }
        if t.paths.is_empty() {
            anyhow::bail!("target {} has no paths", t.name);
        }
        out.push(t);
    }
    Ok(out)
}

/// The targets a run uses: the built-in ones that are on by default, plus
/// the optional ones named in `enable`.
pub fn selected(enable: &[&str]) -> Vec<Target> {
    builtin().into_iter().filter(|t| !t.optional || enable.contains(&t.name.as_str())).collect()
}

/// Every target there is: built in, from the user's target files, and
/// from ForensicArtifacts YAML. Names must not clash with built-in ones.
pub fn available(user_files: &[std::path::PathBuf], artifacts_yaml: &[std::path::PathBuf]) -> Result<Vec<Target>> {
    let mut all = builtin();
    for f in user_files {
        let text = std::fs::read_to_string(f).with_context(|| format!("cannot read targets file {}", f.display()))?;
        let mut mine = parse(&text).with_context(|| format!("in targets file {}", f.display()))?;
        for t in &mine {
            if all.iter().any(|a| a.name == t.name) {
                anyhow::bail!("{}: target {} is already defined (choose another name)", f.display(), t.name);
            }
        }
        all.append(&mut mine);
    }
    all.extend(artifacts::load(artifacts_yaml)?);
    Ok(all)
}

/// Chooses a run's targets: `only` (when not empty) keeps just those names,
/// optional ones included; otherwise every non-optional target plus the
/// optional ones in `enable`. `exclude` drops names. Unknown names are
/// errors, so a typo does not silently collect nothing.
pub fn choose(
    user_files: &[std::path::PathBuf],
    artifacts_yaml: &[std::path::PathBuf],
    only: &[String],
    exclude: &[String],
    enable: &[&str],
) -> Result<Vec<Target>> {
    let all = available(user_files, artifacts_yaml)?;
    for n in only.iter().chain(exclude) {
        if !all.iter().any(|t| &t.name == n) {
            let mut names: Vec<_> = all.iter().map(|t| t.name.as_str()).collect();
            names.dedup();
            let shown = if names.len() > 30 { format!("{} … (see snapsift targets)", names[..30].join(", ")) } else { names.join(", ") };
            anyhow::bail!("no target named {n:?}; known targets: {shown}");
        }
    }
    Ok(all
        .into_iter()
        .filter(|t| if only.is_empty() { !t.optional || enable.contains(&t.name.as_str()) } else { only.contains(&t.name) })
        .filter(|t| !exclude.contains(&t.name))
        .collect())
}

/// What a volume looks like to target selection.
pub struct VolumeContext<'a> {
    pub os: OsFamily,
    pub is_os_root: bool,
    /// Home directories (absolute paths on this volume) for
    /// `%%users.homedir%%`.
    pub homes: &'a [Vec<u8>],
}

impl Target {
    pub fn applies_to(&self, v: &VolumeContext) -> bool {
        let scope_ok = match self.scope {
            Scope::Any => true,
            Scope::Os => v.is_os_root,
            Scope::Other => !v.is_os_root,
        };
        let os_ok = self.os == "any" || !v.is_os_root || self.os == v.os.as_str();
        scope_ok && os_ok
    }

    /// The target's globs with variables expanded for one volume.
    pub fn expanded_paths(&self, v: &VolumeContext) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.paths {
            if let Some(rest) = p.strip_prefix("%%users.homedir%%") {
                if v.is_os_root {
                    for h in v.homes {
                        let home = String::from_utf8_lossy(h);
                        out.push(format!("{}{rest}", globset::escape(home.trim_end_matches('/'))));
                    }
                } else {
                    out.push(format!("/*{rest}"));
                }
            } else {
                out.push(p.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses_and_names_are_unique() {
        let t = builtin();
        assert!(t.len() >= 3);
        let mut names: Vec<_> = t.iter().map(|t| t.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), t.len());
    }
}
