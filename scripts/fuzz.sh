#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (default 60 s each):
#   scripts/fuzz.sh [seconds] [target…]
# Targets: manifest, link, www_authenticate, duration. Needs `cargo install cargo-fuzz`.
# cargo-fuzz uses unstable compiler flags; RUSTC_BOOTSTRAP=1 allows them on a stable
# toolchain. A crash is saved under fuzz/artifacts/<target>/: turn it into a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(manifest link www_authenticate duration)
command -v cargo-fuzz >/dev/null 2>&1 || { echo "error: cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 1; }
for target in "${targets[@]}"; do
  echo "== fuzzing $target for ${seconds}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048
done
