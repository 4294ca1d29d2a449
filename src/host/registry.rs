//! What the SYSTEM hive says about a Windows machine: its computer name,
//! which volume had which drive letter, and where its event logs are.

use super::regf::Hive;

/// `ControlSet00N` as `Select\Current` names it (default 1).
fn current_control_set(h: &Hive) -> String {
    let n = h.key("Select").and_then(|k| h.value(k, "Current")).and_then(|v| v.dword()).unwrap_or(1);
    format!("ControlSet{n:03}")
}

/// The computer name (NetBIOS), else the TCP/IP host name.
pub fn computer_name(h: &Hive) -> Option<String> {
    computer_name_at(h).map(|(n, _)| n)
}

/// The computer name and the key it was read from.
pub fn computer_name_at(h: &Hive) -> Option<(String, String)> {
    let cs = current_control_set(h);
    let from = |path: &str, value: &str| {
        let key = format!("{cs}\\{path}");
        h.key(&key)
            .and_then(|k| h.value(k, value))
            .and_then(|v| v.string())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(|s| (s, format!("{key}\\{value}")))
    };
    from("Control\\ComputerName\\ComputerName", "ComputerName").or_else(|| from("Services\\Tcpip\\Parameters", "Hostname"))
}

/// "Windows Server 2022 Datacenter 21H2 (build 20348)" from the SOFTWARE
/// hive's `Microsoft\Windows NT\CurrentVersion`. Windows 11 keeps
/// "Windows 10" in ProductName; a build of 22000 or later is Windows 11.
pub fn os_version(h: &Hive) -> Option<String> {
    let k = h.key("Microsoft\\Windows NT\\CurrentVersion")?;
    let text = |name: &str| h.value(k, name).and_then(|v| v.string()).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let mut product = text("ProductName")?;
    let build = text("CurrentBuild").or_else(|| text("CurrentBuildNumber"));
    let n: u32 = build.as_deref().and_then(|b| b.parse().ok()).unwrap_or(0);
    if n >= 22000 && product.starts_with("Windows 10") {
        product = product.replacen("Windows 10", "Windows 11", 1);
    }
    if let Some(v) = text("DisplayVersion").or_else(|| text("ReleaseId")) {
        product = format!("{product} {v}");
    }
    Some(match build {
        Some(b) => format!("{product} (build {b})"),
        None => product,
    })
}

/// What a drive letter pointed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountTarget {
    /// MBR disk signature and the partition's byte offset.
    Mbr {
        signature: u32,
        offset: u64,
    },
    /// GPT unique partition GUID (upper-case text form).
    Gpt(String),
    Other,
}

/// `\DosDevices\X:` entries of `MountedDevices`: (letter, target).
pub fn drive_letters(h: &Hive) -> Vec<(char, MountTarget)> {
    let Some(k) = h.key("MountedDevices") else { return Vec::new() };
    let mut out: Vec<(char, MountTarget)> = h
        .values(k)
        .into_iter()
        .filter_map(|(name, v)| {
            let letter = name.strip_prefix("\\DosDevices\\")?.strip_suffix(':')?.chars().next()?.to_ascii_uppercase();
            let d = &v.data;
            let target = if d.len() == 12 {
                MountTarget::Mbr {
                    signature: u32::from_le_bytes(d[0..4].try_into().ok()?),
                    offset: u64::from_le_bytes(d[4..12].try_into().ok()?),
                }
            } else if d.len() == 24 && d.starts_with(b"DMIO:ID:") {
                MountTarget::Gpt(crate::util::bytes::guid(&d[8..24]))
            } else {
                MountTarget::Other
            };
            letter.is_ascii_alphabetic().then_some((letter, target))
        })
        .collect();
    out.sort_by_key(|(l, _)| *l);
    out
}

/// The drive letter Windows gave `v`, from `MountedDevices`: its GPT
/// partition GUID, or its MBR disk signature and byte offset.
pub fn letter_of(v: &crate::volume::Volume, letters: &[(char, MountTarget)]) -> Option<char> {
    letters.iter().find_map(|(l, t)| {
        let hit = match t {
            MountTarget::Gpt(g) => v.guid.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(g)),
            MountTarget::Mbr { signature, offset } => v.mbr_signature == Some(*signature) && v.offset == *offset,
            MountTarget::Other => false,
        };
        hit.then_some(*l)
    })
}

