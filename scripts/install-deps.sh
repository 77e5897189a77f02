#!/usr/bin/env bash
# Installs what the demo and the tests need on Debian/Ubuntu: the distribution registry
# (Debian package `docker-registry`). Idempotent; uses sudo when not root.
set -euo pipefail

need=()
command -v docker-registry >/dev/null 2>&1 || command -v registry >/dev/null 2>&1 || need+=(docker-registry)
((${#need[@]})) || exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: cannot install ${need[*]}: this is not a Debian/Ubuntu system (no apt-get)." >&2
  echo "hint: install the distribution registry yourself and set REGSWEEP_TEST_REGISTRY to its binary." >&2
  exit 1
fi
echo "Installing ${need[*]} with apt-get…" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
