//! Containing a panic to the one file it happened on. snapsift's own parsers
//! are fuzzed and deny panics, but third-party ones (the `evtx` crate, the
//! decompressors) read hostile bytes too: a panic in one of them must cost
//! that file, reported, not the whole run.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`; a panic becomes `Err` with its message.
pub fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    // The closures given here only write their own output file and return
    // a value; nothing they share is left half-updated by an unwind (the
    // shared locks recover from poisoning).
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        assert_eq!(contain(|| 7), Ok(7));
        let n = 3;
        assert_eq!(contain(|| -> u8 { panic!("bad record {n}") }), Err("bad record 3".into()));
        assert_eq!(contain(|| -> u8 { panic!("static") }), Err("static".into()));
        let v: Vec<u8> = Vec::new();
        let e = contain(|| v[usize::MAX / 2]).unwrap_err();
        assert!(e.contains("index out of bounds"), "{e}");
    }
}
