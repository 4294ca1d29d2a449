//! snapsift: offline extraction of logs and shell histories from disk
//! images into a greppable per-host folder.
//!
//! Layers, each reading only the one below (see docs/ARCHITECTURE.md):
//! evidence → volume → fs → host → targets → collect.

pub mod collect;
pub mod convert;
pub mod evidence;
pub mod fleet;
pub mod fs;
pub mod host;
pub mod inspect;
pub mod report;
pub mod targets;
pub mod timeline;
pub mod util;
pub mod volume;
