//! Evidence read where it is: an `https://` (or `http://`) location whose
//! server answers byte-range requests. An Azure managed-disk or snapshot
//! export link (a SAS URL to a fixed VHD page blob), a presigned S3 URL or
//! a signed GCS URL to a raw, VHD, VHDX, QCOW2 or VMDK image. snapsift
//! reads a few percent of a disk (partition tables, filesystem metadata,
//! the files the targets name): fetching only those blocks turns a
//! download of hours into minutes.
//!
//! Reads go through a bounded cache of 256 KiB blocks (memory does not grow
//! with the disk). A miss that continues the previous fetch reads twice as
//! far ahead as that one did, up to 8 MiB in one request (a file copy
//! reads sequentially), and the copy threads fetch in parallel. Throttling (429), server errors (5xx),
//! timeouts and dropped connections are retried with exponential backoff,
//! honouring `Retry-After`; a 403 (an expired or revoked link), a 404, a
//! server that ignores `Range`, or a response shorter than asked is an
//! error naming the evidence, never zeros.
//!
//! The location's query string carries its credential (a SAS signature, an
//! `X-Amz-Signature`, a token): [`register`] swaps it for a redacted name
//! before anything else sees it, so what reaches the case folder, the
//! manifest, the logs and error messages names the object, never the key.
//!
//! Not here yet: `ebs://` (the EBS direct APIs), `s3://` and `gs://` with
//! the providers' credential chains, and Azure's `Get Page Ranges` (blocks
//! never written are fetched like the others).

use super::ReadAt;
use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Cache block size and how many are kept (bounded memory: 48 MiB). Small
/// blocks fetch little beyond what is read (filesystem metadata lies
/// scattered); sequential reads grow into large requests anyway.
const BLOCK: u64 = 256 << 10;
const CACHED_BLOCKS: usize = 192;
/// At most this many blocks in one request (8 MiB), when reads run on.
const READ_AHEAD: u64 = 32;
const ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A request that sends nothing for this long is retried.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Whether a piece of evidence is given as a location rather than a file.
pub fn is_url(path: &Path) -> bool {
    let s = path.to_string_lossy();
    let lower = s.get(..8).unwrap_or(&s).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// Locations of other kinds, said clearly rather than read as file names.
pub fn unsupported_scheme(path: &Path) -> Option<&'static str> {
    let s = path.to_string_lossy();
    ["ebs://", "s3://", "gs://", "az://"].into_iter().find(|p| s.starts_with(p))
}

/// The location with its credential removed: every query value (SAS
/// `sig`/`se`/`sp`, `X-Amz-*`, `X-Goog-*`, tokens) and any `user:password@`
/// replaced, so that the name identifies the object and nothing more.
pub fn redact(url: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            format!("{scheme}://{host}{}{path}", if rest.contains('/') { "/" } else { "" })
        }
        None => base.to_string(),
    };
    if query.is_empty() {
        return base;
    }
    let keys: Vec<String> =
        query.split('&').filter(|kv| !kv.is_empty()).map(|kv| format!("{}=REDACTED", kv.split('=').next().unwrap_or(""))).collect();
    format!("{base}?{}", keys.join("&"))
}

/// Real locations by their redacted names.
fn registry() -> &'static Mutex<HashMap<String, String>> {
    static R: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Keeps `url` aside and gives the redacted name to use for it everywhere
/// (opening that name reads `url`).
pub fn register(url: &str) -> PathBuf {
    let shown = redact(url);
    registry().lock().unwrap_or_else(|p| p.into_inner()).insert(shown.clone(), url.to_string());
    PathBuf::from(shown)
}

/// The command line's evidence with each location registered under its
/// redacted name; a location of a kind not read yet is an error saying
/// what to do instead.
pub fn locations(evidence: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    evidence
        .iter()
        .map(|p| {
            if let Some(scheme) = unsupported_scheme(p) {
                anyhow::bail!(
                    "{}: {scheme} locations are not read yet; give an https:// link to the image instead (an Azure disk export link, a presigned S3 URL: aws s3 presign s3://bucket/key, a signed GCS URL: gcloud storage sign-url gs://bucket/key), or download it",
                    redact(&p.to_string_lossy())
                );
            }
            Ok(if is_url(p) { register(&p.to_string_lossy()) } else { p.clone() })
        })
        .collect()
}

