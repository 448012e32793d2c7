#!/usr/bin/env bash
# make bench: the foundation's figures, each next to its goal from the issue.
#   - `make run` ready time: cold (empty data dir: initdb) and warm (second run)
#   - server idle RSS after start
#   - authenticated GET /api/v1/me under wrk, 50 connections, paced to ~1,000 req/s
#   - the same unpaced (maximum throughput)
#   - login throughput (bounded by argon2id)
#   - WASM bundle size raw / gzip / brotli as served
#   - then bench/inventory.sh: the services page over 500 containers, the
#     state cache's memory, container restart via the API vs `docker restart`
#   - then bench/health.sh: 10,000 HTTP checks (CPU, RSS, lag, database
#     writes), the dashboard over 5,000 services (API, first render in
#     headless Chromium, 1,000 SSE clients), the handbook's curl loop vs an
#     Opsdeck round
#   - then bench/runbooks.sh: 1,000 queued runs of a 3-step runbook
#     (throughput, request → first step start), the handbook's "Service
#     down" bash procedure vs the service-down runbook on one container
#   - then bench/incidents.sh: on the demo stack, a container killed → the
#     first notification at a webhook receiver (p50/p99 vs check interval
#     + 2 s), with the split probe → incident → queued → delivered
#   - then bench/backups.sh: a ~2 GB Postgres database (pgbench scale 70 +
#     a log table; cached between runs): pg_dump > /dev/null, the handbook's
#     pg_dump | gzip, Opsdeck's backup through the API (zstd levels 1 and 3)
#     and pg_dump | zstd side by side; restore of Opsdeck's backup vs
#     gunzip | psql
#   - then bench/updates.sh: the gated image update vs `docker compose pull
#     && up -d` + a curl loop (pull excluded), rollback time of a broken
#     version, discovery over 500 services (registry requests)
#   - then bench/logs.sh: a regex search over 10 services × 1 GiB of logs,
#     Opsdeck's log search vs the handbook's `docker logs | grep` loop, and
#     the server's peak RSS above idle
#   - then bench/ssh.sh: inspect and restart over an ssh:// engine vs the
#     Unix socket vs `docker -H ssh://` (a private sshd)
#   - then bench/fleet.sh: 100 engines × 60 containers (socket relays over
#     4 private dockerds), then with 10 engines hung: time until connected
#     and reconciled, the services page and engines overview p99, the
#     dashboard's first rows in Chromium, RSS
#   - then bench/resources.sh: resource history of 500 sleeping containers
#     sampled every 10 s: CPU of the server and its Postgres, rows written
#     per minute
#   - then bench/load.sh: wrk on the dashboard and the main API routes with
#     60 checks running, and a 10-minute soak sampling the server's RSS
#   - then bench/ratelimit.sh: 10,000 anonymous POSTs/s for 30 s while a
#     logged-in user's GET /api/v1/status is timed (RSS, audit rows)
# Needs: wrk (apt-get install wrk), curl. Traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
work=$(mktemp -d /tmp/opsdeck-bench.XXXXXX)
chmod 755 "$work"
password="bench-orchid-compass-64"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

now_ms() { date +%s%3N; }
start_run() {  # starts `make run` in the background; sets $pid and $elapsed (ms until /readyz answers 200)
  local t0; t0=$(now_ms)
  # The login figure measures argon2id, not the per-address login limit.
  OPSDECK_DATA_DIR="$work/data" OPSDECK_LISTEN="127.0.0.1:$port" OPSDECK_ADMIN_PASSWORD="$password" \
    OPSDECK_RATE_LIMIT_LOGIN=0 setsid make --no-print-directory run >"$work/run.log" 2>&1 &
  pid=$!
  until curl -fs "$base/readyz" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/run.log"; exit 1; }
    sleep 0.05
  done
  elapsed=$(( $(now_ms) - t0 ))
}
stop_run() { kill -TERM -- "-$pid" 2>/dev/null || kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr)"
start_run; cold=$elapsed; stop_run
start_run; warm=$elapsed
server_pid=$(pgrep -f "release/opsdeck serve" | head -n1)
sleep 5
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")

