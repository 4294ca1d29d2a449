//! A build without the `aws` feature: `ebs://` is refused up front, saying
//! how to get a build that reads it (the AWS SDK makes a cold build 1.8x
//! as long, so it is left out unless asked for).

use super::RemoteFile;
use std::io;

const WHY: &str = "this snapsift was built without the `aws` feature, which reads EBS snapshots; build it with: cargo install --path . --features aws (or use the Docker image, deploy/Dockerfile, which has it)";

pub(super) fn available() -> anyhow::Result<()> {
    anyhow::bail!("ebs:// evidence: {WHY}")
}

pub(super) fn open(_snapshot: &str) -> io::Result<RemoteFile> {
    Err(io::Error::new(io::ErrorKind::Unsupported, WHY))
}
