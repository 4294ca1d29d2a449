//! What a journal or log replay leaves behind: an overlay of the volume.
//!
//! A snapshot of a running machine is crash-consistent: committed changes may
//! sit in the filesystem's journal (ext3/4 jbd2) or log (XFS) and not yet in
//! their home blocks. The kernel replays them at mount; we never write the
//! evidence, so a replay becomes an [`Overlay`]: units of the volume whose
//! bytes come from elsewhere (a journal block, or bytes rebuilt in memory),
//! read under every access the filesystem reader makes. The reader opened on
//! the overlay sees what the machine had; one opened on the volume itself
//! sees what lies on disk, and the two are compared file by file.

use crate::evidence::{ReadAt, Source};
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

/// Where one replayed unit's bytes come from.
pub enum Patch {
    /// The unit's bytes are at this byte offset of the volume (a journal
    /// block); `unescape` puts back the magic number jbd2 zeroed in the
    /// journal copy of a block that started with it.
    Moved { from: u64, unescape: Option<[u8; 4]> },
    /// Rebuilt in memory (XFS: regions of a logged buffer over its old bytes).
    Bytes(Box<[u8]>),
}

/// The volume as it is after a replay: `unit`-sized pieces replaced.
pub struct Overlay {
    base: Source,
    unit: u64,
    patches: BTreeMap<u64, Patch>,
}

impl Overlay {
    /// `unit` must be a power of two (the filesystem block, or a 512-byte
    /// sector); patch keys are unit numbers.
    pub fn new(base: Source, unit: u64, patches: BTreeMap<u64, Patch>) -> Overlay {
        debug_assert!(unit.is_power_of_two());
        Overlay { base, unit, patches }
    }

    pub fn units(&self) -> usize {
        self.patches.len()
    }

    /// Whether any replayed unit overlaps `[offset, offset + len)`.
    pub fn touches(&self, offset: u64, len: u64) -> bool {
        if len == 0 {
            return false;
        }
        let first = offset / self.unit;
        let last = offset.saturating_add(len - 1) / self.unit;
        self.patches.range(first..=last).next().is_some()
    }

    fn unit_bytes(&self, patch: &Patch, into: &mut [u8], at: usize) -> io::Result<()> {
        match patch {
            Patch::Moved { from, unescape } => {
                self.base.read_exact_at(from + at as u64, into)?;
                if let Some(magic) = unescape {
                    for (i, b) in magic.iter().enumerate() {
                        if let Some(slot) = i.checked_sub(at).and_then(|j| into.get_mut(j)) {
                            *slot = *b;
                        }
                    }
                }
            }
            Patch::Bytes(b) => {
                let src = b
                    .get(at..at + into.len())
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "replayed unit shorter than its size"))?;
                into.copy_from_slice(src);
            }
        }
        Ok(())
    }
}

impl ReadAt for Overlay {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.base.read_at(offset, buf)?;
        if n == 0 {
            return Ok(0);
        }
        let end = offset + n as u64;
        for (&u, patch) in self.patches.range(offset / self.unit..=(end - 1) / self.unit) {
            let (us, ue) = (u * self.unit, (u + 1) * self.unit);
            let (from, to) = (us.max(offset), ue.min(end));
            let dst = &mut buf[(from - offset) as usize..(to - offset) as usize];
            self.unit_bytes(patch, dst, (from - us) as usize)?;
        }
        Ok(n)
    }
    fn len(&self) -> u64 {
        self.base.len()
    }
}

/// How a replay went (run.json's `status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum Status {
    /// Every committed transaction replayed (possibly none).
    #[default]
    #[serde(rename = "replayed")]
    Replayed,
    /// Replayed up to a damaged transaction; later ones are not shown.
    #[serde(rename = "stopped")]
    Stopped,
    /// Nothing replayed: `--no-replay`, or a journal the kernel would refuse.
    #[serde(rename = "not replayed")]
    NotReplayed,
    /// The journal lives on another device.
    #[serde(rename = "external")]
    External,
}

/// What replaying a volume's journal did, for run.json, the report and the
/// summary.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Replay {
    /// `jbd2 journal` or `XFS log`.
    pub log: &'static str,
    pub status: Status,
    pub transactions: u64,
    /// First and last transaction replayed (jbd2 sequence numbers, XFS log
    /// sequence numbers as `cycle:block`).
    pub first: Option<String>,
    pub last: Option<String>,
    /// Units of the volume the replay changed (filesystem blocks, or XFS
    /// 512-byte sectors in `unit` bytes).
    pub blocks: u64,
    pub unit: u64,
    /// Why the replay stopped early or did not happen.
    pub reason: Option<String>,
    /// What was left out knowingly (jbd2 fast-commit blocks, …).
    pub notes: Vec<String>,
}

