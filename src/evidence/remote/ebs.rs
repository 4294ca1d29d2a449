//! An EBS snapshot read in place, `ebs://snap-…`, through the EBS direct
//! APIs with the official AWS SDK (credentials from its standard chain:
//! environment, profile, SSO, instance or container role; the region from
//! `--region` or the usual AWS configuration).
//!
//! Opening lists the snapshot's blocks (`ListSnapshotBlocks`, every page):
//! which exist (kept as one bit a block: 256 KiB for a 1 TiB volume), the
//! block size and the volume size, as the service reports them (moto says
//! 512 bytes, EBS 512 KiB: never a constant). A block not listed was never
//! written and reads as zeros without a request. The block tokens are not
//! kept from that listing (2 M of them for a fully written 1 TiB volume):
//! a fetch lists the token page its blocks are in (`StartingBlockIndex`),
//! and a few such pages are kept, re-listed once their `ExpiryTime` is
//! near, or when a block request says its token has expired (then that
//! block is asked for once more, with the new token). A fetch
//! asks for each listed block it covers (`GetSnapshotBlock`) at once, up to
//! [`IN_FLIGHT`], and checks each one's SHA-256 against the checksum the
//! service sends: a block that does not match is an error naming it, never
//! used (a fetch is all or an error, so the files it holds become error
//! rows). The SDK's own retries are off: throttling and server errors are
//! retried here, with the engine's policy, so that run.json counts them.
//!
//! The SDK is async; one runtime, made on first use, serves every snapshot
//! (and every s3:// and gs:// object, objects.rs), and the readers (rayon's
//! threads, never the runtime's) wait on it.

use super::cache::{Attempt, BLOCK, Fetcher, RemoteFile, Retry};
use super::{REGION, Stats};
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ebs::Client;
use aws_sdk_ebs::config::Region;
use aws_sdk_ebs::config::http::HttpResponse;
use aws_sdk_ebs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ebs::operation::get_snapshot_block::GetSnapshotBlockError;
use aws_sdk_ebs::operation::list_snapshot_blocks::ListSnapshotBlocksOutput;
use aws_sdk_ebs::types::{ChecksumAlgorithm, ValidationExceptionReason};
use sha2::{Digest, Sha256};
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};
use tokio::runtime::Runtime;

/// Block requests in flight for one fetch (each reader's own).
const IN_FLIGHT: usize = 16;
/// A listing page as large as the service allows: few requests to open.
const PAGE: i32 = 10_000;
/// Block indexes a token page covers (2 GiB of 512 KiB blocks).
const TOKEN_PAGE: u64 = 4096;
/// Token pages kept: at most `TOKENS_KEPT × TOKEN_PAGE` tokens held.
const TOKENS_KEPT: usize = 8;
/// A token page this close to its expiry is listed again before use.
const EXPIRY_MARGIN: Duration = Duration::from_secs(120);

/// The token page span: `SNAPSIFT_EBS_TOKEN_PAGE` (a test hook, to see the
/// bound hold on a small volume), else [`TOKEN_PAGE`].
fn token_page() -> u64 {
    std::env::var("SNAPSIFT_EBS_TOKEN_PAGE").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(TOKEN_PAGE)
}

pub(super) fn available() -> anyhow::Result<()> {
    Ok(())
}

/// The runtime every SDK and object-store call runs on, made once.
pub(super) fn runtime() -> io::Result<&'static Runtime> {
    static RT: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("snapsift-net")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| io::Error::other(format!("cannot start the runtime the AWS SDK needs: {e}")))
}

