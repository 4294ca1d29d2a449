//! EVTX → JSON lines. `.evtx` files are binary (BinXML, UTF-16): `grep -r`
//! finds nothing in them. Beside each extracted `X.evtx` this writes
//! `X.evtx.jsonl`: one event per line, in record order, as the `evtx` crate
//! renders it (the same JSON as `evtx_dump -o jsonl`), after the five fields
//! every twin begins with (`host`, `source_path`, `datetime`,
//! `timestamp_desc`, `message`) and `record_id`, `event_id`, `channel`,
//! `provider`, so both `grep 4625` and a Timesketch upload work. There is
//! no `timestamp`: Timesketch takes that field as microseconds since the
//! epoch and computes it from `datetime` when it is absent, which a string
//! there would prevent.
//!
//! The crate's own threads would block a worker of the rayon pool that
//! converts files in parallel: a big log's chunks are rendered in runs, each
//! by a parser of its own, on that pool ([`convert`]).
//! Records the crate carves from unallocated chunk space (stale, cleared)
//! are converted too, marked `"recovered":true` by the crate.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

use super::copy::create_unique;
use super::jsonscan::{value_end, walk_object};
use evtx::{EvtxChunkData, EvtxChunkHeader, EvtxParser, ParserSettings, RenderedChunk, RenderedChunkItem};
use memchr::memmem;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::cmp::Ordering;
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

pub struct Converted {
    pub path: PathBuf,
    pub records: u64,
    /// Earliest and latest event time (ISO 8601), if any event had one.
    pub first: Option<String>,
    pub last: Option<String>,
    /// Events per hour (the report's activity chart).
    pub hours: crate::util::time::Hourly,
    /// Records whose event id can be a finding (logs cleared, audit policy
    /// changed), at most [`MAX_NOTABLE`].
    pub notable: Vec<Notable>,
    /// Records the crate could not parse (damaged chunks): reported.
    pub failed: u64,
    /// Of `records`, those carved from unallocated space.
    pub recovered: u64,
    /// Empty when not asked for.
    pub sha256: String,
}

/// The `Event.System` fields the added ones are made of, as raw JSON text
/// (`null` where absent). Everything else in the record is written as the
/// crate rendered it, never parsed.
#[derive(Debug)]
struct System<'a> {
    /// A number, or the `#text` of `{"#text": n, "#attributes": …}` when
    /// the ID carries qualifiers.
    event_id: &'a [u8],
    channel: &'a [u8],
    /// `Provider.#attributes.Name`.
    provider: &'a [u8],
    /// `TimeCreated.#attributes.SystemTime`: when the event happened.
    time: &'a [u8],
}

const NULL: &[u8] = b"null";

/// A record whose System cannot be read: every field `null`.
const UNREAD: System<'static> = System { event_id: NULL, channel: NULL, provider: NULL, time: NULL };

/// The `System` fields of a record as the crate renders it
/// (`{"Event":{"#attributes":…,"System":{…},…}}`), read from the first
/// `"System":` key (System precedes EventData/UserData in every event, and a
/// quote inside a string is escaped, so a value cannot fake the key) to the
/// end of its object, and no further.
fn system(json: &[u8]) -> Option<System<'_>> {
    static KEY: LazyLock<memmem::Finder> = LazyLock::new(|| memmem::Finder::new(b"\"System\":"));
    let at = KEY.find(json)? + KEY.needle().len();
    let [mut event_id, mut channel, mut provider, mut time] = [None; 4];
    // One pass: the wanted members are read where they are (walking into
    // Provider and TimeCreated), everything else skipped; it stops once all
    // four are found (Channel is near System's end).
    let mut all = false;
    let walked = walk_object(json, at, |k, v| {
        let end = match k {
            b"Provider" => attribute(json, v, b"Name", &mut provider),
            b"TimeCreated" => attribute(json, v, b"SystemTime", &mut time),
            b"EventID" if json.get(v) == Some(&b'{') => walk_object(json, v, |k, x| take(json, x, k == b"#text", &mut event_id)),
            b"EventID" => take(json, v, true, &mut event_id),
            b"Channel" => take(json, v, true, &mut channel),
            _ => value_end(json, v),
        };
        all = event_id.is_some() && channel.is_some() && provider.is_some() && time.is_some();
        end.filter(|_| !all)
    });
    let [event_id, channel, provider, time] = [event_id, channel, provider, time].map(|f| f.unwrap_or(NULL));
    (walked.is_some() || all).then_some(System { event_id, channel, provider, time })
}

