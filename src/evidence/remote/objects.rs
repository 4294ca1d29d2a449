//! An object in S3 or Google Cloud Storage read in place, `s3://bucket/key`
//! or `gs://bucket/key`, with range GETs through Apache Arrow's
//! `object_store` (signing and the providers' credential chains are its or
//! the AWS SDK's, never ours).
//!
//! S3: credentials from the AWS SDK's chain (environment, profile, SSO,
//! instance or container role: the same as ebs://), the region from
//! `--region`, else the AWS configuration, else us-east-1; an endpoint
//! from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (path-style requests).
//! GCS: object_store's chain: GOOGLE_SERVICE_ACCOUNT_PATH (or _KEY),
//! GOOGLE_APPLICATION_CREDENTIALS, gcloud's application default
//! credentials, else the metadata server.
//!
//! One HEAD learns the size; each fetch is one range GET. object_store's
//! own retries are off: throttling, server errors and dropped connections
//! are retried here with the engine's policy, so that run.json counts them.
//! Its error texts are never repeated (a service's error body may echo the
//! signed request): messages are rebuilt from what the error is.

use super::cache::{Attempt, BLOCK, Fetcher, RemoteFile, Retry};
use super::{Cloud, REGION, Stats, ebs::runtime};
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path as Key;
use object_store::{ClientOptions, CredentialProvider, GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig};
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::runtime::Runtime;

pub(super) fn available() -> anyhow::Result<()> {
    Ok(())
}

struct Object {
    store: Arc<dyn ObjectStore>,
    /// S3: the credentials in use, renewed when the service says they expired.
    chain: Option<Arc<AwsChain>>,
    key: Key,
    cloud: Cloud,
    /// `s3://bucket/key`, for messages.
    shown: String,
    rt: &'static Runtime,
}

/// Opens `shown` (`s3://bucket/key` or `gs://bucket/key`): one HEAD. An
/// S3 bucket in another region than the one configured is looked up
/// (`x-amz-bucket-region`) and read there, as the AWS CLI does.
pub(super) fn open(cloud: Cloud, bucket: &str, key: &str, shown: &str) -> io::Result<RemoteFile> {
    let rt = runtime()?;
    let stats = Arc::new(Stats::default());
    let key = Key::parse(key).unwrap_or_else(|_| Key::from(key));
    let mut region = None;
    loop {
        let (store, chain) = rt.block_on(store(cloud, bucket, region.clone()))?;
        let object = Object { store, chain, key: key.clone(), cloud, shown: shown.to_string(), rt };
        let len = match stats.waiting(|| object.retrying(&stats, |o| async move { o.store.head(&o.key).await.map(|m| m.size) })) {
            Ok(len) => len,
            Err(e) if region.is_none() && e.get_ref().is_some_and(|i| i.is::<WrongRegion>()) => {
                region = Some(stats.waiting(|| bucket_region(bucket)).ok_or(e)?);
                continue;
            }
            Err(e) => return Err(e),
        };
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{shown}: the object is empty")));
        }
        return Ok(RemoteFile::new(shown.to_string(), len, BLOCK, Box::new(object), stats));
    }
}

/// An S3 bucket answered that it lives in another region.
#[derive(Debug)]
struct WrongRegion(String);

impl std::fmt::Display for WrongRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WrongRegion {}

/// The region S3 says a bucket is in: an unsigned HEAD of the bucket,
/// whose answer (301, 403 or 200) carries `x-amz-bucket-region`, at the
/// endpoint the client uses (object_store's `resolve_bucket_region` asks
/// AWS's endpoint only).
fn bucket_region(bucket: &str) -> Option<String> {
    // The variables AmazonS3Builder::from_env and the SDK read, so that a
    // private S3's bucket name is never sent to AWS.
    let endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.is_empty()))
        .unwrap_or_else(|| "https://s3.amazonaws.com".into());
    let config =
        ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).timeout_global(Some(Duration::from_secs(30))).build();
    let agent: ureq::Agent = config.into();
    let answer = agent.head(&format!("{}/{bucket}", endpoint.trim_end_matches('/'))).call().ok()?;
    let region = answer.headers().get("x-amz-bucket-region")?.to_str().ok()?;
    let valid = !region.is_empty() && region.len() < 32 && region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid.then(|| region.to_string())
}