/// Opens `snapshot`: its listing, then a reader of its blocks.
pub(super) fn open(snapshot: &str) -> io::Result<RemoteFile> {
    let rt = runtime()?;
    let client = rt.block_on(client())?;
    let stats = Arc::new(Stats::default());
    let listing = stats.waiting(|| rt.block_on(list(&client, snapshot, &stats)))?;
    // Cache blocks of at least BLOCK: moto's 512-byte blocks would make a
    // cache of tiny entries (the fetch still asks for each service block).
    let cache_block = if listing.block < BLOCK && BLOCK.is_multiple_of(listing.block) { BLOCK } else { listing.block };
    let source = Source {
        client,
        snapshot: snapshot.to_string(),
        block: listing.block,
        span: token_page(),
        pages: Arc::new(Mutex::new(Vec::new())),
        listing: Arc::default(),
    };
    let ebs = Ebs { source, written: listing.written, rt };
    Ok(RemoteFile::new(format!("{}{snapshot}", super::EBS), listing.len, cache_block, Box::new(ebs), stats))
}

/// An EBS client for the configured region and credentials: rustls with
/// ring (as ureq), the SDK's retries off (ours count them), and timeouts
/// so that a stalled connection is retried rather than waited on forever.
async fn client() -> io::Result<Client> {
    let config = sdk_config().await;
    if config.region().is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no AWS region: give the snapshot's region with --region (or set AWS_REGION, or a region in the AWS profile)",
        ));
    }
    Ok(Client::new(&config))
}

/// The AWS configuration (`--region` first), with its credential chain.
pub(super) async fn sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let timeouts =
        TimeoutConfig::builder().connect_timeout(Duration::from_secs(10)).operation_attempt_timeout(Duration::from_secs(60)).build();
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).http_client(http).retry_config(RetryConfig::disabled()).timeout_config(timeouts);
    if let Some(region) = REGION.get() {
        loader = loader.region(Region::new(region.clone()));
    }
    loader.load().await
}

/// What `ListSnapshotBlocks` says of a snapshot.
struct Listing {
    block: u64,
    len: u64,
    /// One bit a block: set where the block exists.
    written: Vec<u64>,
}

fn is_set(bits: &[u64], i: u64) -> bool {
    bits.get((i / 64) as usize).is_some_and(|w| w >> (i % 64) & 1 == 1)
}

async fn list(client: &Client, snapshot: &str, stats: &Stats) -> io::Result<Listing> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, format!("{snapshot}: the block listing {what}"));
    let mut written: Vec<u64> = Vec::new();
    let mut blocks = 0u64;
    let (mut block, mut gib) = (None, None);
    let mut next: Option<String> = None;
    loop {
        let page = list_page(client, snapshot, None, PAGE, &next, stats).await?;
        block = block.or(page.block_size());
        gib = gib.or(page.volume_size());
        if written.is_empty() {
            let (b, l) = geometry(block, gib).map_err(bad)?;
            blocks = l / b;
            written = vec![0; blocks.div_ceil(64) as usize];
        }
        for i in page.blocks().iter().filter_map(|b| u64::try_from(b.block_index()?).ok()) {
            if i >= blocks {
                return Err(bad(format!("lists block {i}, past the end of a {blocks}-block volume")));
            }
            written[(i / 64) as usize] |= 1 << (i % 64);
        }
        let token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
        // A service that hands back the token it was given would list forever.
        if token.is_none() || token == next {
            break;
        }
        next = token;
    }
    let (block, len) = geometry(block, gib).map_err(bad)?;
    Ok(Listing { block, len, written })
}

/// One answer of `ListSnapshotBlocks`, retried as any request.
async fn list_page(
    client: &Client,
    snapshot: &str,
    start: Option<i32>,
    max: i32,
    next: &Option<String>,
    stats: &Stats,
) -> io::Result<ListSnapshotBlocksOutput> {
    retrying(stats, || async {
        client
            .list_snapshot_blocks()
            .snapshot_id(snapshot)
            .set_starting_block_index(start)
            .max_results(max)
            .set_next_token(next.clone())
            .send()
            .await
            .map_err(|e| sdk_failure(&e, snapshot))
    })
    .await
}

