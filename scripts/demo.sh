#!/usr/bin/env bash
# One command on a fresh Debian machine with Rust: installs the registry, builds regsweep,
# starts a local registry with a pushed history, runs regsweep (dry run, then for real) and
# prints the reports. Everything it starts or writes is removed when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --quiet --bin regsweep --example demo
exec "${CARGO_TARGET_DIR:-target}/debug/examples/demo"
