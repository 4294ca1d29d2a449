//! An `https://` (or `http://`) location read with byte-range requests
//! (ureq, rustls). One request per fetch: the engine (cache.rs) already
//! joins the blocks one read misses into one range.

use super::cache::{BLOCK, Fetcher, RemoteFile, Retry};
use super::{Stats, redact, registry};
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A request that sends nothing for this long is retried.
const TIMEOUT: Duration = Duration::from_secs(60);

struct Http {
    url: String,
    agent: ureq::Agent,
}

/// Opens a location (or the redacted name `register` gave for one): one
/// 1-byte range request learns its size and that ranges work.
pub(super) fn open(path: &Path) -> io::Result<RemoteFile> {
    let shown = path.to_string_lossy().into_owned();
    let url = registry().lock().unwrap_or_else(|p| p.into_inner()).get(&shown).cloned().unwrap_or_else(|| shown.clone());
    let config = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(TIMEOUT)).max_redirects(5).build();
    let http = Http { url, agent: config.into() };
    let stats = Arc::new(Stats::default());
    let (len, _) = stats.waiting(|| http.fetch_range(0, 1, &stats))?;
    Ok(RemoteFile::new(redact(&shown), len, BLOCK, Box::new(http), stats))
}

impl Fetcher for Http {
    fn fetch(&self, offset: u64, len: u64, stats: &Arc<Stats>) -> io::Result<Vec<u8>> {
        Ok(self.fetch_range(offset, len, stats)?.1)
    }
}

impl Http {
    /// `len` bytes at `offset` in one range request, retried when the
    /// failure may pass; with the total size the server gives. (Messages
    /// do not repeat the location: whoever reports one names the evidence.)
    fn fetch_range(&self, offset: u64, len: u64, stats: &Stats) -> io::Result<(u64, Vec<u8>)> {
        let mut retry = Retry::new();
        loop {
            retry.attempt(stats);
            let (why, asked) = match self.request(offset, len) {
                Ok(Fetched::Data(total, data)) => {
                    stats.bytes.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    return Ok((total, data));
                }
                Ok(Fetched::Retry(why, after)) => (why, after),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Transient(why)) => (why, None),
            };
            std::thread::sleep(retry.wait(&why, asked)?);
        }
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
        let fail = |kind, what: &str| Err(Failure::Final(io::Error::new(kind, what.to_string())));
        match status {
            206 => {}
            200 => {
                return fail(
                    io::ErrorKind::Unsupported,
                    "the server ignores byte-range requests (it answered 200 with the whole object): it cannot be read in place; download it first (curl -o disk.img '<the link>') and give the file",
                );
            }
            416 if offset == 0 => return fail(io::ErrorKind::UnexpectedEof, "the object is empty"),
            403 | 401 => {
                return fail(
                    io::ErrorKind::PermissionDenied,
                    &format!(
                        "access denied (HTTP {status}): the link has expired or was revoked, or grants no read access; make a new one and run again"
                    ),
                );
            }
            404 => return fail(io::ErrorKind::NotFound, "no such object (HTTP 404): check the link"),
            429 | 500 | 502 | 503 | 504 => return Ok(Fetched::Retry(format!("HTTP {status}"), retry_after)),
            s => return fail(io::ErrorKind::Other, &format!("unexpected HTTP status {s}")),
        }
        let range = resp.headers().get("content-range").and_then(|v| v.to_str().ok()).map(str::to_string);
        let Some((start, total)) = range.as_deref().and_then(parse_content_range) else {
            return fail(io::ErrorKind::InvalidData, &format!("a partial response without a usable Content-Range ({range:?})"));
        };
        if start != offset {
            return fail(io::ErrorKind::InvalidData, &format!("asked for bytes from {offset}, the server sent from {start}"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes 0-0/1073741824"), Some((0, 1 << 30)));
        assert_eq!(parse_content_range("bytes 5-9/*"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }
}
