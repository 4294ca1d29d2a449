//! Small helpers shared by every layer: checksums, timestamps, byte readers,
//! tar header fields, panic containment, the table of format signatures,
//! newline search, the error for bytes that make no sense.
// Reads untrusted bytes: no panicking shortcuts (see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

pub mod bytes;
pub mod cache;
pub mod contain;
pub mod crc;
pub mod lock;
pub mod magic;
pub mod newlines;
pub mod tar;
pub mod time;
pub mod warnings;

/// The error every parser returns for bytes that make no sense (a damaged
/// or forged structure), as opposed to a read that failed.
pub fn corrupt(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// Reads into `buf` until it is full or the data ends: the bytes read
/// (fewer than `buf.len()` only at the end).
pub fn read_full<R: std::io::Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
