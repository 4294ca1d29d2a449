//! An `https://` (or `http://`) location read with byte-range requests
//! (ureq, rustls). One request per fetch: the engine (cache.rs) already
//! joins the blocks one read misses into one range.
//!
//! An Azure page blob (a managed disk or snapshot export link, a VHD
//! uploaded as a page blob) says so in `x-ms-blob-type`; its written
//! ranges are listed once (`Get Page Ranges`, paged by marker), and bytes
//! outside them, which the service would return as zeros, are zeros here
//! without a request: a 128 GiB disk of which 6 GiB were ever written costs
//! requests for those 6 GiB only. A list that cannot be had (a link without
//! the permission, an answer that makes no sense) leaves every byte
//! fetched, as for any other server.

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
    /// An Azure page blob's written ranges `[start, end)`, sorted and
    /// apart; None: every byte is fetched.
    pages: Option<Vec<(u64, u64)>>,
}

/// Written ranges closer than this are fetched in one request: a request
/// costs more than 64 KiB of zeros.
const PAGE_GAP: u64 = 64 << 10;
/// More ranges than this (16 M, 256 MiB of them) is not a list to keep.
const MAX_PAGE_RANGES: usize = 16 << 20;
/// The service version whose `Get Page Ranges` pages its answer by marker.
const AZURE_VERSION: &str = "2020-10-02";

