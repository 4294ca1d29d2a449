//! Small helpers shared by every layer: checksums, timestamps, byte readers,
//! tar header fields, panic containment.

pub mod bytes;
pub mod cache;
pub mod contain;
pub mod crc;
pub mod tar;
pub mod time;
pub mod warnings;
