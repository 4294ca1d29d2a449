//! ForensicArtifacts definitions (the YAML format plaso and GRR read:
//! https://github.com/ForensicArtifacts/artifacts) as targets, so existing
//! community definitions work unchanged.
//!
//! `FILE` and `PATH` sources become path globs; `ARTIFACT_GROUP` collects its
//! members' paths (depth-bounded, cycles ignored); other source types
//! (registry keys, commands, WMI) collect no files and are skipped.
//! Variables: `%%users.homedir%%` stays for per-host expansion; the Windows
//! `%%environ_*%%` and `%%users.*%%` folders become paths on the system
//! volume. Artifacts are optional targets: they are used when named with
//! `--target`, as plaso's `--artifact_filters` does.

use super::{Scope, Target};
use anyhow::{Context, Result};
use serde_yaml::Value;
use std::collections::HashMap;
use std::path::PathBuf;

/// Paths of one artifact, split by the OS its sources are for.
#[derive(Default)]
struct Paths {
    linux: Vec<String>,
    windows: Vec<String>,
}

struct Artifact {
    doc: String,
    paths: Paths,
    group: Vec<String>,
}

/// `%%var%%` → path on the system volume (Windows), or None if unknown.
fn windows_var(v: &str) -> Option<&'static str> {
    Some(match v {
        "environ_systemroot" | "environ_windir" => "/Windows",
        "environ_systemdrive" => "",
        "environ_programdata" | "environ_allusersprofile" | "environ_allusersappdata" => "/ProgramData",
        "environ_programfiles" => "/Program Files",
        "environ_programfilesx86" => "/Program Files (x86)",
        "users.appdata" => "%%users.homedir%%/AppData/Roaming",
        "users.localappdata" => "%%users.homedir%%/AppData/Local",
        "users.temp" => "%%users.homedir%%/AppData/Local/Temp",
        "users.userprofile" | "users.homedir" => "%%users.homedir%%",
        _ => return None,
    })
}

/// One FA path as our glob: separators, variables, `**N` depth limits.
fn convert(path: &str, separator: &str, windows: bool) -> Option<String> {
    let mut p = if separator == "\\" { path.replace('\\', "/") } else { path.to_string() };
    // Expand variables; leave %%users.homedir%% for the host to expand.
    while let Some(start) = p.find("%%") {
        let end = start + 2 + p[start + 2..].find("%%")?;
        let var = p[start + 2..end].to_string();
        let rep = match (var.as_str(), windows) {
            ("users.homedir", _) => "\u{1}".to_string(),
            (v, true) => windows_var(v)?.replace("%%users.homedir%%", "\u{1}"),
            _ => return None,
        };
        p.replace_range(start..end + 2, &rep);
    }
    let p = p.replace('\u{1}', "%%users.homedir%%");
    // A drive letter at the start means the system volume.
    let p = match p.as_bytes() {
        [d, b':', rest @ ..] if d.is_ascii_alphabetic() => String::from_utf8_lossy(rest).into_owned(),
        _ => p,
    };
    // `**5` (recursion depth) → `**`.
    let p: Vec<String> = p
        .split('/')
        .map(|c| if c.starts_with("**") && c[2..].chars().all(|x| x.is_ascii_digit()) { "**".into() } else { c.to_string() })
        .collect();
    let p = p.join("/");
    (p.starts_with('/') || p.starts_with("%%")).then_some(p)
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(s) => s.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The community files hold `{paths:['…']}` (no space after the colon),
/// which PyYAML reads and libyaml refuses: add the space.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut prev = ' ';
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == ':' && prev.is_ascii_alphanumeric() && matches!(chars.peek(), Some('[') | Some('{')) {
            out.push(' ');
        }
        prev = c;
    }
    out
}