/// Opens a location (or the redacted name `register` gave for one): one
/// 1-byte range request learns its size and that ranges work.
pub(super) fn open(path: &Path) -> io::Result<RemoteFile> {
    let shown = path.to_string_lossy().into_owned();
    let url = registry().lock().unwrap_or_else(|p| p.into_inner()).get(&shown).cloned().unwrap_or_else(|| shown.clone());
    let config = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(TIMEOUT)).max_redirects(5).build();
    let mut http = Http { url, agent: config.into(), pages: None };
    let stats = Arc::new(Stats::default());
    let first = stats.waiting(|| http.fetch_range(0, 1, &stats))?;
    if first.page_blob {
        http.pages = stats.waiting(|| http.page_ranges(first.total, &stats));
        let listed = http.pages.as_ref().map_or(0, |p| p.iter().map(|(a, b)| b - a).sum());
        stats.page_blob_written.store(listed, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(RemoteFile::new(redact(&shown), first.total, BLOCK, Box::new(http), stats))
}

impl Fetcher for Http {
    fn fetch(&self, offset: u64, len: u64, stats: &Arc<Stats>) -> io::Result<Vec<u8>> {
        let Some(pages) = &self.pages else { return Ok(self.fetch_range(offset, len, stats)?.data) };
        let end = offset + len;
        let mut out = vec![0u8; len as usize];
        // The written ranges this span meets, clipped to it, nearby ones
        // joined.
        let from = pages.partition_point(|&(_, e)| e <= offset);
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for &(a, b) in pages[from..].iter().take_while(|&&(a, _)| a < end) {
            let (a, b) = (a.max(offset), b.min(end));
            match runs.last_mut() {
                Some(last) if a - last.1 < PAGE_GAP => last.1 = b,
                _ => runs.push((a, b)),
            }
        }
        for (a, b) in runs {
            let got = self.fetch_range(a, b - a, stats)?.data;
            out[(a - offset) as usize..(b - offset) as usize].copy_from_slice(&got);
        }
        Ok(out)
    }
}

/// What one range request brought.
struct Got {
    /// The size of the whole object.
    total: u64,
    data: Vec<u8>,
    /// `x-ms-blob-type: PageBlob`.
    page_blob: bool,
}

impl Http {
    /// `len` bytes at `offset` in one range request, retried when the
    /// failure may pass; with the total size the server gives. (Messages
    /// do not repeat the location: whoever reports one names the evidence.)
    fn fetch_range(&self, offset: u64, len: u64, stats: &Stats) -> io::Result<Got> {
        let mut retry = Retry::new();
        loop {
            retry.attempt(stats);
            let (why, asked) = match self.request(offset, len) {
                Ok(Fetched::Data(got)) => {
                    stats.bytes.fetch_add(got.data.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    return Ok(got);
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
        let page_blob = resp.headers().get("x-ms-blob-type").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"PageBlob"));
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
            Ok(_) if data.len() as u64 == want => Ok(Fetched::Data(Got { total, data, page_blob })),
            // Cut short: a dropped connection, retried.
            Ok(_) => Err(Failure::Transient(format!("a response of {} bytes where {want} were due", data.len()))),
            Err(e) => Err(Failure::Transient(redact(&e.to_string()))),
        }
    }
}

impl Http {
    /// A page blob's written ranges within its `len` bytes (`Get Page
    /// Ranges`, every page of the answer), sorted and joined; None when the
    /// service does not give a list that makes sense.
    fn page_ranges(&self, len: u64, stats: &Stats) -> Option<Vec<(u64, u64)>> {
        let mut ranges = Vec::new();
        let mut marker = String::new();
        // A marker that never ends the list cannot make us ask forever.
        for _ in 0..100_000 {
            let sep = if self.url.contains('?') { '&' } else { '?' };
            let mut url = format!("{}{sep}comp=pagelist", self.url);
            if !marker.is_empty() {
                url.push_str("&marker=");
                url.push_str(&percent_encode(&marker));
            }
            stats.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut resp = self.agent.get(&url).header("x-ms-version", AZURE_VERSION).call().ok()?;
            if resp.status().as_u16() != 200 {
                return None;
            }
            let mut xml = Vec::new();
            resp.body_mut().as_reader().take(64 << 20).read_to_end(&mut xml).ok()?;
            let page = parse_page_list(&String::from_utf8_lossy(&xml))?;
            ranges.extend(page.ranges);
            if ranges.len() > MAX_PAGE_RANGES {
                return None;
            }
            match page.next_marker {
                Some(m) if !m.is_empty() => marker = m,
                _ => return Some(join_ranges(ranges, len)),
            }
        }
        None
    }
}

/// One answer of `Get Page Ranges`: `<PageRange><Start>s</Start><End>e</End>`
/// (inclusive), and where the next page of the answer starts.
struct PageList {
    ranges: Vec<(u64, u64)>,
    next_marker: Option<String>,
}

fn parse_page_list(xml: &str) -> Option<PageList> {
    let between = |s: &str, open: &str, close: &str| -> Option<(String, usize)> {
        let a = s.find(open)? + open.len();
        let b = a + s[a..].find(close)?;
        Some((s[a..b].trim().to_string(), b + close.len()))
    };
    if !xml.contains("<PageList") {
        return None;
    }
    let mut ranges = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<PageRange>") {
        rest = &rest[i..];
        let (start, _) = between(rest, "<Start>", "</Start>")?;
        let (end, used) = between(rest, "<End>", "</End>")?;
        let (start, end) = (start.parse::<u64>().ok()?, end.parse::<u64>().ok()?);
        if end >= start {
            ranges.push((start, end.saturating_add(1)));
        }
        rest = &rest[used..];
    }
    let next_marker = between(xml, "<NextMarker>", "</NextMarker>").map(|(m, _)| m);
    Some(PageList { ranges, next_marker })
}

/// Ranges clipped to `[0, len)`, sorted, overlapping and touching ones
/// joined (a list from a damaged or hostile server may be neither).
fn join_ranges(mut ranges: Vec<(u64, u64)>, len: u64) -> Vec<(u64, u64)> {
    ranges.retain_mut(|r| {
        r.1 = r.1.min(len);
        r.0 < r.1
    });
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// What a server's answers are parsed into, for the fuzz target
/// `remote_responses`: a Content-Range value (the first line) and a page
/// list (the rest), whose joined ranges must be sorted, apart and within
/// the size the Content-Range gives.
#[doc(hidden)]
pub fn fuzz_responses(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (range, xml) = text.split_once('\n').unwrap_or((&text, ""));
    let len = parse_content_range(range).map_or(1 << 40, |(_, total)| total);
    if let Some(list) = parse_page_list(xml) {
        let joined = join_ranges(list.ranges, len);
        assert!(joined.windows(2).all(|w| w[0].1 < w[1].0) && joined.iter().all(|&(a, b)| a < b && b <= len));
        let _ = percent_encode(list.next_marker.as_deref().unwrap_or(""));
    }
}

/// A marker as a query value.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

enum Fetched {
    Data(Got),
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
    fn page_lists_are_read_joined_and_clipped() {
        let xml = "<?xml version=\"1.0\"?><PageList><PageRange><Start>512</Start><End>1023</End></PageRange>\
                   <ClearRange><Start>1024</Start><End>2047</End></ClearRange>\
                   <PageRange><Start>0</Start><End>511</End></PageRange><PageRange><Start>4096</Start><End>99999</End></PageRange>\
                   <PageRange><Start>9</Start><End>3</End></PageRange><NextMarker>2!a/b=</NextMarker></PageList>";
        let p = parse_page_list(xml).unwrap();
        assert_eq!(p.ranges, [(512, 1024), (0, 512), (4096, 100_000)]);
        assert_eq!(p.next_marker.as_deref(), Some("2!a/b="));
        assert_eq!(join_ranges(p.ranges, 8192), [(0, 1024), (4096, 8192)]);
        assert!(parse_page_list("<Error><Code>AuthorizationFailure</Code></Error>").is_none());
        assert!(parse_page_list("<PageList><PageRange><Start>x</Start><End>1</End></PageRange></PageList>").is_none());
        assert_eq!(parse_page_list("<PageList/>").unwrap().ranges, []);
        assert_eq!(percent_encode("2!a/b="), "2%21a%2Fb%3D");
    }

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes 0-0/1073741824"), Some((0, 1 << 30)));
        assert_eq!(parse_content_range("bytes 5-9/*"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }
}
