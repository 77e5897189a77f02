#!/usr/bin/env bash
# The benchmark, in one command (see README → Performance):
#   bench/run.sh                      # 50 repositories, 20,000 manifests, 3 runs
#   bench/run.sh --scaling            # 2,000 / 20,000 / 100,000 manifests (reuses the storage)
#   bench/run.sh --manifests 5000 --runs 5 --apply-concurrency 2,4,8,16
#   bench/run.sh --ghcr-deletions 0   # without the GHCR row (3 minutes at GitHub's limit)
#   bench/run.sh --manifests 100000 --maintenance-s3-up-to 0   # the maintenance window at 100,000
#                                     # on a disk, vs the API path and garbage-collect (about an hour)
# Prints a table and writes bench/results.json. Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --quiet --bin regsweep --example bench
args=("$@")
if [ "${1:-}" = "--scaling" ]; then
  args=(--manifests 2000,20000,100000 "${@:2}")
fi
exec "${CARGO_TARGET_DIR:-target}/release/examples/bench" "${args[@]}"
