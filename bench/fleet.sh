#!/usr/bin/env bash
# make bench, fleet part (alone: make bench-fleet): BENCH_FLEET_ENGINES (100)
# engines × BENCH_FLEET_CONTAINERS (60) containers = 6,000 containers, one
# service each, then the same with BENCH_FLEET_HUNG (10) of the engines hung.
#
# What the engines are: BENCH_FLEET_DOCKERDS (4) real private dockerds (no
# bridge, no iptables changes; each its own socket, data root and exec
# root) each run BENCH_FLEET_CONTAINERS busybox `sleep` containers. 100
# real engines with 60 containers each do not fit on the 2-core machine
# the bench runs on (6,000 container shims), so the 100 engines Opsdeck
# sees are socket relays (`bench-target relay`, tests/src/bin/bench-
# target.rs), each its own Unix socket, spread round-robin over the real
# dockerds: to Opsdeck, 100 engines, each with its own connection, events
# stream and cache of 60 containers, 6,000 containers in all; the
# dockerds behind them answer 25 engines' requests each (their CPU is on
# this machine too, as 100 hosts' would not be). A hung engine is a relay
# socket that accepts, reads and never answers.
#
# Services: one per (engine, container), on that engine by container name,
# inserted with one SQL statement into the embedded cluster (psql on its
# Unix socket), a tenth critical-tier, a tenth support, the rest
# application; no checks.
#
# Figures, each round (1: all engines live; 2: the relay started again
# with its last BENCH_FLEET_HUNG sockets hung, the server restarted):
#   - time from `opsdeck serve` starting until every live engine is
#     `connected` with all its containers in the cache (GET /api/v1/engines,
#     `containers`); round 2 also: until the hung ones are reported
#     `unreachable`. Before round 1, once: from registering the engines
#     through the API (a fresh server) until the same.
#   - BENCH_REQUESTS (300) sequential GETs each, after 10 warm-up: the
#     services page's first page (/api/v1/services/page?offset=0&limit=100),
#     the engines overview (/api/v1/engines/overview), and the status board
#     (/api/v1/status) for reference: p50 / p99 (goal p99 < 100 ms), and
#     the server's CPU time per request (its CPU over the loop less its
#     rate over 15 s without requests): latencies on a busy 2-core machine
#     wait for a core, CPU time does not
#   - the dashboard in headless Chromium (chromedriver, plain WebDriver):
#     from navigation start until the first service rows are painted,
#     BENCH_RENDERS (5) loads with cached assets and as many cold (goal
#     < 1 s); all rows painted for reference
#   - VmRSS and VmHWM of `opsdeck serve` at the end of the round (goal
#     < 300 MB); CPU of the server, the dockerds, the relay and the whole
#     machine while the GETs and renders ran
# and round 2 / round 1 for each (goal ≤ 1.10).
#
# Environment: BENCH_FLEET_ENGINES, BENCH_FLEET_DOCKERDS, BENCH_FLEET_CONTAINERS,
# BENCH_FLEET_HUNG, BENCH_REQUESTS, BENCH_RENDERS, BENCH_FLEET_BROWSER (1;
# 0 leaves the Chromium figure out), OPSDECK_BIN and BENCH_TARGET_BIN
# (defaults: the release builds), OPSDECK_WEB_ROOT (the SPA; default
# frontend/dist). The server runs with its defaults otherwise (resource
# history sampling every 10 s: 6,000 one-shot stats calls per round).
# Needs: root, python3, curl, psql (postgresql-client), dockerd + docker
# CLI, /bin/busybox, chromium + chromedriver. Traffic stays on loopback
# and Unix sockets.
set -euo pipefail
cd "$(dirname "$0")/.."

engines=${BENCH_FLEET_ENGINES:-100}
n_dockerds=${BENCH_FLEET_DOCKERDS:-4}
per=${BENCH_FLEET_CONTAINERS:-60}
hung=${BENCH_FLEET_HUNG:-10}
requests=${BENCH_REQUESTS:-300}
renders=${BENCH_RENDERS:-5}
browser=${BENCH_FLEET_BROWSER:-1}
image=opsdeck-bench/busybox:1
password="bench-harbour-lattice-27"
chromium=/usr/bin/chromium
chromedriver=/usr/bin/chromedriver
bench_name=fleet
# shellcheck source=bench/lib.sh
. bench/lib.sh
bin=${OPSDECK_BIN:-$(bench_default_bin)}
target_bin=${BENCH_TARGET_BIN:-$(dirname "$(bench_default_bin)")/bench-target}
web_root=${OPSDECK_WEB_ROOT:-frontend/dist}