/// Skips the value at `json[v]`, keeping it in `slot` if `wanted` (the
/// first one only: a repeated key does not overwrite it).
fn take<'a>(json: &'a [u8], v: usize, wanted: bool, slot: &mut Option<&'a [u8]>) -> Option<usize> {
    let end = value_end(json, v)?;
    if wanted && slot.is_none() {
        *slot = Some(&json[v..end]);
    }
    Some(end)
}

/// Reads `#attributes.<name>` of the element at `json[v]` into `slot`, and
/// returns the element's end.
fn attribute<'a>(json: &'a [u8], v: usize, name: &[u8], slot: &mut Option<&'a [u8]>) -> Option<usize> {
    if json.get(v) != Some(&b'{') {
        return value_end(json, v);
    }
    walk_object(json, v, |k, a| match k == b"#attributes" && json.get(a) == Some(&b'{') {
        true => walk_object(json, a, |k, x| take(json, x, k == name, slot)),
        false => value_end(json, a),
    })
}

/// A raw JSON value as text inside a JSON string: a string's own escaped
/// contents; a number or `null` as it is (nothing in it needs escaping);
/// anything else escaped.
fn push_text(out: &mut Vec<u8>, v: &[u8]) {
    match v.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")) {
        Some(inner) => out.extend_from_slice(inner),
        None if !v.iter().any(|c| matches!(c, b'"' | b'\\') || c.is_ascii_control()) => out.extend_from_slice(v),
        None => push_escaped(out, &String::from_utf8_lossy(v)),
    }
}

/// `s` as the inside of a JSON string.
fn push_escaped(out: &mut Vec<u8>, s: &str) {
    // Serialising a string cannot fail; its quotes are left out.
    let quoted = serde_json::to_string(s).unwrap_or_default();
    out.extend_from_slice(quoted.as_bytes().get(1..quoted.len().saturating_sub(1)).unwrap_or_default());
}

/// Orders times as the crate renders them (`2016-07-08T18:12:51.6816408Z`,
/// a fraction of any length or none) without parsing: the seconds compare
/// as text, then the fraction digits with trailing zeros dropped (a prefix
/// is the smaller fraction, as 0.5 < 0.51); the zone (always `Z`) is not read.
fn time_cmp(a: &[u8], b: &[u8]) -> Ordering {
    // The common case, cheaply: the same shape, so the text orders them.
    if a.len() == b.len() && a.get(19) == b.get(19) {
        return a.cmp(b);
    }
    fn split(t: &[u8]) -> (&[u8], &[u8]) {
        let secs = t.iter().position(|&c| !(c.is_ascii_digit() || b"-:T ".contains(&c))).unwrap_or(t.len());
        let mut frac: &[u8] = match t[secs..].strip_prefix(b".") {
            Some(f) => &f[..f.iter().take_while(|c| c.is_ascii_digit()).count()],
            None => b"",
        };
        while let Some(f) = frac.strip_suffix(b"0") {
            frac = f;
        }
        (&t[..secs], frac)
    }
    split(a).cmp(&split(b))
}

/// One converted line: the added fields, then the crate's `{"Event":…}`
/// joined into the same object. The five fields every twin starts with come
/// first (`host`, `source_path`, `datetime`, `timestamp_desc`, `message`:
/// one Timesketch or Elastic mapping takes every twin), then `record_id`,
/// `event_id`, `channel` and `provider`. `head` is the per-file start
/// (`{"host":…,"source_path":…,"datetime":`), `host` the host name as
/// escaped string contents. Appends the line, with its newline, to `out`.
fn push_line(out: &mut Vec<u8>, head: &[u8], host: &[u8], record_id: u64, sys: &System, record: &[u8]) {
    out.extend_from_slice(head);
    // Written out, not looped: constant keys are then copied inline.
    out.extend_from_slice(sys.time);
    out.extend_from_slice(b",\"timestamp_desc\":\"Event Recorded\",\"message\":\"EventID ");
    push_text(out, sys.event_id);
    out.push(b' ');
    push_text(out, sys.provider);
    out.extend_from_slice(b" (");
    push_text(out, sys.channel);
    out.extend_from_slice(b") on ");
    out.extend_from_slice(host);
    out.extend_from_slice(b"\",\"record_id\":");
    out.extend_from_slice(itoa::Buffer::new().format(record_id).as_bytes());
    out.extend_from_slice(b",\"event_id\":");
    out.extend_from_slice(sys.event_id);
    out.extend_from_slice(b",\"channel\":");
    out.extend_from_slice(sys.channel);
    out.extend_from_slice(b",\"provider\":");
    out.extend_from_slice(sys.provider);
    match record.strip_prefix(b"{") {
        Some(b"}") => out.push(b'}'),
        Some(rest) => {
            out.push(b',');
            out.extend_from_slice(rest);
        }
        // Not an object (the crate renders one): kept whole, as a field.
        None => {
            out.extend_from_slice(b",\"record\":");
            out.extend_from_slice(record);
            out.push(b'}');
        }
    }
    out.push(b'\n');
}

