//! Evidence read where it is: an `https://` (or `http://`) location whose
//! server answers byte-range requests (http.rs: an Azure managed-disk or
//! snapshot export link, a presigned S3 URL or a signed GCS URL to a raw,
//! VHD, VHDX, QCOW2 or VMDK image), an EBS snapshot, `ebs://snap-…`,
//! read through the EBS direct APIs (ebs.rs, with the `aws` build feature),
//! or an object, `s3://bucket/key` or `gs://bucket/key`, read with range
//! GETs and the provider's credential chain (objects.rs, with the `objects`
//! build feature; `cloud` gives both).
//! snapsift reads a few percent of a disk (partition tables, filesystem
//! metadata, the files the targets name): fetching only those blocks turns
//! a download of hours into minutes.
//!
//! Every kind is a `cache::Fetcher` (bytes at an offset, retried as the service
//! allows) under one engine (cache.rs): a bounded block cache (memory does
//! not grow with the disk), misses fetched together, read-ahead for each
//! stream of sequential reads, and the accounting ([`Stats`]) run.json and
//! the summary give. Throttling, server errors, timeouts and dropped
//! connections are retried with exponential backoff (`cache::Retry`); an expired
//! link or credential, a missing object or snapshot, a server that ignores
//! `Range`, a short response or a wrong checksum is an error naming the
//! evidence, never zeros.
//!
//! A link's query string carries its credential (a SAS signature, an
//! `X-Amz-Signature`, a token): [`register`] swaps it for a redacted name
//! before anything else sees it, so what reaches the case folder, the
//! manifest, the logs and error messages names the object, never the key.
//! EBS, S3 and GCS credentials come from the providers' chains and never
//! leave them; `s3://` and `gs://` names carry no secret.
//!
//! Not here yet: `az://` (give the blob's SAS link instead).

mod cache;
#[cfg_attr(not(feature = "aws"), path = "no_ebs.rs")]
mod ebs;
mod http;
#[cfg_attr(not(feature = "objects"), path = "no_objects.rs")]
mod objects;

pub use cache::RemoteFile;
#[doc(hidden)]
pub use http::fuzz_responses;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// Whether a piece of evidence is given as a location rather than a file.
pub fn is_url(path: &Path) -> bool {
    let s = path.to_string_lossy();
    let lower = s.get(..8).unwrap_or(&s).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with(EBS) || object(&s).is_some()
}

/// Locations of other kinds, said clearly rather than read as file names.
pub fn unsupported_scheme(path: &Path) -> Option<&'static str> {
    let s = path.to_string_lossy();
    ["az://"].into_iter().find(|p| s.starts_with(p))
}

/// The cloud an object location names.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Cloud {
    S3,
    Gcs,
}

/// `s3://bucket/key` or `gs://bucket/key`: the cloud, the bucket, the key
/// (either may still be empty: `object_parts` says what is wrong).
fn object(name: &str) -> Option<(Cloud, &str)> {
    let scheme = name.get(..5)?.to_ascii_lowercase();
    let cloud = match scheme.as_str() {
        "s3://" => Cloud::S3,
        "gs://" => Cloud::Gcs,
        _ => return None,
    };
    Some((cloud, name.get(5..)?))
}

/// The bucket and key an object location names, checked at once so that a
/// typo is said before anything runs.
fn object_parts(name: &str) -> anyhow::Result<(Cloud, &str, &str)> {
    let Some((cloud, rest)) = object(name) else { anyhow::bail!("{name}: not an s3:// or gs:// location") };
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() && !key.ends_with('/') && !name.contains('?') => {
            Ok((cloud, bucket, key))
        }
        _ => anyhow::bail!("{name}: give the object as s3://bucket/key or gs://bucket/key (one object: the disk image)"),
    }
}

/// How to get a location's bytes into a local file, for what cannot be
/// read in place (a compressed or archived image).
pub fn download_command(name: &str) -> String {
    match object(name) {
        Some((Cloud::S3, _)) => format!("aws s3 cp {name} ."),
        Some((Cloud::Gcs, _)) => format!("gcloud storage cp {name} ."),
        None => "curl -o disk.tar.gz '<the link>'".into(),
    }
}

/// An EBS snapshot: `ebs://snap-0123456789abcdef0`.
const EBS: &str = "ebs://";

fn is_ebs(name: &str) -> bool {
    name.get(..EBS.len()).is_some_and(|s| s.eq_ignore_ascii_case(EBS))
}

/// The snapshot id an `ebs://` location names, checked at once so that a
/// typo is said before anything runs.
fn snapshot_id(name: &str) -> anyhow::Result<&str> {
    let id = name.get(EBS.len()..).unwrap_or("").trim_end_matches('/');
    let hex = id.strip_prefix("snap-").unwrap_or("");
    if hex.len() < 8 || hex.len() > 17 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        anyhow::bail!("{name}: not an EBS snapshot id; give ebs://snap- and the snapshot's id (aws ec2 describe-snapshots)");
    }
    Ok(id)
}

/// The AWS region `--region` gives (else the SDK's usual configuration).
static REGION: OnceLock<String> = OnceLock::new();