/// Event log files named in `Services\EventLog\<log>\File` (paths as
/// written, e.g. `%SystemRoot%\System32\Winevt\Logs\Security.evtx`), for
/// logs an administrator moved elsewhere.
pub fn event_log_files(h: &Hive) -> Vec<(String, String)> {
    let cs = current_control_set(h);
    let Some(el) = h.key(&format!("{cs}\\Services\\EventLog")) else { return Vec::new() };
    h.subkeys(el)
        .into_iter()
        .filter_map(|k| {
            let file = h.value(k, "File")?.string()?;
            Some((h.name(k)?, file))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Option<Vec<u8>> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples/registry/SYSTEM.gz");
        let f = std::fs::File::open(&p).ok()?;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(f).read_to_end(&mut out).ok()?;
        Some(out)
    }

    #[test]
    fn reads_a_real_system_hive() {
        let Some(data) = sample() else {
            println!("SKIPPED: ../shared/samples/registry/SYSTEM.gz is absent (third-party sample)");
            return;
        };
        let h = Hive::parse(data).expect("a valid hive");
        assert_eq!(computer_name(&h).as_deref(), Some("DESKTOP-M3OSHQU"));
        let logs = event_log_files(&h);
        assert!(logs.iter().any(|(n, f)| n == "Security" && f.to_lowercase().ends_with("security.evtx")), "{logs:?}");
        let letters = drive_letters(&h);
        assert!(letters.iter().any(|(l, _)| *l == 'C'), "{letters:?}");
    }

    /// The real hive at the start of a 200 MiB one (the rest reads as
    /// zeros), counting the bytes read: what snapsift looks up costs the
    /// same whatever the hive's size.
    struct Counted {
        data: Vec<u8>,
        len: u64,
        read: std::sync::atomic::AtomicU64,
    }

    impl crate::evidence::ReadAt for Counted {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.len.saturating_sub(offset) as usize);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = usize::try_from(offset).ok().and_then(|o| self.data.get(o + i)).copied().unwrap_or(0);
            }
            self.read.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            Ok(n)
        }
        fn len(&self) -> u64 {
            self.len
        }
    }

    #[test]
    fn a_200_mib_hive_is_read_cell_by_cell_not_whole() {
        let Some(data) = sample() else {
            println!("SKIPPED: ../shared/samples/registry/SYSTEM.gz is absent (third-party sample)");
            return;
        };
        let real = data.len() as u64;
        let src = std::sync::Arc::new(Counted { data, len: 200 << 20, read: Default::default() });
        struct Shared(std::sync::Arc<Counted>);
        impl crate::evidence::ReadAt for Shared {
            fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0.read_at(offset, buf)
            }
            fn len(&self) -> u64 {
                self.0.len()
            }
        }
        let h = Hive::open(Box::new(Shared(src.clone()))).expect("a valid hive");
        assert_eq!(computer_name(&h).as_deref(), Some("DESKTOP-M3OSHQU"));
        assert!(!event_log_files(&h).is_empty());
        assert!(!drive_letters(&h).is_empty());
        let read = src.read.load(std::sync::atomic::Ordering::Relaxed);
        assert!(read < 4 << 20, "{read} bytes read of a {real}-byte hive in a 200 MiB file");
        println!("{read} bytes read of a {real}-byte hive in a 200 MiB file");
    }

    #[test]
    fn letters_match_gpt_guids_and_mbr_signatures() {
        use crate::volume::{Scheme, Volume};
        let vol = |guid: Option<&str>, sig: Option<u32>, offset: u64| Volume {
            number: 1,
            scheme: Scheme::Gpt,
            offset,
            size: 1,
            kind: String::new(),
            name: None,
            guid: guid.map(String::from),
            lv: None,
            snapshot_of: None,
            shadow: None,
            mbr_signature: sig,
            source: std::sync::Arc::new(Vec::new()),
        };
        let letters = vec![
            ('C', MountTarget::Mbr { signature: 0x5eed, offset: 1 << 20 }),
            ('E', MountTarget::Gpt("0FC63DAF-8483-4772-8E79-3D69D8477DE4".into())),
        ];
        assert_eq!(letter_of(&vol(None, Some(0x5eed), 1 << 20), &letters), Some('C'));
        assert_eq!(letter_of(&vol(None, Some(0x5eed), 2 << 20), &letters), None);
        assert_eq!(letter_of(&vol(Some("0fc63daf-8483-4772-8e79-3d69d8477de4"), None, 0), &letters), Some('E'));
    }

    #[test]
    fn damaged_hives_never_panic() {
        let Some(clean) = sample() else {
            println!("SKIPPED: ../shared/samples/registry/SYSTEM.gz is absent (third-party sample)");
            return;
        };
        let mut seed = 0x1234_5678_9abc_def0u64;
        for round in 0..40 {
            let mut d = clean.clone();
            for _ in 0..2000 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed % d.len() as u64) as usize;
                d[i] = (seed >> 32) as u8;
            }
            if round % 10 == 0 {
                d.truncate(d.len() / (round + 2));
            }
            if let Some(h) = Hive::parse(d) {
                let _ = (computer_name(&h), drive_letters(&h), event_log_files(&h));
            }
        }
    }
}