/// The client: no retries of its own, timeouts so that a stalled
/// connection is retried rather than waited on forever, plain http only
/// where an endpoint says so (a test server, a local S3).
async fn store(cloud: Cloud, bucket: &str, region: Option<String>) -> io::Result<(Arc<dyn ObjectStore>, Option<Arc<AwsChain>>)> {
    // reqwest is built without a TLS provider: rustls with ring, as ureq
    // (rustls now steers to aws-lc-rs for post-quantum key exchange, a C
    // build this crate avoids; ureq makes the same choice).
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options =
        ClientOptions::new().with_allow_http(true).with_timeout(Duration::from_secs(60)).with_connect_timeout(Duration::from_secs(10));
    let retry = RetryConfig { max_retries: 0, ..Default::default() };
    let built = match cloud {
        Cloud::S3 => {
            let config = super::ebs::sdk_config().await;
            let region = region
                .or_else(|| REGION.get().cloned())
                .or_else(|| config.region().map(|r| r.to_string()))
                .unwrap_or_else(|| "us-east-1".into());
            let mut b =
                AmazonS3Builder::from_env().with_bucket_name(bucket).with_region(region).with_client_options(options).with_retry(retry);
            let chain = config.credentials_provider().map(|c| Arc::new(AwsChain::new(c)));
            if let Some(chain) = &chain {
                b = b.with_credentials(chain.clone());
            }
            b.build().map(|s| (Arc::new(s) as Arc<dyn ObjectStore>, chain))
        }
        Cloud::Gcs => GoogleCloudStorageBuilder::from_env()
            .with_bucket_name(bucket)
            .with_client_options(options)
            .with_retry(retry)
            .build()
            .map(|s| (Arc::new(s) as Arc<dyn ObjectStore>, None)),
    };
    built.map_err(|e| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("cannot set up the {} client: {}", cloud.name(), setup_failure(cloud, &e.to_string())),
        )
    })
}

impl Cloud {
    fn name(self) -> &'static str {
        match self {
            Cloud::S3 => "S3",
            Cloud::Gcs => "Google Cloud Storage",
        }
    }

    /// The permission reading an object needs, and how to get credentials.
    fn needs(self) -> &'static str {
        match self {
            Cloud::S3 => {
                "the AWS identity in use needs s3:GetObject on the object (and kms:Decrypt on its key if it is SSE-KMS encrypted); renew expired credentials (aws sso login, a new session)"
            }
            Cloud::Gcs => {
                "the Google identity in use needs storage.objects.get on the object (roles/storage.objectViewer); renew expired credentials (gcloud auth application-default login) or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file"
            }
        }
    }
}

/// Why a client could not be made, without repeating a key file's content.
fn setup_failure(cloud: Cloud, text: &str) -> String {
    match cloud {
        Cloud::Gcs => format!(
            "no usable Google credentials ({}); set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, or run gcloud auth application-default login, or run where a metadata server gives a service account",
            first_words(text)
        ),
        Cloud::S3 => format!("{}; check AWS_ENDPOINT_URL and the region", first_words(text)),
    }
}

/// The start of a library message (which names a setting, never a secret
/// it read), cut before anything it quotes.
fn first_words(text: &str) -> String {
    text.split([':', '{', '"', '\'']).next().unwrap_or("").trim().chars().take(120).collect()
}

/// The AWS SDK's credential chain as object_store's provider (it reads
/// only the environment and instance roles itself: no profiles, no SSO).
/// The credentials are held until five minutes before they expire, or
/// until S3 says they have (`forget`): object_store asks for them before
/// every request, and the chain itself does not cache (an instance role
/// would cost a metadata request each time, an SSO profile a token call).
struct AwsChain {
    chain: aws_credential_types::provider::SharedCredentialsProvider,
    held: Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
    /// Held while the chain is asked: readers that find no usable
    /// credentials at once ask it once between them.
    asking: tokio::sync::Mutex<()>,
}

/// Never the credentials (object_store requires `Debug`).
impl std::fmt::Debug for AwsChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AwsChain")
    }
}

impl AwsChain {
    fn new(chain: aws_credential_types::provider::SharedCredentialsProvider) -> AwsChain {
        AwsChain { chain, held: Mutex::new(None), asking: tokio::sync::Mutex::new(()) }
    }

    /// Lets go of `used`, credentials S3 said had expired (unless they
    /// were renewed meanwhile).
    fn forget(&self, used: &Arc<AwsCredential>) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.as_ref().is_some_and(|(c, _)| Arc::ptr_eq(c, used)) {
            *held = None;
        }
    }

    /// The credentials held, good or not.
    fn current(&self) -> Option<Arc<AwsCredential>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|(c, _)| c.clone())
    }

    /// The credentials held, while they are good for five more minutes.
    fn held(&self) -> Option<Arc<AwsCredential>> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let (c, expiry) = held.as_ref()?;
        expiry.is_none_or(|t| t > SystemTime::now() + Duration::from_secs(300)).then(|| c.clone())
    }
}