impl Replay {
    /// One line for the summary and the report.
    pub fn message(&self) -> String {
        let range = match (&self.first, &self.last) {
            (Some(a), Some(b)) if a != b => format!(" (sequence {a}–{b})"),
            (Some(a), _) => format!(" (sequence {a})"),
            _ => String::new(),
        };
        let what = format!(
            "{} replayed: {} transaction{}{range}, {} block{}",
            self.log,
            self.transactions,
            if self.transactions == 1 { "" } else { "s" },
            self.blocks,
            if self.blocks == 1 { "" } else { "s" },
        );
        let reason = self.reason.as_deref().unwrap_or("no reason recorded");
        let mut msg = match self.status {
            Status::Replayed => what,
            Status::Stopped => format!("{what}; replay stopped: {reason}; later changes are not shown"),
            Status::NotReplayed | Status::External => {
                format!("{} not replayed: {reason}; files are read as they lie on disk", self.log)
            }
        };
        for n in &self.notes {
            msg.push_str("; ");
            msg.push_str(n);
        }
        msg
    }
}

/// A filesystem that replays its journal or log: what [`open_replayed`]
/// needs to hand the account, the warnings and the on-disk view over.
pub trait Replaying: Sized {
    fn warn(&self, msg: String);
    /// Takes the warnings said so far by `disk` (the on-disk view, opened
    /// first), so that the view read from now on has them all.
    fn take_warnings(&mut self, disk: &mut Self);
    /// The account of the replay, and with a replayed view the overlay it
    /// reads through and the on-disk view beside it.
    fn set_replay(&mut self, replay: Replay, replayed: Option<(Arc<Overlay>, Arc<Self>)>);
}

/// The step every replaying filesystem shares after its log is read: a
/// replay that stopped or did not happen is warned about (on the on-disk
/// filesystem `disk`); the patches become an overlay of `dev` in `unit`s;
/// `open` opens the filesystem on it, which is returned with `disk` kept
/// beside it. A view that cannot be opened leaves `disk`, which says why.
pub fn open_replayed<F: Replaying>(
    dev: Source,
    unit: u64,
    patches: BTreeMap<u64, Patch>,
    replay: Replay,
    mut disk: F,
    open: impl FnOnce(Source) -> io::Result<F>,
) -> F {
    if replay.status != Status::Replayed {
        disk.warn(replay.message());
    }
    if patches.is_empty() {
        disk.set_replay(replay, None);
        return disk;
    }
    let overlay = Arc::new(Overlay::new(dev, unit, patches));
    match open(overlay.clone()) {
        Ok(mut view) => {
            view.take_warnings(&mut disk);
            view.set_replay(replay, Some((overlay, Arc::new(disk))));
            view
        }
        Err(e) => {
            disk.warn(format!(
                "{}, but the replayed filesystem cannot be opened ({e}); files are read as they lie on disk",
                replay.message()
            ));
            let reason = Some(format!("the replayed filesystem cannot be opened: {e}"));
            disk.set_replay(Replay { status: Status::NotReplayed, reason, ..replay }, None);
            disk
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_cover_partial_reads() {
        let base: Vec<u8> = (0..64u8).collect();
        let mut p = BTreeMap::new();
        // unit 1 (bytes 16..32) comes from unit 3, with its magic restored.
        p.insert(1, Patch::Moved { from: 48, unescape: Some(*b"MAGI") });
        p.insert(2, Patch::Bytes(vec![0xAA; 16].into_boxed_slice()));
        let o = Overlay::new(Arc::new(base), 16, p);
        let mut buf = [0u8; 20];
        assert_eq!(o.read_at(14, &mut buf).unwrap(), 20);
        assert_eq!(&buf[..2], &[14, 15]);
        assert_eq!(&buf[2..6], b"MAGI");
        assert_eq!(&buf[6..18], &(52..64u8).collect::<Vec<_>>()[..]);
        assert_eq!(&buf[18..], &[0xAA, 0xAA]);
        // Reading from inside the magic: only its tail is restored.
        let mut b = [0u8; 3];
        o.read_at(18, &mut b).unwrap();
        assert_eq!(&b, b"GI4");
        assert!(o.touches(31, 1) && !o.touches(0, 16) && !o.touches(48, 16));
    }
}