/// The block size and the volume's length in bytes, if they make sense.
fn geometry(block: Option<i32>, gib: Option<i64>) -> Result<(u64, u64), String> {
    let block = match block.and_then(|b| u64::try_from(b).ok()) {
        Some(b) if b.is_power_of_two() && b >= 512 => b,
        b => return Err(format!("gives no usable block size ({b:?})")),
    };
    match gib.and_then(|g| u64::try_from(g).ok()).and_then(|g| g.checked_mul(1 << 30)) {
        // At most 2^31 blocks: the API's indexes are 32-bit.
        Some(l) if l > 0 && l / block <= 1 << 31 => Ok((block, l)),
        _ => Err(format!("gives no usable volume size ({gib:?} GiB)")),
    }
}

/// The tokens of the listed blocks in `[first, first + span)`, and when
/// the service said they expire.
struct TokenPage {
    first: u64,
    expiry: Option<SystemTime>,
    tokens: Tokens,
}

/// A page's block tokens, by block index.
type Tokens = Arc<Vec<(u64, String)>>;

async fn list_tokens(client: &Client, snapshot: &str, first: u64, span: u64, stats: &Stats) -> io::Result<TokenPage> {
    let start = i32::try_from(first)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{snapshot}: block {first} is past what the API can ask for")))?;
    let want = i32::try_from(span).unwrap_or(PAGE).clamp(100, PAGE);
    let (mut tokens, mut expiry) = (Vec::new(), None::<SystemTime>);
    let mut next: Option<String> = None;
    loop {
        let page = list_page(client, snapshot, Some(start), want, &next, stats).await?;
        if let Some(t) = page.expiry_time().and_then(|t| SystemTime::try_from(*t).ok()) {
            expiry = Some(expiry.map_or(t, |e| e.min(t)));
        }
        let mut past = false;
        for b in page.blocks() {
            let (Some(i), Some(t)) = (b.block_index().and_then(|i| u64::try_from(i).ok()), b.block_token()) else { continue };
            if i >= first.saturating_add(span) {
                past = true;
            } else if i >= first {
                tokens.push((i, t.to_string()));
            }
        }
        let token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
        if past || token.is_none() || token == next {
            break;
        }
        next = token;
    }
    tokens.sort_unstable_by_key(|t| t.0);
    tokens.dedup_by_key(|t| t.0);
    Ok(TokenPage { first, expiry, tokens: Arc::new(tokens) })
}

struct Ebs {
    source: Source,
    written: Vec<u64>,
    rt: &'static Runtime,
}

/// What a block request needs, shared by the tasks of a fetch.
#[derive(Clone)]
struct Source {
    client: Client,
    snapshot: String,
    /// The service's block size.
    block: u64,
    /// Block indexes a token page covers.
    span: u64,
    /// The token pages kept, the most recently used last.
    pages: Arc<Mutex<Vec<TokenPage>>>,
    /// Held while a page is listed: the tasks of a fetch that miss the same
    /// page wait for the one listing it, then find it kept, instead of each
    /// listing it again.
    listing: Arc<tokio::sync::Mutex<()>>,
}

impl Source {
    /// The tokens of the page block `index` is in: kept, or listed (again,
    /// when near its expiry, or when `stale`, the tokens a refused request
    /// used, are still the ones kept), the least recently used page let go.
    async fn tokens(&self, index: u64, stale: Option<&Tokens>, stats: &Stats) -> io::Result<Tokens> {
        let first = index - index % self.span;
        let kept = || {
            let fresh = |p: &TokenPage| p.expiry.is_none_or(|e| e > SystemTime::now() + EXPIRY_MARGIN);
            let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
            let at = pages.iter().position(|p| p.first == first)?;
            let usable = fresh(&pages[at]) && stale.is_none_or(|s| !Arc::ptr_eq(s, &pages[at].tokens));
            let p = pages.remove(at);
            let tokens = usable.then(|| p.tokens.clone());
            if usable {
                pages.push(p);
            }
            tokens
        };
        if let Some(tokens) = kept() {
            return Ok(tokens);
        }
        let _turn = self.listing.lock().await;
        // Listed by another task while this one waited its turn.
        if let Some(tokens) = kept() {
            return Ok(tokens);
        }
        let page = list_tokens(&self.client, &self.snapshot, first, self.span, stats).await?;
        let tokens = page.tokens.clone();
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        pages.retain(|p| p.first != first);
        if pages.len() >= TOKENS_KEPT {
            pages.remove(0);
        }
        pages.push(page);
        let held: usize = pages.iter().map(|p| p.tokens.len()).sum();
        stats.ebs_tokens_peak.fetch_max(held as u64, Relaxed);
        Ok(tokens)
    }

