//! Small helpers shared by every layer: checksums, timestamps, byte readers,
//! tar header fields, panic containment, the error for bytes that make no
//! sense.

pub mod bytes;
pub mod cache;
pub mod contain;
pub mod crc;
pub mod tar;
pub mod time;
pub mod warnings;

/// The error every parser returns for bytes that make no sense (a damaged
/// or forged structure), as opposed to a read that failed.
pub fn corrupt(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}
