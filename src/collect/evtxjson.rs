//! EVTX → JSON lines. `.evtx` files are binary (BinXML, UTF-16): `grep -r`
//! finds nothing in them. Beside each extracted `X.evtx` this writes
//! `X.evtx.jsonl`: one event per line, in record order, as the `evtx` crate
//! renders it (the same JSON as `evtx_dump -o jsonl`), plus `host`,
//! `source_path`, `record_id`, `timestamp`, `event_id`, `channel`,
//! `provider`, and the Timesketch fields `datetime`, `timestamp_desc` and
//! `message`, so both `grep 4625` and a Timesketch upload work.
//!
//! Each file is parsed single-threaded (the crate's own threading blocks
//! inside a rayon pool); files are converted in parallel by the caller.

use super::copy::create_unique;
use evtx::{EvtxParser, ParserSettings};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct Converted {
    pub path: PathBuf,
    pub records: u64,
    /// Earliest and latest event time (ISO 8601), if any event was read.
    pub first: Option<String>,
    pub last: Option<String>,
    /// Records the crate could not parse (damaged chunks): reported.
    pub failed: u64,
    pub sha256: String,
}

/// `EventID` is a number, or `{"#text": n, "#attributes": …}` when it
/// carries qualifiers.
fn event_id(system: &Value) -> Value {
    match &system["EventID"] {
        Value::Object(o) => o.get("#text").cloned().unwrap_or(Value::Null),
        v => v.clone(),
    }
}

struct Hashing<W> {
    inner: W,
    sha: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(b)?;
        self.sha.update(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub fn convert(evtx_file: &Path, host: &str, source_path: &str) -> io::Result<Converted> {
    let mut parser = EvtxParser::from_path(evtx_file)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not a readable EVTX file: {e}")))?
        .with_configuration(ParserSettings::default().num_threads(1).indent(false));
    let dir = evtx_file.parent().unwrap_or(Path::new("."));
    let name = format!("{}.jsonl", evtx_file.file_name().unwrap_or_default().to_string_lossy());
    let (file, path) = create_unique(dir, &name)?;
    let mut out = Hashing { inner: BufWriter::with_capacity(1 << 20, file), sha: Sha256::new() };
    let (mut records, mut failed) = (0u64, 0u64);
    let (mut first, mut last): (Option<String>, Option<String>) = (None, None);
    for r in parser.records_json_value() {
        let Ok(r) = r else {
            failed += 1;
            continue;
        };
        let system = &r.data["Event"]["System"];
        let id = event_id(system);
        let channel = system["Channel"].clone();
        let provider = system["Provider"]["#attributes"]["Name"].clone();
        let ts = r.timestamp.to_string();
        if first.as_ref().is_none_or(|f| &ts < f) {
            first = Some(ts.clone());
        }
        if last.as_ref().is_none_or(|l| &ts > l) {
            last = Some(ts.clone());
        }
        let mut m = Map::new();
        m.insert("host".into(), host.into());
        m.insert("source_path".into(), source_path.into());
        m.insert("record_id".into(), r.event_record_id.into());
        m.insert("timestamp".into(), ts.clone().into());
        m.insert("event_id".into(), id.clone());
        m.insert("channel".into(), channel.clone());
        m.insert("provider".into(), provider.clone());
        m.insert("datetime".into(), ts.into());
        m.insert("timestamp_desc".into(), "Event Recorded".into());
        let text = |v: &Value| v.as_str().map(String::from).unwrap_or_else(|| v.to_string());
        m.insert(
            "message".into(),
            format!("EventID {} {} ({}) on {host}", text(&id), text(&provider), text(&channel)).into(),
        );
        if let Value::Object(data) = r.data {
            m.extend(data);
        }
        serde_json::to_writer(&mut out, &Value::Object(m))?;
        out.write_all(b"\n")?;
        records += 1;
    }
    out.flush()?;
    let sha256 = super::copy::hex(&out.sha.finalize());
    Ok(Converted { path, records, failed, first, last, sha256 })
}
