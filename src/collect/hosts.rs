//! One host's work: its volumes planned into jobs (the targets that apply,
//! the views of a replayed volume side by side, a shadow copy beside its
//! live volume), then every file copied in one queue: the large ones
//! first, the others in on-disk order.

use super::*;

impl Run<'_> {
    /// Plans and copies one host's files into `base` (`Host-Based
    /// Logs/<host>`), then each of its containers' into
    /// `base/containers/<folder>`.
    pub(super) fn host(&self, evidence: &str, host: &Host, base: &[String]) {
        let homes: &[Vec<u8>] = host.volumes.iter().find(|v| v.is_os_root).map_or(&[], |v| &v.homes);
        let os_ctx = VolumeContext { os: host.os.family, is_os_root: true, homes };
        let other_ctx = VolumeContext { os: host.os.family, is_os_root: false, homes: &[] };
        // Where this machine's own configuration puts logs and histories.
        let (found, findings) = crate::targets::configured::configured(host);
        let host_folder = base.get(1).map(String::as_str).unwrap_or("");
        for f in findings {
            self.found(host_folder, f);
        }
        // Found first: the first target that takes a file names it in the
        // manifest, and "config:nginx" says more than a built-in glob.
        let targets: Vec<Target> = found.into_iter().chain(self.opts.targets.iter().cloned()).collect();
        let (os_targets, other_targets) = match (Matcher::new(&targets, &os_ctx), Matcher::new(&self.opts.targets, &other_ctx)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                self.warn(format!("targets: {e:#}"));
                return;
            }
        };
        let users = Arc::new(host_users(host));
        let mut plans: Vec<(VolumeJob, Vec<Planned>)> = Vec::new();
        for hv in &host.volumes {
            let Some(fs) = hv.fs.clone() else { continue };
            // The OS root (or a snapshot of it): the OS targets. A mounted
            // volume: the OS targets below its mount point, and the
            // data-volume sweep. Any other volume: the sweep.
            let mut lenses = Vec::new();
            if hv.reads_as_os_root() {
                lenses.push((&os_targets, os_targets.start()));
            } else {
                if let Some(m) = &hv.mount_point {
                    lenses.push((&os_targets, os_targets.start_below(m)));
                }
                lenses.push((&other_targets, other_targets.start()));
            }
            // A replayed volume is walked twice, the views side by side.
            let walk = |f: &dyn FileSystem| plan::walk(f, &lenses, &self.opts.limits);
            let (items, disk_items) = match fs.on_disk() {
                Some(disk) => {
                    let (a, b) = rayon::join(|| walk(&*fs), || walk(&*disk));
                    (a, Some(b))
                }
                None => (walk(&*fs), None),
            };
            let prefix = hv.out_prefix.iter().map(|c| outpath::component(c.as_bytes()));
            let out_root: Vec<String> = base.iter().cloned().chain(prefix.clone()).collect();
            let evidence = evidence.to_string();
            let replay = fs.replay();
            let live = super::file::live_of(host, hv);
            let (Some(disk), Some(disk_items)) = (fs.on_disk(), disk_items) else {
                // Nothing replayed: as on disk, said so if a replay was due.
                let view = if let Some(r) = &replay {
                    self.replays.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{evidence} {}: {}", hv.id(), r.message()));
                    replayed::VIEW_ON_DISK
                } else {
                    ""
                };
                let items = items.into_iter().map(|i| Planned { item: i, change: "", grown: None }).collect();
                plans.push((VolumeJob { evidence, hv, fs, view, out_root, before: None, tally: None, users: users.clone(), live }, items));
                continue;
            };
            let replayed::Compared { tags, grown, before } = replayed::compare(&*fs, &items, disk_items);
            let on_machine_root: Vec<String> = out_root[2..].to_vec();
            for (d, tag) in &before {
                let now = items.iter().find(|i| i.comps == d.comps).and_then(|i| i.meta.as_ref()).map(|m| m.size);
                let path = format!("/{}", on_machine_root.iter().cloned().chain(components(&d.comps)).collect::<Vec<_>>().join("/"));
                if let Some(f) = findings::login_records_cut(&path, now, d.meta.as_ref().map_or(0, |m| m.size), tag) {
                    self.found(base.get(1).map_or("", String::as_str), f);
                }
            }
            let before_root: Vec<String> = base.iter().cloned().chain([replayed::BEFORE_FOLDER.to_string()]).chain(prefix).collect();
            let tagged = |t: &str| tags.iter().filter(|&&x| x == t).count();
            let (changed, new) = (tagged(replayed::CHANGED), tagged(replayed::NEW));
            let removed = before.iter().filter(|(_, t)| *t == replayed::REMOVED).count();
            self.counters.journals_replayed.fetch_add(1, Relaxed);
            self.counters.journal_changed.fetch_add((changed + new + removed) as u64, Relaxed);
            let r = replay.map(|r| r.message()).unwrap_or_default();
            let tally = Tally {
                line: format!("{evidence} {}: {r}; of the files collected, the replay", hv.id()),
                changed,
                new,
                removed,
                appended: AtomicU64::new(0),
                same: AtomicU64::new(0),
                before: before_root[1..].join("/"),
            };
            let view = replayed::VIEW_REPLAYED;
            let twin_job = VolumeJob {
                evidence: evidence.clone(),
                hv,
                fs: disk.clone(),
                view: replayed::VIEW_BEFORE,
                out_root: before_root.clone(),
                before: None,
                tally: None,
                users: users.clone(),
                live: None,
            };
            let planned = items.into_iter().zip(tags).zip(grown).map(|((i, t), g)| Planned { item: i, change: t, grown: g }).collect();
            plans.push((
                VolumeJob {
                    evidence: evidence.clone(),
                    hv,
                    fs,
                    view,
                    out_root,
                    before: Some(Box::new(twin_job)),
                    tally: Some(tally),
                    users: users.clone(),
                    live: None,
                },
                planned,
            ));
            let view = replayed::VIEW_BEFORE;
            let before = before.into_iter().map(|(i, t)| Planned { item: i, change: t, grown: None }).collect();
            plans.push((
                VolumeJob {
                    evidence,
                    hv,
                    fs: disk,
                    view,
                    out_root: before_root,
                    before: None,
                    tally: None,
                    users: users.clone(),
                    live: None,
                },
                before,
            ));
        }
        let total: u64 = plans
            .iter()
            .flat_map(|(_, items)| items.iter().map(|p| &p.item))
            .filter(|i| i.kind == FileKind::File && i.skip.is_none())
            .filter_map(|i| i.meta.as_ref().map(|m| m.size))
            .sum();
        let bar = progress_bar(self.opts, total, "copying");
        let files_total = plans.iter().map(|(_, items)| items.len() as u64).sum();
        let ticker = progress::Ticker::start(self.opts.progress, host_folder, total, files_total, self.opts.progress_interval);
        // All volumes' files in one queue, one file per task, in `copy_order`.
        let mut queue: Vec<(usize, &VolumeJob, &Planned)> =
            plans.iter().enumerate().flat_map(|(v, (job, items))| items.iter().map(move |p| (v, job, p))).collect();
        let large = (total / (8 * rayon::current_num_threads() as u64).max(1)).max(LARGE_FIRST);
        queue.sort_by_key(|&(v, _, p)| copy_order(v, &p.item, large));
        queue.par_iter().with_max_len(1).for_each(|&(_, job, p)| {
            let tick = |n| {
                bar.inc(n);
                ticker.bytes(n);
            };
            let rows = contain(|| self.planned(job, p, &tick)).unwrap_or_else(|panic| {
                self.counters.errors.fetch_add(1, Relaxed);
                vec![Row {
                    evidence: job.evidence.clone(),
                    volume: job.hv.id(),
                    image_path: outpath::display_components(&p.item.comps),
                    view: job.view,
                    journal: p.change,
                    status: Status::Error,
                    reason: format!("snapsift failed on this file, the run went on (a bug: please report it): {panic}"),
                    ..Row::default()
                }]
            });
            for row in rows {
                if let Err(e) = self.manifest.write(&row) {
                    self.warn(format!("cannot write the manifest: {e}"));
                }
            }
            ticker.file();
        });
        bar.finish_and_clear();
        drop(ticker);
        let empty = std::mem::take(&mut *self.empty_histories.lock().unwrap_or_else(|p| p.into_inner()));
        let logins = self.logins.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (h, path) in empty {
            if let Some(f) = logins.get(&h).and_then(|users| findings::empty_history(&path, users)) {
                self.found(&h, f);
            }
        }
        for t in plans.iter().filter_map(|(job, _)| job.tally.as_ref()) {
            self.replays.lock().unwrap_or_else(|p| p.into_inner()).push(t.message());
        }
        for c in &host.containers {
            let Some(child) = &c.host else { continue };
            let mut sub = base.to_vec();
            sub.extend(container_folder(&c.folder));
            self.host(evidence, child, &sub);
            for v in &child.volumes {
                for w in v.fs.as_ref().map(|f| f.warnings()).unwrap_or_default() {
                    self.warn(format!("{evidence} container {}: {w}", c.folder));
                }
            }
        }
    }
}

