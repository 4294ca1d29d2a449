//! EnCase images (E01/Ex01), through the `ewf` crate (Apache-2.0): its
//! evaluation found it correct on multi-segment images and thread-safe
//! (`read_at(&self)`). Segment discovery (`.E01`, `.E02`, …) is the crate's.

use super::{Opened, ReadAt};
use anyhow::{Context, Result};
use std::io;
use std::path::Path;
use std::sync::Arc;

pub struct Ewf {
    reader: ewf::EwfReader,
}

impl ReadAt for Ewf {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read_at(buf, offset).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }
    fn len(&self) -> u64 {
        self.reader.total_size()
    }
}

pub fn open(path: &Path) -> Result<Opened> {
    let reader = ewf::EwfReader::open(path).with_context(|| format!("cannot open EnCase image {}", path.display()))?;
    let m = reader.metadata();
    let mut notes = Vec::new();
    for (k, v) in [
        ("case number", &m.case_number),
        ("evidence number", &m.evidence_number),
        ("description", &m.description),
        ("examiner", &m.examiner),
        ("notes", &m.notes),
        ("acquired with", &m.acquiry_software),
        ("acquisition date", &m.acquiry_date),
    ] {
        if let Some(v) = v.as_ref().filter(|v| !v.trim().is_empty()) {
            notes.push(format!("{k}: {}", v.trim()));
        }
    }
    let h = reader.stored_hashes();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    if let Some(md5) = h.md5 {
        notes.push(format!("stored MD5: {}", hex(&md5)));
    }
    if let Some(sha1) = h.sha1 {
        notes.push(format!("stored SHA-1: {}", hex(&sha1)));
    }
    let warnings = reader
        .acquisition_errors()
        .iter()
        .map(|e| {
            format!(
                "acquisition error recorded in the image: sectors {}..{} were unreadable when imaged",
                e.first_sector,
                e.first_sector as u64 + e.sector_count as u64
            )
        })
        .collect();
    // The segment files, as the crate finds them: x.E01, x.E02, …
    let mut files = vec![path.to_path_buf()];
    if let (Some(stem), Some(ext)) = (path.file_stem(), path.extension().and_then(|e| e.to_str())) {
        let prefix = &ext[..ext.len().saturating_sub(2)];
        for i in 2..1000 {
            let p = path.with_file_name(format!("{}.{prefix}{i:02}", stem.to_string_lossy()));
            if !p.is_file() {
                break;
            }
            files.push(p);
        }
    }
    Ok(Opened { source: Arc::new(Ewf { reader }), format: "EnCase (E01)".into(), files, warnings, notes })
}
