//! systemd journal files (`*.journal`, `*.journal~`) → JSON lines, each
//! entry as `journalctl --file X -o json --all` (systemd 252, Debian 12)
//! renders it, after the fields snapsift adds to every converted log.
//!
//! Written from systemd's docs/JOURNAL_FILE_FORMAT.md, journal-def.h,
//! journal-file.c, sd-journal.c and logs-show.c; no crate reads journals.
//! What a line holds, in this order:
//!
//! - `host`, `source_path`, `datetime` (the entry's realtime, microseconds),
//!   `timestamp_desc` ([`TIMESTAMP_DESC`]), `message` (the first `MESSAGE`
//!   field as text when it is UTF-8, control characters escaped; "" when
//!   absent or not UTF-8): see [`crate::convert`];
//! - journalctl's `__CURSOR` (`s=<seqnum id>;i=<seqnum>;b=<boot id>;
//!   m=<monotonic>;t=<realtime>;x=<xor hash>`, hex), `__REALTIME_TIMESTAMP`,
//!   `__MONOTONIC_TIMESTAMP` and `_BOOT_ID` (from the entry object; a
//!   `_BOOT_ID=` data field is not repeated). journalctl 252 prints no
//!   `__SEQNUM`/`__SEQNUM_ID` (254 does), so neither does snapsift;
//! - the entry's data fields in the entry's item order (journalctl 252
//!   prints them in its hash map's order, which changes from run to run:
//!   only the parsed objects compare). A value that is not printable UTF-8
//!   in systemd's sense (invalid UTF-8, C0 but tab and newline, DEL, C1,
//!   U+FDD0..U+FDEF, U+xFFFE/F) is an array of byte numbers; a field that
//!   appears several times in the entry is an array of its values, at its
//!   first place. Values are whole, as with `--all` (journalctl without it
//!   prints `null` for fields of 4096 bytes and more).
//!
//! Entries come in the order of the header's main entry array chain, which
//! is `journalctl --file X`'s order for one file. Compact files (systemd
//! 252's 32-bit offsets), regular ones, keyed or Jenkins hashes, and data
//! compressed with XZ, LZ4 or ZSTD are read. Damaged files are read as far
//! as they can be: entries whose objects cannot be read are skipped and
//! counted, an entry array chain that goes backwards (a loop) or past the
//! end of the file ends the reading, and [`Converted::problem`] says how
//! many entries were converted, of how many the header claims, and where
//! and why reading stopped. Bounds: a field decompresses to at most
//! [`FIELD_MAX`] bytes (larger ones are `null` and counted), an entry
//! object is at most 16 MiB, and the whole output at most 256 MiB plus 64
//! times the file's size (a thousand entries pointing at one big field
//! would otherwise write without end). Memory is bounded: a 16 MiB block
//! cache, an 8 MiB cache of rendered shared fields, one entry's fields.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

mod decompress;
mod format;
mod reader;
mod render;

use super::{Context, Converted, corrupt, iso_micros, line_head};
use format::{ARRAY_ITEMS, ENTRY_ITEMS, Entry, Header, OBJECT_COMPRESSION_MASK, OBJECT_DATA, OBJECT_ENTRY, OBJECT_ENTRY_ARRAY, ObjError};
use reader::Reader;
use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::path::Path;

/// The largest field value rendered (decompressed size); larger ones are
/// `null`. journald itself keeps fields under 768 MiB (DATA_SIZE_MAX), but
/// a field this large is a core dump or an attack, not a log line.
pub const FIELD_MAX: usize = 16 << 20;
/// `timestamp_desc` of every line.
pub const TIMESTAMP_DESC: &str = "Event Logged";

