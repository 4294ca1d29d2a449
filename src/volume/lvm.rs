//! LVM2 (Linux Logical Volume Manager): physical volume labels, the
//! metadata text area, and logical volumes as byte ranges of the PVs.
//!
//! Own reader from the on-disk format (lib/format_text in LVM2's source and
//! its documentation): the `lvm2` crate reads only single-PV linear volumes
//! and panics on unexpected metadata. Supported: linear and striped
//! segments over any PVs of the same disk, mirror/raid1 read from their
//! first image, thin volumes through their pool (`thin.rs`); old-style
//! (COW) snapshots and caches are listed and reported as unsupported.

use super::thin;
use crate::evidence::{ReadAt, Source};
use crate::util::bytes::{u32_at, u64_at};
use crate::util::crc::crc32_raw;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;

const SECTOR: u64 = 512;
const MDA_MAGIC: &[u8] = b" LVM2 x[5A%r0N*>";
const MAX_METADATA: u64 = 16 << 20;
/// LVM2's checksum seed (lib/misc/crc.h).
const INITIAL_CRC: u32 = 0xf597_a6cf;

/// A physical volume found on a partition.
pub struct Pv {
    pub uuid: String,
    /// Which disk (of the evidence set) it is on.
    pub disk: usize,
    pub source: Source,
    /// The VG metadata text from this PV's metadata area (latest copy).
    pub metadata: Option<String>,
    /// Why a metadata area could not be used (checksum mismatch, …).
    pub problems: Vec<String>,
}

/// Reads the PV label in the first four sectors, if there is one.
pub fn read_pv(src: &Source) -> Option<Pv> {
    let mut head = vec![0u8; 4 * SECTOR as usize];
    let n = src.read_at(0, &mut head).ok()?;
    let label = (0..4).find(|&i| head.get(i * 512..i * 512 + 8) == Some(b"LABELONE".as_slice()))?;
    let l = &head[label * 512..(label * 512 + 512).min(n)];
    if l.get(24..32) != Some(b"LVM2 001".as_slice()) {
        return None;
    }
    let pvh = label * 512 + u32_at(l, 20) as usize;
    let uuid = String::from_utf8_lossy(head.get(pvh..pvh + 32)?).into_owned();
    // Data area list, then metadata area list, each ended by (0, 0).
    let mut off = pvh + 40;
    let mut lists: Vec<Vec<(u64, u64)>> = vec![Vec::new(), Vec::new()];
    for list in lists.iter_mut() {
        loop {
            let (o, s) = (u64_at(&head, off), u64_at(&head, off + 8));
            off += 16;
            if (o, s) == (0, 0) || off > head.len() {
                break;
            }
            list.push((o, s));
        }
    }
    let mut problems = Vec::new();
    let mut metadata = None;
    for &(o, _) in &lists[1] {
        match read_mda(src, o) {
            Ok(text) => {
                metadata = Some(text);
                break;
            }
            Err(why) => problems.push(format!("LVM metadata area at byte {o} of PV {uuid}: {why}")),
        }
    }
    Some(Pv { uuid, disk: 0, source: src.clone(), metadata, problems })
}

/// The current metadata text of a metadata area (a circular buffer), with
/// the header's and the text's checksums verified.
fn read_mda(src: &Source, start: u64) -> Result<String, String> {
    let mut h = vec![0u8; 512];
    src.read_exact_at(start, &mut h).map_err(|e| e.to_string())?;
    if &h[4..20] != MDA_MAGIC {
        return Err("no metadata area header".into());
    }
    if crc32_raw(INITIAL_CRC, &h[4..512]) != u32_at(&h, 0) {
        return Err("metadata area header checksum mismatch".into());
    }
    let mda_size = u64_at(&h, 32);
    let (off, size, csum) = (u64_at(&h, 40), u64_at(&h, 48), u32_at(&h, 56));
    if size == 0 || size > MAX_METADATA || off >= mda_size.max(1) || mda_size <= 512 {
        return Err("no metadata text recorded".into());
    }
    let mut text = vec![0u8; size as usize];
    // The text may wrap around to just after the 512-byte header.
    let first = (mda_size - off).min(size) as usize;
    let at = start.checked_add(off).ok_or("metadata text offset overflows")?;
    src.read_exact_at(at, &mut text[..first]).map_err(|e| e.to_string())?;
    if first < text.len() {
        src.read_exact_at(start.saturating_add(512), &mut text[first..]).map_err(|e| e.to_string())?;
    }
    if crc32_raw(INITIAL_CRC, &text) != csum {
        return Err("metadata text checksum mismatch (damaged or partly overwritten)".into());
    }
    let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
    Ok(String::from_utf8_lossy(&text[..end]).into_owned())
}