/// A command-line argument as it may be recorded (run.json): a location
/// without its credential.
pub fn redact_arg(arg: &str) -> String {
    if is_url(Path::new(arg)) { redact(arg) } else { arg.to_string() }
}

/// What reading a remote piece of evidence cost, for the summary and run.json.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
    pub retries: AtomicU64,
    /// Time spent waiting on the network, summed over threads.
    pub wait_ns: AtomicU64,
}

impl Stats {
    pub fn json(&self, size: u64) -> serde_json::Value {
        let bytes = self.bytes.load(Relaxed);
        serde_json::json!({
            "size": size,
            "bytes_fetched": bytes,
            "share_fetched": if size > 0 { bytes as f64 / size as f64 } else { 0.0 },
            "requests": self.requests.load(Relaxed),
            "retries": self.retries.load(Relaxed),
            "network_wait_seconds": self.wait_ns.load(Relaxed) as f64 / 1e9,
        })
    }
}

/// Every remote file opened in this run: opened once (format detection and
/// the format's reader share its cache and its accounting).
fn opened() -> &'static Mutex<Vec<Arc<HttpFile>>> {
    static O: OnceLock<Mutex<Vec<Arc<HttpFile>>>> = OnceLock::new();
    O.get_or_init(Default::default)
}

/// The accounting of the remote file shown as `name`, if one was opened.
pub fn stats_of(name: &Path) -> Option<(u64, Arc<Stats>)> {
    let name = redact(&name.to_string_lossy());
    opened().lock().unwrap_or_else(|p| p.into_inner()).iter().find(|f| f.shown == name).map(|f| (f.len, f.stats.clone()))
}

/// The location shown as `path` (or the location itself), opened once.
pub fn open(path: &Path) -> io::Result<Arc<HttpFile>> {
    let name = redact(&path.to_string_lossy());
    let mut all = opened().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = all.iter().find(|f| f.shown == name) {
        return Ok(f.clone());
    }
    let f = Arc::new(HttpFile::open(path)?);
    all.push(f.clone());
    Ok(f)
}

pub struct HttpFile {
    url: String,
    /// The redacted name, for messages.
    shown: String,
    agent: ureq::Agent,
    len: u64,
    cache: Mutex<Cache>,
    /// The block after the last one fetched, and how many blocks that
    /// fetch took: a miss there reads ahead, twice as far each time.
    next: AtomicU64,
    ahead: AtomicU64,
    stats: Arc<Stats>,
}

/// The most recently used blocks, oldest first.
#[derive(Default)]
struct Cache {
    blocks: Vec<(u64, Arc<Vec<u8>>)>,
}

impl Cache {
    fn get(&mut self, n: u64) -> Option<Arc<Vec<u8>>> {
        let i = self.blocks.iter().position(|(b, _)| *b == n)?;
        let hit = self.blocks.remove(i);
        let data = hit.1.clone();
        self.blocks.push(hit);
        Some(data)
    }

    fn put(&mut self, n: u64, data: Arc<Vec<u8>>) {
        self.blocks.retain(|(b, _)| *b != n);
        if self.blocks.len() >= CACHED_BLOCKS {
            self.blocks.remove(0);
        }
        self.blocks.push((n, data));
    }
}

