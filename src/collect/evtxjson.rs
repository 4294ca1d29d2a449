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
use serde::{Deserialize, Serialize};
use serde_json::Value;
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

/// The few `Event.System` fields the added ones are made of. Everything
/// else in the record is written as the crate rendered it, never parsed.
#[derive(Deserialize, Default)]
struct System {
    #[serde(rename = "EventID", default)]
    event_id: Value,
    #[serde(rename = "Channel", default)]
    channel: Value,
    #[serde(rename = "Provider", default)]
    provider: Provider,
}

#[derive(Deserialize, Default)]
struct Provider {
    #[serde(rename = "#attributes", default)]
    attributes: ProviderAttributes,
}

#[derive(Deserialize, Default)]
struct ProviderAttributes {
    #[serde(rename = "Name", default)]
    name: Value,
}

/// The fields put before the crate's `"Event"`, in this order.
#[derive(Serialize)]
struct Added<'a> {
    host: &'a str,
    source_path: &'a str,
    record_id: u64,
    timestamp: &'a str,
    event_id: &'a Value,
    channel: &'a Value,
    provider: &'a Value,
    datetime: &'a str,
    timestamp_desc: &'static str,
    message: String,
}

/// `EventID` is a number, or `{"#text": n, "#attributes": …}` when it
/// carries qualifiers.
fn event_id(v: Value) -> Value {
    match v {
        Value::Object(mut o) => o.remove("#text").unwrap_or(Value::Null),
        v => v,
    }
}

/// The `System` fields of a record as the crate renders it
/// (`{"Event":{"#attributes":…,"System":{…},…}}`), parsed from the first
/// `"System":` key (System precedes EventData/UserData in every event, and a
/// quote inside a string is escaped, so a value cannot fake the key) to the
/// end of its object, and no further: parsing only this much, not the
/// whole record, is what keeps the conversion near the crate's own speed.
fn system(json: &str) -> Option<System> {
    const KEY: &str = "\"System\":";
    let rest = json.get(json.find(KEY)? + KEY.len()..)?;
    serde_json::Deserializer::from_str(rest).into_iter::<System>().next()?.ok()
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
    // Hashed below the buffer: SHA-256 gets 1 MiB blocks, not each field.
    let mut out = BufWriter::with_capacity(1 << 20, Hashing { inner: file, sha: Sha256::new() });
    let (mut records, mut failed) = (0u64, 0u64);
    let (mut first, mut last) = (None, None);
    let mut head = Vec::with_capacity(512);
    for r in parser.records_json_bytes() {
        let Ok(r) = r else {
            failed += 1;
            continue;
        };
        // The crate renders UTF-8; a SIEM must never get anything else.
        let data = match std::str::from_utf8(&r.data) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(&r.data),
        };
        let system = system(&data).unwrap_or_default();
        let (id, channel, provider) = (event_id(system.event_id), system.channel, system.provider.attributes.name);
        first = first.min(Some(r.timestamp)).or(Some(r.timestamp));
        last = last.max(Some(r.timestamp));
        let ts = r.timestamp.to_string();
        let text = |v: &Value| v.as_str().map(String::from).unwrap_or_else(|| v.to_string());
        let added = Added {
            host,
            source_path,
            record_id: r.event_record_id,
            timestamp: &ts,
            event_id: &id,
            channel: &channel,
            provider: &provider,
            datetime: &ts,
            timestamp_desc: "Event Recorded",
            message: format!("EventID {} {} ({}) on {host}", text(&id), text(&provider), text(&channel)),
        };
        // `{added…}` and the crate's `{"Event":…}` joined into one object.
        head.clear();
        serde_json::to_writer(&mut head, &added)?;
        head.pop();
        out.write_all(&head)?;
        match data.as_bytes().strip_prefix(b"{") {
            Some(b"}") => out.write_all(b"}")?,
            Some(rest) => {
                out.write_all(b",")?;
                out.write_all(rest)?;
            }
            // Not an object (the crate renders one): kept whole, as a field.
            None => {
                out.write_all(b",\"record\":")?;
                out.write_all(data.as_bytes())?;
                out.write_all(b"}")?;
            }
        }
        out.write_all(b"\n")?;
        records += 1;
    }
    let hashed = out.into_inner().map_err(|e| e.into_error())?;
    let sha256 = super::copy::hex(&hashed.sha.finalize());
    let (first, last) = (first.map(|t| t.to_string()), last.map(|t| t.to_string()));
    Ok(Converted { path, records, failed, first, last, sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_fields_are_read_from_the_system_object_only() {
        let rec = r##"{"Event":{"#attributes":{"xmlns":"x"},"System":{"Provider":{"#attributes":{"Name":"a}\"b{"}},"EventID":{"#text":4625,"#attributes":{"Qualifiers":0}},"Channel":"Security"},"EventData":{"Channel":"no"}}}"##;
        let sys = system(rec).unwrap();
        assert_eq!(event_id(sys.event_id), Value::from(4625));
        assert_eq!(sys.channel, "Security");
        assert_eq!(sys.provider.attributes.name, "a}\"b{");
        // No System, a truncated one, or a System that is not an object.
        assert!(system(r#"{"Event":{"EventData":{}}}"#).is_none());
        assert!(system(r#"{"Event":{"System":{"EventID":4"#).is_none());
        assert!(system(r#"{"Event":{"System":5}}"#).is_none());
        // Fields missing from System stay empty, not taken from EventData.
        let bare = system(r#"{"Event":{"System":{},"EventData":{"Channel":"x"}}}"#).unwrap();
        assert_eq!(bare.channel, Value::Null);
    }
}
