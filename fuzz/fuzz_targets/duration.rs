//! Durations (`REGSWEEP_MIN_AGE`, timeouts): never panics; accepted ones are not negative.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(duration) = regsweep::settings::parse_duration(text) {
            assert!(duration >= chrono::Duration::zero());
        }
    }
});
