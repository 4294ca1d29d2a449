//! Every directory of the volume at once, from one pass over $MFT read in
//! large chunks, for a sweep that would list nearly every directory anyway:
//! a directory-by-directory walk reads each index and then, for every
//! entry, that entry's record header, at random places in $MFT.
//!
//! Each in-use record's `$FILE_NAME` attributes (base and extension records
//! alike, so names that live only in an extension record are found) give
//! its names and parents; a parent must be an in-use directory with the
//! sequence number the name records. The result is what `read_dir` gives,
//! for every directory reachable from the root. A name whose parent is gone
//! or was reused, or that cannot be reached from the root (a loop of
//! parents), is an orphan: reported, and in no directory. Records that
//! $MFT's bitmap says are in use but cannot be read make the scan fail, so
//! the caller reads directories one by one and sees each such file as an
//! error instead of missing it.

use super::filename::{self, FileName, NS_DOS};
use super::mft::kind_of;
use super::record::*;
use super::{Ntfs, ROOT, corrupt};
use crate::fs::{DirEntry, Listing, NodeId};
use std::collections::{HashMap, HashSet};
use std::io;

/// Bytes of $MFT read at once.
const CHUNK: u64 = 4 << 20;
/// $MFT bitmaps larger than this (2^29 records) are corrupt.
const MAX_BITMAP: u64 = 64 << 20;
/// Record numbers named in the orphan warning.
const EXAMPLES: usize = 10;

/// What the scan keeps of one record.
#[derive(Clone, Copy, Default)]
struct Rec {
    seq: u16,
    /// Header flags of a base record in use; 0 for anything else.
    flags: u16,
}

/// A `$FILE_NAME` found in a record: whose it is, and the base record's
/// sequence number an extension record expects (None: found in the base).
struct Found {
    owner: u64,
    owner_seq: Option<u16>,
    name: FileName,
}

impl Ntfs {
    pub(super) fn list_all(&self) -> io::Result<Listing> {
        let rs = self.boot.record_size;
        let mft = self.file(0)?;
        let bitmap = mft.attr(AT_BITMAP, &[]).ok_or_else(|| corrupt("unreadable: $MFT has no bitmap"))?;
        let bitmap = self.attr_bytes(bitmap, MAX_BITMAP)?;
        // $MFT cannot be larger than the volume, whatever its runs say.
        let volume = self.boot.total_clusters.saturating_mul(self.boot.cluster_size);
        let count = (self.mft.data_size.min(volume) / rs).min(bitmap.len() as u64 * 8);
        let mut recs: Vec<Rec> = Vec::new();
        let mut found: Vec<Found> = Vec::new();
        // Reparse tags by owner, with the owner's expected sequence number.
        let mut tags: Vec<(u64, Option<u16>, u32)> = Vec::new();
        let mut damaged: Vec<u64> = Vec::new();
        let per = (CHUNK / rs).max(1);
        let mut buf = vec![0u8; (per * rs) as usize];
        let mut num = 0u64;
        while num < count {
            let n = per.min(count - num);
            let chunk = &mut buf[..(n * rs) as usize];
            self.read_stream_exact(&self.mft, num * rs, chunk)?;
            for raw in chunk.chunks_exact_mut(rs as usize) {
                let in_bitmap = bitmap[(num / 8) as usize] >> (num % 8) & 1 == 1;
                match scan_record(num, raw, &mut found, &mut tags) {
                    Ok(r) => recs.push(r),
                    Err(in_use) => {
                        if in_use || in_bitmap {
                            damaged.push(num);
                        }
                        recs.push(Rec::default());
                    }
                }
                num += 1;
            }
        }
        if !damaged.is_empty() {
            return Err(corrupt(format!("{} record(s) in use could not be read (e.g. {})", damaged.len(), list(&damaged))));
        }
        let base = |r: u64, want: Option<u16>| {
            recs.get(r as usize).copied().filter(|b| b.flags & FLAG_IN_USE != 0 && want.is_none_or(|w| w == b.seq))
        };
        let mut tag_of: HashMap<u64, u32> = HashMap::new();
        for (owner, want, tag) in tags {
            if base(owner, want).is_some() {
                tag_of.insert(owner, tag);
            }
        }
        // directory → (child, namespace, name)
        let mut dirs: HashMap<NodeId, Vec<(u64, u8, Vec<u8>)>> = HashMap::new();
        let mut orphans: Vec<u64> = Vec::new();
        for f in found {
            // A stale extension record (its base freed or reused) says nothing.
            if base(f.owner, f.owner_seq).is_none() {
                continue;
            }
            let n = f.name;
            if n.parent == f.owner {
                // The root's own name (`.`); anything else is its own parent.
                if f.owner != ROOT {
                    orphans.push(f.owner);
                }
                continue;
            }
            // A parent recorded with sequence number 0 is not checked, as
            // index entries with 0 are not.
            let want = (n.parent_seq != 0).then_some(n.parent_seq);
            match base(n.parent, want) {
                Some(p) if p.flags & FLAG_DIRECTORY != 0 => dirs.entry(n.parent).or_default().push((f.owner, n.namespace, n.name)),
                _ => orphans.push(f.owner),
            }
        }
        // What the root reaches; the rest hangs off orphans or loops.
        let mut reached = HashSet::from([ROOT]);
        let mut stack = vec![ROOT];
        while let Some(d) = stack.pop() {
            for &(child, _, _) in dirs.get(&d).map_or(&[][..], |v| &v[..]) {
                if dirs.contains_key(&child) && reached.insert(child) {
                    stack.push(child);
                }
            }
        }
        let mut out: Listing = HashMap::with_capacity(reached.len());
        for (dir, names) in dirs {
            if !reached.contains(&dir) {
                orphans.extend(names.iter().map(|n| n.0));
                continue;
            }
            let flags = |c: u64| recs.get(c as usize).map_or(0, |r| r.flags);
            out.insert(dir, entries(names, |c| kind_of(flags(c), tag_of.get(&c).copied())));
        }
        if !orphans.is_empty() {
            orphans.sort_unstable();
            orphans.dedup();
            self.warn(format!(
                "{} file(s) whose parent directory is gone, was reused or is not reachable from the root \
                 (orphans; in no directory, not listed): records {}",
                orphans.len(),
                list(&orphans)
            ));
        }
        Ok(out)
    }
}

