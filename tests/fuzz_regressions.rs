//! Every input that once crashed a fuzz target (fuzz/, run by fuzz/run.sh)
//! is kept under tests/fuzz-regressions/<target>/ (gzip-compressed) and
//! replayed here through the very harness the fuzzer runs (fuzz/src/lib.rs):
//! each must finish without a panic, and within a minute.

#[path = "it/common.rs"]
mod common;
#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn every_input_that_crashed_a_fuzz_target_is_handled() {
    let root = common::repo().join("tests/fuzz-regressions");
    let mut replayed = 0;
    for &(target, run) in harness::TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else { continue };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for path in files {
            let mut data = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()).read_to_end(&mut data).unwrap();
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let ok = std::panic::catch_unwind(|| run(&data)).is_ok();
                let _ = tx.send(ok);
            });
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(true) => replayed += 1,
                Ok(false) => panic!("{}: the {target} harness panics (message above)", path.display()),
                Err(_) => panic!("{}: the {target} harness still runs after 60 s (a hang)", path.display()),
            }
        }
    }
    harness::remove_scratch();
    // Every kept input was found and replayed (a renamed folder would
    // otherwise make this test pass vacuously).
    let kept = std::fs::read_dir(&root).unwrap().flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap()).count();
    assert_eq!(replayed, kept, "inputs under {} whose folder names no fuzz target", root.display());
    assert!(replayed > 0);
}
