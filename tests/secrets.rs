//! Secrets never reach any output channel: stdout (text, JSON, Markdown), stderr at every log
//! level, error messages and `--help`, in successful runs and failing ones.

mod common;

use common::scenario::push_history;
use common::{regsweep, RegistryOptions, TestRegistry};

const USER: &str = "cleanup-bot";
const PASSWORD: &str = "pw-Zq9-!s3cr3t:with:colons";

/// Every form in which the password could leak: as is, URL-encoded, and inside the Basic
/// `Authorization` header value.
fn forbidden() -> Vec<String> {
    use std::fmt::Write as _;
    let basic = base64(&format!("{USER}:{PASSWORD}"));
    let mut encoded = String::new();
    for byte in PASSWORD.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    vec![PASSWORD.to_string(), encoded, basic, "s3cr3t".to_string()]
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn assert_clean(what: &str, text: &str) {
    for secret in forbidden() {
        assert!(!text.contains(&secret), "{what} leaked `{secret}`:\n{text}");
    }
}

#[test]
fn base64_helper_is_right() {
    assert_eq!(base64("user:pass"), "dXNlcjpwYXNz");
    assert_eq!(base64("a"), "YQ==");
}

#[test]
fn no_output_channel_ever_shows_the_password() {
    let registry = TestRegistry::start_with(RegistryOptions {
        basic_auth: Some((USER.into(), PASSWORD.into())),
        ..RegistryOptions::default()
    });
    push_history(&registry);
    let encoded: String = forbidden()[1].clone();
    let url_with_credentials = registry
        .url
        .replace("http://", &format!("http://{USER}:{encoded}@"));
    let dir = registry.storage().display().to_string();

    let mut runs = Vec::new();
    for level in ["trace", "debug", "info"] {
        for output in ["text", "json", "markdown"] {
            runs.push(registry.sweep(&[
                ("REGSWEEP_LOG", level),
                ("REGSWEEP_OUTPUT", output),
                ("DRY_RUN", "true"),
            ]));
        }
    }
    // Credentials given in the URL instead of REGISTRY_AUTH.
    runs.push(regsweep(
        &[
            ("REGISTRY_URL", &url_with_credentials),
            ("REGISTRY_DIR", &dir),
            ("REGSWEEP_LOG", "trace"),
            ("DRY_RUN", "true"),
        ],
        &[],
    ));
    // Refusals: a wrong user with the right password, the right user with a wrong one.
    let wrong_user = format!("someone:{PASSWORD}");
    runs.push(registry.sweep(&[("REGISTRY_AUTH", &wrong_user), ("REGSWEEP_LOG", "trace")]));
    // Bad input naming REGISTRY_AUTH, and credentials over plain http to a remote host.
    // (A value without `:`; with one, the part before it is taken as the user name, which
    // refusal messages show.)
    let no_colon = PASSWORD.split(':').next().unwrap();
    runs.push(regsweep(
        &[
            ("REGISTRY_URL", &registry.url),
            ("REGISTRY_DIR", &dir),
            ("REGISTRY_AUTH", no_colon),
        ],
        &[],
    ));
    let remote = format!("http://{USER}:{encoded}@registry.example.com");
    runs.push(regsweep(
        &[("REGISTRY_URL", &remote), ("REGISTRY_DIR", &dir)],
        &[],
    ));
    // --help with the secrets in the environment.
    let auth = format!("{USER}:{PASSWORD}");
    runs.push(regsweep(
        &[
            ("REGISTRY_AUTH", &auth),
            ("REGISTRY_URL", &url_with_credentials),
        ],
        &["--help"],
    ));
    // Finally a real run at trace level.
    runs.push(registry.sweep(&[("REGSWEEP_LOG", "trace")]));

    for (i, run) in runs.iter().enumerate() {
        assert_clean(&format!("run {i} stdout"), &run.stdout);
        assert_clean(&format!("run {i} stderr"), &run.stderr);
    }
    // The runs did what they should, so the check covered real output.
    assert_eq!(runs[0].code, 0, "{}", runs[0].stderr);
    assert!(runs[0].stderr.contains("TRACE"), "trace logging is on");
    assert_eq!(
        runs[9].code, 0,
        "credentials in the URL work: {}",
        runs[9].stderr
    );
    assert_eq!(runs[10].code, 1);
    assert!(
        runs[10].stderr.contains("user `someone`"),
        "{}",
        runs[10].stderr
    );
    assert_eq!(runs[11].code, 2);
    assert_eq!(runs[12].code, 2);
    assert!(runs[13].stdout.contains("REGISTRY_AUTH"));
    assert_eq!(runs[14].code, 0, "{}", runs[14].stderr);
    assert!(
        runs[14].stdout.contains("Verified: all"),
        "{}",
        runs[14].stdout
    );
}

#[test]
fn s3_secret_key_and_bearer_tokens_never_show() {
    use common::{s3, token, Backend};
    // S3: the secret key, at every log level, in every format, in failures and in --help.
    let registry = TestRegistry::start_on(Backend::S3);
    push_history(&registry);
    let mut runs = Vec::new();
    for (level, output) in [("trace", "text"), ("debug", "json"), ("info", "markdown")] {
        runs.push(registry.sweep(&[
            ("REGSWEEP_LOG", level),
            ("REGSWEEP_OUTPUT", output),
            ("DRY_RUN", "true"),
        ]));
    }
    runs.push(registry.sweep(&[("BUCKET", "no-such-bucket"), ("REGSWEEP_LOG", "trace")]));
    runs.push(registry.sweep(&[("ACCESS_KEY", "")]));
    runs.push(regsweep(&[("SECRET_KEY", s3::SECRET_KEY)], &["--help"]));
    runs.push(registry.sweep(&[("REGSWEEP_LOG", "trace")]));
    for (i, run) in runs.iter().enumerate() {
        for text in [&run.stdout, &run.stderr] {
            assert!(
                !text.contains(s3::SECRET_KEY),
                "run {i} leaked the S3 secret key:\n{text}"
            );
        }
    }
    assert_eq!(runs[0].code, 0, "{}", runs[0].stderr);
    assert!(runs[0].stderr.contains("TRACE"), "trace logging is on");
    assert_eq!(runs[3].code, 1, "{}", runs[3].stderr);
    assert!(
        runs[3]
            .stderr
            .contains("bucket `no-such-bucket` does not exist"),
        "{}",
        runs[3].stderr
    );
    assert_eq!(runs[4].code, 2, "SECRET_KEY without ACCESS_KEY");
    assert!(runs[4].stderr.contains("ACCESS_KEY"), "{}", runs[4].stderr);
    assert_eq!(runs[6].code, 0, "{}", runs[6].stderr);

    // Bearer tokens (JWTs start `eyJ`), in a real run at trace level.
    let registry = TestRegistry::start_with(RegistryOptions {
        token_auth: Some(token::TokenServerOptions::one_account()),
        ..RegistryOptions::default()
    });
    push_history(&registry);
    let run = registry.sweep(&[("REGSWEEP_LOG", "trace")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("new bearer token"), "{}", run.stderr);
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains("eyJ"), "a bearer token leaked:\n{text}");
    }
    let (_, password) = registry.auth.clone().unwrap();
    assert!(!run.stderr.contains(&password) && !run.stdout.contains(&password));
}