    /// Block `index`, its token listed (once more if the one used expired).
    async fn block(&self, index: u64, stats: &Stats) -> io::Result<Vec<u8>> {
        let mut stale: Option<Tokens> = None;
        loop {
            let tokens = self.tokens(index, stale.as_ref(), stats).await?;
            let Ok(at) = tokens.binary_search_by_key(&index, |t| t.0) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: block {index} was listed when the snapshot was opened, and is not listed now", self.snapshot),
                ));
            };
            match get_block(&self.client, &self.snapshot, index, &tokens[at].1, self.block, stats).await {
                Err(e) if stale.is_none() && e.get_ref().is_some_and(|r| r.is::<TokenExpired>()) => stale = Some(tokens),
                got => return got,
            }
        }
    }
}

impl Fetcher for Ebs {
    fn fetch(&self, offset: u64, len: u64, stats: &Arc<Stats>) -> io::Result<Vec<u8>> {
        let mut out = vec![0u8; len as usize];
        if len == 0 {
            return Ok(out);
        }
        let (first, last) = (offset / self.source.block, (offset + len - 1) / self.source.block);
        // Blocks not listed were never written: left as zeros.
        let mut wanted = (first..=last).filter(|&i| is_set(&self.written, i));
        self.rt.block_on(async {
            let mut running = tokio::task::JoinSet::new();
            loop {
                while running.len() < IN_FLIGHT {
                    let Some(index) = wanted.next() else { break };
                    let (source, stats) = (self.source.clone(), stats.clone());
                    running.spawn(async move { (index, source.block(index, &stats).await) });
                }
                let Some(done) = running.join_next().await else { return Ok::<(), io::Error>(()) };
                let (index, data) = done.map_err(|e| io::Error::other(format!("a block request stopped: {e}")))?;
                let data = data?;
                // The part of the block inside the fetch.
                let at = index * self.source.block;
                let skip = offset.saturating_sub(at) as usize;
                let start = at.saturating_sub(offset) as usize;
                let n = (data.len() - skip).min(out.len() - start);
                out[start..start + n].copy_from_slice(&data[skip..skip + n]);
            }
        })?;
        Ok(out)
    }
}

/// One block, its length and checksum checked; throttling and server
/// errors retried.
async fn get_block(client: &Client, snapshot: &str, index: u64, token: &str, block: u64, stats: &Stats) -> io::Result<Vec<u8>> {
    let Ok(i) = i32::try_from(index) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{snapshot}: block {index} is past what the API can ask for")));
    };
    retrying(stats, || async {
        let got = client.get_snapshot_block().snapshot_id(snapshot).block_index(i).block_token(token).send().await.map_err(|e| {
            if token_expired(&e) {
                Attempt::Final(io::Error::new(io::ErrorKind::PermissionDenied, TokenExpired { snapshot: snapshot.to_string(), index }))
            } else {
                sdk_failure(&e, snapshot)
            }
        })?;
        let (checksum, algorithm) = (got.checksum.clone(), got.checksum_algorithm.clone());
        let data = got.block_data.collect().await.map_err(|e| Attempt::Retry(format!("a block cut short ({e})")))?.to_vec();
        verify(snapshot, index, block, &data, checksum.as_deref(), algorithm.as_ref()).map_err(Attempt::Final)?;
        stats.bytes.fetch_add(data.len() as u64, Relaxed);
        Ok(data)
    })
    .await
}