/// How many bytes of `data` are below 0x20, counted in blocks whose count
/// fits a byte: that form compiles to SIMD (a plain `filter().count()` ran
/// at a byte a cycle and cost a fifth of the conversion).
fn control_bytes(data: &[u8]) -> usize {
    data.chunks(128).map(|b| b.iter().map(|&c| (c < 0x20) as u8).sum::<u8>() as usize).sum()
}

/// A record as a SIEM can take it, if it is not one already: invalid UTF-8
/// replaced (U+FFFD), and raw control characters, which valid JSON never
/// holds (the crate's only come from names it did not escape, always inside
/// quotes), escaped as `\u00XX`.
fn repaired(raw: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(raw);
    if matches!(text, std::borrow::Cow::Borrowed(_)) && !raw.iter().any(|&c| c < 0x20) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() + 16);
    for &c in text.as_bytes() {
        match c {
            0..0x20 => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            _ => out.push(c),
        }
    }
    Some(out)
}

/// `write_all` for a list of buffers (`Write::write_all_vectored` is not
/// stable); the kernel takes at most 1,024 at a time.
fn write_all_vectored(file: &mut std::fs::File, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !bufs.is_empty() {
        match file.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How snapsift has the crate read a log: one thread (files are converted
/// in parallel by the caller), one line a record, and records carved from
/// a chunk's unallocated space too (stale and cleared events: the crate
/// marks each `"recovered":true`).
pub fn settings() -> ParserSettings {
    ParserSettings::default().num_threads(1).indent(false).recover_records(true)
}

/// A record a finding may be about.
#[derive(Clone)]
pub struct Notable {
    pub event_id: u32,
    pub channel: String,
    pub record: u64,
    pub time: Option<String>,
}

/// Event ids that can be findings (`collect::findings::event`).
const NOTABLE: [u32; 3] = [104, 1102, 4719];
const MAX_NOTABLE: usize = 1000;

/// The event id and channel of a record if its event id is notable.
fn notable(sys: &System, record: u64) -> Option<Notable> {
    let digits = sys.event_id.strip_prefix(b"\"").and_then(|e| e.strip_suffix(b"\"")).unwrap_or(sys.event_id);
    let id: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    if !NOTABLE.contains(&id) {
        return None;
    }
    let channel = sys.channel.strip_prefix(b"\"").and_then(|c| c.strip_suffix(b"\"")).unwrap_or(b"");
    let time = sys.time.strip_prefix(b"\"").and_then(|t| t.strip_suffix(b"\"")).map(|t| String::from_utf8_lossy(t).into_owned());
    Some(Notable { event_id: id, channel: String::from_utf8_lossy(channel).into_owned(), record, time })
}

/// Chunks one parser renders while other threads are free to render the
/// next runs: the crate shares compiled templates between the chunks of one
/// pass only, so fewer, longer passes compile less (runs of one chunk took
/// ~10% more CPU than runs of 16: benches/evtx_json.rs).
const RUN_CHUNKS: usize = 8;

/// Chunks one parser renders when other logs' conversions already keep
/// every thread busy: splitting would then add CPU (a parser, its
/// templates and a copy of each chunk per run) and save no time.
const BUSY_RUN_CHUNKS: usize = 32;

/// Logs being converted in this process (by any thread).
static CONVERTING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts one conversion while it lives.
struct Converting;

impl Converting {
    fn start() -> Self {
        CONVERTING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Converting
    }

    /// How the next window of a log's chunks is split: as many runs of
    /// [`RUN_CHUNKS`] as threads (up to 4, to bound memory: at most two
    /// windows, 64 chunks, are in memory) when some thread has no log of its
    /// own; else one run of [`BUSY_RUN_CHUNKS`], as many chunks.
    fn window(&self) -> (usize, usize) {
        let threads = rayon::current_num_threads().max(1);
        match CONVERTING.load(std::sync::atomic::Ordering::Relaxed) < threads {
            true => (threads.min(4), RUN_CHUNKS),
            false => (1, BUSY_RUN_CHUNKS),
        }
    }
}

impl Drop for Converting {
    fn drop(&mut self) {
        CONVERTING.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A file header the crate accepts whatever the log's own says: the magic,
/// a 4,096-byte header block and the "no CRC-32" flag, so that a damaged
/// header neither stops a run nor has it warn.
const RUN_HEADER: [u8; 4096] = {
    let mut h = [0; 4096];
    let magic = *b"ElfFile\0";
    let mut i = 0;
    while i < magic.len() {
        h[i] = magic[i];
        i += 1;
    }
    h[41] = 0x10; // header block size 4,096, little-endian at 40
    h[120] = 4; // flags
    h
};

/// A run of chunks, in record order, behind [`RUN_HEADER`]: a file the
/// crate can render on its own (it renders chunks only through a parser,
/// which owns its reader), on any thread.
struct RunFile {
    chunks: Vec<Vec<u8>>,
    pos: u64,
}

impl io::Read for RunFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        const HEAD: u64 = RUN_HEADER.len() as u64;
        const CHUNK: u64 = 65536;
        let from: &[u8] = match self.pos.checked_sub(HEAD) {
            None => RUN_HEADER.get(self.pos as usize..).unwrap_or_default(),
            Some(p) => {
                let chunk = self.chunks.get((p / CHUNK) as usize).map_or(&[][..], |c| c.as_slice());
                chunk.get((p % CHUNK) as usize..).unwrap_or_default()
            }
        };
        let n = from.len().min(buf.len());
        buf[..n].copy_from_slice(&from[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl io::Seek for RunFile {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let len = (RUN_HEADER.len() + self.chunks.len() * 65536) as u64;
        let pos = match to {
            io::SeekFrom::Start(p) => Some(p),
            io::SeekFrom::End(d) => len.checked_add_signed(d),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

/// Work for one task: chunks the log's parser read, or one it could not
/// (counted as failed, as the crate's own pipeline counts it).
enum Run {
    Chunks(Vec<EvtxChunkData>),
    Unread,
}

/// The next `n` runs of the log's chunks in record order. A run's parser
/// starts at the chunk naming the lowest record ID (its wrap-around rule,
/// `EvtxParser::oldest_chunk`), so a run ends before any chunk that would
/// take its first chunk's place: each run is then rendered in the order
/// one pass over the whole log renders it. A run holds at most `len` chunks.
fn next_runs(
    chunks: &mut std::iter::Peekable<impl Iterator<Item = evtx::err::Result<EvtxChunkData>>>,
    (n, len): (usize, usize),
) -> Vec<Run> {
    let older = |h: &EvtxChunkHeader, than: u64| h.first_event_record_id <= h.last_event_record_id && h.first_event_record_id < than;
    let mut runs = Vec::with_capacity(n);
    while runs.len() < n {
        let first = match chunks.next() {
            None => break,
            Some(Err(_)) => {
                runs.push(Run::Unread);
                continue;
            }
            Some(Ok(c)) => c,
        };
        // A first chunk whose range is reversed is passed over by the
        // rule: it goes alone.
        let from = first.header.first_event_record_id;
        let alone = first.header.first_event_record_id > first.header.last_event_record_id;
        let mut run = vec![first];
        while !alone
            && run.len() < len
            && let Some(Ok(c)) = chunks.peek()
            && !older(&c.header, from)
        {
            run.extend(chunks.next().and_then(Result::ok));
        }
        runs.push(Run::Chunks(run));
    }
    runs
}

/// One chunk converted: its output in order, and what it says.
#[derive(Default)]
struct ChunkOut {
    /// The chunk's lines, one after another. Copied together rather than
    /// written from the crate's buffer between the added fields: the
    /// kernel copies a `writev` of two pieces a record at a third of
    /// memcpy's speed (perf: 14 % of the conversion's CPU went there).
    text: Vec<u8>,
    records: u64,
    failed: u64,
    recovered: u64,
    /// The records' times (unquoted), one after another, and where each ends.
    times: Vec<u8>,
    time_ends: Vec<usize>,
    notable: Vec<Notable>,
}

/// A run's chunks, rendered by the crate's chunk renderer (as `evtx_dump`
/// renders them) and converted.
fn convert_run(run: Run, head: &[u8], host: &[u8]) -> Vec<ChunkOut> {
    let unread = |n| vec![ChunkOut { failed: n, ..ChunkOut::default() }];
    let chunks = match run {
        Run::Unread => return unread(1),
        Run::Chunks(c) => c,
    };
    let n = chunks.len() as u64;
    let file = RunFile { chunks: chunks.into_iter().map(|c| c.data).collect(), pos: 0 };
    // The header is ours, and valid: this cannot fail.
    let Ok(parser) = EvtxParser::from_read_seek(file) else { return unread(n) };
    parser.with_configuration(settings()).chunks_json_bytes(false).map(|c| convert_chunk(c, head, host)).collect()
}

/// One rendered chunk's lines, each the added fields and the event, in one
/// buffer (one allocation a chunk, none a record).
fn convert_chunk(chunk: RenderedChunk, head: &[u8], host: &[u8]) -> ChunkOut {
    // Checked once a chunk, and record by record only in a chunk that
    // fails: the crate renders UTF-8 without raw control characters but
    // the `\n` ending each record, except that it writes element and
    // attribute names unescaped, so a damaged name can hold any byte.
    // A raw newline would split the record over two lines.
    let records_here = chunk.items.iter().filter(|i| matches!(i, RenderedChunkItem::Record { .. })).count();
    let clean = std::str::from_utf8(&chunk.data).is_ok() && control_bytes(&chunk.data) == records_here;
    // Sized for the chunk up front: growing them copies them.
    let mut out = ChunkOut {
        text: Vec::with_capacity(chunk.data.len() + records_here * (head.len() + 2 * host.len() + 256)),
        times: Vec::with_capacity(32 * records_here),
        time_ends: Vec::with_capacity(records_here),
        ..ChunkOut::default()
    };
    let mut start = 0;
    for item in &chunk.items {
        let &RenderedChunkItem::Record { event_record_id, end } = item else {
            out.failed += 1;
            continue;
        };
        let raw = &chunk.data[start..end - 1];
        let repaired = if clean { None } else { repaired(raw) };
        let record = repaired.as_deref().unwrap_or(raw);
        let sys = system(record).unwrap_or(UNREAD);
        if out.notable.len() < MAX_NOTABLE
            && let Some(n) = notable(&sys, event_record_id)
        {
            out.notable.push(n);
        }
        push_line(&mut out.text, head, host, event_record_id, &sys, record);
        start = end;
        out.records += 1;
        out.recovered += u64::from(record.starts_with(b"{\"recovered\":true,"));
        if let Some(t) = sys.time.strip_prefix(b"\"").and_then(|t| t.strip_suffix(b"\"")) {
            out.times.extend_from_slice(t);
            out.time_ends.push(out.times.len());
        }
    }
    out
}

/// What a log's chunks say, added up in record order.
#[derive(Default)]
struct Totals {
    records: u64,
    failed: u64,
    recovered: u64,
    first: Option<Vec<u8>>,
    last: Option<Vec<u8>>,
    hours: crate::util::time::Hourly,
    notable: Vec<Notable>,
}

impl Totals {
    /// Record by record, as one pass over the log would (the first of
    /// equal times is kept; the hours' cap keeps the earliest hours seen).
    fn add(&mut self, out: &ChunkOut) {
        self.records += out.records;
        self.failed += out.failed;
        self.recovered += out.recovered;
        let mut from = 0;
        for &end in &out.time_ends {
            let t = &out.times[from..end];
            from = end;
            self.hours.see_iso(t);
            if self.first.as_deref().is_none_or(|f| time_cmp(t, f).is_lt()) {
                self.first = Some(t.to_vec());
            }
            if self.last.as_deref().is_none_or(|l| time_cmp(t, l).is_gt()) {
                self.last = Some(t.to_vec());
            }
        }
        let room = MAX_NOTABLE.saturating_sub(self.notable.len());
        self.notable.extend(out.notable.iter().take(room).cloned());
    }
}

/// Writes converted chunks in order, hashing them meanwhile on another
/// core, and adds up what they say.
fn write_out(file: &mut std::fs::File, sha: Option<&mut Sha256>, outs: &[ChunkOut], totals: &mut Totals) -> io::Result<()> {
    let mut slices: Vec<IoSlice> = outs.iter().filter(|o| !o.text.is_empty()).map(|o| IoSlice::new(&o.text)).collect();
    let ((), written) = rayon::join(
        || {
            if let Some(sha) = sha {
                outs.iter().for_each(|o| sha.update(&o.text));
            }
            outs.iter().for_each(|o| totals.add(o));
        },
        || write_all_vectored(file, &mut slices),
    );
    written
}

/// Converts one `.evtx` file into `X.evtx.jsonl` beside it, and hashes
/// that for the manifest unless `hash` is false (which only the benchmark
/// asks for, to time the conversion apart from the hash).
///
/// A big log keeps every core busy: its chunks are read in record order
/// and converted in runs on the rayon pool (nested in the caller's, which
/// converts files in parallel; nothing blocks a worker), a window of them
/// at a time, while the window before is written in order and hashed.
/// At most two windows are in memory. When other logs already keep every
/// thread busy, a window is one long run instead ([`Converting::window`]).
pub fn convert(
    evtx_file: &Path,
    host: &str,
    source_path: &str,
    hash: bool,
    claims: Option<&super::claims::Claims>,
) -> io::Result<Converted> {
    let converting = Converting::start();
    convert_in_windows(evtx_file, host, source_path, hash, claims, || converting.window())
}

/// [`convert`], each window of chunks split as `window` says when it is
/// read: (runs, chunks a run).
fn convert_in_windows(
    evtx_file: &Path,
    host: &str,
    source_path: &str,
    hash: bool,
    claims: Option<&super::claims::Claims>,
    window: impl Fn() -> (usize, usize) + Sync,
) -> io::Result<Converted> {
    let mut parser = EvtxParser::from_path(evtx_file)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not a readable EVTX file: {e}")))?
        .with_configuration(settings());
    let dir = evtx_file.parent().unwrap_or(Path::new("."));
    let name = format!("{}.jsonl", evtx_file.file_name().unwrap_or_default().to_string_lossy());
    let (mut file, path) = create_unique(dir, &name, claims)?;
    let mut sha = hash.then(Sha256::new);
    // Per file, escaped once: the host (also in every message), the path.
    let mut host_text = Vec::new();
    push_escaped(&mut host_text, host);
    let mut head = b"{\"host\":\"".to_vec();
    head.extend_from_slice(&host_text);
    head.extend_from_slice(b"\",\"source_path\":\"");
    push_escaped(&mut head, source_path);
    head.extend_from_slice(b"\",\"datetime\":");
    let mut chunks = parser.chunks().peekable();
    let (mut totals, mut ready) = (Totals::default(), Vec::new());
    loop {
        let (written, (more, converted)) = rayon::join(
            || write_out(&mut file, sha.as_mut(), &ready, &mut totals),
            || {
                let runs = next_runs(&mut chunks, window());
                (!runs.is_empty(), runs.into_par_iter().flat_map_iter(|r| convert_run(r, &head, &host_text)).collect::<Vec<_>>())
            },
        );
        written?;
        ready = converted;
        if !more {
            break;
        }
    }
    let text = |t: Option<Vec<u8>>| t.map(|t| String::from_utf8_lossy(&t).into_owned());
    let sha256 = sha.map(|s| super::copy::hex(&s.finalize())).unwrap_or_default();
    let Totals { records, failed, recovered, first, last, hours, notable } = totals;
    Ok(Converted { path, records, failed, recovered, first: text(first), last: text(last), hours, notable, sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn the_system_fields_are_read_from_the_system_object_only() {
        let rec = br##"{"Event":{"#attributes":{"xmlns":"x"},"System":{"Provider":{"#attributes":{"Name":"a}\"b{"}},"EventID":{"#text":4625,"#attributes":{"Qualifiers":0}},"TimeCreated":{"#attributes":{"SystemTime":"2016-07-08T18:12:51.6816408Z"}},"Channel":"Security"},"EventData":{"Channel":"no"}}}"##;
        let sys = system(rec).unwrap();
        assert_eq!(sys.event_id, b"4625");
        assert_eq!(sys.channel, b"\"Security\"");
        assert_eq!(sys.provider, br#""a}\"b{""#);
        assert_eq!(sys.time, b"\"2016-07-08T18:12:51.6816408Z\"");
        // No System, a truncated one, or a System that is not an object.
        assert!(system(br#"{"Event":{"EventData":{}}}"#).is_none());
        assert!(system(br#"{"Event":{"System":{"EventID":4"#).is_none());
        assert!(system(br#"{"Event":{"System":5}}"#).is_none());
        // Fields missing from System stay empty, not taken from EventData.
        let bare = system(br#"{"Event":{"System":{"EventID":{}},"EventData":{"Channel":"x"}}}"#).unwrap();
        assert_eq!((bare.channel, bare.event_id, bare.time), (NULL, NULL, NULL));
    }

    fn line(host: &str, record: &str) -> Value {
        let head = format!("{{\"host\":{},\"source_path\":\"/p\",\"datetime\":", json!(host));
        let mut host_text = Vec::new();
        push_escaped(&mut host_text, host);
        let sys = system(record.as_bytes()).unwrap_or(UNREAD);
        let mut out = Vec::new();
        push_line(&mut out, head.as_bytes(), &host_text, 7, &sys, record.as_bytes());
        assert_eq!(out.iter().filter(|&&c| c == b'\n').count(), 1, "one line");
        serde_json::from_slice(&out).expect("a line is one JSON object")
    }

    #[test]
    fn a_line_is_the_added_fields_and_the_event_in_one_object() {
        let rec = r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"P\"x"}},"EventID":4624,"TimeCreated":{"#attributes":{"SystemTime":"2020-01-01T00:00:00Z"}},"Channel":null},"EventData":{"a":"é\n"}}}"##;
        let got = line("h\"ö\\st", rec);
        let mut want = json!({
            "host": "h\"ö\\st", "source_path": "/p", "datetime": "2020-01-01T00:00:00Z",
            "timestamp_desc": "Event Recorded", "message": "EventID 4624 P\"x (null) on h\"ö\\st",
            "record_id": 7, "event_id": 4624, "channel": null, "provider": "P\"x",
        });
        let event: Value = serde_json::from_str(rec).unwrap();
        want["Event"] = event["Event"].clone();
        assert_eq!(got, want);
        // Values that are not strings are escaped into the message.
        let odd = line("h", r##"{"Event":{"System":{"Channel":{"x":"y\"z"},"EventID":{"#text":"7"}}}}"##);
        assert_eq!(odd["message"], "EventID 7 null ({\"x\":\"y\\\"z\"}) on h");
        assert_eq!(odd["channel"], json!({"x": "y\"z"}));
        // An empty object, and something that is not an object at all.
        assert_eq!(line("h", "{}")["event_id"], Value::Null);
        assert_eq!(line("h", "[1]")["record"], json!([1]));
    }

    #[test]
    fn cut_or_damaged_records_never_panic_and_lines_stay_json() {
        let rec = br##"{"Event":{"#attributes":{"xmlns":"x"},"System":{"Provider":{"#attributes":{"Name":"P","Guid":"{5}"}},"EventID":{"#text":4625,"#attributes":{"Qualifiers":0}},"TimeCreated":{"#attributes":{"SystemTime":"2016-07-08T18:12:51.6816408Z"}},"Execution":{"#attributes":{"ProcessID":4}},"Channel":"Security","Security":null},"EventData":{"a":"b\"c"}}}"##;
        // Every cut, and a few thousand pseudo-random single-byte changes.
        let mut inputs: Vec<Vec<u8>> = (0..=rec.len()).map(|n| rec[..n].to_vec()).collect();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut r = rec.to_vec();
            const BYTES: &[u8] = b"{}[]\\\",:0 \x00\xff";
            r[(x % rec.len() as u64) as usize] = BYTES[(x >> 32) as usize % BYTES.len()];
            inputs.push(r);
        }
        for r in &inputs {
            let sys = system(r).unwrap_or(UNREAD);
            // Whatever was read is a whole JSON value, so the line's added
            // part is JSON whenever the record itself is.
            for f in [sys.event_id, sys.channel, sys.provider, sys.time] {
                if serde_json::from_slice::<Value>(r).is_ok() {
                    assert!(
                        serde_json::from_slice::<Value>(f).is_ok(),
                        "{:?} from {:?}",
                        String::from_utf8_lossy(f),
                        String::from_utf8_lossy(r)
                    );
                }
            }
            if let Ok(s) = std::str::from_utf8(r)
                && serde_json::from_str::<Value>(s).is_ok_and(|v| v.is_object())
            {
                line("h\"", s);
            }
        }
    }

    #[test]
    fn records_with_raw_control_bytes_or_bad_utf8_are_repaired() {
        assert_eq!(repaired(br#"{"a":"b"}"#), None);
        let fixed = repaired(b"{\"Th\nread\x01\":\"\xff\"}").unwrap();
        assert_eq!(String::from_utf8(fixed.clone()).unwrap(), "{\"Th\\u000aread\\u0001\":\"\u{fffd}\"}");
        assert_eq!(serde_json::from_slice::<Value>(&fixed).unwrap(), json!({"Th\nread\u{1}": "\u{fffd}"}));
    }

    /// A log made of `sample`'s chunks in another order: `Some(i)` its
    /// chunk `i`, `None` a chunk whose magic is broken.
    fn rebuilt(sample: &[u8], order: &[Option<usize>]) -> Vec<u8> {
        let mut out = sample[..4096].to_vec();
        for o in order {
            match o {
                Some(i) => out.extend_from_slice(&sample[4096 + i * 65536..][..65536]),
                None => out.extend(std::iter::repeat_n(0x5a, 65536)),
            }
        }
        out
    }

    #[test]
    fn a_log_converted_in_runs_on_all_cores_comes_out_as_one_pass_renders_it() {
        let Ok(sample) = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples/evtx/security.evtx")) else {
            println!("SKIPPED: ../shared/samples/evtx/security.evtx is absent");
            return;
        };
        let n = (sample.len() - 4096) / 65536;
        let all: Vec<_> = (0..n).map(Some).collect();
        let logs = [
            ("as-is", all.clone()),
            // Wrapped around: the oldest chunk mid-file.
            ("wrapped", all[n / 3..].iter().chain(&all[..n / 3]).copied().collect()),
            // Repeated: record IDs start over mid-file, where a run must end
            // (a run's parser would start at its lowest IDs).
            ("repeated", [&all[..], &all[..], &all[..5]].concat()),
            // A chunk the parser cannot read, mid-run.
            ("damaged", [&all[..6], &[None], &all[6..]].concat()),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (name, order) in logs {
            let path = dir.path().join(format!("{name}.evtx"));
            std::fs::write(&path, rebuilt(&sample, &order)).unwrap();
            // One pass of the crate's chunk renderer over the whole log.
            let mut parser = EvtxParser::from_path(&path).unwrap().with_configuration(settings());
            let chunks: Vec<_> = parser.chunks_json_bytes(false).collect();
            let want: Vec<_> = chunks.iter().flat_map(|c| c.records()).collect();
            let failed = chunks.iter().flat_map(|c| &c.items).filter(|i| matches!(i, RenderedChunkItem::Failed(_))).count();
            assert!(want.len() > 1000 && (name != "damaged" || failed > 0), "{name}: {} records, {failed} failed", want.len());
            // Split over free threads, in one long run a window (other logs
            // keep the threads busy), and in odd sizes.
            for split in [(4, RUN_CHUNKS), (1, BUSY_RUN_CHUNKS), (3, 5)] {
                let got = convert_in_windows(&path, "h", "/p", true, None, || split).unwrap();
                let text = std::fs::read(&got.path).unwrap();
                std::fs::remove_file(&got.path).unwrap();
                assert_eq!(got.sha256, crate::collect::copy::hex(&Sha256::digest(&text)), "{name} {split:?}");
                let lines: Vec<&[u8]> = text.split(|&c| c == b'\n').filter(|l| !l.is_empty()).collect();
                assert_eq!((lines.len(), got.records, got.failed), (want.len(), want.len() as u64, failed as u64), "{name} {split:?}");
                for (i, (line, (id, record))) in lines.iter().zip(&want).enumerate() {
                    let id = format!(",\"record_id\":{id},\"event_id\":");
                    let head = b"{\"host\":\"h\",\"source_path\":\"/p\",\"datetime\":";
                    assert!(line.starts_with(head) && memmem::find(line, id.as_bytes()).is_some(), "{name} {split:?}: line {i}");
                    assert!(line.ends_with(&record[1..]), "{name} {split:?}: line {i}");
                }
            }
        }
    }

    #[test]
    fn times_order_by_value_whatever_their_fraction() {
        let t = str::as_bytes;
        assert!(time_cmp(t("2020-01-01T00:00:00Z"), t("2020-01-01T00:00:00.5Z")).is_lt());
        assert!(time_cmp(t("2020-01-01T00:00:00.5Z"), t("2020-01-01T00:00:00.50Z")).is_eq());
        assert!(time_cmp(t("2020-01-01T00:00:00.5Z"), t("2020-01-01T00:00:00.51Z")).is_lt());
        assert!(time_cmp(t("2020-01-01T00:00:00.6Z"), t("2020-01-01T00:00:00.51Z")).is_gt());
        assert!(time_cmp(t("2020-01-01T00:00:01Z"), t("2020-01-01T00:00:00.9999999Z")).is_gt());
        assert!(time_cmp(t("2019-12-31T23:59:59.9Z"), t("2020-01-01T00:00:00Z")).is_lt());
        assert!(time_cmp(t(""), t(".")).is_eq(), "no panic on junk");
    }
}
