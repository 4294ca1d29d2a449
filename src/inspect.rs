//! `snapsift inspect`: the tree a responder wants to see before extracting —
//! container format → partitions → filesystems → OS and hostname.

use crate::host::Loaded;
use std::fmt::Write;

pub fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", units[u]) }
}

pub fn render(l: &Loaded) -> String {
    let mut s = String::new();
    let h = &l.host;
    let _ = writeln!(s, "{}", l.path.display());
    let _ = writeln!(
        s,
        "  container: {}, {}{}",
        l.format,
        human(l.size),
        if l.files.len() > 1 { format!(" in {} files", l.files.len()) } else { String::new() }
    );
    for n in l.notes.iter().cloned().chain(l.folded_notes()) {
        let _ = writeln!(s, "  {n}");
    }
    if let Some(scheme) = l.scheme {
        let name = match scheme {
            crate::volume::Scheme::Gpt => format!("GPT, {}-byte sectors", l.sector_size),
            crate::volume::Scheme::Mbr => "MBR".to_string(),
            crate::volume::Scheme::None => "none (a bare filesystem, or LVM on the whole disk)".to_string(),
            crate::volume::Scheme::Lvm => "LVM2".to_string(),
        };
        let _ = writeln!(s, "  partitioning: {name}");
    }
    let mut said = std::collections::HashSet::new();
    for v in &h.volumes {
        let _ = match &v.volume {
            _ if let Some(sv) = &v.subvol => {
                let made = sv.created.map(|t| format!(", made {}", t.readable())).unwrap_or_default();
                let ro = if sv.readonly { ", read-only" } else { "" };
                write!(s, "  {:<12} Btrfs subvolume {}{made}{ro}", v.id(), sv.id)
            }
            Some(vol) if vol.lv.is_some() || vol.shadow.is_some() => {
                write!(s, "  {:<12} size {:>10}  {}", v.id(), human(vol.size), vol.kind)
            }
            Some(vol) => write!(s, "  {:<5} offset {:>12}  size {:>10}  {}", v.id(), vol.offset, human(vol.size), vol.kind),
            None => write!(s, "  {:<5}", v.id()),
        };
        if let Some(n) = v.volume.as_ref().and_then(|x| x.name.as_ref()) {
            let _ = write!(s, "  \"{n}\"");
        }
        let _ = writeln!(s);
        match (&v.fs, &v.problem) {
            (Some(fs), _) => {
                let _ = write!(s, "        {}", fs.kind());
                if let Some(l) = fs.label() {
                    let _ = write!(s, "  label \"{l}\"");
                }
                if let Some(u) = fs.uuid() {
                    let _ = write!(s, "  uuid {u}");
                }
                let snapshot = v.volume.as_ref().and_then(|x| x.snapshot_of.as_deref());
                let role = match (&v.mount_point, v.is_os_root) {
                    _ if let Some(of) = snapshot => format!("snapshot of {of} → {}", v.out_prefix.join("/")),
                    (_, true) if !v.out_prefix.is_empty() => format!("OS root → {}", v.out_prefix.join("/")),
                    (_, true) => "OS root".to_string(),
                    (Some(m), _) => format!("mounted at {m}"),
                    (None, _) => format!("not mounted → {}", v.out_prefix.join("/")),
                };
                let _ = writeln!(s, "  [{role}]");
                if v.subvol.is_none()
                    && let Some(d) = fs.subvolumes().unwrap_or_default().into_iter().find(|x| x.shown && !x.path.is_empty())
                {
                    let _ = writeln!(s, "        the default subvolume: {} (id {})", d.path, d.id);
                }
                if let Some(r) = fs.replay() {
                    let _ = writeln!(s, "        {}", r.message());
                }
                for w in fs.warnings().into_iter().filter(|w| said.insert(w.clone())) {
                    let _ = writeln!(s, "        warning: {w}");
                }
            }
            (None, Some(p)) => {
                let _ = writeln!(s, "        {p}");
            }
            (None, None) => {}
        }
    }
    if l.lvm_members_only {
        let _ = writeln!(s, "  holds only LVM physical volumes of a volume group read with another disk above");
        return s;
    }
    let os = match (&h.os.pretty, h.os.family) {
        (Some(p), f) => format!("{f} ({p})"),
        (None, f) => f.to_string(),
    };
    let _ = writeln!(s, "  host: {}  (from {})  os: {os}", h.name, h.name_source);
    for (v, why) in &h.failed {
        let _ = writeln!(s, "  {v:<5} {why}");
    }
    let layers = h.containers.iter().filter(|c| c.info.kind == crate::host::containers::Kind::Layer).count();
    if h.containers.len() > layers {
        let _ = writeln!(s, "  containers: {}", h.containers.len() - layers);
    }
    if layers > 0 {
        let _ = writeln!(s, "  container layers extracted alone (their container is unknown): {layers}");
    }
    for c in &h.containers {
        let i = &c.info;
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        if i.kind == crate::host::containers::Kind::Layer {
            let _ = writeln!(
                s,
                "    {}  [{} layer]  {}  whiteouts {}  opaque dirs {}",
                c.folder,
                i.runtime,
                i.layers.join(", "),
                i.whiteouts.len(),
                i.opaque.len()
            );
            continue;
        }
        let _ = writeln!(s, "    {}  [{}]  id {}", c.folder, i.runtime, i.id);
        let _ = writeln!(
            s,
            "      image {}  pod {}  namespace {}  state {}  layers {}",
            opt(&i.image),
            opt(&i.pod),
            opt(&i.pod_namespace.clone().or(i.namespace.clone())),
            opt(&i.state),
            i.layers.len()
        );
    }
    for w in &h.warnings {
        let _ = writeln!(s, "  warning: {w}");
    }
    s
}
