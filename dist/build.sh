#!/usr/bin/env bash
# Builds release artifacts into dist/out/:
#   regsweep-<version>-<target>.tar.gz (.zip on Windows), each holding the binary and the
#   README, and SHA256SUMS over every archive in dist/out. Linux targets are musl: fully static binaries
#   (checked: `ldd` must say "not a dynamic executable"); each binary must run `--version`;
#   SHA256SUMS must verify. This is the release check: a full release build, so it runs here
#   and in the release workflow, not inside `cargo test`.
# Usage: dist/build.sh [TARGET...]     default: this machine's architecture, Linux musl.
#   dist/build.sh x86_64-unknown-linux-musl aarch64-unknown-linux-musl   (each natively built
#   on its own architecture in the release workflow)
#   dist/build.sh aarch64-apple-darwin       (on macOS: the macOS recipe; see dist/README.md)
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
targets=("$@")
if ((${#targets[@]} == 0)); then
  case "$(uname -m)" in
    x86_64 | amd64) targets=(x86_64-unknown-linux-musl) ;;
    aarch64 | arm64) targets=(aarch64-unknown-linux-musl) ;;
    *) echo "error: no default target for $(uname -m); name one" >&2; exit 2 ;;
  esac
fi
out=dist/out
mkdir -p "$out"

for target in "${targets[@]}"; do
  rustup target add "$target" >/dev/null 2>&1 || true
  case "$target" in
    *-linux-musl)
      if ! command -v musl-gcc >/dev/null 2>&1; then
        echo "error: building for $target needs musl-gcc (Debian/Ubuntu: apt-get install musl-tools)" >&2
        exit 1
      fi
      ;;
  esac
  echo "building regsweep $version for $target…" >&2
  cargo build --release --locked --target "$target" --bin regsweep
  exe=regsweep
  [[ "$target" == *windows* ]] && exe=regsweep.exe
  binary="${CARGO_TARGET_DIR:-target}/$target/release/$exe"

  if [[ "$target" == *-linux-* ]]; then
    # glibc's ldd exits 1 and says so for a static binary; any library line means dynamic.
    verdict=$(ldd "$binary" 2>&1 || true)
    if ! grep -q "not a dynamic executable\|statically linked" <<<"$verdict"; then
      echo "error: $binary is not static:" >&2
      echo "$verdict" >&2
      exit 1
    fi
  fi
  if [[ "$target" == "$(rustc -vV | sed -n 's/^host: //p')" || "$target" == "$(uname -m)-unknown-linux-musl" ]]; then
    reported=$("$binary" --version)
    [[ "$reported" == "regsweep $version" ]] || { echo "error: --version says '$reported'" >&2; exit 1; }
  fi

  name="regsweep-$version-$target"
  staging=$(mktemp -d)
  mkdir "$staging/$name"
  cp "$binary" README.md "$staging/$name/"
  rm -f "$out/$name.tar.gz" "$out/$name.zip"
  if [[ "$target" == *windows* ]]; then
    (cd "$staging" && 7z a -tzip -bso0 "$OLDPWD/$out/$name.zip" "$name")
  else
    tar -C "$staging" -czf "$out/$name.tar.gz" "$name"
  fi
  rm -rf "$staging"
  echo "$out/$name.$([[ "$target" == *windows* ]] && echo zip || echo tar.gz)" >&2
done

shopt -s nullglob
archives=("$out"/regsweep-*.tar.gz "$out"/regsweep-*.zip)
if command -v sha256sum >/dev/null 2>&1; then sum=(sha256sum); else sum=(shasum -a 256); fi
(cd "$out" && "${sum[@]}" "${archives[@]##*/}" > SHA256SUMS)
# The check a downloader makes (the Action's installer, the GitLab template): every archive
# listed with its hash, and the hashes right.
(cd "$out" && "${sum[@]}" -c SHA256SUMS >/dev/null) || { echo "error: SHA256SUMS does not verify" >&2; exit 1; }
echo "checksums: $out/SHA256SUMS (verified)" >&2