fn parse_file(text: &str, out: &mut HashMap<String, Artifact>) -> Result<()> {
    let text = normalise(text);
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v: Value = serde::Deserialize::deserialize(doc)?;
        let Some(name) = v.get("name").and_then(|n| n.as_str()) else { continue };
        let art_os = v.get("supported_os").map(strings).unwrap_or_default();
        let mut a = Artifact {
            doc: v.get("doc").and_then(|d| d.as_str()).unwrap_or("").lines().next().unwrap_or("").to_string(),
            paths: Paths::default(),
            group: Vec::new(),
        };
        for src in v.get("sources").and_then(|s| s.as_sequence()).into_iter().flatten() {
            let kind = src.get("type").and_then(|t| t.as_str()).unwrap_or("");
            let attrs = src.get("attributes").cloned().unwrap_or(Value::Null);
            let os = src.get("supported_os").map(strings).filter(|o| !o.is_empty()).unwrap_or_else(|| art_os.clone());
            match kind {
                "FILE" | "PATH" | "DIRECTORY" => {
                    let sep = attrs.get("separator").and_then(|s| s.as_str()).unwrap_or("/");
                    for p in attrs.get("paths").map(strings).unwrap_or_default() {
                        let windows_path = sep == "\\" || p.contains('\\') || p.contains("%%environ_");
                        if (os.is_empty() || os.iter().any(|o| o == "Windows")) && windows_path {
                            a.paths.windows.extend(convert(&p, sep, true));
                        } else if os.is_empty() || os.iter().any(|o| o == "Linux") {
                            a.paths.linux.extend(convert(&p, sep, false));
                        }
                    }
                }
                "ARTIFACT_GROUP" => a.group.extend(attrs.get("names").map(strings).unwrap_or_default()),
                _ => {}
            }
        }
        out.insert(name.to_string(), a);
    }
    Ok(())
}

/// All paths of `name`, following groups (at most 10 deep; cycles stop).
fn resolve(all: &HashMap<String, Artifact>, name: &str, depth: u32, seen: &mut Vec<String>, out: &mut Paths) {
    if depth > 10 || seen.iter().any(|s| s == name) {
        return;
    }
    seen.push(name.to_string());
    let Some(a) = all.get(name) else { return };
    out.linux.extend(a.paths.linux.iter().cloned());
    out.windows.extend(a.paths.windows.iter().cloned());
    for g in &a.group {
        resolve(all, g, depth + 1, seen, out);
    }
}

/// Loads definitions from YAML files or folders of them, as optional targets.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Target>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            v.sort();
            files.extend(v);
        } else {
            files.push(p.clone());
        }
    }
    let mut all = HashMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        parse_file(&text, &mut all).with_context(|| format!("{} is not valid ForensicArtifacts YAML", f.display()))?;
    }
    Ok(targets(&all))
}

/// The targets of one YAML text (what `load` does per file, for the fuzzer).
pub fn parse(text: &str) -> Result<Vec<Target>> {
    let mut all = HashMap::new();
    parse_file(text, &mut all)?;
    Ok(targets(&all))
}

fn targets(all: &HashMap<String, Artifact>) -> Vec<Target> {
    let mut names: Vec<&String> = all.keys().collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let mut p = Paths::default();
        resolve(all, name, 0, &mut Vec::new(), &mut p);
        let doc = &all[name].doc;
        for (os, mut paths, ci) in [("linux", p.linux, false), ("windows", p.windows, true)] {
            paths.sort();
            paths.dedup();
            if paths.is_empty() {
                continue;
            }
            out.push(Target {
                name: name.clone(),
                description: format!("ForensicArtifacts: {doc}"),
                os: os.into(),
                scope: Scope::Os,
                paths,
                paths_from: None,
                optional: true,
                exclude: Vec::new(),
                case_insensitive: ci,
                max_size: None,
                follow_links: false,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_paths() {
        assert_eq!(
            convert("%%environ_systemroot%%\\System32\\winevt\\Logs\\*.evtx", "\\", true).as_deref(),
            Some("/Windows/System32/winevt/Logs/*.evtx")
        );
        assert_eq!(convert("%%users.appdata%%\\x\\**5", "\\", true).as_deref(), Some("%%users.homedir%%/AppData/Roaming/x/**"));
        assert_eq!(convert("C:\\inetpub\\logs\\**", "\\", true).as_deref(), Some("/inetpub/logs/**"));
        assert_eq!(convert("/var/log/nginx/access.log*", "/", false).as_deref(), Some("/var/log/nginx/access.log*"));
        assert_eq!(convert("%%environ_unknown%%\\x", "\\", true), None);
    }
}
