//! A build without the `objects` feature: `s3://` and `gs://` are refused
//! up front, saying how to get a build that reads them, and what to give
//! instead with this one (a presigned or signed https:// link).

use super::{Cloud, RemoteFile};
use std::io;

const WHY: &str = "this snapsift was built without the `objects` feature, which reads S3 and GCS objects; build it with: cargo install --path . --features cloud (or use the Docker image, deploy/Dockerfile, which has it), or give a link this build reads: a presigned S3 URL (aws s3 presign s3://bucket/key) or a signed GCS URL (gcloud storage sign-url gs://bucket/key)";

pub(super) fn available() -> anyhow::Result<()> {
    anyhow::bail!("s3:// and gs:// evidence: {WHY}")
}

pub(super) fn open(_cloud: Cloud, _bucket: &str, _key: &str, _shown: &str) -> io::Result<RemoteFile> {
    Err(io::Error::new(io::ErrorKind::Unsupported, WHY))
}