/// Reads one record's names and reparse tag into `found` and `tags`. Err
/// (whether the record says it is in use) when it cannot be read.
fn scan_record(num: u64, raw: &mut [u8], found: &mut Vec<Found>, tags: &mut Vec<(u64, Option<u16>, u32)>) -> Result<Rec, bool> {
    if raw.get(0..4) != Some(b"FILE") {
        // Never used (zeros), or damaged: the bitmap tells.
        return Err(false);
    }
    if apply_fixups(raw, b"FILE", "MFT record").is_err() {
        return Err(false);
    }
    let h = Header::parse(raw);
    if h.flags & FLAG_IN_USE == 0 {
        return Ok(Rec { seq: h.seq, flags: 0 });
    }
    let (owner, owner_seq) = if h.extension { (h.base, Some(h.base_seq)) } else { (num, None) };
    let mut names = Vec::new();
    for a in raw_attrs(num, raw) {
        let a = a.map_err(|_| true)?;
        match attr_type(a) {
            AT_FILE_NAME => {
                if let Some(n) = resident_value(a).and_then(FileName::parse) {
                    names.push(Found { owner, owner_seq, name: n });
                }
            }
            // A non-resident reparse point is not a link, as in `File::reparse`.
            AT_REPARSE_POINT => tags.push((owner, owner_seq, resident_value(a).map_or(0, |v| filename::reparse_target(v).0))),
            _ => {}
        }
    }
    found.extend(names);
    Ok(Rec { seq: h.seq, flags: if h.extension { 0 } else { h.flags } })
}

/// One directory's entries as `read_dir` gives them: a file with a long
/// name shows once, not also under its DOS 8.3 name; no `.`/`..`; each
/// (file, name) once; sorted by name.
fn entries(mut names: Vec<(u64, u8, Vec<u8>)>, kind: impl Fn(u64) -> crate::fs::FileKind) -> Vec<DirEntry> {
    let long: HashSet<u64> = names.iter().filter(|n| n.1 != NS_DOS).map(|n| n.0).collect();
    names.retain(|(c, ns, name)| !(*ns == NS_DOS && long.contains(c)) && name != b"." && name != b"..");
    names.sort_by(|a, b| (&a.2, a.0).cmp(&(&b.2, b.0)));
    names.dedup_by(|a, b| a.0 == b.0 && a.2 == b.2);
    names.into_iter().map(|(node, _, name)| DirEntry { name, node, kind: kind(node) }).collect()
}

fn list(nums: &[u64]) -> String {
    let mut s: Vec<String> = nums.iter().take(EXAMPLES).map(|n| n.to_string()).collect();
    if nums.len() > EXAMPLES {
        s.push("…".into());
    }
    s.join(", ")
}
