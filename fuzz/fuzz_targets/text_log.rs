#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| snapsift_fuzz::text_log(data));