bench_need "apt-get install python3 curl postgresql-client, or make test-deps" python3 curl psql setsid
bench_engine_needs "the fleet bench needs root (it starts private dockerds)"
[ -x "$bin" ] || die "no opsdeck binary at $bin (make bench builds it; or set OPSDECK_BIN)"
[ -x "$target_bin" ] || die "no bench-target binary at $target_bin (cargo build --release -p opsdeck-e2e --bin bench-target)"
[ "$hung" -lt "$engines" ] || die "BENCH_FLEET_HUNG ($hung) must be below BENCH_FLEET_ENGINES ($engines)"
if [ "$browser" = 1 ]; then
  [ -x "$chromium" ] && [ -x "$chromedriver" ] || die "chromium and chromedriver are missing (apt-get install chromium chromium-driver; or BENCH_FLEET_BROWSER=0)"
  [ -f "$web_root/index.html" ] || die "no SPA in $web_root (make frontend, or OPSDECK_WEB_ROOT; or BENCH_FLEET_BROWSER=0)"
fi
# The relay holds two descriptors per relayed connection.
if [ "$(ulimit -n)" -lt 8192 ]; then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi

work=$(mktemp -d /tmp/opsdeck-bench-fleet.XXXXXX)
chmod 755 "$work"
port=$(bench_free_port)
base="http://127.0.0.1:$port"
relay_dir="$work/relay"
relay_pid=""

