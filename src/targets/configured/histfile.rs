//! `HISTFILE=` in the system's and each home's shell rc files.

use super::log_glob;
use crate::host::view::MachineView;
use crate::targets::Target;

/// Histories where `HISTFILE=` puts them; `HISTFILE=/dev/null` is a finding.
pub fn target(view: &MachineView, homes: &[String], findings: &mut Vec<String>) -> Option<Target> {
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
        for line in text.lines() {
            let l = line.trim().trim_start_matches("export ").trim();
            let Some(v) = l.strip_prefix("HISTFILE=") else { continue };
            let v = v.split('#').next().unwrap_or("").trim().trim_matches(['"', '\'']);
            if v.is_empty() {
                continue;
            }
            if v == "/dev/null" {
                findings.push(format!("shell history switched off: HISTFILE=/dev/null in {rc}"));
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
