//! Small helpers shared by every layer: checksums, timestamps, byte readers.

pub mod bytes;
pub mod cache;
pub mod crc;
pub mod time;
pub mod warnings;
