#!/usr/bin/env bash
# The whole test suite, as CI runs it (`.ci/run`): installs the registry the integration tests
# start, then formatting, lints, and every test (unit, snapshot, integration).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
# Doc examples last: their count closes the log.
cargo test --doc --locked