/// A block token the service no longer takes (a `ValidationException` for
/// the token: its listing's `ExpiryTime` has passed).
fn token_expired(e: &SdkError<GetSnapshotBlockError, HttpResponse>) -> bool {
    let Some(GetSnapshotBlockError::ValidationException(v)) = e.as_service_error() else { return false };
    v.reason() == Some(&ValidationExceptionReason::InvalidBlockToken)
        || v.message().is_some_and(|m| m.to_ascii_lowercase().contains("expired"))
}

/// A block request refused for its token's age: listed again and retried
/// once; a second refusal is this error.
#[derive(Debug)]
struct TokenExpired {
    snapshot: String,
    index: u64,
}

impl std::fmt::Display for TokenExpired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: the token for block {} expired, and again once listed anew; check the machine's clock, and run again",
            self.snapshot, self.index
        )
    }
}

impl std::error::Error for TokenExpired {}

/// A block is used only whole and with the checksum the service gave.
fn verify(
    snapshot: &str,
    index: u64,
    block: u64,
    data: &[u8],
    checksum: Option<&str>,
    algorithm: Option<&ChecksumAlgorithm>,
) -> io::Result<()> {
    let bad = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{snapshot}, block {index} (bytes {} to {}): {what}; the block is not used", index * block, (index + 1) * block),
        )
    };
    if data.len() as u64 != block {
        return Err(bad(format!("{} bytes received where the block size is {block}", data.len())));
    }
    if let Some(a) = algorithm.filter(|a| **a != ChecksumAlgorithm::ChecksumAlgorithmSha256) {
        return Err(bad(format!("a checksum of a kind not known here ({})", a.as_str())));
    }
    let Some(want) = checksum else { return Err(bad("no checksum sent with it".into())) };
    let got = aws_smithy_types::base64::encode(Sha256::digest(data));
    if got != want.trim() {
        return Err(bad(format!("checksum mismatch: the data's SHA-256 is {got}, the service gave {}", want.trim())));
    }
    Ok(())
}

/// Runs `call` until it succeeds, fails for good, or the attempts are
/// used up; each attempt counted, each retry after the engine's backoff.
async fn retrying<T, F, Fut>(stats: &Stats, mut call: F) -> io::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Attempt>>,
{
    let mut retry = Retry::new();
    loop {
        retry.attempt(stats);
        match call().await {
            Ok(v) => return Ok(v),
            Err(Attempt::Final(e)) => return Err(e),
            Err(Attempt::Retry(why)) => tokio::time::sleep(retry.wait(&why, None)?).await,
        }
    }
}

/// An SDK error as an attempt's outcome. Service messages are not repeated:
/// some echo the request (a signature error gives the canonical request,
/// which may carry the session token); the error code says enough.
fn sdk_failure<E>(e: &SdkError<E, HttpResponse>, snapshot: &str) -> Attempt
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::ServiceError(s) => service_failure(s.err().code().unwrap_or("no error code"), s.raw().status().as_u16(), snapshot),
        SdkError::TimeoutError(_) => Attempt::Retry("timed out".into()),
        SdkError::ResponseError(_) => Attempt::Retry("a response that could not be read".into()),
        SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => Attempt::Retry(format!("{}", DisplayErrorContext(e))),
        _ => {
            let text = DisplayErrorContext(e).to_string();
            if text.to_ascii_lowercase().contains("credential") {
                Attempt::Final(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "no usable AWS credentials ({text}): set a profile (AWS_PROFILE; aws sso login for SSO) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an instance or container role applies"
                    ),
                ))
            } else {
                Attempt::Final(io::Error::other(format!("the EBS request failed: {text}")))
            }
        }
    }
}

