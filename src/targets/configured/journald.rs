//! journald: `Storage=volatile|none` keeps the journal in memory only (or
//! nowhere), which a responder must know before looking for it.

use crate::host::view::MachineView;

pub fn findings(view: &MachineView) -> Vec<String> {
    let mut out = Vec::new();
    let dropins = view.list("/etc/systemd/journald.conf.d").into_iter().map(|n| format!("/etc/systemd/journald.conf.d/{n}"));
    for f in std::iter::once("/etc/systemd/journald.conf".to_string()).chain(dropins) {
        let Some(text) = view.read(&f) else { continue };
        for l in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
            if let Some(v) = l.strip_prefix("Storage=").map(str::trim)
                && matches!(v, "volatile" | "none")
            {
                out.push(format!("journald Storage={v} in {f}: the journal was not kept on disk"));
            }
        }
    }
    out
}