impl HttpFile {
    /// Opens a location (or the redacted name [`register`] gave for one):
    /// one 1-byte range request learns its size and that ranges work.
    fn open(path: &Path) -> io::Result<HttpFile> {
        let shown = path.to_string_lossy().into_owned();
        let url = registry().lock().unwrap_or_else(|p| p.into_inner()).get(&shown).cloned().unwrap_or_else(|| shown.clone());
        let shown = redact(&shown);
        let config = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(TIMEOUT)).max_redirects(5).build();
        let mut f = HttpFile {
            url,
            shown,
            agent: config.into(),
            len: 0,
            cache: Mutex::new(Cache::default()),
            next: AtomicU64::new(u64::MAX),
            ahead: AtomicU64::new(1),
            stats: Arc::new(Stats::default()),
        };
        f.len = f.fetch(0, 1)?.0;
        Ok(f)
    }

    /// (Messages do not repeat the location: whoever reports one names the
    /// evidence.)
    fn err(&self, kind: io::ErrorKind, what: String) -> io::Error {
        io::Error::new(kind, what)
    }

    /// `len` bytes at `offset` in one range request, retried when the
    /// failure may pass; with the total size the server gives.
    fn fetch(&self, offset: u64, len: u64) -> io::Result<(u64, Vec<u8>)> {
        let mut backoff = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                self.stats.retries.fetch_add(1, Relaxed);
            }
            let started = Instant::now();
            let got = self.request(offset, len);
            self.stats.wait_ns.fetch_add(started.elapsed().as_nanos() as u64, Relaxed);
            self.stats.requests.fetch_add(1, Relaxed);
            let wait = match got {
                Ok(Fetched::Data(total, data)) => {
                    self.stats.bytes.fetch_add(data.len() as u64, Relaxed);
                    return Ok((total, data));
                }
                Ok(Fetched::Retry(why, after)) => {
                    last = why;
                    after.unwrap_or(backoff)
                }
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Transient(why)) => {
                    last = why;
                    backoff
                }
            };
            std::thread::sleep(wait.min(MAX_BACKOFF));
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        Err(self.err(io::ErrorKind::TimedOut, format!("gave up after {ATTEMPTS} attempts: {last}")))
    }

    fn request(&self, offset: u64, len: u64) -> Result<Fetched, Failure> {
        let end = offset + len - 1;
        let resp = self.agent.get(&self.url).header("Range", format!("bytes={offset}-{end}")).call();
        let mut resp = match resp {
            Ok(r) => r,
            // Connection refused or reset, DNS, timeouts: may pass.
            Err(e) => return Err(Failure::Transient(redact(&e.to_string()))),
        };
        let status = resp.status().as_u16();
        let retry_after =
            resp.headers().get("retry-after").and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok()).map(Duration::from_secs);
        match status {
            206 => {}
            200 => {
                return Err(Failure::Final(self.err(
                    io::ErrorKind::Unsupported,
                    "the server ignores byte-range requests (it answered 200 with the whole object): it cannot be read in place; download it first (curl -o disk.img '<the link>') and give the file".into(),
                )));
            }
            416 if offset == 0 => return Err(Failure::Final(self.err(io::ErrorKind::UnexpectedEof, "the object is empty".into()))),
            403 | 401 => {
                return Err(Failure::Final(self.err(
                    io::ErrorKind::PermissionDenied,
                    format!("access denied (HTTP {status}): the link has expired or was revoked, or grants no read access; make a new one and run again"),
                )));
            }
            404 => return Err(Failure::Final(self.err(io::ErrorKind::NotFound, "no such object (HTTP 404): check the link".into()))),
            429 | 500 | 502 | 503 | 504 => return Ok(Fetched::Retry(format!("HTTP {status}"), retry_after)),
            s => return Err(Failure::Final(self.err(io::ErrorKind::Other, format!("unexpected HTTP status {s}")))),
        }
        let range = resp.headers().get("content-range").and_then(|v| v.to_str().ok()).map(str::to_string);
        let Some((start, total)) = range.as_deref().and_then(parse_content_range) else {
            return Err(Failure::Final(
                self.err(io::ErrorKind::InvalidData, format!("a partial response without a usable Content-Range ({range:?})")),
            ));
        };
        if start != offset {
            return Err(Failure::Final(
                self.err(io::ErrorKind::InvalidData, format!("asked for bytes from {offset}, the server sent from {start}")),
            ));
        }
        let want = len.min(total.saturating_sub(offset));
        let mut data = Vec::with_capacity(want as usize);
        let read = resp.body_mut().as_reader().take(want).read_to_end(&mut data);
        match read {
            Ok(_) if data.len() as u64 == want => Ok(Fetched::Data(total, data)),
            // Cut short: a dropped connection, retried.
            Ok(_) => Err(Failure::Transient(format!("a response of {} bytes where {want} were due", data.len()))),
            Err(e) => Err(Failure::Transient(redact(&e.to_string()))),
        }
    }

    /// Block `n`, from the cache or fetched (with the blocks after it when
    /// reads run on).
    fn block(&self, n: u64) -> io::Result<Arc<Vec<u8>>> {
        if let Some(b) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(n) {
            return Ok(b);
        }
        let blocks = self.len.div_ceil(BLOCK);
        let ahead = if self.next.load(Relaxed) == n { (self.ahead.load(Relaxed) * 2).min(READ_AHEAD) } else { 1 };
        let count = ahead.min(blocks.saturating_sub(n)).max(1);
        let offset = n * BLOCK;
        let (_, data) = self.fetch(offset, (count * BLOCK).min(self.len - offset))?;
        self.next.store(n + count, Relaxed);
        self.ahead.store(count, Relaxed);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let mut mine = None;
        for (i, chunk) in data.chunks(BLOCK as usize).enumerate() {
            let b = Arc::new(chunk.to_vec());
            if i == 0 {
                mine = Some(b.clone());
            }
            cache.put(n + i as u64, b);
        }
        mine.ok_or_else(|| self.err(io::ErrorKind::UnexpectedEof, format!("nothing at {offset}")))
    }
}