/// Files at least this large may be copied first (`copy_order`).
const LARGE_FIRST: u64 = 8 << 20;

/// Where a file of volume `v` goes in the copy queue. The large ones
/// (`large`: more than an eighth of a thread's share of the bytes) first,
/// largest first: a 2 GiB log on the data volume starts early instead of
/// leaving a core idle at the end. The others in on-disk order (volume,
/// then node number: ext and XFS place a file's blocks near its inode,
/// NTFS a small file inside its MFT record), so that neighbours on the
/// disk are read one after the other and a block two of them share is
/// fetched once (remote evidence on the benchmark disk: 1.36x the bytes
/// read were fetched in size order, 1.16x in this one).
fn copy_order(v: usize, item: &plan::Item, large: u64) -> (bool, std::cmp::Reverse<u64>, usize, crate::fs::NodeId) {
    match item.meta.as_ref().map_or(0, |m| m.size) {
        size if size >= large => (false, std::cmp::Reverse(size), 0, 0),
        _ => (true, std::cmp::Reverse(0), v, item.node),
    }
}

/// One file to copy, with what the replay did to its path.
pub(super) struct Planned {
    pub(super) item: plan::Item,
    /// The manifest's `journal` column.
    pub(super) change: &'static str,
    /// Its on-disk version, when the replay may only have appended to it.
    pub(super) grown: Option<plan::Item>,
}

