//! `WWW-Authenticate` parsing: never panics, schemes and parameter names are lowercase.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for challenge in regsweep::registry::challenge::parse_challenges(text) {
            assert!(!challenge.scheme.is_empty());
            assert_eq!(challenge.scheme, challenge.scheme.to_ascii_lowercase());
            for name in challenge.params.keys() {
                assert_eq!(*name, name.to_ascii_lowercase());
            }
        }
    }
});