enum Fetched {
    Data(u64, Vec<u8>),
    /// Throttled or a server error: try again (after the time given).
    Retry(String, Option<Duration>),
}

enum Failure {
    Transient(String),
    Final(io::Error),
}

/// `bytes START-END/TOTAL` → (START, TOTAL).
fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (start, _) = span.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()?))
}

impl ReadAt for HttpFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.len - offset) as usize;
        let mut done = 0;
        while done < want {
            let at = offset + done as u64;
            let block = self.block(at / BLOCK)?;
            let from = (at % BLOCK) as usize;
            let n = (want - done).min(Vec::len(&block).saturating_sub(from));
            if n == 0 {
                return Err(self.err(io::ErrorKind::UnexpectedEof, format!("block {} is short", at / BLOCK)));
            }
            buf[done..done + n].copy_from_slice(&block[from..from + n]);
            done += n;
        }
        Ok(done)
    }

    fn len(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_survive_redaction() {
        let sas = "https://md-abc.z1.blob.storage.azure.net/xyz/abcd?sv=2018-03-28&sr=b&si=1234&sig=SECRET%2Bkey%3D";
        assert_eq!(redact(sas), "https://md-abc.z1.blob.storage.azure.net/xyz/abcd?sv=REDACTED&sr=REDACTED&si=REDACTED&sig=REDACTED");
        let s3 = "https://b.s3.amazonaws.com/disk.vmdk?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F&X-Amz-Signature=SECRET";
        assert!(!redact(s3).contains("SECRET") && !redact(s3).contains("AKIA"));
        assert_eq!(redact("http://user:SECRET@host:8080/a/b.raw"), "http://host:8080/a/b.raw");
        assert_eq!(redact("https://host"), "https://host");
        assert!(is_url(Path::new("HTTPS://x/y")) && !is_url(Path::new("/tmp/https:/x")));
        assert_eq!(unsupported_scheme(Path::new("ebs://snap-0123")), Some("ebs://"));
    }

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes 0-0/1073741824"), Some((0, 1 << 30)));
        assert_eq!(parse_content_range("bytes 5-9/*"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn the_cache_keeps_the_most_recent_blocks() {
        let mut c = Cache::default();
        for n in 0..(CACHED_BLOCKS as u64 + 2) {
            c.put(n, Arc::new(vec![n as u8]));
        }
        assert!(c.get(0).is_none() && c.get(1).is_none());
        assert_eq!(c.get(2).as_deref(), Some(&vec![2u8]));
        assert_eq!(c.blocks.len(), CACHED_BLOCKS);
    }
}
