//! The integration tests, one binary (sixteen made `cargo test` link the
//! crate sixteen times): a module per subject, the fixture helpers in
//! `common`. `tests/fuzz_regressions.rs` stays a binary of its own, because
//! the fuzz harness swaps the process's panic hook while it runs.
//!
//! Long randomized campaigns (damaged images, journals and logs) run a few
//! seeds by default; more when asked, with the environment variables the
//! README lists (`NTFS_FUZZ_SEEDS`, `JOURNAL_FUZZ_SEEDS`, …).

mod common;

mod azurite;
mod binlogs;
mod btrfs;
mod case_folder;
mod containers;
mod ebs;
mod evtx;
mod exfat;
mod ext_images;
mod findings;
mod fleet;
mod formats;
mod hostile;
mod journal;
mod journal_json;
mod limits;
mod logins_json;
mod lvm_thin;
mod ntfs;
mod objects;
mod oracle;
mod remote;
mod robustness;
mod vss;
mod wof;
mod xfs_log;
