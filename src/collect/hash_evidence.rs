//! `--hash-evidence`: the SHA-256 of every evidence file (segments,
//! extents and parents included; with `=all`, of locations read in place
//! too), for run.json. One thread of its own reads
//! each file sequentially while the extraction runs, so the digests cost no
//! second pass over the evidence afterwards.

use super::copy::hex;
use crate::evidence::{RawFile, ReadAt, remote};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

type Digests = HashMap<PathBuf, Result<String, String>>;

pub struct Hasher {
    tx: mpsc::Sender<PathBuf>,
    thread: JoinHandle<Digests>,
}

impl Hasher {
    /// Starts hashing the evidence named on the command line at once.
    pub fn start(evidence: &[PathBuf]) -> Hasher {
        let (tx, rx) = mpsc::channel::<PathBuf>();
        let thread = std::thread::spawn(move || {
            let mut done = Digests::new();
            for p in rx {
                if !done.contains_key(&p) && !p.is_dir() {
                    let d = sha256(&p).map_err(|e| e.to_string());
                    done.insert(p, d);
                }
            }
            done
        });
        let h = Hasher { tx, thread };
        h.add(evidence);
        h
    }

    /// Adds the files found on opening (the other segments, extents,
    /// parents); a file already hashed is not read again.
    pub fn add(&self, files: &[PathBuf]) {
        for f in files {
            // The thread only ends when `finish` drops the sender.
            let _ = self.tx.send(f.clone());
        }
    }

    /// Waits for the last file and records each evidence entry's digests
    /// in it, as `"sha256": {file: digest}` (or `"error: …"`).
    pub fn finish(self, evidence_json: &mut [serde_json::Value]) {
        drop(self.tx);
        let digests = self.thread.join().unwrap_or_default();
        for ev in evidence_json {
            let files: Vec<PathBuf> = match ev.get("files").and_then(|f| f.as_array()) {
                Some(list) => list.iter().filter_map(|f| f.as_str().map(PathBuf::from)).collect(),
                None => ev.get("path").and_then(|p| p.as_str()).map(PathBuf::from).into_iter().collect(),
            };
            let map: serde_json::Map<String, serde_json::Value> = files
                .iter()
                .filter_map(|f| {
                    let d = digests.get(f)?;
                    Some((f.display().to_string(), d.clone().unwrap_or_else(|e| format!("error: {e}")).into()))
                })
                .collect();
            ev["sha256"] = map.into();
        }
    }
}

fn sha256(path: &Path) -> std::io::Result<String> {
    // Opened as every evidence file is: read-only, and never a FIFO. A
    // location (`--hash-evidence=all`) through the reader the extraction
    // shares: its reads stream through the block cache, and its bytes
    // count in the location's accounting.
    let f: Box<dyn ReadAt> = match remote::is_url(path) {
        true => Box::new(remote::open(path)?),
        false => Box::new(RawFile::open(path)?),
    };
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < f.len() {
        let n = f.read_at(off, &mut buf)?;
        if n == 0 {
            return Err(std::io::Error::other(format!("the file shrank to {off} bytes while it was hashed")));
        }
        h.update(&buf[..n]);
        off += n as u64;
    }
    Ok(hex(&h.finalize()))
}