const ENTRY_MAX: u64 = 16 << 20;
/// One entry's rendered fields, at most (the rest are left out, counted).
const ENTRY_FIELDS_MAX: usize = 64 << 20;
/// Shared fields (a data object used by several entries) of at most this
/// many bytes are rendered once and kept, up to `CACHE_BYTES` in all.
const CACHE_FIELD_MAX: usize = 4096;
const CACHE_BYTES: usize = 8 << 20;
/// Entry array items read at once.
const ARRAY_CHUNK: u64 = 8192;
/// journalctl looks for the `=` in a field's first 4096 bytes only.
const JSON_THRESHOLD: usize = 4096;

pub(crate) fn corrupt_at(off: u64, msg: impl std::fmt::Display) -> io::Error {
    corrupt(format!("journal: {msg} (at {off:#x})"))
}

/// Converts the journal file at `input`, one JSON object a line into `out`.
/// An error for a file that is no journal, or when `out` fails; damage past
/// the header is told in [`Converted::problem`].
pub fn convert(input: &Path, ctx: &Context, out: &mut dyn Write) -> io::Result<Converted> {
    let mut r = Reader::new(std::fs::File::open(input)?)?;
    let h = Header::read(&mut r)?;
    let budget = (256u64 << 20).saturating_add(r.len.saturating_mul(64));
    let mut c = Conv { head: line_head(ctx), budget, ..Conv::default() };
    c.run(&mut r, &h, out)?;
    Ok(c.finish(&h, &r))
}

#[derive(Clone, Copy)]
struct Field {
    key: u64,
    name: (u32, u32),
    value: (u32, u32),
    /// MESSAGE only: its text for `message`, when UTF-8.
    text: Option<(u32, u32)>,
}

#[derive(Clone, Copy)]
struct Cached {
    start: u32,
    name: u32,
    value: u32,
    /// A MESSAGE whose `message` text is its value.
    msg: bool,
}

/// Counts of what was skipped, with the first reason of each kind.
#[derive(Default)]
struct Tally {
    n: u64,
    first: Option<String>,
}

impl Tally {
    fn add(&mut self, why: impl FnOnce() -> String) {
        self.n += 1;
        if self.first.is_none() {
            self.first = Some(why());
        }
    }
}

#[derive(Default)]
struct Conv {
    head: Vec<u8>,
    line: Vec<u8>,
    ebuf: Vec<u8>,
    fields: Vec<Field>,
    entry_items: Vec<u64>,
    array_items: Vec<u64>,
    payload: Vec<u8>,
    cache: HashMap<u64, Cached>,
    carena: Vec<u8>,
    bad: HashSet<u64>,
    /// Fields over FIELD_MAX already seen: their names.
    large_names: HashMap<u64, Vec<u8>>,
    /// The second whose `YYYY-MM-DDTHH:MM:SS` is in `sec_text`.
    sec: Option<u64>,
    sec_text: Vec<u8>,
    entries: u64,
    first: Option<u64>,
    last: Option<u64>,
    hours: crate::util::time::Hourly,
    written: u64,
    budget: u64,
    skipped_entries: Tally,
    bad_fields: Tally,
    large_fields: Tally,
    bad_names: Tally,
    stop: Option<String>,
}

