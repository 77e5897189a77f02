#!/usr/bin/env bash
# The whole test suite, as CI runs it (`.ci/run`): installs the registry the integration tests
# start, then formatting, lints, and every test (unit, snapshot, integration).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# pip may have installed moto_server for the user only (Debian's python3, PEP 668).
if command -v python3 >/dev/null 2>&1; then
  PATH="$PATH:$(python3 -m site --user-base 2>/dev/null || echo /nonexistent)/bin"
  export PATH
fi
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
# Doc examples last: their count closes the log.
cargo test --doc --locked
