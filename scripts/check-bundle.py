#!/usr/bin/env python3
"""The SPA's size budget, checked by `make test` after the SPA is built.

Sums what a browser downloads on a first visit (the WASM, JS and CSS in
frontend/dist, compressed as the server sends them: the precompressed .br
files, else .gz) and fails when the sum passes the budget below.

The budget is a guard against growth, not the goal: issue 27's goal is
< 400 KB brotli for the first page of any route, which needs the bundle
split per route (not done yet; BENCHMARKS.md). Raise a budget only with a
note in BENCHMARKS.md saying what the bytes bought.

Usage: scripts/check-bundle.py [dist dir]
"""
import pathlib
import sys

# Bytes, as served. Set 2026-12-07 at about 7 % over the bundle of a197cf1
# (brotli 1,073,134 B; gzip 1,566,618 B).
BUDGET = {"br": 1_150_000, "gz": 1_680_000}
GOAL_BR = 400_000

dist = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "frontend/dist")
assets = sorted(p for ext in ("*.wasm", "*.js", "*.css") for p in dist.glob(ext))
if not assets:
    sys.exit(f"check-bundle: no WASM/JS/CSS in {dist} (build the SPA first: make frontend)")
for enc in ("br", "gz"):
    packed = [p.with_name(p.name + "." + enc) for p in assets]
    if all(p.is_file() for p in packed):
        break
else:
    sys.exit(f"check-bundle: {dist} has no .br or .gz files (scripts/precompress.sh writes them)")
sizes = {p.name: p.stat().st_size for p in packed}
total = sum(sizes.values())
budget = BUDGET[enc]
detail = ", ".join(f"{name} {size / 1000:.0f} KB" for name, size in sizes.items())
line = f"SPA download ({enc}): {total / 1000:.0f} KB of a {budget / 1000:.0f} KB budget ({detail})"
if enc == "br":
    line += f"; goal {GOAL_BR / 1000:.0f} KB (issue 27)"
if total > budget:
    sys.exit(f"check-bundle: FAILED: {line}")
print(f"check-bundle: ok: {line}")
