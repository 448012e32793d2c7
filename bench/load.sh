#!/usr/bin/env bash
# make bench, load part (also `make bench-load`): wrk against the dashboard
# and the main API routes of a release `opsdeck serve` whose health engine
# probes BENCH_CHECKS (60) HTTP checks every 10 s, then a soak of
# BENCH_SOAK_SECS (600) with the checks running and a steady reader on the
# status board, sampling the server's RSS every 10 s.
#
# The server: fresh data directory (embedded Postgres), DOCKER_HOST=none
# (no engine: the routes read the inventory, checks, incidents, runs and
# backups from the database), BENCH_CHECKS services with one HTTP check
# each probing the server's own /healthz on loopback (`interval_s` 10), a
# handful of incidents and runbook runs so the lists are not empty.
#
# Routes (each BENCH_SECS (15) s, 50 connections, 2 threads, unpaced, the
# admin's session cookie): the SPA's index (/), GET /api/v1/status (the
# dashboard's board), /api/v1/services, /api/v1/checks, /api/v1/incidents,
# /api/v1/runs, /api/v1/backups, /api/v1/me.
# Soak: wrk -c4 on /api/v1/status for the whole soak; RSS from
# /proc/<pid>/status (VmRSS) every 10 s; reported: after warm-up (the first
# minute), the maximum, the last sample, and the growth from the first
# minute's mean to the last minute's mean.
#
# Environment: BENCH_CHECKS, BENCH_SECS, BENCH_SOAK_SECS, OPSDECK_BIN.
# Needs: wrk (apt-get install wrk), curl, python3. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
bench_name=load
# shellcheck source=bench/lib.sh
. bench/lib.sh
checks=${BENCH_CHECKS:-60}
secs=${BENCH_SECS:-15}
soak=${BENCH_SOAK_SECS:-600}
bin=${OPSDECK_BIN:-$(bench_default_bin)}
password="bench-larch-meadow-271"
bench_need "apt-get install wrk curl python3" wrk curl python3
[ -x "$bin" ] || die "no opsdeck binary at $bin (make bench builds it; or set OPSDECK_BIN)"
[[ "$soak" =~ ^[0-9]+$ ]] && [ "$soak" -ge 120 ] || die "BENCH_SOAK_SECS: at least 120"

work=$(mktemp -d /tmp/opsdeck-bench-load.XXXXXX)
chmod 755 "$work"
port=$(bench_free_port)
base="http://127.0.0.1:$port"
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  bench_server_stop
  [ "$status" -eq 0 ] || tail -n 20 "$work/opsdeck.log" >&2 || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== load bench: $(bench_machine)"
web_root=frontend/dist
[ -f "$web_root/index.html" ] || die "no SPA in $web_root (make frontend)"
export OPSDECK_WEB_ROOT="$PWD/$web_root"
bench_server_start "$work/data"

jar="$work/cookies"
curl -fs -c "$jar" -H 'Content-Type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$password\"}" "$base/api/v1/auth/login" >/dev/null
cookie=$(awk '$6 == "opsdeck_session" {print $7}' "$jar")
api() {  # METHOD PATH [JSON]
  curl -fsS -X "$1" -b "$jar" -H 'X-Requested-With: bench' -H 'Content-Type: application/json' \
    ${3:+-d "$3"} "$base$2"
}
echo "   $checks services with an HTTP check every 10 s; $(bench_load)"
for i in $(seq 1 "$checks"); do
  sid=$(api POST /api/v1/services "{\"name\":\"svc-$i\",\"tier\":\"application\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  api POST /api/v1/checks "{\"service_id\":$sid,\"name\":\"http\",\"interval_s\":10,\"timeout_ms\":2000,\"spec\":{\"kind\":\"http\",\"url\":\"$base/healthz\"}}" >/dev/null
done
for i in $(seq 1 20); do
  api POST /api/v1/incidents "{\"title\":\"Bench incident $i\",\"severity\":\"P$(( i % 4 + 1 ))\"}" >/dev/null
done
sleep 12  # every check has probed once

routes="/ /api/v1/status /api/v1/services /api/v1/checks /api/v1/incidents /api/v1/runs /api/v1/backups /api/v1/me"
for r in $routes; do
  f="$work/wrk$(echo "$r" | tr '/' '_').txt"
  wrk -t2 -c50 -d"${secs}s" --latency -H "Cookie: opsdeck_session=$cookie" "$base$r" >"$f"
  echo "   $r done; $(bench_load)"
done

echo "   soak: ${soak}s with the checks running and wrk -c4 on /api/v1/status; $(bench_load)"
wrk -t1 -c4 -d"${soak}s" --latency -H "Cookie: opsdeck_session=$cookie" "$base/api/v1/status" >"$work/soak.txt" &
soak_wrk=$!
: >"$work/rss.txt"
end=$(( $(date +%s) + soak ))
while [ "$(date +%s)" -lt "$end" ]; do
  awk '/VmRSS/ {print $2}' "/proc/$server_pid/status" >>"$work/rss.txt"
  sleep 10
done
wait "$soak_wrk"
probes=$(curl -fs -b "$jar" "$base/api/v1/status" | python3 -c 'import json,sys; b=json.load(sys.stdin); print(sum(1 for s in b["services"] if s["health"]=="operational"))')

python3 - "$work" "$routes" "$checks" "$probes" "$soak" <<'PY'
import re, sys
work, routes, checks, operational, soak = sys.argv[1:]
def wrk(path):
    t = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", t)
        if not m: return float("nan")
        v, u = float(m.group(1)), m.group(2)
        return v / 1000 if u == "us" else v * 1000 if u == "s" else v
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    sock = re.search(r"Socket errors: (.*)", t)
    return rps, pct(50), pct(99), int(errors.group(1)) if errors else 0, sock.group(1) if sock else ""
print()
print("| route (50 connections, unpaced) | req/s | p50 | p99 | non-2xx |")
print("|---|---|---|---|---|")
for r in routes.split():
    rps, p50, p99, err, sock = wrk(f"{work}/wrk{r.replace('/', '_')}.txt")
    print(f"| `GET {r}` | {rps:,.0f} | {p50:.2f} ms | {p99:.2f} ms | {err}{' ' + sock if sock else ''} |")
rss = [int(x) / 1024 for x in open(f"{work}/rss.txt").read().split()]
n = len(rss)
first = rss[6:12] or rss[:6]
last = rss[-6:]
soakw = wrk(f"{work}/soak.txt")
print()
print(f"Soak, {int(soak)//60} min, {checks} checks every 10 s, wrk -c4 on /api/v1/status "
      f"({soakw[0]:,.0f} req/s, p99 {soakw[2]:.2f} ms, non-2xx {soakw[3]}): RSS {n} samples")
print(f"  start {rss[0]:.1f} MB; after the first minute {sum(first)/len(first):.1f} MB; max {max(rss):.1f} MB; "
      f"last minute {sum(last)/len(last):.1f} MB; growth first minute → last {sum(last)/len(last) - sum(first)/len(first):+.1f} MB")
print(f"  services operational at the end: {operational} of {checks}")
print("  RSS samples (MB): " + " ".join(f"{x:.1f}" for x in rss))
PY
