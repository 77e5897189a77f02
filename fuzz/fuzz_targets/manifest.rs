//! Manifest and config parsing: never panics; whatever parses has well-formed digests.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = regsweep::manifest::parse_manifest(data, None) {
        for child in &parsed.children {
            assert!(child.digest.as_str().parse::<regsweep::model::Digest>().is_ok());
        }
        let _ = parsed.config.map(|c| c.digest.short());
    }
    let _ = regsweep::manifest::parse_config(data);
});