#[async_trait::async_trait]
impl CredentialProvider for AwsChain {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        use aws_credential_types::provider::ProvideCredentials;
        if let Some(c) = self.held() {
            return Ok(c);
        }
        let _turn = self.asking.lock().await;
        if let Some(c) = self.held() {
            return Ok(c);
        }
        let c = self.chain.provide_credentials().await.map_err(|e| object_store::Error::Unauthenticated {
            path: String::new(),
            source: format!(
                "no usable AWS credentials ({}): set a profile (AWS_PROFILE; aws sso login for SSO) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an instance or container role applies",
                first_words(&e.to_string())
            )
            .into(),
        })?;
        let credential = Arc::new(AwsCredential {
            key_id: c.access_key_id().to_string(),
            secret_key: c.secret_access_key().to_string(),
            token: c.session_token().map(str::to_string),
        });
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some((credential.clone(), c.expiry()));
        Ok(credential)
    }
}

impl Fetcher for Object {
    fn fetch(&self, offset: u64, len: u64, stats: &Arc<Stats>) -> io::Result<Vec<u8>> {
        let range = GetRange::Bounded(offset..offset + len);
        let data = self.retrying(stats, |o| {
            let range = range.clone();
            async move {
                let options = GetOptions { range: Some(range), ..Default::default() };
                o.store.get_opts(&o.key, options).await?.bytes().await
            }
        })?;
        if data.len() as u64 != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: {} bytes received at {offset} where {len} were due", self.shown, data.len()),
            ));
        }
        stats.bytes.fetch_add(len, Relaxed);
        Ok(data.to_vec())
    }
}

impl Object {
    /// Runs `call` until it succeeds, fails for good, or the attempts are
    /// used up; each attempt counted, each retry after the engine's backoff.
    fn retrying<'a, T, F, Fut>(&'a self, stats: &Stats, call: F) -> io::Result<T>
    where
        F: Fn(&'a Object) -> Fut,
        Fut: Future<Output = object_store::Result<T>>,
    {
        let mut retry = Retry::new();
        let mut renewed = false;
        self.rt.block_on(async {
            loop {
                retry.attempt(stats);
                let before = self.chain.as_ref().and_then(|c| c.current());
                match call(self).await {
                    Ok(v) => return Ok(v),
                    // Credentials that expired during the run: asked anew
                    // from the chain (a role, SSO, a credential process
                    // renews them), once a request.
                    Err(e) if !renewed && self.chain.is_some() && expired(&chain_text(&e)) => {
                        renewed = true;
                        if let Some(chain) = &self.chain
                            && let Some(used) = before.or_else(|| chain.current())
                        {
                            chain.forget(&used);
                        }
                    }
                    Err(e) => match failure(self.cloud, &self.shown, &e) {
                        Attempt::Final(e) => return Err(e),
                        Attempt::Retry(why) => tokio::time::sleep(retry.wait(&why, None)?).await,
                    },
                }
            }
        })
    }
}

