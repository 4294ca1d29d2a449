//! journald: `Storage=volatile|none` keeps the journal in memory only (or
//! nowhere), which a responder must know before looking for it.

use crate::host::view::MachineView;
use crate::targets::Finding;

pub fn findings(view: &MachineView) -> Vec<Finding> {
    let mut out = Vec::new();
    let dropins = view.list("/etc/systemd/journald.conf.d").into_iter().map(|n| format!("/etc/systemd/journald.conf.d/{n}"));
    for f in std::iter::once("/etc/systemd/journald.conf".to_string()).chain(dropins) {
        let Some(text) = view.read(&f) else { continue };
        for (n, l) in text.lines().map(str::trim).enumerate().filter(|(_, l)| !l.starts_with('#')) {
            if let Some(v) = l.strip_prefix("Storage=").map(str::trim)
                && matches!(v, "volatile" | "none")
            {
                let meaning = format!("journald Storage={v}: the systemd journal was not kept on disk, so none of it is in this snapshot");
                out.push(Finding::new("journal-not-kept", &f, format!("line {}", n + 1), meaning));
            }
        }
    }
    out
}