/// A value in LVM's metadata language.
#[derive(Debug, Clone)]
pub enum Value {
    Str(String),
    Int(i64),
    List(Vec<Value>),
    Section(HashMap<String, Value>),
}

impl Value {
    fn get(&self, k: &str) -> Option<&Value> {
        match self {
            Value::Section(m) => m.get(k),
            _ => None,
        }
    }
    fn int(&self, k: &str) -> Option<u64> {
        match self.get(k)? {
            Value::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }
    fn str(&self, k: &str) -> Option<&str> {
        match self.get(k)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    fn sections(&self) -> Vec<(&String, &Value)> {
        match self {
            Value::Section(m) => {
                let mut v: Vec<_> = m.iter().filter(|(_, v)| matches!(v, Value::Section(_))).collect();
                v.sort_by_key(|(k, _)| k.as_str());
                v
            }
            _ => Vec::new(),
        }
    }
}

/// Parses the metadata text: `name = value`, `name { … }`, lists `[a, 1]`,
/// `#` comments. Depth-limited; malformed input ends the section.
pub fn parse(text: &str) -> Value {
    let toks = tokenize(text);
    let mut pos = 0;
    Value::Section(section(&toks, &mut pos, 0))
}

#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Sym(char),
}

fn tokenize(text: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut it = text.chars().peekable();
    while let Some(&c) = it.peek() {
        match c {
            '#' => while it.next().is_some_and(|c| c != '\n') {},
            '"' => {
                it.next();
                let mut s = String::new();
                while let Some(c) = it.next() {
                    match c {
                        '"' => break,
                        '\\' => s.extend(it.next()),
                        c => s.push(c),
                    }
                }
                out.push(Tok::Str(s));
            }
            '{' | '}' | '[' | ']' | '=' | ',' => {
                out.push(Tok::Sym(c));
                it.next();
            }
            c if c.is_whitespace() => {
                it.next();
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = it.peek() {
                    if c.is_whitespace() || "{}[]=,#\"".contains(c) {
                        break;
                    }
                    w.push(c);
                    it.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    out
}

fn section(t: &[Tok], pos: &mut usize, depth: u32) -> HashMap<String, Value> {
    let mut m = HashMap::new();
    while *pos < t.len() {
        let Tok::Word(name) = &t[*pos] else {
            *pos += 1;
            if t[*pos - 1] == Tok::Sym('}') {
                break;
            }
            continue;
        };
        *pos += 1;
        match t.get(*pos) {
            Some(Tok::Sym('{')) if depth < 16 => {
                *pos += 1;
                let s = section(t, pos, depth + 1);
                m.insert(name.clone(), Value::Section(s));
            }
            Some(Tok::Sym('=')) => {
                *pos += 1;
                if let Some(v) = value(t, pos) {
                    m.insert(name.clone(), v);
                }
            }
            _ => {}
        }
    }
    m
}

fn value(t: &[Tok], pos: &mut usize) -> Option<Value> {
    let v = match t.get(*pos)? {
        Tok::Str(s) => Value::Str(s.clone()),
        Tok::Word(w) => Value::Int(w.parse().ok()?),
        Tok::Sym('[') => {
            *pos += 1;
            let mut items = Vec::new();
            while let Some(tok) = t.get(*pos) {
                match tok {
                    Tok::Sym(']') => break,
                    Tok::Sym(',') => *pos += 1,
                    _ => {
                        if let Some(v) = value(t, pos) {
                            items.push(v);
                        } else {
                            *pos += 1;
                        }
                    }
                }
            }
            Value::List(items)
        }
        _ => return None,
    };
    *pos += 1;
    Some(v)
}

/// One mapped piece of a logical volume: `len` bytes at `lv_offset` come
/// from `stripes` (each a PV source and byte offset), `stripe_size` bytes at
/// a time (one stripe: linear).
struct Segment {
    lv_offset: u64,
    len: u64,
    stripes: Vec<(Source, u64)>,
    stripe_size: u64,
}

pub struct LogicalVolume {
    /// The disk holding its first extent: the host it belongs to.
    pub disk: usize,
    pub vg: String,
    pub name: String,
    pub size: u64,
    pub source: Option<Source>,
    /// Why it cannot be read (thin, snapshot, missing PV, …).
    pub problem: Option<String>,
    /// The problem is a feature snapsift lacks, not damage or a missing disk.
    pub unsupported: bool,
    /// The LV (in the same VG) it is a thin snapshot of.
    pub origin: Option<String>,
}

struct LvReader {
    segments: Vec<Segment>,
    size: u64,
}

impl ReadAt for LvReader {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            if pos >= self.size {
                break;
            }
            let i = self.segments.partition_point(|s| s.lv_offset <= pos);
            let Some(seg) = i.checked_sub(1).and_then(|i| self.segments.get(i)) else { break };
            let within = pos - seg.lv_offset;
            if within >= seg.len {
                break;
            }
            let n_stripes = seg.stripes.len() as u64;
            let chunk = within / seg.stripe_size;
            let (pv, base) = &seg.stripes[(chunk % n_stripes) as usize];
            // Saturating: a forged offset past the PV fails as truncated below.
            let pv_off = base.saturating_add((chunk / n_stripes) * seg.stripe_size + within % seg.stripe_size);
            let left = (seg.stripe_size - within % seg.stripe_size).min(seg.len - within);
            let want = (buf.len() - done).min(left as usize);
            let n = pv.read_at(pv_off, &mut buf[done..done + want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("truncated: the physical volume ends before LV byte {pos}"),
                ));
            }
            done += n;
        }
        Ok(done)
    }
    fn len(&self) -> u64 {
        self.size
    }
}

/// The logical volumes of every VG described by `pvs`' metadata (the PVs
/// may come from several disks). PVs whose metadata no PV provides are
/// reported in `failed` as (disk, PV, reason).
pub fn logical_volumes(pvs: &[Pv], warnings: &mut Vec<String>, failed: &mut Vec<(usize, String, String)>) -> Vec<LogicalVolume> {
    // Each VG's newest metadata (highest seqno) among the PVs that carry it.
    let mut vgs: HashMap<String, (u64, Value)> = HashMap::new();
    for pv in pvs {
        let Some(text) = &pv.metadata else { continue };
        for (name, vg) in parse(text).sections() {
            let seq = vg.int("seqno").unwrap_or(0);
            if vgs.get(name).is_none_or(|(s, _)| seq > *s) {
                vgs.insert(name.clone(), (seq, vg.clone()));
            }
        }
    }
    let by_uuid: HashMap<String, &Pv> = pvs.iter().map(|p| (p.uuid.replace('-', ""), p)).collect();
    // A PV no good metadata copy describes: its volumes cannot be found.
    for pv in pvs {
        warnings.extend(pv.problems.iter().cloned());
        let described = vgs.values().any(|(_, vg)| {
            vg.get("physical_volumes").is_some_and(|s| {
                s.sections().iter().any(|(_, p)| p.str("id").is_some_and(|id| id.replace('-', "") == pv.uuid.replace('-', "")))
            })
        });
        if !described {
            let why = pv.problems.last().cloned().unwrap_or_else(|| "no LVM metadata found".into());
            failed.push((pv.disk, format!("LVM PV {}", pv.uuid), format!("unreadable: its logical volumes are unknown: {why}")));
        }
    }
    let mut out = Vec::new();
    let mut names: Vec<_> = vgs.keys().cloned().collect();
    names.sort();
    for vg_name in names {
        let (_, vg) = &vgs[&vg_name];
        let extent = vg.int("extent_size").and_then(|e| e.checked_mul(SECTOR)).unwrap_or(0);
        if extent == 0 {
            warnings.push(format!("LVM volume group {vg_name}: no extent size in its metadata"));
            continue;
        }
        // pvN → (source, byte offset of the first extent)
        let mut pv_map: HashMap<String, (Source, u64)> = HashMap::new();
        let mut pv_disk: HashMap<String, usize> = HashMap::new();
        if let Some(pvsec) = vg.get("physical_volumes") {
            for (pvname, pv) in pvsec.sections() {
                let id = pv.str("id").unwrap_or("").replace('-', "");
                match by_uuid.get(&id) {
                    Some(p) => {
                        pv_disk.insert(pvname.clone(), p.disk);
                        pv_map.insert(pvname.clone(), (p.source.clone(), pv.int("pe_start").unwrap_or(0).saturating_mul(SECTOR)));
                    }
                    None => warnings.push(format!(
                        "LVM volume group {vg_name}: physical volume {pvname} ({}) is not in this evidence; \
                         give all the disks of the machine in one run",
                        pv.str("id").unwrap_or("?")
                    )),
                }
            }
        }
        let mut pools = HashMap::new();
        let lvs = vg.get("logical_volumes").map(|l| l.sections()).unwrap_or_default();
        let all: HashMap<&str, &Value> = lvs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        for (lv_name, lv) in &lvs {
            let visible =
                matches!(lv.get("status"), Some(Value::List(l)) if l.iter().any(|s| matches!(s, Value::Str(s) if s == "VISIBLE")));
            if !visible {
                continue; // raid images, pool metadata: parts of other LVs
            }
            let first_type = lv.sections().first().and_then(|(_, seg)| seg.str("type")).unwrap_or("");
            if first_type == "thin-pool" {
                continue; // a container: its thin volumes are the volumes
            }
            let mapped = if first_type == "thin" {
                thin_lv(lv, &all, &pv_map, extent, &mut pools)
            } else {
                map_lv(lv, &all, &pv_map, extent, 0).map(|(segments, size)| (Arc::new(LvReader { segments, size }) as Source, size))
            };
            let (source, size, problem, unsupported) = match mapped {
                Ok((source, size)) => (Some(source), size, None, false),
                Err(LvError::Unsupported(why)) => (None, 0, Some(why), true),
                Err(LvError::Unreadable(why)) => (None, 0, Some(why), false),
            };
            // The disk of its first extent (else of any PV of the VG here).
            let first_pv = lv.sections().first().and_then(|(_, seg)| match seg.get("stripes") {
                Some(Value::List(l)) => match l.first() {
                    Some(Value::Str(s)) => Some(s.clone()),
                    _ => None,
                },
                _ => None,
            });
            let disk = first_pv.and_then(|n| pv_disk.get(&n).copied()).or_else(|| pv_disk.values().min().copied()).unwrap_or(0);
            let origin = lv.sections().first().and_then(|(_, seg)| seg.str("origin")).map(String::from);
            out.push(LogicalVolume { disk, vg: vg_name.clone(), name: lv_name.to_string(), size, source, problem, unsupported, origin });
        }
    }
    out
}

type Segments = (Vec<Segment>, u64);

/// Thin pools of a VG, opened once: by name, or why they cannot be read.
type Pools = HashMap<String, Result<Arc<thin::Pool>, String>>;

/// A thin LV: its pool's metadata and data LVs mapped as any LV, then the
/// LV's device in the pool's mapping trees.
fn thin_lv(
    lv: &Value,
    all: &HashMap<&str, &Value>,
    pvs: &HashMap<String, (Source, u64)>,
    extent: u64,
    pools: &mut Pools,
) -> Result<(Source, u64), LvError> {
    let segs = lv.sections();
    let [(_, seg)] = segs.as_slice() else { return Err("a thin volume of more than one segment".into()) };
    let size = times(seg.int("extent_count").ok_or("thin segment without extent_count")?, extent)?;
    let id = seg.int("device_id").ok_or("thin segment without device_id")?;
    let pool_name = seg.str("thin_pool").ok_or("thin segment without thin_pool")?;
    let pool = pools
        .entry(pool_name.to_string())
        .or_insert_with(|| {
            let pool = all.get(pool_name).ok_or_else(|| format!("thin pool {pool_name} is not in the metadata"))?;
            let (_, pseg) = pool.sections().into_iter().next().ok_or("thin pool without segments")?;
            let part = |key: &str| -> Result<Source, String> {
                let name = pseg.str(key).ok_or_else(|| format!("thin pool {pool_name} names no {key} volume"))?;
                let sub = all.get(name).ok_or_else(|| format!("thin pool {pool_name}: {name} is not in the metadata"))?;
                match map_lv(sub, all, pvs, extent, 1) {
                    Ok((segments, size)) => Ok(Arc::new(LvReader { segments, size }) as Source),
                    Err(LvError::Unreadable(e) | LvError::Unsupported(e)) => Err(format!("thin pool {pool_name}: {name}: {e}")),
                }
            };
            thin::Pool::open(part("metadata")?, part("pool")?).map_err(|e| format!("thin pool {pool_name}: {e}"))
        })
        .clone()?;
    Ok((pool.device(id, size)?, size))
}

/// A size from the metadata text times a unit: a forged value is damage
/// to report, not an overflow.
fn times(n: u64, unit: u64) -> Result<u64, LvError> {
    n.checked_mul(unit).ok_or_else(|| LvError::Unreadable("a size in the LVM metadata overflows".into()))
}

enum LvError {
    /// Damaged metadata or a missing disk: data that exists cannot be read.
    Unreadable(String),
    /// A kind of LV snapshot does not read yet.
    Unsupported(String),
}

impl From<&str> for LvError {
    fn from(s: &str) -> Self {
        LvError::Unreadable(s.to_string())
    }
}

impl From<String> for LvError {
    fn from(s: String) -> Self {
        LvError::Unreadable(s)
    }
}

fn map_lv(
    lv: &Value,
    all: &HashMap<&str, &Value>,
    pvs: &HashMap<String, (Source, u64)>,
    extent: u64,
    depth: u32,
) -> Result<Segments, LvError> {
    if depth > 4 {
        return Err("LV references nest too deep".into());
    }
    let mut segs = Vec::new();
    let mut size = 0u64;
    for (_, seg) in lv.sections() {
        let start = times(seg.int("start_extent").ok_or("segment without start_extent")?, extent)?;
        let len = times(seg.int("extent_count").ok_or("segment without extent_count")?, extent)?;
        let end = start.checked_add(len).ok_or("segment ends past 2^64 bytes")?;
        let kind = seg.str("type").unwrap_or("");
        let list = |k: &str| match seg.get(k) {
            Some(Value::List(l)) => l.clone(),
            _ => Vec::new(),
        };
        let stripes = match kind {
            "striped" => {
                let items = list("stripes");
                let mut v = Vec::new();
                for pair in items.chunks(2) {
                    let (Some(Value::Str(pv)), Some(Value::Int(pe))) = (pair.first(), pair.get(1)) else {
                        return Err("malformed stripes list".into());
                    };
                    let (src, base) = pvs.get(pv).ok_or_else(|| {
                        format!("its physical volume {pv} is not in this evidence (give every disk of the machine in one run)")
                    })?;
                    let pe = u64::try_from(*pe).map_err(|_| "negative extent in stripes list")?;
                    v.push((src.clone(), base.checked_add(times(pe, extent)?).ok_or("stripe offset overflows")?));
                }
                v
            }
            "mirror" | "raid1" => {
                // Every image holds the whole data: read the first healthy one.
                let images = list(if kind == "mirror" { "mirrors" } else { "raids" });
                let sub = images
                    .iter()
                    .filter_map(|v| match v {
                        Value::Str(s) if !s.contains("_rmeta_") => all.get(s.as_str()).copied(),
                        _ => None,
                    })
                    .find_map(|img| map_lv(img, all, pvs, extent, depth + 1).ok())
                    .ok_or("no readable mirror image")?;
                for s in sub.0 {
                    let lv_offset = start.checked_add(s.lv_offset).ok_or("mirror segment offset overflows")?;
                    segs.push(Segment { lv_offset, ..s });
                }
                size = size.max(end);
                continue;
            }
            other => {
                return Err(LvError::Unsupported(format!("segment type \"{other}\" (thin, snapshot, cache, raid5/6…) is not supported")));
            }
        };
        if stripes.is_empty() {
            return Err("segment without stripes".into());
        }
        let stripe_size = if stripes.len() > 1 { times(seg.int("stripe_size").unwrap_or(0), SECTOR)? } else { len.max(1) };
        if stripe_size == 0 {
            return Err("striped segment without stripe_size".into());
        }
        segs.push(Segment { lv_offset: start, len, stripes, stripe_size });
        size = size.max(end);
    }
    segs.sort_by_key(|s| s.lv_offset);
    Ok((segs, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_metadata_language() {
        let v = parse(
            r#"vg0 {
  id = "abc"
  seqno = 7 # comment
  status = ["RESIZEABLE", "READ"]
  logical_volumes { root { segment1 { start_extent = 0 stripes = [ "pv0", 12 ] } } }
}"#,
        );
        let vg = v.get("vg0").unwrap();
        assert_eq!(vg.int("seqno"), Some(7));
        assert_eq!(vg.str("id"), Some("abc"));
        let seg = vg.get("logical_volumes").unwrap().get("root").unwrap().get("segment1").unwrap();
        assert!(matches!(seg.get("stripes"), Some(Value::List(l)) if l.len() == 2));
        // Malformed input does not panic.
        parse("a { b = [ 1, { } ] = = } } ] \"unterminated");
    }
}
