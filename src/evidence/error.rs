//! Why a piece of evidence could not be opened, as a kind callers can act
//! on: `run.json` records it, and a job of a fleet is run again only when
//! the cause may have passed (a link that failed, a file not yet copied),
//! not when the evidence itself is damaged or of a kind snapsift does not
//! read. The message is the whole chain of what went wrong, as before.

use std::fmt;
use std::io;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenErrorKind {
    /// No such file, no permission to read it, or a folder.
    Missing,
    /// The operating system could not read it (an I/O error).
    Unreadable,
    /// A link (`https://`) that could not be read: the network, an HTTP
    /// status, a link that expired.
    Unreachable,
    /// A kind of image snapsift recognises but does not read; the message
    /// says how to convert it.
    Unsupported,
    /// Its structures are broken or it is cut short.
    Damaged,
}

impl OpenErrorKind {
    /// The name in `run.json` (`error_kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            OpenErrorKind::Missing => "missing",
            OpenErrorKind::Unreadable => "unreadable",
            OpenErrorKind::Unreachable => "unreachable",
            OpenErrorKind::Unsupported => "unsupported",
            OpenErrorKind::Damaged => "damaged",
        }
    }

    /// Whether opening it again later may succeed with the same evidence
    /// and the same snapsift.
    pub fn may_pass(self) -> bool {
        matches!(self, OpenErrorKind::Missing | OpenErrorKind::Unreadable | OpenErrorKind::Unreachable)
    }
}

pub struct OpenError {
    pub kind: OpenErrorKind,
    error: anyhow::Error,
}

impl OpenError {
    /// Classifies what a format's `open` returned for `path`.
    pub(crate) fn new(path: &Path, error: anyhow::Error) -> OpenError {
        OpenError { kind: classify(path, &error), error }
    }
}

fn classify(path: &Path, e: &anyhow::Error) -> OpenErrorKind {
    if e.chain().any(|c| c.is::<Unsupported>()) {
        return OpenErrorKind::Unsupported;
    }
    let io = e.chain().find_map(|c| c.downcast_ref::<io::Error>()).map(io::Error::kind);
    match io {
        // Bytes that make no sense, or that end too soon: the evidence.
        None | Some(io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof) => OpenErrorKind::Damaged,
        Some(_) if super::remote::is_url(path) => OpenErrorKind::Unreachable,
        Some(io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::IsADirectory) => OpenErrorKind::Missing,
        Some(_) => OpenErrorKind::Unreadable,
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl fmt::Debug for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#})", self.kind.as_str(), self.error)
    }
}

impl std::error::Error for OpenError {}

/// What a format returns for evidence it recognises and does not read
/// (an ESX 2/3 VMDK, an encrypted QCOW2): the message says what to do.
#[derive(Debug)]
pub struct Unsupported(pub String);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsupported {}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    fn kind(path: &str, e: anyhow::Error) -> OpenErrorKind {
        OpenError::new(Path::new(path), e).kind
    }

    #[test]
    fn kinds_follow_the_cause_not_the_text() {
        let io = |k: io::ErrorKind| anyhow::Error::new(io::Error::new(k, "x")).context("cannot open evidence d.img");
        assert_eq!(kind("d.img", io(io::ErrorKind::NotFound)), OpenErrorKind::Missing);
        assert_eq!(kind("d.img", io(io::ErrorKind::Other)), OpenErrorKind::Unreadable);
        assert_eq!(kind("d.img", io(io::ErrorKind::InvalidData)), OpenErrorKind::Damaged);
        assert_eq!(kind("https://h/d.vhd", io(io::ErrorKind::PermissionDenied)), OpenErrorKind::Unreachable);
        assert_eq!(kind("https://h/d.vhd", io(io::ErrorKind::UnexpectedEof)), OpenErrorKind::Damaged);
        assert_eq!(kind("d.img", anyhow::anyhow!("VHD footer checksum")), OpenErrorKind::Damaged);
        let unsupported = Err::<(), _>(Unsupported("an ESX 2/3 VMDK".into())).context("opening d.vmdk").unwrap_err();
        assert_eq!(kind("d.vmdk", unsupported), OpenErrorKind::Unsupported);
    }

    #[test]
    fn the_message_is_the_whole_chain() {
        let e = Err::<(), _>(io::Error::new(io::ErrorKind::NotFound, "No such file")).context("cannot open evidence d.img").unwrap_err();
        let e = OpenError::new(Path::new("d.img"), e);
        assert_eq!(e.to_string(), "cannot open evidence d.img: No such file");
        assert_eq!(format!("{:#}", anyhow::Error::new(e)), "cannot open evidence d.img: No such file");
    }
}