/// Sets the region `ebs://` snapshots are read in (once, from the command line).
pub fn set_region(region: &str) {
    let _ = REGION.set(region.to_string());
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
            let s = p.to_string_lossy();
            if is_ebs(&s) {
                snapshot_id(&s)?;
                ebs::available()?;
                return Ok(p.clone());
            }
            if object(&s).is_some() {
                object_parts(&s)?;
                objects::available()?;
                return Ok(p.clone());
            }
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
    /// Bytes the layers above asked for (what a local extraction reads from
    /// the image), against which `bytes` is judged.
    pub bytes_read: AtomicU64,
    /// Bytes fetched a second time (or more): blocks evicted, then needed again.
    pub bytes_refetched: AtomicU64,
    /// Bytes fetched ahead of a stream of sequential reads, and those of
    /// them later read.
    pub ahead_fetched: AtomicU64,
    pub ahead_used: AtomicU64,
    pub retries: AtomicU64,
    /// Time readers spent waiting on the network (their requests in flight,
    /// blocks another reader was fetching, backoff before a retry), summed
    /// over threads.
    pub wait_ns: AtomicU64,
    /// An Azure page blob: the bytes its page list says were ever written
    /// (the rest is zeros, never fetched); 0 otherwise.
    pub page_blob_written: AtomicU64,
    /// An EBS snapshot: the most block tokens held at once (bounded).
    pub ebs_tokens_peak: AtomicU64,
}

impl Stats {
    /// Runs `f`, counting the time it takes as waiting on the network.
    fn waiting<T>(&self, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let got = f();
        self.wait_ns.fetch_add(started.elapsed().as_nanos() as u64, Relaxed);
        got
    }

    pub fn json(&self, size: u64) -> serde_json::Value {
        let bytes = self.bytes.load(Relaxed);
        serde_json::json!({
            "size": size,
            "bytes_fetched": bytes,
            "share_fetched": if size > 0 { bytes as f64 / size as f64 } else { 0.0 },
            "bytes_read": self.bytes_read.load(Relaxed),
            "bytes_refetched": self.bytes_refetched.load(Relaxed),
            "read_ahead_unused": self.ahead_fetched.load(Relaxed).saturating_sub(self.ahead_used.load(Relaxed)),
            "requests": self.requests.load(Relaxed),
            "retries": self.retries.load(Relaxed),
            "network_wait_seconds": self.wait_ns.load(Relaxed) as f64 / 1e9,
            "page_blob_written": match self.page_blob_written.load(Relaxed) { 0 => None, n => Some(n) },
            "ebs_tokens_peak": match self.ebs_tokens_peak.load(Relaxed) { 0 => None, n => Some(n) },
        })
    }
}

/// Every remote file opened in this run: opened once (format detection and
/// the format's reader share its cache and its accounting).
fn opened() -> &'static Mutex<Vec<Arc<RemoteFile>>> {
    static O: OnceLock<Mutex<Vec<Arc<RemoteFile>>>> = OnceLock::new();
    O.get_or_init(Default::default)
}

/// The accounting of the remote file shown as `name`, if one was opened.
pub fn stats_of(name: &Path) -> Option<(u64, Arc<Stats>)> {
    let name = redact(&name.to_string_lossy());
    opened().lock().unwrap_or_else(|p| p.into_inner()).iter().find(|f| f.shown == name).map(|f| (f.len, f.stats.clone()))
}

/// The location shown as `path` (or the location itself), opened once.
pub fn open(path: &Path) -> io::Result<Arc<RemoteFile>> {
    let name = redact(&path.to_string_lossy());
    let mut all = opened().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = all.iter().find(|f| f.shown == name) {
        return Ok(f.clone());
    }
    let invalid = |e: anyhow::Error| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
    let f = Arc::new(if is_ebs(&name) {
        ebs::open(snapshot_id(&name).map_err(invalid)?)?
    } else if object(&name).is_some() {
        let (cloud, bucket, key) = object_parts(&name).map_err(invalid)?;
        objects::open(cloud, bucket, key, &name)?
    } else {
        http::open(path)?
    });
    all.push(f.clone());
    Ok(f)
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
        assert!(is_url(Path::new("ebs://snap-0123")) && unsupported_scheme(Path::new("ebs://snap-0123")).is_none());
        assert_eq!(unsupported_scheme(Path::new("az://b/k")), Some("az://"));
        assert!(is_url(Path::new("s3://b/k")) && is_url(Path::new("gs://b/k")) && !is_url(Path::new("s3:/b/k")));
        assert_eq!(object_parts("gs://b/dir/disk.raw").ok(), Some((Cloud::Gcs, "b", "dir/disk.raw")));
        assert!(object_parts("s3://b").is_err() && object_parts("s3:///k").is_err() && object_parts("s3://b/dir/").is_err());
        assert_eq!(redact("s3://b/k.vmdk"), "s3://b/k.vmdk");
        assert_eq!(redact("ebs://snap-0123456789abcdef0"), "ebs://snap-0123456789abcdef0");
        assert_eq!(snapshot_id("ebs://snap-0123456789abcdef0").ok(), Some("snap-0123456789abcdef0"));
        assert!(snapshot_id("ebs://vol-0123456789abcdef0").is_err() && snapshot_id("ebs://snap-01234567/../x").is_err());
    }
}