/// Per-volume context shared by the copy threads.
pub(super) struct VolumeJob<'a> {
    pub(super) evidence: String,
    pub(super) hv: &'a HostVolume,
    /// The view read: the volume's filesystem, or its on-disk view beside a
    /// replayed one.
    pub(super) fs: Arc<dyn FileSystem>,
    /// The manifest's `view` column for its files.
    pub(super) view: &'static str,
    /// `<case>/Host-Based Logs/<host>/<prefix…>`
    pub(super) out_root: Vec<String>,
    /// Beside a replayed view: its on-disk view, under `_before-journal/`.
    pub(super) before: Option<Box<VolumeJob<'a>>>,
    /// A replayed view's account of what the replay did to its files.
    pub(super) tally: Option<Tally>,
    /// The host's users by UID, from its `/etc/passwd` (lastlog names them).
    pub(super) users: Arc<HashMap<u32, String>>,
    /// For a shadow copy: the live volume it is a copy of, whose identical
    /// files are not written again.
    pub(super) live: Option<Arc<dyn FileSystem>>,
}

/// What a replay did to one volume's collected files, for the summary.
pub(super) struct Tally {
    /// `<evidence> <volume>: <the replay's message>; of the files collected, the replay`
    pub(super) line: String,
    pub(super) changed: usize,
    pub(super) new: usize,
    pub(super) removed: usize,
    /// Of the changed: only appended to, or the same bytes after all
    /// (known once copied).
    pub(super) appended: AtomicU64,
    pub(super) same: AtomicU64,
    /// `<host>/_before-journal`
    pub(super) before: String,
}

impl Tally {
    pub(super) fn message(&self) -> String {
        let appended = self.appended.load(Relaxed) as usize;
        let changed = self.changed.saturating_sub(self.same.load(Relaxed) as usize);
        let grown = if appended > 0 { format!(" ({appended} only appended to)") } else { String::new() };
        let apart = changed.saturating_sub(appended) + self.removed;
        let before = if apart > 0 { format!("; as they lie on disk: {}", self.before) } else { String::new() };
        format!("{} changed {changed}{grown}, created {} and removed {}{before}", self.line, self.new, self.removed)
    }
}

impl VolumeJob<'_> {
    /// `<host>/<path on the machine>`: the body file's name for a file.
    /// The host's folder name.
    pub(super) fn host(&self) -> &str {
        self.out_root.get(1).map_or("", String::as_str)
    }

    pub(super) fn body_name(&self, comps: &[String]) -> String {
        self.out_root[1..].iter().chain(comps).cloned().collect::<Vec<_>>().join("/")
    }
}

/// UID → name from the host's `/etc/passwd` (on its OS root), if readable.
pub(super) fn host_users(host: &Host) -> HashMap<u32, String> {
    let Some(fs) = host.volumes.iter().find(|v| v.is_os_root).and_then(|v| v.fs.as_deref()) else { return HashMap::new() };
    match crate::fs::lookup(fs, b"/etc/passwd") {
        Ok(Some(node)) => crate::fs::read_small(fs, node, 16 << 20).map(|t| crate::convert::lastlog::passwd_users(&t)).unwrap_or_default(),
        _ => HashMap::new(),
    }
}

/// A container's output folder under its host's: `containers/<folder>`,
/// each `/`-separated part of the folder (`_layers/3`) a component.
pub(super) fn container_folder(folder: &str) -> Vec<String> {
    std::iter::once("containers".to_string()).chain(folder.split('/').map(|p| outpath::component(p.as_bytes()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_files_go_first_the_others_in_disk_order() {
        let item = |node, size| plan::Item {
            node,
            comps: Vec::new(),
            meta: Some(crate::fs::Metadata { node, size, ..Default::default() }),
            target: String::new(),
            kind: FileKind::File,
            skip: None,
            error: None,
            note: None,
        };
        let mut files = [(1, item(9, 10)), (0, item(30, 500)), (0, item(7, 99)), (0, item(5, 1000)), (1, item(2, 20)), (0, item(8, 1))];
        files.sort_by_key(|(v, i)| copy_order(*v, i, 100));
        let order: Vec<_> = files.iter().map(|(v, i)| (*v, i.node)).collect();
        assert_eq!(order, [(0, 5), (0, 30), (0, 7), (0, 8), (1, 2), (1, 9)]);
    }
}