relay_start() {  # hung sockets: the last N of them
  : >"$work/relay.out"
  "$target_bin" relay --listen "$relay_dir" --count "$engines" --hang "$1" \
    --to "$(IFS=,; echo "${dockerd_dirs[*]/%//docker.sock}")" >"$work/relay.out" 2>"$work/relay.err" &
  relay_pid=$!
  local i
  for i in $(seq 1 100); do
    grep -qx ready "$work/relay.out" 2>/dev/null && return 0
    kill -0 "$relay_pid" 2>/dev/null || { cat "$work/relay.err" >&2; die "bench-target relay exited"; }
    [ "$i" -lt 100 ] || die "bench-target relay not ready within 10 s"
    sleep 0.1
  done
}
relay_stop() {
  [ -n "$relay_pid" ] || return 0
  kill -TERM "$relay_pid" 2>/dev/null || true
  wait "$relay_pid" 2>/dev/null || true
  relay_pid=""
}
sql() {  # data dir, SQL: runs it in the embedded cluster's opsdeck database
  psql -X -q -v ON_ERROR_STOP=1 -h "$1/run" -U opsdeck -d opsdeck -c "$2" >/dev/null
}
now_ms() { date +%s%3N; }

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  bench_chromedriver_stop
  bench_server_stop
  relay_stop
  bench_dockerds_stop
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== fleet bench: $(bench_machine)"
echo "   $engines engines (socket relays, round-robin over $n_dockerds private dockerds) × $per containers = $((engines * per)) containers"
bench_dockerds_start "$n_dockerds" /tmp/odk-bench-fleet-dockerd
echo "-- starting $per sleeping containers on each of $n_dockerds dockerds (engine $engine_version); $(bench_load)"
for d in "${dockerd_dirs[@]}"; do
  for i in $(seq 1 "$per"); do echo "$d $i"; done
done | BENCH_IMAGE="$image" xargs -P 4 -n 2 sh -c \
  'env -u DOCKER_HOST -u DOCKER_CONTEXT DOCKER_CONFIG="$0/cli-config" docker -H "unix://$0/docker.sock" run -d --network none --name "fleet-$1" "$BENCH_IMAGE" sleep 86400 >/dev/null'
relay_start 0

# Measuring one round, from the server's start (ms since the epoch).
cat >"$work/round.py" <<'PY'
import json, os, sys, time
from benchlib import *
(work, base, password, rnd, engines, per, hung, t0_ms, pid, requests, renders,
 browser, driver_port, chromium) = sys.argv[1:]
engines, per, hung, pid, requests, renders = int(engines), int(per), int(hung), int(pid), int(requests), int(renders)
t0 = int(t0_ms) / 1000
api = Api(base, password, name="fleet")
names = [f"fleet-{i:03d}" for i in range(1, engines + 1)]
hung_names = set(names[engines - hung:])
out = {"engines": engines, "containers": per, "hung": hung, "load": open("/proc/loadavg").read().split()[0]}

# Until every live engine is connected with all its containers cached
# (and the hung ones reported), polling every 0.2 s.
t_live = t_hung = None
while t_live is None or (hung and t_hung is None):
    listed = {e["name"]: e for e in api.json("GET", "/api/v1/engines")}
    now = time.time()
    if t_live is None and all(n in listed and listed[n]["state"] == "connected" and listed[n]["containers"] == per
                              for n in names if n not in hung_names):
        t_live = now - t0
    if hung and t_hung is None and all(n in listed and listed[n]["state"] == "unreachable" and listed[n].get("last_error")
                                       for n in hung_names):
        t_hung = now - t0
        out["hung_error"] = listed[next(iter(hung_names))]["last_error"]
    if now - t0 > 900:
        states = {}
        for e in listed.values():
            states[e["state"]] = states.get(e["state"], 0) + 1
        sys.exit(f"bench/fleet: {rnd}: not settled within 900 s: {states}")
    time.sleep(0.2)
out["live_s"], out["hung_s"] = t_live, t_hung
print(f"      {engines - hung} live engines connected and reconciled {t_live:.1f} s after the start"
      + (f"; {hung} hung reported unreachable after {t_hung:.1f} s ({out['hung_error']})" if hung else ""))

# CPU over the measurements below: the server, the real dockerds behind
# the relays with their containerd (answering 100 engines' stats calls
# and inspects: on 100 hosts that work would not be on this machine), the
# relay, the whole machine.
others = [int(p) for p in os.environ["BENCH_FLEET_PIDS"].split()]
def cpu_snapshot():
    return time.monotonic(), cpu_ticks(pid), sum(tree_ticks(p) for p in others[1:]), cpu_ticks(others[0]), machine_busy_ticks()
# The server's own background work (the resource sampler's stats calls,
# the engines' events), over 15 s without requests: subtracted from each
# loop's CPU below, which leaves the CPU time a request costs, a figure
# that holds on a busy machine where latencies do not.
k0, w0 = cpu_ticks(pid), time.monotonic()
time.sleep(15)
background = (cpu_ticks(pid) - k0) / HZ / (time.monotonic() - w0)
out["background_cpu_pct"] = 100 * background
print(f"      opsdeck serve without requests: {100 * background:.1f} % of a core")
c0 = cpu_snapshot()

pages = {
    "services_page": "/api/v1/services/page?offset=0&limit=100",
    "overview": "/api/v1/engines/overview",
    "status": "/api/v1/status",
}
for key, path in pages.items():
    # A build from before the endpoint answers 404, or 400 / 405 when the
    # path falls under /services/{id} or /engines/{id}.
    raw = api.call("GET", path, ok=[200, 400, 404, 405])
    if api.status != 200:
        print(f"      {path}: {api.status} (not in this build)")
        out[key] = None
        continue
    body = json.loads(raw)
    size = len(raw)
    if key == "services_page":
        shown = f"total {body.get('total')}, {len(body.get('items', []))} items"
    elif key == "overview":
        shown = f"{len(body)} engines"
    else:
        shown = f"{len(body.get('services', []))} services"
    for _ in range(10):
        api.call("GET", path)
    lat = []
    k0, w0 = cpu_ticks(pid), time.monotonic()
    for _ in range(requests):
        t = time.perf_counter()
        api.call("GET", path)
        lat.append((time.perf_counter() - t) * 1000)
    cpu_ms = max(0.0, ((cpu_ticks(pid) - k0) / HZ - background * (time.monotonic() - w0)) * 1000 / requests)
    lat.sort()
    out[key] = {"bytes": size, "shown": shown, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "max_ms": lat[-1],
                "cpu_ms": cpu_ms}
    print(f"      GET {path}: {size / 1024:.0f} KB ({shown}); p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms; "
          f"server CPU {cpu_ms:.1f} ms a request")

if browser == "1":
    b = Browser(driver_port, chromium, f"{work}/{rnd}")
    b.login(base, password)
    runs = b.dashboard_loads(base, renders)
    b.close()
    out["browser"] = {k: [{kk: vv for kk, vv in r.items() if kk != "log"} for r in v] for k, v in runs.items()}
    for kind, rs in runs.items():
        print(f"      dashboard ({kind}): " + ", ".join(f"{r['first_rows_ms']:.0f} / {r['render_ms']:.0f} ms ({r['rows']} rows)" for r in rs))
c1 = cpu_snapshot()
dt = c1[0] - c0[0]
out["cpu"] = {k: 100 * (c1[i] - c0[i]) / HZ / dt for i, k in enumerate(["", "opsdeck", "dockerds", "relay", "machine"]) if k}
print(f"      CPU over those {dt:.0f} s: opsdeck serve {out['cpu']['opsdeck']:.0f} %, the dockerds {out['cpu']['dockerds']:.0f} %, "
      f"the relay {out['cpu']['relay']:.0f} %, the machine {out['cpu']['machine']:.0f} % (200 % = both cores)")
out["rss_mb"], out["hwm_mb"] = status_kb(pid) / 1024, status_kb(pid, "VmHWM") / 1024
print(f"      opsdeck serve: VmRSS {out['rss_mb']:.0f} MB, VmHWM {out['hwm_mb']:.0f} MB")
save(work, rnd, out)
PY

if [ "$browser" = 1 ]; then bench_chromedriver_start; fi
data="$work/data"
export OPSDECK_WEB_ROOT="$web_root"

echo "-- registering $engines engines through the API (a fresh server); $(bench_load)"
bench_server_start "$data"
python3 - "$work" "$base" "$password" "$engines" "$per" "$relay_dir" <<'PY'
import sys, time
from benchlib import *
work, base, password, engines, per, relay_dir = sys.argv[1:]
engines, per = int(engines), int(per)
api = Api(base, password, name="fleet")
t0 = time.monotonic()
for i in range(1, engines + 1):
    api.json("POST", "/api/v1/engines", {"name": f"fleet-{i:03d}", "endpoint": f"unix://{relay_dir}/e{i}.sock"})
t_posted = time.monotonic() - t0
while True:
    listed = api.json("GET", "/api/v1/engines")
    if len(listed) == engines and all(e["state"] == "connected" and e["containers"] == per for e in listed):
        break
    if time.monotonic() - t0 > 900:
        sys.exit("bench/fleet: the engines did not all connect within 900 s")
    time.sleep(0.2)
t = time.monotonic() - t0
print(f"      {engines} registered in {t_posted:.1f} s; all connected and reconciled {t:.1f} s after the first")
save(work, "register", {"posted_s": t_posted, "connected_s": t})
PY
sql "$data" "
  INSERT INTO services (name, tier, engine_id, container_name, source)
  SELECT format('%s-c%s', e.name, lpad(c::text, 3, '0')),
         (CASE WHEN c % 10 = 0 THEN 'critical' WHEN c % 10 = 9 THEN 'support' ELSE 'application' END)::service_tier,
         e.id, format('fleet-%s', c), 'manual'
  FROM engines e, generate_series(1, $per) AS c
  WHERE e.name LIKE 'fleet-%';"
bench_server_stop

fleet_round() {  # name, hung engines
  local t0
  t0=$(now_ms)
  bench_server_start "$data"
  BENCH_FLEET_PIDS="$relay_pid ${dockerd_pids[*]}" python3 "$work/round.py" "$work" "$base" "$password" "$1" "$engines" "$per" "$2" "$t0" "$server_pid" \
    "$requests" "$renders" "$browser" "${driver_port:-0}" "$chromium"
  bench_server_stop
}

echo "-- round 1: all $engines engines live, $((engines * per)) services; $(bench_load)"
fleet_round live 0
echo "-- round 2: $hung of the $engines engines hung; $(bench_load)"
relay_stop
relay_start "$hung"
fleet_round hung "$hung"

# ---------------------------------------------------------------- table
python3 - "$work" "$engines" "$per" "$hung" "$n_dockerds" "$requests" <<'PY'
import json, os, sys
from benchlib import median
work, engines, per, hung, n_dockerds, requests = sys.argv[1:]
engines, per, hung = int(engines), int(per), int(hung)
def load(name):
    p = f"{work}/results/{name}.json"
    return json.load(open(p)) if os.path.exists(p) else None
reg, a, b = load("register"), load("live"), load("hung")
rows = []
def ratio(x, y):
    return f"{y / x:.2f}" if x and y is not None else ""
rows.append((f"registering {engines} engines through the API (fresh server) → all connected and reconciled",
             f"{reg['connected_s']:.1f} s", "", "report", ""))
rows.append((f"`opsdeck serve` start → every live engine connected, {per} containers each cached ({engines} live / {engines - hung} live)",
             f"{a['live_s']:.1f} s", f"{b['live_s']:.1f} s", "report", ratio(a["live_s"], b["live_s"])))
rows.append((f"same → the {hung} hung engines reported unreachable", "", f"{b['hung_s']:.1f} s", "report", ""))
for key, label in [("services_page", "GET services page, first page (offset=0&limit=100)"),
                   ("overview", "GET engines overview"),
                   ("status", "GET /api/v1/status (reference, no goal here)")]:
    x, y = a.get(key), b.get(key)
    if x is None or y is None:
        rows.append((label, "not in this build", "not in this build", "p99 < 100 ms", ""))
        continue
    goal = "report" if key == "status" else "p99 < 100 ms"
    rows.append((f"{label}, {x['bytes'] / 1024:.0f} KB ({x['shown']}), {requests} sequential: p50 / p99",
                 f"{x['p50_ms']:.1f} / {x['p99_ms']:.1f} ms", f"{y['p50_ms']:.1f} / {y['p99_ms']:.1f} ms", goal,
                 ratio(x["p99_ms"], y["p99_ms"]) + " (p99)"))
    rows.append(("same: CPU of `opsdeck serve` per request (its CPU over the loop, less its background rate)",
                 f"{x['cpu_ms']:.1f} ms", f"{y['cpu_ms']:.1f} ms", "report", ratio(x["cpu_ms"], y["cpu_ms"])))
if a.get("browser") and b.get("browser"):
    for kind in ("cached", "cold"):
        ra, rb = a["browser"][kind], b["browser"][kind]
        fa, fb = [r["first_rows_ms"] for r in ra], [r["first_rows_ms"] for r in rb]
        rows.append((f"dashboard in headless Chromium, {'assets cached' if kind == 'cached' else 'cold (HTTP cache cleared)'}: first rows painted, median (max) of {len(fa)}",
                     f"{median(fa):.0f} ({max(fa):.0f}) ms", f"{median(fb):.0f} ({max(fb):.0f}) ms", "< 1 s", ratio(median(fa), median(fb)) + " (median)"))
        da, db = [r["render_ms"] for r in ra], [r["render_ms"] for r in rb]
        rows.append((f"same: until its last rows were painted ({ra[-1]['rows']:,}: the dashboard shows up to 100 per tier until asked), median (max)",
                     f"{median(da):.0f} ({max(da):.0f}) ms", f"{median(db):.0f} ({max(db):.0f}) ms", "report", ratio(median(da), median(db)) + " (median)"))
else:
    rows.append(("dashboard in headless Chromium: first rows painted", "not run", "not run", "< 1 s", ""))
rows.append(("CPU of `opsdeck serve` without requests (15 s before the GETs: resource sampler, events)",
             f"{a['background_cpu_pct']:.1f} %", f"{b['background_cpu_pct']:.1f} %", "report", ""))
ca, cb = a["cpu"], b["cpu"]
rows.append(("CPU during the GETs and renders above: opsdeck serve / the dockerds with their containerd / the relay / the whole machine (200 % = both cores)",
             f"{ca['opsdeck']:.0f} / {ca['dockerds']:.0f} / {ca['relay']:.0f} / {ca['machine']:.0f} %",
             f"{cb['opsdeck']:.0f} / {cb['dockerds']:.0f} / {cb['relay']:.0f} / {cb['machine']:.0f} %", "report", ""))
rows.append(("RSS of `opsdeck serve` at the end of the round: VmRSS / VmHWM",
             f"{a['rss_mb']:.0f} / {a['hwm_mb']:.0f} MB", f"{b['rss_mb']:.0f} / {b['hwm_mb']:.0f} MB", "< 300 MB",
             ratio(a["hwm_mb"], b["hwm_mb"]) + " (VmHWM)"))
print()
print(f"{engines} engines = socket relays round-robin over {n_dockerds} private dockerds; {per} containers each = {engines * per:,} containers and services; "
      f"load average at the rounds' starts {a['load']} / {b['load']}, now {open('/proc/loadavg').read().split()[0]}")
print()
print(f"| figure | all {engines} live | {hung} hung | goal | hung / live (goal ≤ 1.10) |")
print("|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
if b.get("hung_error"):
    print(f"\nthe hung engines' reason: {b['hung_error']}")
PY
