//! Link files: never panics; a parsed link round-trips to the same digest text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(digest) = regsweep::providers::distribution::layout::parse_link(data) {
        let text = digest.to_string();
        assert_eq!(text.parse::<regsweep::model::Digest>().unwrap(), digest);
        assert!(data.starts_with(text.as_bytes()));
        let _ = digest.short();
    }
});
