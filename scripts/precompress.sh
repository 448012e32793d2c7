#!/usr/bin/env bash
# Writes .gz (gzip -9) and, when the brotli tool is installed, .br (quality
# 11) next to the SPA's JS, WASM and CSS, which the server sends to clients
# that accept them. Without brotli the server compresses on the fly.
# Usage: scripts/precompress.sh <dist dir>
set -euo pipefail
dist=${1:?usage: precompress.sh <dist dir>}
shopt -s nullglob
for f in "$dist"/*.wasm "$dist"/*.js "$dist"/*.css; do
  gzip -9 -k -f -- "$f"
  if command -v brotli >/dev/null; then
    brotli -q 11 -k -f -- "$f"
  fi
done
