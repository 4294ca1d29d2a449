//! The per-file worker: one planned file's rows, its copy, its named
//! streams, and its line in the body file.

use super::*;

impl Run<'_> {
    /// One planned file's rows: its own, and for a file the replay grew,
    /// its on-disk version's (inside the replayed copy, or copied apart).
    pub(super) fn planned(&self, job: &VolumeJob, p: &Planned, progress: &dyn Fn(u64)) -> Vec<Row> {
        let (Some(disk), Some(twin_job)) = (&p.grown, &job.before) else {
            return vec![Row { journal: p.change, ..self.item(job, &p.item, None, progress).0 }];
        };
        let size = disk.meta.as_ref().map_or(0, |m| m.size);
        let check = twin_job.fs.open(disk.node).ok().map(|r| copy::Prefix::new(r, size));
        let (mut row, kept) = self.item(job, &p.item, check, progress);
        let Some(h) = kept else {
            row.journal = replayed::CHANGED;
            let (twin, _) = self.item(twin_job, disk, None, progress);
            return vec![row, Row { journal: replayed::CHANGED, ..twin }];
        };
        if p.item.meta.as_ref().is_some_and(|m| m.size == size) {
            // Touched by the replay, same bytes (a block rewritten as it was).
            row.journal = replayed::UNCHANGED;
            self.counters.journal_changed.fetch_sub(1, Relaxed);
            if let Some(t) = &job.tally {
                t.same.fetch_add(1, Relaxed);
            }
            return vec![row];
        }
        row.journal = replayed::APPENDED;
        if let Some(t) = &job.tally {
            t.appended.fetch_add(1, Relaxed);
        }
        let mut twin = self.row(twin_job, disk);
        twin.journal = replayed::APPENDED;
        twin.status = Status::Prefix;
        twin.output_path = row.output_path.clone();
        twin.sha256 = h.sha256;
        twin.md5 = h.md5.unwrap_or_default();
        twin.reason = format!("as it lies on disk: the first {size} bytes of {} (the replay appended the rest)", row.output_path);
        vec![row, twin]
    }

    /// A file's row before anything is done with it.
    pub(super) fn row(&self, job: &VolumeJob, it: &plan::Item) -> Row {
        let fs = &*job.fs;
        let ts = |t: Option<Timestamp>| t.map(|t| t.iso8601()).unwrap_or_default();
        let mut row = Row {
            evidence: job.evidence.clone(),
            volume: job.hv.id(),
            filesystem: fs.kind().to_string(),
            layer: fs.provenance(it.node).unwrap_or_default(),
            compression: fs.compression(it.node).unwrap_or_default(),
            view: job.view,
            inode: it.node.to_string(),
            target: it.target.clone(),
            image_path: outpath::display_components(&it.comps),
            kind: format!("{:?}", it.kind).to_lowercase(),
            status: Status::Ok,
            ..Row::default()
        };
        if let Some(m) = &it.meta {
            row.size = m.size.to_string();
            row.mtime = ts(m.mtime);
            row.atime = ts(m.atime);
            row.ctime = ts(m.ctime);
            row.btime = ts(m.btime);
        }
        row
    }

    /// Copies one file (comparing its first bytes with `check`, if given):
    /// its row, and the hashes of the compared bytes when they matched.
    pub(super) fn item(
        &self,
        job: &VolumeJob,
        it: &plan::Item,
        check: Option<copy::Prefix>,
        progress: &dyn Fn(u64),
    ) -> (Row, Option<copy::Hashes>) {
        let c = &self.counters;
        let fs = &*job.fs;
        let mut row = self.row(job, it);
        if let Some(e) = &it.error {
            c.errors.fetch_add(1, Relaxed);
            row.status = Status::Error;
            row.reason = e.clone();
            return (row, None);
        }
        if let Some(s) = &it.skip {
            c.skipped.fetch_add(1, Relaxed);
            row.status = Status::Skipped;
            row.reason = s.clone();
            return (row, None);
        }
        if it.kind == FileKind::Symlink {
            // Recorded, never created: a link in the case folder could point
            // anywhere on the analysis host.
            c.symlinks.fetch_add(1, Relaxed);
            row.status = Status::Symlink;
            match fs.read_link(it.node) {
                Ok(t) => {
                    row.reason = format!("-> {}", outpath::display(&t));
                    let path = job.body_name(&components(&it.comps));
                    if let Some(f) = findings::history_link(&on_machine(&path), &t) {
                        self.found(job.host(), f);
                    }
                }
                Err(e) => row.reason = format!("link target unreadable: {e}"),
            }
            if let Some(m) = &it.meta {
                let name = format!("{} -> {}", job.body_name(&components(&it.comps)), row.reason.trim_start_matches("-> "));
                self.body_line(&name, it, m, "");
            }
            return (row, None);
        }
        let comps = components(&it.comps);
        let Some((name, parents)) = comps.split_last() else {
            c.errors.fetch_add(1, Relaxed);
            row.status = Status::Error;
            row.reason = "empty path".into();
            return (row, None);
        };
        let mut dir_comps = job.out_root.clone();
        dir_comps.extend(parents.iter().cloned());
        let meta = it.meta.as_ref().expect("planned files have metadata");
        if let Some(live) = &job.live
            && let Some(h) = self.same_as_live(&**live, fs, it, meta)
        {
            progress(meta.size);
            c.identical.fetch_add(1, Relaxed);
            row.status = Status::Identical;
            row.sha256 = h.sha256;
            row.md5 = h.md5.unwrap_or_default();
            row.reason = "identical to the live volume's file at the same path: not written again".into();
            self.body_line(&job.body_name(&comps), it, meta, &row.md5);
            return (row, None);
        }
        let reserved = meta.size.min(self.opts.max_file_size);
        if !self.budget.reserve(reserved) {
            self.left_out(&mut row);
            return (row, None);
        }
        let mut lines = findings::is_text_log(name).then(|| textlog::LineHours::new(meta.mtime.map(|t| t.secs)));
        let result = self.dirs.ensure(&self.opts.case_dir, &dir_comps).and_then(|dir| {
            let done = copy::copy_checking(fs.open(it.node)?, meta, &dir, name, self.copy_options(), progress, check, lines.as_mut())?;
            self.streams(job, it, &row, meta, &dir, name);
            Ok(done)
        });
        self.budget.release(reserved.saturating_sub(result.as_ref().map_or(0, |d| d.bytes)));
        let mut kept = None;
        match result {
            Ok(mut done) => {
                kept = done.prefix.take();
                let complete = self.copied(&mut row, &done);
                self.body_line(&job.body_name(&comps), it, meta, &row.md5);
                if self.opts.evtx_json && name.to_ascii_lowercase().ends_with(".evtx") {
                    self.evtx_to_json(job, &row, &done.path);
                }
                if let Some(f) = logjson::Format::of(name).filter(|f| self.converts(*f)) {
                    self.log_to_json(job, &row, &done.path, f);
                }
                if self.opts.decompress && decompress::plain_name(name).is_some() {
                    self.decompress(job, &row, &done.path, name);
                }
                let path = on_machine(&job.body_name(&comps));
                if findings::is_history(name) && meta.size == 0 {
                    self.empty_histories.lock().unwrap_or_else(|p| p.into_inner()).push((job.host().to_string(), path));
                } else if let Some(l) = &lines {
                    for f in findings::text_log(&path, l, &row.mtime) {
                        self.found(job.host(), f);
                    }
                }
                c.bytes.fetch_add(done.bytes, Relaxed);
                if complete {
                    c.files.fetch_add(1, Relaxed);
                    row.reason = it.note.clone().unwrap_or_default();
                }
            }
            Err(e) => {
                c.errors.fetch_add(1, Relaxed);
                row.status = Status::Error;
                row.reason = e.to_string();
            }
        }
        (row, kept)
    }

    pub(super) fn copy_options(&self) -> copy::CopyOptions<'_> {
        copy::CopyOptions { md5: self.opts.md5, max_size: self.opts.max_file_size, claims: Some(&self.claims) }
    }

    /// A path in the case folder as the manifest gives it (relative).
    pub(super) fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.opts.case_dir).unwrap_or(p).to_string_lossy().into_owned()
    }

    /// Fills a row from a finished copy; false if the copy is not the whole
    /// file (then the row says `partial` or `truncated`, and why).
    pub(super) fn copied(&self, row: &mut Row, done: &copy::Copied) -> bool {
        row.output_path = self.rel(&done.path);
        row.sha256 = done.sha256.clone();
        row.md5 = done.md5.clone().unwrap_or_default();
        let (status, reason, counter) = match (&done.partial, &done.truncated) {
            (Some(p), _) => (Status::Partial, p, &self.counters.partial),
            (None, Some(t)) => (Status::Truncated, t, &self.counters.truncated),
            (None, None) => return true,
        };
        counter.fetch_add(1, Relaxed);
        row.status = status;
        row.reason = reason.clone();
        false
    }

    /// A row for a copy not started because `--max-output` was reached.
    pub(super) fn left_out(&self, row: &mut Row) {
        self.counters.over_max_output.fetch_add(1, Relaxed);
        row.status = Status::Skipped;
        row.reason = "--max-output reached".into();
        row.output_path.clear();
        row.sha256.clear();
    }

    /// A derived file (`.jsonl`, plain copy) is not started once
    /// `--max-output` is reached.
    pub(super) fn over_budget(&self, row: &mut Row) -> bool {
        if !self.budget.reached() {
            return false;
        }
        self.left_out(row);
        if let Err(e) = self.manifest.write(row) {
            self.warn(format!("cannot write the manifest: {e}"));
        }
        true
    }

    /// A derived file (`.jsonl`, plain copy) just written, whose size is
    /// known only now: kept if it fits in `--max-output`, else removed and
    /// its row says so, so the case never holds more than the cap.
    pub(super) fn kept_within_budget(&self, row: &mut Row, written: &Path, bytes: u64) -> bool {
        if self.budget.reserve(bytes) {
            return true;
        }
        let _ = std::fs::remove_file(written);
        self.left_out(row);
        false
    }

    /// Lists a file's named streams (NTFS ADS) in the manifest, and with
    /// `--ads` extracts each beside it as `name:stream`.
    pub(super) fn streams(&self, job: &VolumeJob, it: &plan::Item, file_row: &Row, meta: &crate::fs::Metadata, dir: &Path, name: &str) {
        let fs = job.hv.fs.as_deref().expect("planned volumes have a filesystem");
        let Ok(streams) = fs.streams(it.node) else { return };
        for (sname, size) in streams {
            let stream = String::from_utf8_lossy(&sname).into_owned();
            let mut row = Row {
                kind: "ads".into(),
                // The column describes the file's content (for a WOF file,
                // its WofCompressedData stream is this raw form).
                compression: "",
                image_path: format!("{}:{}", file_row.image_path, outpath::display(&sname)),
                size: size.to_string(),
                sha256: String::new(),
                md5: String::new(),
                output_path: String::new(),
                ..file_row.clone()
            };
            let reserved = size.min(self.opts.max_file_size);
            if !self.opts.ads {
                row.status = Status::Skipped;
                row.reason = format!("alternate data stream of {size} bytes; extract with --ads");
            } else if !self.budget.reserve(reserved) {
                self.left_out(&mut row);
            } else {
                let smeta = crate::fs::Metadata { size, ..meta.clone() };
                let out_name = outpath::component(format!("{name}:{stream}").as_bytes());
                let copied =
                    fs.open_stream(it.node, &sname).and_then(|r| copy::copy_file(r, &smeta, dir, &out_name, self.copy_options(), &|_| {}));
                self.budget.release(reserved.saturating_sub(copied.as_ref().map_or(0, |d| d.bytes)));
                match copied {
                    Ok(done) => {
                        row.status = Status::Ok;
                        row.reason = "alternate data stream".into();
                        self.copied(&mut row, &done);
                    }
                    Err(e) => {
                        row.status = Status::Error;
                        row.reason = format!("alternate data stream unreadable: {e}");
                        self.counters.errors.fetch_add(1, Relaxed);
                    }
                }
            }
            if let Err(e) = self.manifest.write(&row) {
                self.warn(format!("cannot write the manifest: {e}"));
            }
        }
    }

    pub(super) fn body_line(&self, name: &str, it: &plan::Item, m: &crate::fs::Metadata, md5: &str) {
        if let Err(e) = self.body.add(name, it.node, it.kind, m, md5) {
            self.warn(format!("cannot write the body file: {e}"));
        }
    }
}

