//! `HISTFILE=` in the system's and each home's shell rc files.

use super::log_glob;
use crate::host::view::MachineView;
use crate::targets::{Finding, Target};

/// Histories where `HISTFILE=` puts them; history switched off
/// (`HISTFILE=/dev/null`, `HISTSIZE=0`, `HISTFILESIZE=0`, `unset HISTFILE`,
/// `set +o history`) is a finding, with its line.
pub fn target(view: &MachineView, homes: &[String], findings: &mut Vec<Finding>) -> Option<Target> {
    let mut hist = Vec::new();
    let mut rc_files: Vec<(String, Vec<String>)> = ["/etc/profile", "/etc/bash.bashrc", "/etc/bashrc", "/etc/zshrc", "/etc/zsh/zshrc"]
        .iter()
        .map(|p| (p.to_string(), homes.to_vec()))
        .collect();
    for h in homes {
        for rc in [".bashrc", ".bash_profile", ".profile", ".zshrc", ".zprofile", ".bash_login"] {
            rc_files.push((format!("{h}/{rc}"), vec![h.clone()]));
        }
    }
    for (rc, applies_to) in rc_files {
        let Some(text) = view.read(&rc) else { continue };
        for (n, line) in text.lines().enumerate() {
            let l = line.trim().trim_start_matches("export ").trim();
            if let Some(off) = switched_off(l) {
                let meaning = format!("{off} in this shell startup file: the shells that read it keep no history");
                findings.push(Finding::new("history-off", &rc, format!("line {}", n + 1), meaning));
                continue;
            }
            let Some(v) = l.strip_prefix("HISTFILE=") else { continue };
            let v = v.split('#').next().unwrap_or("").trim().trim_matches(['"', '\'']);
            if v.is_empty() {
                continue;
            }
            for h in &applies_to {
                let expanded = v.replacen("~/", &format!("{h}/"), 1).replace("${HOME}", h).replace("$HOME", h);
                if let Some(g) = log_glob(&expanded) {
                    hist.push(g);
                }
            }
        }
    }
    super::target("config:HISTFILE", "histories where HISTFILE= in shell rc files puts them", hist)
}

/// The setting in `line` (trimmed, `export ` dropped) that switches
/// history off, as written.
fn switched_off(line: &str) -> Option<String> {
    let code = line.split('#').next().unwrap_or("").trim();
    let value = |key: &str| code.strip_prefix(key).map(|v| v.trim().trim_matches(['"', '\'']).trim().to_string());
    if value("HISTFILE=").is_some_and(|v| v == "/dev/null") {
        return Some("HISTFILE=/dev/null".into());
    }
    for key in ["HISTSIZE=", "HISTFILESIZE=", "SAVEHIST="] {
        if value(key).is_some_and(|v| v == "0") {
            return Some(format!("{key}0"));
        }
    }
    let words: Vec<&str> = code.split(|c: char| c.is_whitespace() || c == ';').filter(|w| !w.is_empty()).collect();
    if words.windows(2).any(|w| w[0] == "unset" && w[1] == "HISTFILE") {
        return Some("unset HISTFILE".into());
    }
    if words.windows(3).any(|w| w == ["set", "+o", "history"]) {
        return Some("set +o history".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::switched_off;

    #[test]
    fn each_form_that_switches_history_off() {
        for (line, want) in [
            ("HISTFILE=/dev/null", Some("HISTFILE=/dev/null")),
            ("HISTFILE=\"/dev/null\" # quiet", Some("HISTFILE=/dev/null")),
            ("HISTSIZE=0", Some("HISTSIZE=0")),
            ("HISTFILESIZE='0'", Some("HISTFILESIZE=0")),
            ("unset HISTFILE", Some("unset HISTFILE")),
            ("[ -n \"$PS1\" ] && unset HISTFILE; echo hi", Some("unset HISTFILE")),
            ("set +o history", Some("set +o history")),
            ("HISTSIZE=1000", None),
            ("HISTFILE=~/.hist", None),
            ("# unset HISTFILE", None),
            ("unset HISTFILESIZE_OLD", None),
        ] {
            assert_eq!(switched_off(line).as_deref(), want, "{line}");
        }
    }
}