/// What an object_store error means for the reader, said anew: its text
/// is searched (for a status, a service's error code), never repeated.
fn failure(cloud: Cloud, shown: &str, e: &object_store::Error) -> Attempt {
    let text = chain_text(e);
    let status = status_in(&text);
    let network = {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        let mut found = None;
        while let Some(s) = source {
            if let Some(h) = s.downcast_ref::<object_store::client::HttpError>() {
                found = Some(h.kind());
            }
            source = s.source();
        }
        found
    };
    let denied = |what: String| Attempt::Final(io::Error::new(io::ErrorKind::PermissionDenied, what));
    match e {
        object_store::Error::NotFound { .. } => {
            // A HEAD's 404 has no body to tell a missing bucket from a
            // missing key.
            let what = match () {
                _ if text.contains("NoSuchBucket") || text.contains("bucket does not exist") => "no such bucket",
                _ if text.contains("NoSuchKey") || text.contains("No such object") => "no such object",
                _ => "no such bucket or object",
            };
            let list = if cloud == Cloud::S3 { "aws s3 ls; and the region, --region" } else { "gcloud storage ls" };
            Attempt::Final(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{shown}: {what} (HTTP 404): check the bucket and the key ({list})"),
            ))
        }
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            let why = if text.contains("no usable AWS credentials") {
                "no usable AWS credentials: set a profile (AWS_PROFILE; aws sso login for SSO) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an instance or container role applies".to_string()
            } else {
                format!("access denied{}: {}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(), cloud.needs())
            };
            denied(format!("{shown}: {why}"))
        }
        _ if matches!(status, Some(429 | 500..=599)) => Attempt::Retry(format!("HTTP {}", status.unwrap_or(0))),
        _ if matches!(status, Some(401 | 403)) => denied(format!("{shown}: access denied: {}", cloud.needs())),
        _ if expired(&text) => denied(format!(
            "{shown}: the AWS credentials expired and the credential chain gave no new ones: renew them (aws sso login, a new session, a new role session) and run again"
        )),
        _ if text.contains("redirect") || status == Some(301) || text.contains("AuthorizationHeaderMalformed") => {
            Attempt::Final(io::Error::new(
                io::ErrorKind::InvalidInput,
                WrongRegion(format!(
                    "{shown}: the bucket is in another region: give its region with --region (aws s3api get-bucket-location)"
                )),
            ))
        }
        _ if status == Some(416) => {
            Attempt::Final(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{shown}: a range past the object's end")))
        }
        // GCS: no key file, no gcloud login, and the metadata server (the
        // last link of the chain) not there or refusing.
        _ if cloud == Cloud::Gcs && (text.contains("token request") || text.contains("token response")) => {
            denied(format!("{shown}: no usable Google credentials (no token could be had): {}", cloud.needs()))
        }
        _ if network.is_some() || status.is_none() && text.contains("timed out") => {
            Attempt::Retry(format!("the connection failed or timed out ({})", network.map_or("no answer".into(), |k| format!("{k:?}"))))
        }
        _ if text.to_ascii_lowercase().contains("credential") || text.contains("token") => {
            denied(format!("{shown}: no usable {} credentials: {}", if cloud == Cloud::S3 { "AWS" } else { "Google" }, cloud.needs()))
        }
        _ => Attempt::Final(io::Error::other(format!(
            "{shown}: {} answered {}",
            cloud.name(),
            status.map_or_else(|| "with an error".to_string(), |s| format!("HTTP {s}"))
        ))),
    }
}

/// Whether S3 refused a request because its credentials expired.
fn expired(text: &str) -> bool {
    ["ExpiredToken", "TokenRefreshRequired", "RequestExpired"].iter().any(|code| text.contains(code))
}

/// An error and its sources, as one text to search.
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(" / ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The HTTP status object_store's text gives ("status code: 503 ...").
fn status_in(text: &str) -> Option<u16> {
    let at = text.find("status code: ")? + "status code: ".len();
    text.get(at..at + 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(a: Attempt) -> String {
        a.message()
    }

    #[test]
    fn errors_say_what_to_do_and_never_repeat_the_service() {
        let generic = |body: &str| object_store::Error::Generic { store: "S3", source: body.to_string().into() };
        let m = message(failure(Cloud::S3, "s3://b/k", &generic("Server returned non-2xx status code: 503 Service Unavailable: x")));
        assert!(m.starts_with("retry"), "{m}");
        let secret = "Server returned non-2xx status code: 403 Forbidden: <StringToSign>X-Amz-Security-Token=SECRET</StringToSign>";
        let m = message(failure(Cloud::S3, "s3://b/k", &generic(secret)));
        assert!(m.contains("PermissionDenied") && m.contains("s3:GetObject") && !m.contains("SECRET"), "{m}");
        let nf = object_store::Error::NotFound { path: "k".into(), source: "<Code>NoSuchBucket</Code>".into() };
        let m = message(failure(Cloud::S3, "s3://b/k", &nf));
        assert!(m.contains("NotFound") && m.contains("no such bucket"), "{m}");
        let pd = object_store::Error::PermissionDenied { path: "k".into(), source: "SECRET".into() };
        let m = message(failure(Cloud::Gcs, "gs://b/k", &pd));
        assert!(m.contains("storage.objects.get") && !m.contains("SECRET"), "{m}");
        let token = object_store::Error::Generic { store: "GCS", source: "Error performing token request: refused".into() };
        let m = message(failure(Cloud::Gcs, "gs://b/k", &token));
        assert!(m.contains("PermissionDenied") && m.contains("GOOGLE_APPLICATION_CREDENTIALS"), "{m}");
        assert_eq!(status_in("x status code: 429 Too Many"), Some(429));
        assert_eq!(first_words("Unable to parse: {\"private_key\": \"SECRET\"}"), "Unable to parse");
    }
}