jar="$work/cookies"
curl -fs -c "$jar" -H 'Content-Type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$password\"}" "$base/api/v1/auth/login" >/dev/null
cookie=$(awk '$6 == "opsdeck_session" {print $7}' "$jar")

cat >"$work/paced.lua" <<'LUA'
-- 50 connections x one request per 50 ms = about 1,000 requests/s
function delay() return 50 end
LUA
wrk -t2 -c50 -d20s --latency -s "$work/paced.lua" -H "Cookie: opsdeck_session=$cookie" "$base/api/v1/me" >"$work/paced.txt"
wrk -t2 -c50 -d15s --latency -H "Cookie: opsdeck_session=$cookie" "$base/api/v1/me" >"$work/max.txt"
cat >"$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"admin","password":"$password"}'
LUA
wrk -t2 -c4 -d15s --latency -s "$work/login.lua" "$base/api/v1/auth/login" >"$work/login.txt"

wasm=$(ls frontend/dist/*.wasm | head -n1)
raw=$(stat -c %s "$wasm")
served() { curl -fs -H "Accept-Encoding: $1" "$base/$(basename "$wasm")" | wc -c; }
gz=$(served gzip); br=$(served br)
stop_run

python3 - "$cold" "$warm" "$rss_kb" "$work" "$raw" "$gz" "$br" <<'PY'
import re, sys
cold, warm, rss_kb, work, raw, gz, br = sys.argv[1:]
def wrk(path):
    t = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", t)
        if not m: return float("nan")
        v, u = float(m.group(1)), m.group(2)
        return v / 1000 if u == "us" else v * 1000 if u == "s" else v
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    return rps, pct(50), pct(99), int(errors.group(1)) if errors else 0
paced, mx, login = wrk(f"{work}/paced.txt"), wrk(f"{work}/max.txt"), wrk(f"{work}/login.txt")
rss = int(rss_kb) / 1024
rows = [
    ("make run ready, cold (initdb)", f"{int(cold)/1000:.1f} s", "-", ""),
    ("make run ready, warm", f"{int(warm)/1000:.1f} s", "< 10 s", f"{int(warm)/10000:.2f}"),
    ("idle RSS after start", f"{rss:.1f} MB", "< 40 MB", f"{rss/40:.2f}"),
    ("GET /api/v1/me @~1k req/s, 50 conn: rate", f"{paced[0]:.0f} req/s", "1,000 req/s", f"{paced[0]/1000:.2f}"),
    ("GET /api/v1/me @~1k req/s: p50 / p99", f"{paced[1]:.2f} / {paced[2]:.2f} ms", "p99 < 5 ms", f"{paced[2]/5:.2f}"),
    ("GET /api/v1/me unpaced, 50 conn", f"{mx[0]:.0f} req/s, p99 {mx[2]:.2f} ms", "-", ""),
    ("POST /api/v1/auth/login, 4 conn", f"{login[0]:.1f} logins/s, p50 {login[1]:.0f} ms", "report", ""),
    ("WASM bundle raw / gzip / br (as served)", f"{int(raw)/1024:.0f} / {int(gz)/1024:.0f} / {int(br)/1024:.0f} KB", "< 400 KB compressed", f"{int(br)/1024/400:.2f}"),
]
errs = paced[3] + mx[3] + login[3]
print()
print(f"| figure | measured | goal | measured/goal |")
print(f"|---|---|---|---|")
for r in rows:
    print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")
print(f"\nnon-2xx responses during the load runs: {errs}")
PY

echo
bench/inventory.sh

echo
bench/health.sh

echo
bench/runbooks.sh

echo
bench/incidents.sh

echo
bench/backups.sh

echo
bench/updates.sh

echo
bench/logs.sh

echo
bench/ssh.sh

echo
bench/fleet.sh

echo
bench/resources.sh

echo
bench/load.sh

echo
bench/ratelimit.sh
