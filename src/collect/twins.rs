//! Derived files written beside a copy: the JSON-lines twin of an event
//! log, a journal, login records or an audit log, and the plain copy of a
//! compressed log.

use super::*;

impl Run<'_> {
    pub(super) fn converts(&self, f: logjson::Format) -> bool {
        use logjson::Format::*;
        match f {
            Journal => self.opts.journal_json,
            Utmp | Lastlog | WtmpDb | Lastlog2 => self.opts.login_json,
            Audit => self.opts.audit_json,
        }
    }

    /// Converts an extracted binary log (journal, login records, audit log)
    /// and records its `.jsonl` twin in the manifest.
    pub(super) fn log_to_json(&self, job: &VolumeJob, log_row: &Row, log_path: &Path, format: logjson::Format) {
        let mut row =
            Row { kind: "jsonl".into(), target: format.target().into(), status: Status::Ok, md5: String::new(), ..log_row.clone() };
        if self.over_budget(&mut row) {
            return;
        }
        let host = job.out_root.get(1).map(String::as_str).unwrap_or("");
        let ctx = crate::convert::Context { host, source_path: &log_row.image_path };
        let twin = contain(|| logjson::write_twin(log_path, format, &ctx, &job.users, Some(&self.claims)))
            .unwrap_or_else(|panic| Err(std::io::Error::other(format!("the converter failed on it (a bug: please report it): {panic}"))));
        match twin {
            Ok(t) => {
                if self.kept_within_budget(&mut row, &t.path, t.bytes) {
                    row.output_path = self.rel(&t.path);
                    row.size = t.bytes.to_string();
                    row.sha256 = t.sha256;
                    row.reason = logjson::reason(format, &t.converted, &log_row.output_path);
                    self.saw(host, &t.converted.hours);
                    if !t.converted.users.is_empty() {
                        self.logins
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(host.to_string())
                            .or_default()
                            .extend(t.converted.users.iter().cloned());
                    }
                    let path = output_on_machine(&log_row.output_path);
                    let size = log_row.size.parse().unwrap_or(0);
                    let appended = matches!(format, logjson::Format::Utmp | logjson::Format::Audit);
                    let found = [
                        findings::login_records(format, &path, size, t.converted.entries, t.converted.blank),
                        findings::gap(&path, &t.converted.hours),
                        appended.then(|| findings::mtime_before_last_entry(&path, &log_row.mtime, t.converted.last.as_deref())).flatten(),
                    ];
                    found.into_iter().flatten().for_each(|f| self.found(host, f));
                }
            }
            Err(e) => {
                row.status = Status::Skipped;
                row.output_path = String::new();
                row.sha256 = String::new();
                row.reason = format!("not converted to JSON lines: {e}");
            }
        }
        if let Err(e) = self.manifest.write(&row) {
            self.warn(format!("cannot write the manifest: {e}"));
        }
    }

    /// Converts an extracted `.evtx` and records the `.jsonl` in the manifest.
    pub(super) fn evtx_to_json(&self, job: &VolumeJob, evtx_row: &Row, evtx_path: &Path) {
        let host = job.out_root.get(1).map(String::as_str).unwrap_or("");
        let mut row = Row { kind: "jsonl".into(), target: "evtx-json".into(), status: Status::Ok, ..evtx_row.clone() };
        if self.over_budget(&mut row) {
            return;
        }
        let converted = contain(|| evtxjson::convert(evtx_path, host, &evtx_row.image_path, true, Some(&self.claims)))
            .unwrap_or_else(|panic| Err(std::io::Error::other(format!("the evtx crate failed on it: {panic}"))));
        match converted {
            Ok(c) => {
                let bytes = std::fs::metadata(&c.path).map_or(0, |m| m.len());
                if self.kept_within_budget(&mut row, &c.path, bytes) {
                    row.output_path = self.rel(&c.path);
                    row.sha256 = c.sha256;
                    row.md5 = String::new();
                    row.reason = format!("{} events converted from {}", c.records, evtx_row.output_path);
                    self.saw(host, &c.hours);
                    let path = output_on_machine(&evtx_row.output_path);
                    for n in &c.notable {
                        if let Some(f) = findings::event(n.event_id, &n.channel, &path, n.record, n.time.clone()) {
                            self.found(host, f);
                        }
                    }
                    if let Some(f) = findings::gap(&path, &c.hours) {
                        self.found(host, f);
                    }
                    if c.recovered > 0 {
                        row.reason += &format!(" ({} of them carved from unallocated space: \"recovered\":true)", c.recovered);
                    }
                    if let (Some(f), Some(l)) = (&c.first, &c.last) {
                        row.reason += &format!("; events from {f} to {l}");
                    }
                    if c.failed > 0 {
                        row.reason += &format!("; {} records could not be parsed (damaged chunks)", c.failed);
                    }
                }
            }
            Err(e) => {
                row.status = Status::Skipped;
                row.reason = format!("EVTX not converted to JSON: {e}");
            }
        }
        if let Err(e) = self.manifest.write(&row) {
            self.warn(format!("cannot write the manifest: {e}"));
        }
    }

    /// Writes and records the plain copy of a compressed log.
    pub(super) fn decompress(&self, job: &VolumeJob, packed_row: &Row, packed: &Path, name: &str) {
        let mut row = Row { kind: "decompressed".into(), status: Status::Ok, md5: String::new(), ..packed_row.clone() };
        if self.over_budget(&mut row) {
            return;
        }
        let outcome = contain(|| decompress::decompress(packed, name, Some(&self.claims)))
            .unwrap_or_else(|panic| Err(std::io::Error::other(format!("the decompressor failed on it: {panic}"))));
        match outcome {
            Ok(decompress::Outcome::Written { path, bytes, sha256 }) => {
                if self.kept_within_budget(&mut row, &path, bytes) {
                    row.output_path = self.rel(&path);
                    row.size = bytes.to_string();
                    row.sha256 = sha256;
                    row.reason = format!("decompressed from {}", packed_row.output_path);
                    // A rotated binary log (`wtmp.1.gz`) is converted from its plain copy.
                    if let Some(f) = decompress::plain_name(name).and_then(logjson::Format::of).filter(|f| self.converts(*f)) {
                        let plain = Row { output_path: row.output_path.clone(), ..packed_row.clone() };
                        self.log_to_json(job, &plain, &path, f);
                    }
                }
            }
            Ok(decompress::Outcome::Refused(why)) => {
                row.status = Status::Skipped;
                row.output_path = String::new();
                row.sha256 = String::new();
                row.reason = why;
            }
            Err(e) => {
                row.status = Status::Skipped;
                row.output_path = String::new();
                row.sha256 = String::new();
                row.reason = format!("not decompressed: {e}");
            }
        }
        if let Err(e) = self.manifest.write(&row) {
            self.warn(format!("cannot write the manifest: {e}"));
        }
    }
}
