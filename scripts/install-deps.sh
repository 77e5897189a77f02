#!/usr/bin/env bash
# Installs what the demo and the tests need on Debian/Ubuntu: the distribution registry
# (Debian package `docker-registry`) and a local S3 endpoint for the S3 tests (`moto[server]`
# from pip). The static release build (`dist/build.sh`) needs musl-gcc (`musl-tools`) and the
# Rust musl target besides; it is not part of the tests. Idempotent; uses sudo when not root.
set -euo pipefail

need=()
command -v docker-registry >/dev/null 2>&1 || command -v registry >/dev/null 2>&1 || need+=(docker-registry)
# The Action installer's tests unpack Windows (zip) release archives.
command -v zip >/dev/null 2>&1 || need+=(zip)
command -v unzip >/dev/null 2>&1 || need+=(unzip)
if ((${#need[@]})); then
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
fi

if [ -z "${REGSWEEP_TEST_MOTO:-}" ] && ! command -v moto_server >/dev/null 2>&1; then
  python=$(command -v python3 || true)
  if [ -z "$python" ]; then
    echo "error: the S3 tests need moto_server (pip install 'moto[server]'), and there is no python3." >&2
    exit 1
  fi
  echo "Installing moto[server] (local S3 endpoint) with pip…" >&2
  # Debian's own python3 refuses system-wide pip installs (PEP 668): install for the user then.
  "$python" -m pip install --quiet --disable-pip-version-check 'moto[server]>=5,<6' 2>/dev/null ||
    "$python" -m pip install --quiet --disable-pip-version-check --user --break-system-packages 'moto[server]>=5,<6'
  hash -r
  if ! command -v moto_server >/dev/null 2>&1; then
    user_bin=$("$python" -m site --user-base)/bin
    if [ -x "$user_bin/moto_server" ]; then
      echo "note: moto_server is in $user_bin, which scripts/test.sh adds to PATH." >&2
    else
      echo "error: pip installed moto but no moto_server command appeared." >&2
      exit 1
    fi
  fi
fi
