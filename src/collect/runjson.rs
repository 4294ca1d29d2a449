//! run.json: the account of a run (written last, and whole: a run folder
//! with a run.json is a finished run), and of each piece of evidence in it:
//! its format, volumes, host and containers.

use super::*;

/// Writes `<run>/run.json` for `summary`; `evidence` holds each piece's
/// account, `activity` each host's events per hour.
pub(super) fn write(
    summary: &Summary,
    opts: &Options,
    (started, finished): (Timestamp, Timestamp),
    mut evidence: Vec<serde_json::Value>,
    activity: &BTreeMap<String, crate::util::time::Hourly>,
) -> Result<()> {
    evidence.iter_mut().for_each(add_remote);
    let info = serde_json::json!({
        "snapsift_version": env!("CARGO_PKG_VERSION"),
        "command_line": opts.command_line,
        "case_dir": opts.case_dir,
        "started": started.iso8601(),
        "finished": finished.iso8601(),
        "job": opts.job,
        "evidence": evidence,
        "counts": summary.counts,
        "journals": summary.replays,
        "findings": summary.findings,
        "skipped_volumes": summary.skipped,
        // Host → {hour since the Unix epoch (UTC) → events in its converted logs}.
        "activity": activity,
        "warnings": summary.warnings,
        "exit_status": summary.exit_code(),
    });
    crate::util::lock::write_atomic(&summary.run_dir.join("run.json"), (serde_json::to_string_pretty(&info)? + "\n").as_bytes())?;
    Ok(())
}

/// A described evidence entry's `remote`: the accounting of evidence read
/// in place, taken when run.json is written, after every read of the run
/// (`--hash-evidence=all` reads on after the entry was described).
fn add_remote(ev: &mut serde_json::Value) {
    if ev.get("remote").is_none() {
        return;
    }
    if let Some((size, stats)) = ev["path"].as_str().and_then(|p| crate::evidence::remote::stats_of(Path::new(p))) {
        ev["remote"] = stats.json(size);
    }
}

pub(super) fn describe(l: &Loaded, case: &Path) -> serde_json::Value {
    let host_dir = Path::new(HOSTS_FOLDER).join(outpath::component(l.host.name.as_bytes()));
    let vols: Vec<_> = l
        .host
        .volumes
        .iter()
        .map(|v| {
            let out = v.out_prefix.iter().fold(host_dir.clone(), |p, c| p.join(outpath::component(c.as_bytes())));
            serde_json::json!({
                "id": v.id(),
                "offset": v.volume.as_ref().map(|x| x.offset),
                "size": v.volume.as_ref().map(|x| x.size),
                "partition_type": v.volume.as_ref().map(|x| x.kind.clone()),
                "partition_name": v.volume.as_ref().and_then(|x| x.name.clone()),
                "partition_guid": v.volume.as_ref().and_then(|x| x.guid.clone()),
                "filesystem": v.fs.as_ref().map(|f| f.kind()),
                "label": v.fs.as_ref().and_then(|f| f.label()),
                "uuid": v.fs.as_ref().and_then(|f| f.uuid()),
                "os_root": v.is_os_root,
                "mount_point": v.mount_point,
                "lv": v.volume.as_ref().and_then(|x| x.lv.clone()),
                "snapshot_of": v.volume.as_ref().and_then(|x| x.snapshot_of.clone()),
                "shadow_copy": v.volume.as_ref().and_then(|x| x.shadow.as_ref()).map(|s| serde_json::json!({
                    "number": s.number,
                    "created": s.created.iso8601(),
                    "store_id": s.store_id,
                    "copy_id": s.copy_id,
                })),
                "btrfs_subvolume": v.subvol.as_ref().map(|s| serde_json::json!({
                    "id": s.id,
                    "path": s.path,
                    "uuid": s.uuid,
                    "parent_uuid": s.parent_uuid,
                    "created": s.created.map(|t| t.iso8601()),
                    "readonly": s.readonly,
                    "snapper_number": crate::host::snapper_number(&s.path),
                })),
                "output_folder": v.fs.as_ref().map(|_| out),
                "problem": v.problem,
                "journal": v.fs.as_ref().and_then(|f| f.replay()).map(|r| {
                    let mut j = serde_json::json!(r);
                    j["message"] = r.message().into();
                    j
                }),
            })
        })
        .collect();
    let _ = case;
    serde_json::json!({
        "path": l.path,
        "files": l.files,
        // Filled in by `write`, at the end of the run.
        "remote": serde_json::Value::Null,
        "format": l.format,
        "size": l.size,
        "partitioning": l.scheme,
        "sector_size": l.sector_size,
        "notes": l.notes,
        "folded": l.folded,
        "lvm_members_only": l.lvm_members_only,
        "host": l.host.name,
        "hostname_source": l.host.name_source,
        "os": l.host.os,
        "volumes": vols,
        "containers": l.host.containers.iter().map(|c| serde_json::json!({
            "folder": container_folder(&c.folder).iter().fold(host_dir.clone(), |p, c| p.join(c)),
            "info": c.info,
            "problems": c.problems,
        })).collect::<Vec<_>>(),
        "warnings": l.host.warnings,
    })
}
