//! `<case>/snapsift/report.html`: one self-contained page for the whole case
//! (every run in it), readable in a browser with no network: hosts, OS,
//! volumes and where they were mounted, what each target collected, the
//! largest logs, the time range each log family covers, warnings and files
//! that could not be read.

pub mod case;
mod chart;

use crate::util::time::Hourly;
use anyhow::Result;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn human(n: u64) -> String {
    crate::inspect::human(n)
}

/// An ISO 8601 time to the second, readable (`2024-05-01 12:00:03`), with
/// the full value (nanoseconds, zone) on hover.
fn when(ts: &str) -> String {
    if ts.is_empty() {
        return "—".into();
    }
    let short: String = ts.get(..19).unwrap_or(ts).replace('T', " ");
    format!("<span title=\"{}\">{}</span>", esc(ts), esc(&short))
}

/// A file of the case folder (a manifest's `output_path`), as a link from
/// `<case>/snapsift/report.html`.
fn link(output_path: &str) -> String {
    if output_path.is_empty() {
        return "—".into();
    }
    let href: String = output_path
        .split('/')
        .map(|c| {
            c.bytes()
                .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/");
    format!("<a href=\"../{}\"><code>{}</code></a>", esc(&href), esc(output_path))
}

/// An event log's channel as Windows writes it: `Microsoft-Windows-Sysmon%4Operational.evtx`
/// is the channel `Microsoft-Windows-Sysmon/Operational`.
fn channel(image_path: &str) -> Option<String> {
    let name = image_path.rsplit(['/', '\\']).next()?;
    let stem = name.strip_suffix(".evtx").or_else(|| name.strip_suffix(".EVTX"))?;
    Some(stem.replace("%4", "/"))
}

type Row = BTreeMap<String, String>;

/// How many of the largest logs the report lists.
const LARGEST: usize = 15;

/// What the report keeps of the manifests' rows, read one at a time: the
/// per-target totals and the rows of the sections that list every one
/// (converted logs, journal changes, unreadable files), and the largest
/// files so far, so that memory grows with what is shown, not with the
/// case.
#[derive(Default)]
struct Rows {
    /// target → (files, bytes, oldest and newest change).
    by_target: BTreeMap<String, (u64, u64, String, String)>,
    jsonl: Vec<Row>,
    journaled: Vec<Row>,
    bad: Vec<Row>,
    /// The largest files seen (size, row), cut back to [`LARGEST`] now and
    /// then.
    large: Vec<(u64, Row)>,
}

impl Rows {
    fn add(&mut self, r: Row, activity: &mut BTreeMap<String, Hourly>) {
        let field = |k: &str| r.get(k).map_or("", String::as_str);
        if matches!(field("status"), "error" | "partial" | "truncated") {
            self.bad.push(r.clone());
        }
        if matches!(field("journal"), "changed" | "appended" | "new" | "removed") {
            self.journaled.push(r.clone());
        }
        if field("type") == "jsonl" {
            self.jsonl.push(r);
            return;
        }
        if field("status") != "ok" || field("type") != "file" {
            return;
        }
        // When things happened: events of the converted logs, and the last
        // change of every text log collected.
        let out = field("output_path");
        let binary = crate::collect::logjson::is_binary(out.rsplit('/').next().unwrap_or(""));
        if let (false, Some(host)) = (binary, out.split('/').nth(1)) {
            activity.entry(host.to_string()).or_default().see_iso(field("mtime").as_bytes());
        }
        // Per target: files, bytes, time range of the last changes.
        let size = field("size").parse::<u64>().unwrap_or(0);
        let e = self.by_target.entry(field("target").to_string()).or_default();
        e.0 += 1;
        e.1 += size;
        let m = field("mtime");
        if !m.is_empty() && (e.2.is_empty() || m < e.2.as_str()) {
            e.2 = m.to_string();
        }
        if m > e.3.as_str() {
            e.3 = m.to_string();
        }
        self.large.push((size, r));
        if self.large.len() >= 64 * LARGEST {
            self.cut_large();
        }
    }

    /// Keeps the largest, the earlier in the manifests first among equals:
    /// the sort is stable, and what a cut keeps came before what follows.
    fn cut_large(&mut self) {
        self.large.sort_by_key(|(size, _)| std::cmp::Reverse(*size));
        self.large.truncate(LARGEST);
    }

    fn largest(&mut self) -> Vec<Row> {
        self.cut_large();
        self.large.iter().map(|(_, r)| r.clone()).collect()
    }
}

/// Rebuilds the case-level files of `case` (the report, the body file, the
/// case manifest) from its finished runs after a run, now or by the
/// process rebuilding them already: see [`case::rebuild_soon`].
pub fn write(case: &Path) -> Result<std::path::PathBuf> {
    case::rebuild_soon(case).map(|_| case.join("snapsift").join("report.html"))
}

/// Writes the report for `case` from the manifests and run.json files of
/// `runs` (its finished run folders, in order); `unfinished` run folders
/// are named, not read.
fn write_runs(case: &Path, runs: &[std::path::PathBuf], unfinished: &[String]) -> Result<std::path::PathBuf> {
    let dir = case.join("snapsift");
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>snapsift report: {}</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}h1{{font-size:1.6em}}\
         table{{border-collapse:collapse;margin:.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}}\
         th{{background:#eef}}.warn{{color:#a40}}.err{{color:#b00}}code{{font-size:12px}}</style></head><body>\
         <h1>snapsift report</h1><p>Case folder: <code>{}</code> — {} run(s).</p>",
        esc(&case.display().to_string()),
        esc(&case.display().to_string()),
        runs.len()
    );
    if !unfinished.is_empty() {
        let _ = write!(
            html,
            "<p class=warn>Not in this report: {} run folder(s) without a run.json, still running or stopped before the end \
             (<code>snapsift report</code> says which): {}.</p>",
            unfinished.len(),
            esc(&unfinished.join(", "))
        );
    }
    let mut body = String::new();
    let mut rows = Rows::default();
    let mut warnings = Vec::new();
    let mut activity: BTreeMap<String, Hourly> = BTreeMap::new();
    let mut findings: Vec<crate::targets::Finding> = Vec::new();
    for r in runs {
        let info: serde_json::Value =
            std::fs::read_to_string(r.join("run.json")).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        let run_name = r.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let _ = write!(
            body,
            "<h2>{}</h2><p>{} → {} UTC<br><code>{}</code></p>",
            esc(&run_name),
            when(info["started"].as_str().unwrap_or("")),
            when(info["finished"].as_str().unwrap_or("")),
            esc(&info["command_line"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" "))
                .unwrap_or_default())
        );
        for ev in info["evidence"].as_array().into_iter().flatten() {
            let _ = write!(
                body,
                "<h3>Host <b>{}</b> — {}</h3><p>Evidence <code>{}</code> ({}, {}); OS: {}; name from {}</p>",
                esc(ev["host"].as_str().unwrap_or("?")),
                esc(ev["os"]["pretty"].as_str().unwrap_or(ev["os"]["family"].as_str().unwrap_or(""))),
                esc(ev["path"].to_string().trim_matches('"')),
                esc(ev["format"].as_str().unwrap_or("")),
                human(ev["size"].as_u64().unwrap_or(0)),
                esc(ev["os"]["family"].as_str().unwrap_or("unknown")),
                esc(ev["hostname_source"].as_str().unwrap_or("")),
            );
            if let Some(e) = ev["error"].as_str() {
                let _ = write!(body, "<p class=err>Could not be opened: {}</p>", esc(e));
            }
            body.push_str("<table><tr><th>volume</th><th>size</th><th>type</th><th>filesystem</th><th>label</th><th>mounted at</th><th>output folder</th><th>journal</th><th>problem</th></tr>");
            for v in ev["volumes"].as_array().into_iter().flatten() {
                let mount = if v["os_root"].as_bool() == Some(true) {
                    "/ (OS root)".to_string()
                } else {
                    v["mount_point"].as_str().unwrap_or("—").to_string()
                };
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td class={}>{}</td><td class=warn>{}</td></tr>",
                    esc(v["id"].as_str().unwrap_or("")),
                    human(v["size"].as_u64().unwrap_or(0)),
                    esc(v["partition_type"].as_str().unwrap_or("")),
                    esc(v["filesystem"].as_str().unwrap_or("—")),
                    esc(v["label"].as_str().unwrap_or("")),
                    esc(&mount),
                    esc(v["output_folder"].as_str().unwrap_or("")),
                    if v["journal"]["status"].is_null() || v["journal"]["status"] == "replayed" { "" } else { "warn" },
                    esc(v["journal"]["message"].as_str().unwrap_or("—")),
                    esc(v["problem"].as_str().unwrap_or("")),
                );
            }
            body.push_str("</table>");
        }
        if let Ok(found) = serde_json::from_value::<Vec<crate::targets::Finding>>(info["findings"].clone()) {
            findings.extend(found);
        }
        if let Ok(hosts) = serde_json::from_value::<BTreeMap<String, Hourly>>(info["activity"].clone()) {
            for (host, h) in hosts {
                activity.entry(host).or_default().merge(&h);
            }
        }
        for w in info["warnings"].as_array().into_iter().flatten() {
            warnings.push(w.as_str().unwrap_or("").to_string());
        }
        if let Ok(f) = std::fs::File::open(r.join("manifest.csv")) {
            for row in crate::collect::manifest::records(std::io::BufReader::new(f)).map_while(Result::ok) {
                rows.add(row, &mut activity);
            }
        }
    }
    let hosts: Vec<(String, Hourly)> = activity.into_iter().collect();
    let _ = write!(
        html,
        "<h2>Traces of tampering and hiding ({})</h2><p>Logs cleared, history switched off, login records emptied, \
         silences and set-back times: each with the file as it is on the machine and where in it.</p>",
        findings.len()
    );
    if !findings.is_empty() {
        html.push_str("<table><tr><th>host</th><th>file</th><th>where</th><th>when</th><th>what it shows</th></tr>");
        for f in &findings {
            let _ = write!(
                html,
                "<tr class=warn><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.host),
                esc(&f.path),
                esc(&f.at),
                when(f.time.as_deref().unwrap_or("")),
                esc(&f.meaning)
            );
        }
        html.push_str("</table>");
    }
    html.push_str("<h2>Activity</h2>");
    match chart::svg(&hosts) {
        Some(svg) => html.push_str(&svg),
        None => html.push_str("<p>No timestamped events in this case.</p>"),
    }
    html.push_str(&body);
    html.push_str("<h2>What was collected</h2><table><tr><th>target</th><th>files</th><th>bytes</th><th>oldest change</th><th>newest change</th></tr>");
    for (t, (n, b, lo, hi)) in &rows.by_target {
        let _ = write!(html, "<tr><td>{}</td><td>{n}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(t), human(*b), when(lo), when(hi));
    }
    html.push_str("</table>");
    if !rows.jsonl.is_empty() {
        html.push_str(
            "<h2>Binary logs as JSON lines</h2><p>Event logs, systemd journals, login records and audit logs, each with a \
             greppable <code>.jsonl</code> twin beside it: how many entries, from when to when, and what could not be read.</p>\
             <table><tr><th>log</th><th>channel</th><th>JSON lines</th><th>entries and time range</th></tr>",
        );
        for r in &rows.jsonl {
            let _ = write!(
                html,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r["image_path"]),
                esc(&channel(&r["image_path"]).unwrap_or_default()),
                link(&r["output_path"]),
                esc(&r["reason"])
            );
        }
        html.push_str("</table>");
    }
    // Files a journal replay changed: the machine's last seconds.
    if !rows.journaled.is_empty() {
        let _ = write!(
            html,
            "<h2>Changed in the last seconds ({})</h2><p>These snapshots were taken from running machines: their journals \
             held changes not yet written in place. The host's folder shows each file as the machine had it (<i>replayed</i>); \
             <code>_before-journal/</code> holds the version on disk (<i>before-journal</i>); for a file the journal only \
             <i>appended</i> to, the version on disk is the replayed copy's first bytes (their size and hash are in the \
             manifest) and is not written twice. An emptied login record or a rotated log shows up here.</p><table><tr><th>what</th><th>view</th><th>volume</th><th>path</th><th>size</th><th>output</th></tr>",
            rows.journaled.len()
        );
        for r in &rows.journaled {
            let _ = write!(
                html,
                "<tr><td class=warn>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(&r["journal"]),
                esc(&r["view"]),
                esc(&r["volume"]),
                esc(&r["image_path"]),
                human(r["size"].parse().unwrap_or(0)),
                link(&r["output_path"]),
            );
        }
        html.push_str("</table>");
    }
    let largest = rows.largest();
    html.push_str("<h2>Largest logs</h2><table><tr><th>size</th><th>file</th><th>last changed</th></tr>");
    for r in &largest {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            human(r["size"].parse().unwrap_or(0)),
            link(&r["output_path"]),
            when(&r["mtime"])
        );
    }
    html.push_str("</table>");
    let _ = write!(
        html,
        "<h2>Unreadable or incomplete ({})</h2><table><tr><th>status</th><th>volume</th><th>path</th><th>reason</th></tr>",
        rows.bad.len()
    );
    for r in &rows.bad {
        let _ = write!(
            html,
            "<tr class=err><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            esc(&r["status"]),
            esc(&r["volume"]),
            esc(&r["image_path"]),
            esc(&r["reason"])
        );
    }
    html.push_str("</table>");
    let _ = write!(html, "<h2>Warnings ({})</h2><ul>", warnings.len());
    for w in &warnings {
        let _ = write!(html, "<li class=warn>{}</li>", esc(w));
    }
    html.push_str("</ul><p><small>Made by snapsift ");
    html.push_str(env!("CARGO_PKG_VERSION"));
    html.push_str(". Times are UTC.</small></p></body></html>\n");
    let out = dir.join("report.html");
    crate::util::lock::write_atomic(&out, html.as_bytes())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_links_and_channels_read_as_people_write_them() {
        assert_eq!(when("2024-05-01T12:00:03.123456789Z"), "<span title=\"2024-05-01T12:00:03.123456789Z\">2024-05-01 12:00:03</span>");
        assert_eq!(when(""), "—");
        assert_eq!(
            link("Host-Based Logs/web01/var/log/a&b.log"),
            "<a href=\"../Host-Based%20Logs/web01/var/log/a%26b.log\"><code>Host-Based Logs/web01/var/log/a&amp;b.log</code></a>"
        );
        assert_eq!(
            channel("/Windows/System32/winevt/Logs/Microsoft-Windows-Sysmon%4Operational.evtx").as_deref(),
            Some("Microsoft-Windows-Sysmon/Operational")
        );
        assert_eq!(channel("/var/log/wtmp"), None);
    }
}