impl Run<'_> {
    /// The hashes of a shadow copy's file when the live volume has the
    /// same bytes at the same path.
    pub(super) fn same_as_live(
        &self,
        live: &dyn FileSystem,
        fs: &dyn FileSystem,
        it: &plan::Item,
        meta: &crate::fs::Metadata,
    ) -> Option<copy::Hashes> {
        let path: Vec<u8> = it.comps.iter().flat_map(|c| std::iter::once(b'/').chain(c.iter().copied())).collect();
        let node = crate::fs::lookup(live, &path).ok()??;
        if live.metadata(node).ok()?.size != meta.size {
            return None;
        }
        copy::identical(fs.open(it.node).ok()?, live.open(node).ok()?, self.opts.md5, &|_| {}).ok()?
    }
}

/// The live volume's filesystem, when `hv` is a shadow copy or a Btrfs
/// snapshot of it. (An LVM snapshot is a volume of its own, written whole.)
pub(super) fn live_of(host: &Host, hv: &HostVolume) -> Option<Arc<dyn FileSystem>> {
    let v = hv.volume.as_ref().filter(|v| v.shadow.is_some() || hv.subvol.is_some())?;
    let of = v.snapshot_of.as_deref()?;
    host.volumes.iter().find(|o| !o.is_snapshot() && o.id() == of)?.fs.clone()
}

/// A file's names from the evidence as safe output components.
pub(super) fn components(comps: &[Vec<u8>]) -> Vec<String> {
    comps.iter().map(|c| outpath::component(c)).collect()
}
