#!/usr/bin/env python3
"""Checks the server's structure rules (ARCHITECTURE.md's invariants that a
script can check). Python 3 standard library only; run from the repository
root (or pass --root). `make test` runs it before the tests, enforcing
`bollard,http,size` (`cycles` joins once the AppState cycles are gone).

Checks (name: what fails it):
  bollard  server/src names `bollard` outside server/src/docker/ (the one
           Docker boundary).
  http     a capability file other than its api.rs or a file in its api/
           folder (and the HTTP layer's own files: error.rs, http.rs,
           web.rs, openapi.rs, health.rs, metrics.rs, auth/, and the
           top-level serve.rs, sse.rs and scrape.rs) names ApiError/ApiResult or axum.
  cycles   an import cycle between top-level modules of server/src
           (`use crate::x`, inline `crate::x::` paths, `super::` resolved;
           `#[cfg(test)]` modules and comments ignored).
  size     a non-test source file (server/src, frontend/src, wire/src,
           tests/src) over 800 lines, unless a `//!` line of its module doc
           says why it stays whole (it contains "cohesive" or "kept whole").

Every check runs and prints what it finds. Only the enforced ones fail the
run (exit 1): `bollard` by default; choose with --enforce a,b (or the
OPSDECK_STRUCTURE_ENFORCE variable), or --strict for all.
"""

import argparse
import os
import re
import sys
from collections import defaultdict, deque

CHECKS = ("bollard", "http", "cycles", "size")
DEFAULT_ENFORCED = ("bollard",)

SERVER = os.path.join("server", "src")
DOCKER = os.path.join(SERVER, "docker") + os.sep
SIZE_ROOTS = (SERVER, os.path.join("frontend", "src"), os.path.join("wire", "src"),
              os.path.join("tests", "src"))
MAX_LINES = 800

# Files that are the HTTP layer itself: they may name ApiError and axum.
HTTP_FILES = {"api.rs", "error.rs", "http.rs", "web.rs", "openapi.rs", "health.rs", "metrics.rs"}
# Top-level infrastructure that is HTTP by nature (only at server/src/):
# serve.rs binds the listener and runs `axum::serve` (the process's HTTP
# floor, no capability); sse.rs is the server-sent-events plumbing the
# capabilities' api files share (an HTTP response type, nothing else);
# scrape.rs answers `/metrics` (the exposition, reading every capability).
# error/ holds error.rs's own tests.
HTTP_TOP_FILES = {"serve.rs", "sse.rs", "scrape.rs"}
HTTP_DIRS = ("auth", "http", "error")
# A capability's HTTP layer may be a folder (`x/api/…`) when one api.rs
# would be too long: every file in it is HTTP.
HTTP_SUBDIR = "api"
HTTP_RE = re.compile(r"\bApi(?:Error|Result)\b|\baxum::|\buse\s+axum\b")

# error.rs turns every capability's error enum into ApiError (by design, in
# one place): its edges to the capabilities are not imports of a layer.
CYCLE_IGNORED_SOURCES = {"error"}
# The crate root declares every module; it is no module of its own.
ROOT_FILES = {"lib.rs", "main.rs"}

EXCEPTION_RE = re.compile(r"(?i)\b(cohesive|kept whole)\b")


# ---------------------------------------------------------------------------
# Reading Rust source: comments and literal contents blanked, lines kept.

