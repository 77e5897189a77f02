//! The release build: `dist/build.sh` builds this machine's static Linux binary (musl), and
//! it must be static, run `--version`, and be listed with the right hash in SHA256SUMS.
//! The build uses its own target folder (`target/dist`): the outer `cargo test` holds the
//! lock on `target/`.

use std::path::Path;
use std::process::Command;

use sha2::{Digest as _, Sha256};

#[test]
fn the_static_release_binary_builds_runs_and_is_checksummed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-musl",
        "aarch64" => "aarch64-unknown-linux-musl",
        other => panic!("no static Linux target for {other}"),
    };
    let target_dir = root.join("target/dist");
    let status = Command::new("bash")
        .arg(root.join("dist/build.sh"))
        .arg(target)
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("bash runs dist/build.sh");
    assert!(status.success(), "dist/build.sh failed: {status}");

    let binary = target_dir.join(target).join("release/regsweep");
    let ldd = Command::new("ldd").arg(&binary).output().expect("ldd runs");
    let verdict = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        verdict.contains("not a dynamic executable") || verdict.contains("statically linked"),
        "{verdict}"
    );
    let version = Command::new(&binary).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("regsweep {}", env!("CARGO_PKG_VERSION"))
    );

    let archive = format!("regsweep-{}-{target}.tar.gz", env!("CARGO_PKG_VERSION"));
    let bytes = std::fs::read(root.join("dist/out").join(&archive)).unwrap();
    let sums = std::fs::read_to_string(root.join("dist/out/SHA256SUMS")).unwrap();
    let expected = format!("{:x}  {archive}", Sha256::digest(&bytes));
    assert!(
        sums.lines().any(|l| l == expected),
        "{expected} not in:\n{sums}"
    );
}
