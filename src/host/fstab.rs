//! Where a Linux machine mounted its volumes: `/etc/fstab` and systemd
//! `.mount` units, matched to the volumes found in the evidence by
//! filesystem UUID or label, GPT partition UUID or name, LVM names
//! (`/dev/mapper/vg-lv`, `/dev/vg/lv`) or device names (`/dev/sda2`,
//! `/dev/nvme0n1p2`, `/dev/xvda2`: the partition number).

use super::HostVolume;
use crate::fs::{FileSystem, Subvolume, lookup, read_small};

/// A mount: what (as written) and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub what: String,
    pub point: String,
    /// A Btrfs subvolume named by the options (`subvol=@/var`,
    /// `subvolid=259`) rather than the filesystem's default one.
    pub subvol: Option<SubvolSpec>,
}

/// How a mount names a Btrfs subvolume.
#[derive(Debug, Clone, PartialEq)]
pub enum SubvolSpec {
    /// From the top level; a leading `/` is optional (`/@/var`, `@/var`).
    Path(String),
    Id(u64),
}

impl SubvolSpec {
    pub fn matches(&self, s: &Subvolume) -> bool {
        match self {
            SubvolSpec::Path(p) => p.trim_matches('/') == s.path,
            SubvolSpec::Id(id) => *id == s.id,
        }
    }
}

impl std::fmt::Display for SubvolSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubvolSpec::Path(p) => write!(f, "subvol={p}"),
            SubvolSpec::Id(id) => write!(f, "subvolid={id}"),
        }
    }
}

/// `subvol=` or `subvolid=` among mount options (the path wins when both
/// are given, as the kernel requires them to agree).
fn subvol_option(options: &str) -> Option<SubvolSpec> {
    let opts: Vec<&str> = options.split(',').collect();
    let path = opts.iter().find_map(|o| o.strip_prefix("subvol=")).map(|p| SubvolSpec::Path(unescape(p)));
    path.or_else(|| opts.iter().find_map(|o| o.strip_prefix("subvolid=")?.parse().ok()).map(SubvolSpec::Id))
}

/// Filesystems that hold no files of the machine's disks.
const PSEUDO: &[&str] = &[
    "swap",
    "proc",
    "sysfs",
    "tmpfs",
    "devpts",
    "devtmpfs",
    "none",
    "nfs",
    "nfs4",
    "cifs",
    "efivarfs",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "overlay",
    "fuse",
];

pub fn mounts(fs: &dyn FileSystem) -> Vec<Mount> {
    let mut out = Vec::new();
    if let Some(text) = file(fs, "/etc/fstab") {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 3 || !f[1].starts_with('/') || PSEUDO.contains(&f[2]) {
                continue;
            }
            let subvol = f.get(3).and_then(|o| subvol_option(o));
            out.push(Mount { what: unescape(f[0]), point: unescape(f[1]), subvol });
        }
    }
    for dir in ["/etc/systemd/system"] {
        let Ok(Some(d)) = lookup(fs, dir.as_bytes()) else { continue };
        let Ok(entries) = fs.read_dir(d) else { continue };
        for e in entries.iter().filter(|e| e.name.ends_with(b".mount")) {
            let path = format!("{dir}/{}", String::from_utf8_lossy(&e.name));
            let Some(text) = file(fs, &path) else { continue };
            let key = |k: &str| text.lines().find_map(|l| l.trim().strip_prefix(k).map(|v| v.trim().to_string()));
            let typ = key("Type=").unwrap_or_default();
            if let (Some(what), Some(point)) = (key("What="), key("Where="))
                && !PSEUDO.contains(&typ.as_str())
                && point.starts_with('/')
            {
                let subvol = key("Options=").and_then(|o| subvol_option(&o));
                out.push(Mount { what, point, subvol });
            }
        }
    }
    out
}

fn file(fs: &dyn FileSystem, path: &str) -> Option<String> {
    let node = lookup(fs, path.as_bytes()).ok()??;
    read_small(fs, node, 1 << 20).ok().map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// fstab escapes spaces and tabs as `\040`, `\011`.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
}

