#!/usr/bin/env bash
# Installs what building Opsdeck needs, into a tools directory outside the
# clone, skipping whatever is already there at the right version:
#   - the wasm32-unknown-unknown Rust target
#   - trunk 0.21.14 (0.22 needs a newer rustc than the one we pin to)
#   - wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock
#   - brotli (Debian package, when root) to precompress the SPA
# Usage: scripts/install-build-tools.sh <tools dir>
set -euo pipefail
tools=${1:?usage: install-build-tools.sh <tools dir>}
mkdir -p "$tools/bin"
export PATH="$tools/bin:$PATH"
cd "$(dirname "$0")/.."

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "==> adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! trunk --version 2>/dev/null | grep -q '0.21.14'; then
  echo "==> installing trunk 0.21.14 (takes several minutes, once)"
  cargo install trunk@0.21.14 --locked --root "$tools"
fi

want=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
if [ -z "$want" ]; then
  echo "cannot find the wasm-bindgen version in Cargo.lock" >&2
  exit 1
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q " $want\$"; then
  echo "==> installing wasm-bindgen-cli $want (matches Cargo.lock)"
  # Without --locked: the reachable index lacks some versions its lockfile pins.
  cargo install "wasm-bindgen-cli@$want" --root "$tools" --force
fi

if ! command -v brotli >/dev/null && [ "$(id -u)" -eq 0 ]; then
  echo "==> installing brotli (precompresses the SPA)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends brotli
fi
