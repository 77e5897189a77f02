#!/usr/bin/env bash
# Installs regsweep for the GitHub Action (action.yml), on Linux, macOS and Windows runners:
# downloads the release archive for the runner's OS and architecture, verifies its SHA-256
# against the release's SHA256SUMS, caches it in the runner's tool cache, and adds it to PATH.
# Without a release to download (the action used from a branch or a commit), it builds from the
# action's own checkout with `cargo install --locked --path`. A checksum mismatch always fails.
#
# Environment (set by action.yml): REGSWEEP_VERSION (optional, e.g. 0.2.0), ACTION_REF,
# ACTION_REPOSITORY, ACTION_PATH, RUNNER_OS, RUNNER_ARCH, RUNNER_TOOL_CACHE, GITHUB_PATH.
# REGSWEEP_RELEASE_URL overrides where releases are downloaded from (tests, mirrors);
# CARGO overrides the cargo used for the fallback build.
set -euo pipefail

fail() { echo "::error title=regsweep install::$*" >&2; exit 1; }

case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
  Linux/X64) target=x86_64-unknown-linux-musl ;;
  Linux/ARM64) target=aarch64-unknown-linux-musl ;;
  macOS/ARM64) target=aarch64-apple-darwin ;;
  macOS/X64) target=x86_64-apple-darwin ;;
  Windows/X64) target=x86_64-pc-windows-msvc ;;
  *) target="" ;;
esac
exe=regsweep
[[ "$target" == *windows* ]] && exe=regsweep.exe

version="${REGSWEEP_VERSION:-}"
version="${version#v}"
if [ -z "$version" ] && [[ "${ACTION_REF:-}" =~ ^v([0-9]+\.[0-9]+\.[0-9]+.*)$ ]]; then
  version="${BASH_REMATCH[1]}"
fi

cache_root="${RUNNER_TOOL_CACHE:?RUNNER_TOOL_CACHE is not set}/regsweep"
add_to_path() {
  echo "$1" >> "${GITHUB_PATH:?GITHUB_PATH is not set}"
  echo "regsweep: $("$1/$exe" --version) from $1" >&2
}

# Fetches $1 into $2: 0 done, 2 not found (no such release or asset), 1 anything else.
fetch() {
  local code
  if [[ "$1" == file://* ]]; then
    [ -e "${1#file://}" ] || return 2
    cp "${1#file://}" "$2"
    return 0
  fi
  code=$(curl -sSL --retry 3 --retry-delay 2 -w '%{http_code}' -o "$2" "$1") || return 1
  case "$code" in
    200) return 0 ;;
    404) return 2 ;;
    *) echo "regsweep: $1 answered $code" >&2; return 1 ;;
  esac
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1
}

if [ -n "$version" ] && [ -n "$target" ]; then
  cache="$cache_root/$version/$target"
  if [ -f "$cache/.complete" ]; then
    add_to_path "$cache"
    exit 0
  fi
  base="${REGSWEEP_RELEASE_URL:-https://github.com/${ACTION_REPOSITORY:?ACTION_REPOSITORY is not set}/releases/download}/v$version"
  archive="regsweep-$version-$target.tar.gz"
  [[ "$target" == *windows* ]] && archive="regsweep-$version-$target.zip"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  status=0
  fetch "$base/$archive" "$work/$archive" || status=$?
  if [ "$status" -eq 0 ]; then
    fetch "$base/SHA256SUMS" "$work/SHA256SUMS" || fail "the release v$version has $archive but no SHA256SUMS: refusing an unverified binary"
    expected=$(awk -v name="$archive" '$2 == name || $2 == "*" name { print $1 }' "$work/SHA256SUMS")
    [ -n "$expected" ] || fail "SHA256SUMS of v$version does not list $archive: refusing an unverified binary"
    actual=$(sha256 "$work/$archive")
    [ "$actual" = "$expected" ] || fail "checksum mismatch for $archive: expected $expected, got $actual"
    mkdir -p "$work/unpacked" "$cache"
    if [[ "$archive" == *.zip ]]; then
      unzip -q "$work/$archive" -d "$work/unpacked"
    else
      tar -xzf "$work/$archive" -C "$work/unpacked"
    fi
    cp "$work/unpacked/regsweep-$version-$target/$exe" "$cache/$exe"
    chmod +x "$cache/$exe"
    touch "$cache/.complete"
    add_to_path "$cache"
    exit 0
  elif [ "$status" -ne 2 ]; then
    fail "cannot download $base/$archive"
  fi
  echo "regsweep: no release asset $archive for v$version; building from the action's source" >&2
fi

# Build from the action's own checkout (a branch or commit ref, or no asset for this runner).
# Not cached across jobs: a branch moves, and the tool cache of a self-hosted runner stays.
[ -n "${ACTION_PATH:-}" ] || fail "ACTION_PATH is not set"
root="${RUNNER_TEMP:-$cache_root}/regsweep-from-source"
"${CARGO:-cargo}" install --locked --path "$ACTION_PATH" --root "$root" --bin regsweep ||
  fail "building regsweep from $ACTION_PATH failed"
add_to_path "$root/bin"