def sanitize(text):
    """The source with comments removed and string/char literal contents
    blanked (quotes kept), newlines preserved so line numbers still hold."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == "/" and nxt == "*":
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if text[i] == "\n":
                        out.append("\n")
                    i += 1
            continue
        # raw strings: r"..." r#"..."# br#"..."#
        m = re.match(r'b?r(#*)"', text[i:i + 260]) if c in "rb" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")) else None
        if m:
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j
            out.append('""')
            out.append("\n" * text.count("\n", i, j))
            i = j + len(end)
            continue
        if c == '"' or (c == "b" and nxt == '"' and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"))):
            i += 2 if c == "b" else 1
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                if i < n and text[i] == "\n":
                    out.append("\n")
                i += 1
            out.append('""')
            i += 1
            continue
        if c == "'":
            # a char literal ('x', '\n', '\u{..}'), not a lifetime ('a)
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:i + 12])
            if m:
                out.append("' '")
                i += m.end()
                continue
        out.append(c)
        i += 1
    return "".join(out)


def strip_test_modules(code):
    """`#[cfg(test)]` items (modules, functions) blanked, lines kept."""
    lines = code.split("\n")
    result = []
    skipping, depth, seen_open = False, 0, False
    for line in lines:
        if not skipping and re.match(r"\s*#\[cfg\(test\)\]", line):
            skipping, depth, seen_open = True, 0, False
            result.append("")
            continue
        if skipping:
            depth += line.count("{") - line.count("}")
            if "{" in line:
                seen_open = True
            # `#[cfg(test)] use x;` ends at its semicolon
            if (seen_open and depth <= 0) or (not seen_open and line.rstrip().endswith(";")):
                skipping = False
            result.append("")
            continue
        result.append(line)
    return "\n".join(result)


def rust_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("target", "dist", "node_modules"))
        for f in sorted(filenames):
            if f.endswith(".rs"):
                yield os.path.join(dirpath, f)


def read(path):
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


# ---------------------------------------------------------------------------
# The checks. Each returns a list of findings (strings).

def check_bollard(root):
    found = []
    for path in rust_files(os.path.join(root, SERVER)):
        rel = os.path.relpath(path, root)
        if rel.startswith(DOCKER):
            continue
        for no, line in enumerate(read(path).split("\n"), 1):
            if re.search(r"\bbollard\b", line):
                found.append(f"{rel}:{no}: {line.strip()}")
    return found


def is_http_file(rel):
    parts = rel.split(os.sep)[2:]  # below server/src
    return (parts[-1] in HTTP_FILES or (len(parts) > 1 and parts[0] in HTTP_DIRS)
            or (len(parts) == 1 and parts[0] in HTTP_TOP_FILES)
            or HTTP_SUBDIR in parts[1:-1])


def check_http(root):
    found = []
    for path in rust_files(os.path.join(root, SERVER)):
        rel = os.path.relpath(path, root)
        if is_http_file(rel) or os.path.basename(rel) in ROOT_FILES:
            continue
        code = strip_test_modules(sanitize(read(path)))
        hits = [no for no, line in enumerate(code.split("\n"), 1) if HTTP_RE.search(line)]
        if hits:
            found.append(f"{rel}:{hits[0]} ({len(hits)} line{'s' if len(hits) > 1 else ''})")
    return found


def module_path(rel):
    """['x', 'y'] for server/src/x/y.rs or server/src/x/y/mod.rs."""
    parts = rel.split(os.sep)[2:]
    parts[-1] = parts[-1][:-3]
    if parts[-1] == "mod":
        parts.pop()
    return parts


USE_RE = re.compile(r"\buse\s+((?:crate|super|self)(?:::\w+)*::\{[^;]*\}|[^;{]+)\s*;", re.S)
PATH_RE = re.compile(r"\b((?:crate|super)(?:::(?:super|\w+))+)")


def resolve(path, here):
    """The top-level module a `crate::…`/`super::…` path names, or None."""
    segs = path.split("::")
    if segs[0] == "crate":
        rest = segs[1:]
    elif segs[0] == "super":
        base = list(here)
        while segs and segs[0] == "super":
            if not base:
                return None
            base.pop()
            segs = segs[1:]
        rest = base + segs
    else:
        return None
    return rest[0] if rest and rest[0] not in ("self", "super", "crate") else None


def group_heads(body):
    """First segments of the items of a `{a::b, c, d::{e}}` group."""
    heads, depth, cur = [], 0, ""
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            heads.append(cur)
            cur = ""
        else:
            cur += ch
    heads.append(cur)
    return [h.strip().split("::")[0].strip() for h in heads if h.strip()]


def imports(root):
    """{(from, to): "file:line"} for edges between top-level modules."""
    edges = {}
    for path in rust_files(os.path.join(root, SERVER)):
        rel = os.path.relpath(path, root)
        if os.path.basename(rel) in ROOT_FILES and len(rel.split(os.sep)) == 3:
            continue
        here = module_path(rel)
        src = here[0]
        code = strip_test_modules(sanitize(read(path)))
        line_of = lambda pos: code.count("\n", 0, pos) + 1  # noqa: E731
        targets = []
        for m in USE_RE.finditer(code):
            stmt = re.sub(r"\s+", "", m.group(1))
            g = re.match(r"((?:crate|super|self)(?:::\w+)*)::\{(.*)\}$", stmt)
            if g:
                prefix = g.group(1)
                if prefix in ("crate",) or re.fullmatch(r"super(::super)*", prefix):
                    for head in group_heads(g.group(2)):
                        targets.append((prefix + "::" + head, m.start()))
                    continue
                targets.append((prefix, m.start()))
            else:
                targets.append((stmt, m.start()))
        for m in PATH_RE.finditer(code):
            targets.append((m.group(1), m.start()))
        for target, pos in targets:
            dst = resolve(target, here)
            if dst and dst != src:
                edges.setdefault((src, dst), f"{rel}:{line_of(pos)}")
    return edges


def find_cycles(edges):
    graph = defaultdict(set)
    for (a, b) in edges:
        if a in CYCLE_IGNORED_SOURCES:
            continue
        graph[a].add(b)
    cycles, seen = [], set()
    # Every mutual pair, then the shortest cycle through each remaining node.
    for a in sorted(graph):
        for b in sorted(graph[a]):
            if a < b and a in graph.get(b, ()):
                cycles.append([a, b, a])
                seen.update((a, b))
    for start in sorted(graph):
        if start in seen:
            continue
        prev = {start: None}
        queue = deque([start])
        found = None
        while queue and not found:
            x = queue.popleft()
            for y in sorted(graph.get(x, ())):
                if y == start:
                    found = x
                    break
                if y not in prev:
                    prev[y] = x
                    queue.append(y)
        if found is not None:
            path = [start]
            x = found
            while x != start:
                path.append(x)
                x = prev[x]
            path = [start] + path[1:][::-1] + [start]
            cycles.append(path)
            seen.update(path)
    return cycles


def check_cycles(root):
    edges = imports(root)
    found = []
    for cyc in find_cycles(edges):
        arrows = [f"{a}→{b} ({edges[(a, b)]})" for a, b in zip(cyc, cyc[1:])]
        found.append("→".join(cyc) + ": " + "; ".join(arrows))
    return found


def check_size(root):
    found = []
    for base in SIZE_ROOTS:
        for path in rust_files(os.path.join(root, base)):
            rel = os.path.relpath(path, root)
            text = read(path)
            n = text.count("\n") + (0 if text.endswith("\n") else 1)
            if n <= MAX_LINES or os.path.basename(rel) == "tests.rs":
                continue
            doc = [l for l in text.split("\n") if l.startswith("//!")]
            if any(EXCEPTION_RE.search(l) for l in doc):
                continue
            found.append(f"{rel}: {n} lines")
    found.sort(key=lambda s: -int(s.rsplit(": ", 1)[1].split()[0]))
    return found


RUNNERS = {
    "bollard": ("`bollard` named outside server/src/docker/", check_bollard),
    "http": ("capability files naming ApiError/ApiResult/axum outside api.rs", check_http),
    "cycles": ("import cycles between top-level server modules", check_cycles),
    "size": (f"source files over {MAX_LINES} lines", check_size),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=".", help="repository root (default: .)")
    ap.add_argument("--strict", action="store_true", help="enforce every check")
    ap.add_argument("--enforce", default=os.environ.get("OPSDECK_STRUCTURE_ENFORCE"),
                    help=f"comma-separated checks that fail the run (default: {','.join(DEFAULT_ENFORCED)}; "
                    f"all: {','.join(CHECKS)})")
    ap.add_argument("--only", help="run only these checks (comma-separated)")
    args = ap.parse_args()

    def names(s):
        out = [x.strip() for x in s.split(",") if x.strip()]
        bad = [x for x in out if x not in CHECKS]
        if bad:
            ap.error(f"unknown check(s): {', '.join(bad)} (known: {', '.join(CHECKS)})")
        return out

    enforced = set(CHECKS) if args.strict else set(
        names(args.enforce) if args.enforce is not None else DEFAULT_ENFORCED)
    run = names(args.only) if args.only else list(CHECKS)
    if not os.path.isdir(os.path.join(args.root, SERVER)):
        ap.error(f"no {SERVER} under {args.root}: run from the repository root or pass --root")

    summary, failed = [], []
    for name in run:
        title, fn = RUNNERS[name]
        found = fn(args.root)
        level = "ERROR" if name in enforced else "warning"
        if found:
            print(f"{level}: {name}: {len(found)} {title}:")
            for f in found:
                print(f"  {f}")
            if name in enforced:
                failed.append(name)
        state = "ok" if not found else f"{len(found)} found"
        summary.append(f"{name}={state}{' (enforced)' if name in enforced else ''}")
    if "cycles" in run and CYCLE_IGNORED_SOURCES:
        print(f"note: cycles: imports by {', '.join(sorted(CYCLE_IGNORED_SOURCES))}.rs "
              "(the one place domain errors become ApiError) are not counted")
    print("structure: " + ", ".join(summary))
    if failed:
        print(f"structure check failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
