//! Windows: event logs the registry moved (`Services\EventLog\<log>\File`)
//! and IIS log folders from `applicationHost.config` (`logFile directory`).

use crate::host::{Host, windows as win};
use crate::targets::Target;

pub fn targets(host: &Host) -> Vec<Target> {
    let Some(fs) = host.volumes.iter().find(|v| v.is_os_root).and_then(|v| v.fs.as_deref()) else {
        return Vec::new();
    };
    let glob = |p: &str| globset::escape(p);
    let moved: Vec<String> = win::moved_event_logs(fs).iter().map(|p| glob(p)).collect();
    let mut iis = Vec::new();
    if let Some(b) = win::read_text(fs, "/Windows/System32/inetsrv/config/applicationHost.config") {
        let text = String::from_utf8_lossy(&b);
        for element in ["<logFile", "<centralW3CLogFile", "<centralBinaryLogFile"] {
            for (i, _) in text.match_indices(element) {
                let tag = &text[i..text[i..].find('>').map_or(text.len(), |e| i + e)];
                if let Some(d) = tag.split("directory=\"").nth(1).and_then(|r| r.split('"').next())
                    && let Some(p) = win::system_path(d)
                {
                    iis.push(format!("{}/**", glob(p.trim_end_matches('/'))));
                }
            }
        }
    }
    let mut out: Vec<Target> = [
        super::target("config:eventlog", "event logs where the registry's EventLog File values put them", moved),
        super::target("config:iis", "IIS logs where applicationHost.config's logFile directory puts them", iis),
    ]
    .into_iter()
    .flatten()
    .collect();
    for t in &mut out {
        t.os = "windows".into();
        t.case_insensitive = true;
    }
    out
}