/// What a service error code (and HTTP status) means for the reader.
fn service_failure(code: &str, status: u16, snapshot: &str) -> Attempt {
    let denied = |what: String| Attempt::Final(io::Error::new(io::ErrorKind::PermissionDenied, what));
    match code {
        "ThrottlingException"
        | "RequestThrottledException"
        | "TooManyRequestsException"
        | "InternalServerException"
        | "ServiceUnavailableException"
        | "InternalFailure" => Attempt::Retry(format!("{code} (HTTP {status})")),
        "ResourceNotFoundException" => Attempt::Final(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{snapshot} not found ({code}): check the snapshot id and that it is in the region used (--region, else AWS_REGION or the profile's); a snapshot still pending cannot be read yet"
            ),
        )),
        "ExpiredTokenException"
        | "ExpiredToken"
        | "RequestExpired"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "MissingAuthenticationToken" => denied(format!(
            "the AWS credentials were refused ({code}): they have expired or are not valid; renew them (aws sso login, a new session) and run again"
        )),
        "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" => denied(format!(
            "access denied ({code}) to {snapshot}: the AWS identity in use needs ebs:ListSnapshotBlocks and ebs:GetSnapshotBlock on it (and kms:Decrypt on its key if it is encrypted)"
        )),
        _ if status == 429 || status >= 500 => Attempt::Retry(format!("{code} (HTTP {status})")),
        _ if status == 403 || status == 401 => denied(format!(
            "access denied ({code}, HTTP {status}) to {snapshot}: the AWS identity in use needs ebs:ListSnapshotBlocks and ebs:GetSnapshotBlock on it, and valid credentials"
        )),
        "ValidationException" => Attempt::Final(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the EBS direct APIs refused the request for {snapshot} ({code}): is it a snapshot still pending, or archived (restore it first)?"
            ),
        )),
        _ => Attempt::Final(io::Error::other(format!("the EBS direct APIs answered {code} (HTTP {status}) for {snapshot}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(a: Attempt) -> String {
        a.message()
    }

    #[test]
    fn service_errors_say_what_to_do() {
        let s = "snap-0123456789abcdef0";
        assert!(message(service_failure("ThrottlingException", 400, s)).starts_with("retry"));
        assert!(message(service_failure("RequestThrottledException", 400, s)).starts_with("retry"));
        assert!(message(service_failure("SomethingNew", 503, s)).starts_with("retry"));
        let m = message(service_failure("AccessDeniedException", 403, s));
        assert!(m.contains("ebs:ListSnapshotBlocks") && m.contains("ebs:GetSnapshotBlock") && m.contains(s), "{m}");
        let m = message(service_failure("ResourceNotFoundException", 404, s));
        assert!(m.contains("NotFound") && m.contains(s) && m.contains("region"), "{m}");
        let m = message(service_failure("ExpiredTokenException", 400, s));
        assert!(m.contains("PermissionDenied") && m.contains("renew"), "{m}");
    }

    #[test]
    fn a_block_is_used_only_with_its_checksum() {
        let data = vec![7u8; 512];
        let good = aws_smithy_types::base64::encode(Sha256::digest(&data));
        let sha = ChecksumAlgorithm::ChecksumAlgorithmSha256;
        assert!(verify("snap-1", 3, 512, &data, Some(&good), Some(&sha)).is_ok());
        let e = verify("snap-1", 3, 512, &data, Some("AAAA"), Some(&sha)).unwrap_err().to_string();
        assert!(e.contains("block 3") && e.contains("checksum mismatch") && e.contains("snap-1"), "{e}");
        assert!(verify("snap-1", 3, 512, &data, None, Some(&sha)).is_err());
        assert!(verify("snap-1", 3, 512, &data[..100], Some(&good), Some(&sha)).is_err());
    }
}