/// Does `what` (an fstab device spec) name volume `v`?
pub fn names(what: &str, v: &HostVolume) -> bool {
    let fs = v.fs.as_deref();
    let vol = v.volume.as_ref();
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let (kind, value) = match what.split_once('=') {
        Some((k, val)) if !what.starts_with('/') => (k.to_ascii_uppercase(), val.trim_matches('"').to_string()),
        _ => match what.strip_prefix("/dev/disk/by-") {
            Some(rest) => match rest.split_once('/') {
                Some(("uuid", x)) => ("UUID".into(), x.into()),
                Some(("label", x)) => ("LABEL".into(), x.replace("\\x20", " ")),
                Some(("partuuid", x)) => ("PARTUUID".into(), x.into()),
                Some(("partlabel", x)) => ("PARTLABEL".into(), x.into()),
                _ => return false,
            },
            None => ("DEV".into(), what.to_string()),
        },
    };
    match kind.as_str() {
        "UUID" => fs.and_then(|f| f.uuid()).is_some_and(|u| eq(&u, &value)),
        "LABEL" => fs.and_then(|f| f.label()).is_some_and(|l| l == value),
        "PARTUUID" => vol.and_then(|x| x.guid.as_deref()).is_some_and(|g| eq(g, &value)),
        "PARTLABEL" => vol.and_then(|x| x.name.as_deref()).is_some_and(|n| n == value),
        "DEV" => vol.is_some_and(|x| match &x.lv {
            Some(lv) => lvm_device(&value).is_some_and(|d| d == *lv),
            None => x.number > 0 && partition_number(&value) == Some(x.number),
        }),
        _ => false,
    }
}

/// `/dev/mapper/vg-lv` (dashes inside names doubled) or `/dev/vg/lv` → `vg/lv`.
fn lvm_device(dev: &str) -> Option<String> {
    if let Some(m) = dev.strip_prefix("/dev/mapper/") {
        // Split at the first single dash; "--" is an escaped dash.
        let b = m.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'-' {
                if b.get(i + 1) == Some(&b'-') {
                    i += 2;
                    continue;
                }
                let (vg, lv) = (&m[..i], &m[i + 1..]);
                return Some(format!("{}/{}", vg.replace("--", "-"), lv.replace("--", "-")));
            }
            i += 1;
        }
        return None;
    }
    let rest = dev.strip_prefix("/dev/")?;
    let (vg, lv) = rest.split_once('/')?;
    (!lv.contains('/')).then(|| format!("{vg}/{lv}"))
}

/// The partition number of `/dev/sda2`, `/dev/xvda2`, `/dev/vda2`,
/// `/dev/nvme0n1p2`, `/dev/mmcblk0p2`, `/dev/hda2`.
fn partition_number(dev: &str) -> Option<u32> {
    let name = dev.strip_prefix("/dev/")?;
    let digits_at = name.rfind(|c: char| !c.is_ascii_digit())? + 1;
    let (stem, num) = name.split_at(digits_at);
    if num.is_empty() {
        return None;
    }
    let ok = if stem.starts_with("nvme") || stem.starts_with("mmcblk") || stem.starts_with("loop") {
        stem.ends_with('p')
    } else {
        ["sd", "xvd", "vd", "hd"].iter().any(|p| stem.starts_with(p) && stem[p.len()..].chars().all(|c| c.is_ascii_lowercase()))
    };
    if ok { num.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        assert_eq!(partition_number("/dev/sda2"), Some(2));
        assert_eq!(partition_number("/dev/xvdf1"), Some(1));
        assert_eq!(partition_number("/dev/nvme0n1p3"), Some(3));
        assert_eq!(partition_number("/dev/nvme0n1"), None);
        assert_eq!(partition_number("/dev/mapper/x"), None);
        assert_eq!(lvm_device("/dev/mapper/vg0-var_log").as_deref(), Some("vg0/var_log"));
        assert_eq!(lvm_device("/dev/mapper/my--vg-lv--1").as_deref(), Some("my-vg/lv-1"));
        assert_eq!(lvm_device("/dev/vg0/home").as_deref(), Some("vg0/home"));
        assert_eq!(lvm_device("/dev/sda1"), None);
    }

    #[test]
    fn subvolume_options() {
        assert_eq!(subvol_option("defaults,subvol=/@/var,compress=zstd:1"), Some(SubvolSpec::Path("/@/var".into())));
        assert_eq!(subvol_option("subvolid=259"), Some(SubvolSpec::Id(259)));
        assert_eq!(subvol_option("subvolid=x"), None);
        assert_eq!(subvol_option("noatime"), None);
        let sv = Subvolume { id: 259, path: "@/var".into(), uuid: None, parent_uuid: None, created: None, readonly: false, shown: false };
        assert!(SubvolSpec::Path("/@/var".into()).matches(&sv) && SubvolSpec::Path("@/var".into()).matches(&sv));
        assert!(SubvolSpec::Id(259).matches(&sv) && !SubvolSpec::Path("@".into()).matches(&sv));
    }
}