impl Conv {
    fn run(&mut self, r: &mut Reader, h: &Header, out: &mut dyn Write) -> io::Result<()> {
        let asz = h.array_item_size();
        let mut at = h.entry_array_offset;
        let mut prev_array = 0u64;
        let mut prev_entry = 0u64;
        while at != 0 {
            if at <= prev_array {
                self.stop = Some(format!("reading stopped at {at:#x}: the entry array chain goes back (a loop)"));
                break;
            }
            // The array's items that are in the file: all of them, or those
            // before the end of a truncated copy.
            let (n_items, next, cut) = match h.object(r, at, OBJECT_ENTRY_ARRAY, ARRAY_ITEMS) {
                Ok((_, size)) => {
                    let next = r.get(at + 16, 8).map(|b| crate::util::bytes::u64_at(b, 0)).unwrap_or(0);
                    ((size - ARRAY_ITEMS) / asz, next, false)
                }
                Err(ObjError::Past(_))
                    if at.saturating_add(ARRAY_ITEMS) <= r.len && r.get(at, 1).ok() == Some(&[OBJECT_ENTRY_ARRAY][..]) =>
                {
                    ((r.len - at - ARRAY_ITEMS) / asz, 0, true)
                }
                Err(e) => {
                    let why = if matches!(e, ObjError::Past(_)) {
                        "the entry array is past the end of the file (truncated)".to_string()
                    } else {
                        e.message()
                    };
                    self.stop = Some(format!("reading stopped at {at:#x}: {why}"));
                    break;
                }
            };
            let mut k = 0;
            'array: while k < n_items {
                let n = (n_items - k).min(ARRAY_CHUNK);
                let b = r.get(at + ARRAY_ITEMS + k * asz, (n * asz) as usize)?;
                self.array_items.clear();
                self.array_items.extend((0..n).map(|i| format::item(b, (i * asz) as usize, asz)));
                k += n;
                for i in 0..self.array_items.len() {
                    let off = self.array_items.get(i).copied().unwrap_or(0);
                    if off == 0 {
                        // Unused slots: the end of the used part.
                        break 'array;
                    }
                    if off <= prev_entry {
                        self.skipped_entries.add(|| format!("entry offset {off:#x} in the array at {at:#x} goes back"));
                        continue;
                    }
                    match self.entry(r, h, off) {
                        Ok(()) => prev_entry = off,
                        Err(why) => self.skipped_entries.add(|| why),
                    }
                    if !self.line.is_empty() {
                        out.write_all(&self.line)?;
                        self.written += self.line.len() as u64;
                        self.line.clear();
                        if self.written > self.budget {
                            self.stop = Some(format!(
                                "reading stopped at entry {off:#x}: the output passed {} bytes (a few big fields used by many entries?)",
                                self.budget
                            ));
                            return Ok(());
                        }
                    }
                }
            }
            if cut {
                self.stop = Some(format!("reading stopped at {at:#x}: the entry array runs past the end of the file (truncated)"));
                break;
            }
            prev_array = at;
            at = next;
        }
        Ok(())
    }

    /// Renders the entry at `off` into `self.line`, or says why not.
    fn entry(&mut self, r: &mut Reader, h: &Header, off: u64) -> Result<(), String> {
        let isz = h.item_size();
        let (_, size) = h.object(r, off, OBJECT_ENTRY, ENTRY_ITEMS + isz).map_err(|e| e.message())?;
        if size > ENTRY_MAX {
            return Err(format!("entry at {off:#x} has size {size}"));
        }
        let b = r.get(off, size as usize).map_err(|e| e.to_string())?;
        let e = Entry::parse(b);
        if !e.valid() {
            return Err(format!("entry at {off:#x} has seqnum {}, realtime {}, monotonic {}", e.seqnum, e.realtime, e.monotonic));
        }
        let n = (size - ENTRY_ITEMS) / isz;
        self.entry_items.clear();
        self.entry_items.extend((0..n).map(|k| format::item(b, (ENTRY_ITEMS + k * isz) as usize, isz)));
        self.ebuf.clear();
        self.fields.clear();
        for k in 0..self.entry_items.len() {
            let d = self.entry_items.get(k).copied().unwrap_or(0);
            if self.ebuf.len() > ENTRY_FIELDS_MAX {
                self.bad_fields.add(|| format!("entry at {off:#x}: its fields pass {ENTRY_FIELDS_MAX} bytes, the rest is left out"));
                break;
            }
            self.data(r, h, d);
        }
        self.render(h, &e);
        Ok(())
    }

    /// Appends the data object at `off` to the entry's fields.
    fn data(&mut self, r: &mut Reader, h: &Header, off: u64) {
        if let Some(c) = self.cache.get(&off).copied() {
            let src = self.carena.get(c.start as usize..).unwrap_or_default();
            let base = self.ebuf.len() as u32;
            let total = c.name + c.value;
            self.ebuf.extend_from_slice(src.get(..total as usize).unwrap_or_default());
            let name = (base, base + c.name);
            let value = (name.1, name.1 + c.value);
            let text = c.msg.then_some(value);
            let key = key(self.ebuf.get(name.0 as usize..name.1 as usize).unwrap_or_default());
            self.fields.push(Field { key, name, value, text });
            return;
        }
        if let Some(name) = self.large_names.get(&off) {
            let name = name.clone();
            self.push_null(off, &name);
            return;
        }
        if self.bad.contains(&off) {
            self.bad_fields.add(String::new);
            return;
        }
        let poff = h.data_payload_offset();
        let (flags, size) = match h.object(r, off, OBJECT_DATA, poff + 1) {
            Ok(x) => x,
            Err(e) => return self.bad_data(off, e.message()),
        };
        let shared = r.get(off + 56, 8).map(|b| crate::util::bytes::u64_at(b, 0) > 1).unwrap_or(false);
        let plen = size - poff;
        let algo = flags & OBJECT_COMPRESSION_MASK;
        if plen > FIELD_MAX as u64 {
            return self.large(r, off, poff, algo == 0);
        }
        let raw = match r.get(off + poff, plen as usize) {
            Ok(b) => b,
            Err(e) => return self.bad_data(off, e.to_string()),
        };
        let mut payload = std::mem::take(&mut self.payload);
        let res = if algo == 0 {
            self.field(raw, shared.then_some(off))
        } else {
            match decompress::decompress(algo, raw, FIELD_MAX, &mut payload) {
                Ok(()) => self.field(&payload, shared.then_some(off)),
                Err(decompress::Failure::TooLarge) => {
                    // What came out before the cap starts with the name.
                    self.large_named(off, payload.get(..65.min(payload.len())).unwrap_or_default());
                    Ok(())
                }
                Err(decompress::Failure::Corrupt(m)) => Err(format!("data object at {off:#x}: {m}")),
            }
        };
        payload.clear();
        if payload.capacity() > 1 << 20 {
            payload.shrink_to(1 << 20);
        }
        self.payload = payload;
        if let Err(m) = res {
            self.bad_data(off, m);
        }
    }

    fn bad_data(&mut self, off: u64, why: String) {
        self.bad_fields.add(|| why);
        if self.bad.len() > 1 << 20 {
            self.bad.clear();
        }
        self.bad.insert(off);
    }

    /// A field over FIELD_MAX: its name and null (an uncompressed one, or
    /// one whose compressed size is already over: its first bytes are read
    /// when it is not compressed).
    fn large(&mut self, r: &mut Reader, off: u64, poff: u64, plain: bool) {
        let start = if plain { r.get(off + poff, 65).map(<[u8]>::to_vec).unwrap_or_default() } else { Vec::new() };
        self.large_named(off, &start);
    }

    /// A field over FIELD_MAX whose payload starts with `start`.
    fn large_named(&mut self, off: u64, start: &[u8]) {
        let name = memchr::memchr(b'=', start).and_then(|eq| start.get(..eq)).unwrap_or_default().to_vec();
        if !render::field_name_valid(&name) {
            self.large_fields.add(|| format!("data object at {off:#x}, name unknown, left out"));
            self.bad.insert(off);
            return;
        }
        if self.large_names.len() > 4096 {
            self.large_names.clear();
        }
        self.large_names.insert(off, name.clone());
        self.push_null(off, &name);
    }

    fn push_null(&mut self, off: u64, name: &[u8]) {
        self.large_fields.add(|| format!("{} at {off:#x}", String::from_utf8_lossy(name)));
        let base = self.ebuf.len() as u32;
        self.ebuf.extend_from_slice(name);
        self.ebuf.extend_from_slice(b"null");
        let n = base + name.len() as u32;
        self.fields.push(Field { key: key(name), name: (base, n), value: (n, n + 4), text: None });
    }

    /// Renders one `NAME=value` payload into the entry's fields (and the
    /// cache when `cache_as` is given).
    fn field(&mut self, p: &[u8], cache_as: Option<u64>) -> Result<(), String> {
        let Some(eq) = memchr::memchr(b'=', p.get(..JSON_THRESHOLD.min(p.len())).unwrap_or_default()) else {
            // journalctl skips these silently.
            return Ok(());
        };
        let (name, value) = (p.get(..eq).unwrap_or_default(), p.get(eq + 1..).unwrap_or_default());
        if name == b"_BOOT_ID" {
            return Ok(());
        }
        if !render::field_name_valid(name) || matches!(name, b"__CURSOR" | b"__REALTIME_TIMESTAMP" | b"__MONOTONIC_TIMESTAMP") {
            self.bad_names.add(|| format!("{:?}", String::from_utf8_lossy(name)));
            return Ok(());
        }
        let base = self.ebuf.len();
        self.ebuf.extend_from_slice(name);
        let vstart = self.ebuf.len();
        let string = render::printable(value);
        if string {
            render::push_str(&mut self.ebuf, value);
        } else {
            render::push_bytes(&mut self.ebuf, value);
        }
        let vend = self.ebuf.len();
        let mut text = None;
        if name == b"MESSAGE" {
            if string {
                text = Some((vstart as u32, vend as u32));
            } else if std::str::from_utf8(value).is_ok() {
                render::push_str(&mut self.ebuf, value);
                text = Some((vend as u32, self.ebuf.len() as u32));
            }
        }
        let f = Field { key: key(name), name: (base as u32, vstart as u32), value: (vstart as u32, vend as u32), text };
        self.fields.push(f);
        if let Some(off) = cache_as
            && value.len() <= CACHE_FIELD_MAX
            && (text.is_none() || string)
        {
            if self.carena.len() > CACHE_BYTES {
                self.carena.clear();
                self.cache.clear();
            }
            let start = self.carena.len() as u32;
            self.carena.extend_from_slice(self.ebuf.get(base..vend).unwrap_or_default());
            let msg = text.is_some();
            self.cache.insert(off, Cached { start, name: (vstart - base) as u32, value: (vend - vstart) as u32, msg });
        }
        Ok(())
    }

    /// The entry's line into `self.line`.
    fn render(&mut self, h: &Header, e: &Entry) {
        let line = &mut self.line;
        line.extend_from_slice(&self.head);
        line.extend_from_slice(b"\"datetime\":\"");
        let sec = e.realtime / 1_000_000;
        if self.sec != Some(sec) {
            let iso = iso_micros(sec * 1_000_000);
            self.sec_text.clear();
            self.sec_text.extend_from_slice(iso.as_bytes().get(..iso.find('.').unwrap_or(iso.len())).unwrap_or_default());
            self.sec = Some(sec);
        }
        line.extend_from_slice(&self.sec_text);
        let micros = e.realtime % 1_000_000;
        let mut digits = itoa::Buffer::new();
        let m = digits.format(micros + 1_000_000);
        line.push(b'.');
        line.extend_from_slice(m.as_bytes().get(1..).unwrap_or_default());
        line.extend_from_slice(b"Z\",\"timestamp_desc\":\"");
        line.extend_from_slice(TIMESTAMP_DESC.as_bytes());
        line.extend_from_slice(b"\",\"message\":");
        let ebuf = &self.ebuf;
        let slice = |r: (u32, u32)| ebuf.get(r.0 as usize..r.1 as usize).unwrap_or_default();
        match self.fields.iter().find(|f| slice(f.name) == b"MESSAGE").and_then(|f| f.text) {
            Some(t) => line.extend_from_slice(slice(t)),
            None => line.extend_from_slice(b"\"\""),
        }
        line.extend_from_slice(b",\"__CURSOR\":\"s=");
        render::push_id(line, &h.seqnum_id);
        line.extend_from_slice(b";i=");
        render::push_hex(line, e.seqnum);
        line.extend_from_slice(b";b=");
        render::push_id(line, &e.boot_id);
        line.extend_from_slice(b";m=");
        render::push_hex(line, e.monotonic);
        line.extend_from_slice(b";t=");
        render::push_hex(line, e.realtime);
        line.extend_from_slice(b";x=");
        render::push_hex(line, e.xor_hash);
        line.extend_from_slice(b"\",\"__REALTIME_TIMESTAMP\":\"");
        line.extend_from_slice(digits.format(e.realtime).as_bytes());
        line.extend_from_slice(b"\",\"__MONOTONIC_TIMESTAMP\":\"");
        line.extend_from_slice(digits.format(e.monotonic).as_bytes());
        line.extend_from_slice(b"\",\"_BOOT_ID\":\"");
        render::push_id(line, &e.boot_id);
        line.push(b'"');
        let fields = &self.fields;
        for (i, f) in fields.iter().enumerate() {
            let same = |g: &Field| g.key == f.key && slice(g.name) == slice(f.name);
            if fields.get(..i).unwrap_or_default().iter().any(same) {
                continue;
            }
            line.extend_from_slice(b",\"");
            line.extend_from_slice(slice(f.name));
            line.extend_from_slice(b"\":");
            let rest = fields.get(i + 1..).unwrap_or_default();
            if rest.iter().any(same) {
                line.push(b'[');
                line.extend_from_slice(slice(f.value));
                for g in rest.iter().filter(|g| same(g)) {
                    line.push(b',');
                    line.extend_from_slice(slice(g.value));
                }
                line.push(b']');
            } else {
                line.extend_from_slice(slice(f.value));
            }
        }
        line.extend_from_slice(b"}\n");
        self.entries += 1;
        self.first.get_or_insert(e.realtime);
        self.last = Some(e.realtime);
        self.hours.see((e.realtime / 1_000_000) as i64);
        if self.ebuf.capacity() > 4 << 20 {
            self.ebuf = Vec::new();
        }
    }

    fn finish(self, h: &Header, r: &Reader) -> Converted {
        let mut parts = Vec::new();
        if let Some(stop) = &self.stop {
            parts.push(format!("{stop}; {} of the {} entries the header counts were converted", self.entries, h.n_entries));
        } else if self.entries != h.n_entries {
            parts.push(format!("{} entries converted, the header counts {}", self.entries, h.n_entries));
        }
        let declared = h.header_size.saturating_add(h.arena_size);
        if r.len < declared {
            parts.push(format!("the file has {} bytes, its header says {declared} (truncated)", r.len));
        }
        let tallies = [
            (&self.skipped_entries, "unreadable entries skipped"),
            (&self.bad_fields, "unreadable fields left out"),
            (&self.large_fields, "fields over 16 MiB rendered as null"),
            (&self.bad_names, "fields with invalid names left out"),
        ];
        for (t, what) in tallies {
            if t.n > 0 {
                match t.first.as_deref().filter(|f| !f.is_empty()) {
                    Some(first) => parts.push(format!("{} {what} (first: {first})", t.n)),
                    None => parts.push(format!("{} {what}", t.n)),
                }
            }
        }
        if h.unknown_incompatible() != 0 {
            parts.push(format!("unknown incompatible flags {:#x}, read as if absent", h.unknown_incompatible()));
        }
        if !parts.is_empty() && h.state != 0 && h.state != 2 {
            parts.push(format!("the file was left in state {} (not closed)", h.state_name()));
        }
        Converted {
            entries: self.entries,
            first: self.first.map(iso_micros),
            last: self.last.map(iso_micros),
            hours: self.hours,
            blank: 0,
            users: Default::default(),
            problem: (!parts.is_empty()).then(|| parts.join("; ")),
        }
    }
}

/// A cheap key to tell field names apart (FNV-1a).
fn key(name: &[u8]) -> u64 {
    name.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3))
}
