#!/usr/bin/env bash
# make bench, updates part (called by bench/run.sh; alone: make bench-updates):
# image updates, each figure next to its goal from the issue.
#   U. one service updated, pull excluded: Opsdeck's gated update (the
#      built-in `image-update` runbook: pull, recreate with the same
#      configuration, health gate) against the handbooks' chore
#      `docker compose pull && docker compose up -d web` followed by a 1 s
#      curl loop until the health endpoint answers; alternating, BENCH_ROUNDS
#      (5) rounds each, in one run. Before each round the next version is
#      pushed as `:latest` and pulled onto the engine (untimed: "pull
#      excluded"), so both sides only recreate and wait. Timed: from the
#      request (or the compose command) to the new version answering its
#      health endpoint (an observer polling every 20 ms), and to the end of
#      the run or the curl loop.
#   R. rollback: a broken version (no health page) pushed as `:latest`, the
#      gate set to BENCH_GATE_S (10) seconds; time from the update's step
#      start to the old version answering again, p50 and max over
#      BENCH_ROLLBACK_ROUNDS (10); goal: gate + 5 s.
#   S. discovery: BENCH_SERVICES (500) containers labelled as compose
#      services (50 projects) on one engine, from BENCH_REFS (25) distinct
#      image references in the local registry; POST /api/v1/updates/check:
#      wall time and the registry's manifest requests (its access log),
#      against the goal of one per distinct reference.
#
# The app is busybox httpd serving /health and /version.txt BENCH_APP_START_S
# (2) seconds after its container starts, with a Docker HEALTHCHECK every
# second, under a shell that exits on SIGTERM (a well-behaved process: a
# stop does not wait the 10 s grace period). Everything runs on a private dockerd (no bridge, host network,
# loopback only) and Debian's docker-registry on a loopback port.
#
# Environment: BENCH_ROUNDS, BENCH_ROLLBACK_ROUNDS, BENCH_GATE_S,
# BENCH_SERVICES, BENCH_REFS, BENCH_APP_START_S, BENCH_PARTS (default
# "U R S"), OPSDECK_BIN (default: the release build), OPSDECK_DOCKER_COMPOSE
# (default: the Compose v2 binary scripts/install-test-deps.sh installs).
# Needs: root, python3, curl, dockerd + docker CLI, /bin/busybox,
# docker-registry, docker compose v2.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${BENCH_ROUNDS:-5}
rb_rounds=${BENCH_ROLLBACK_ROUNDS:-10}
gate_s=${BENCH_GATE_S:-10}
services=${BENCH_SERVICES:-500}
refs=${BENCH_REFS:-25}
app_start=${BENCH_APP_START_S:-2}
parts=${BENCH_PARTS:-U R S}
image=opsdeck-bench/busybox:1
password="bench-orchid-compass-64"
engine_dir=/tmp/odk-bench-up-dockerd
bench_name=updates
# shellcheck source=bench/lib.sh
. bench/lib.sh
bin=${OPSDECK_BIN:-$(bench_default_bin)}
compose_bin=${OPSDECK_DOCKER_COMPOSE:-$HOME/.cache/opsdeck/tools/bin/docker-compose}

bench_need "apt-get install python3 curl docker-registry, or make test-deps" python3 curl docker-registry
bench_engine_needs "the updates bench needs root (it starts a private dockerd)"
[ -x "$bin" ] || die "no opsdeck binary at $bin (make bench builds it; or set OPSDECK_BIN)"
[ -x "$compose_bin" ] || die "no docker compose v2 at $compose_bin (scripts/install-test-deps.sh installs it; or set OPSDECK_DOCKER_COMPOSE)"

work=$(mktemp -d /tmp/opsdeck-bench-up.XXXXXX)
chmod 755 "$work"
port=$(bench_free_port)
base="http://127.0.0.1:$port"
reg_port=$(bench_free_port)
reg="127.0.0.1:$reg_port"
reg_pid=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  bench_server_stop
  bench_dockerd_stop
  [ -z "$reg_pid" ] || { kill "$reg_pid" 2>/dev/null; wait "$reg_pid" 2>/dev/null; } || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== updates bench: $(bench_machine)"
bench_dockerd_start

# The registry, its access log kept for part S.
mkdir -p "$work/registry"
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $work/registry
  delete:
    enabled: true
http:
  addr: $reg
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for i in $(seq 1 200); do
  curl -fs "http://$reg/v2/" >/dev/null 2>&1 && break
  kill -0 "$reg_pid" 2>/dev/null || { cat "$work/registry.log" >&2; die "docker-registry exited"; }
  [ "$i" -lt 200 ] || die "docker-registry did not answer within 20 s"
  sleep 0.1
done

# build_app TAG VERSION BROKEN(0|1): the app FROM the busybox image, pushed.
build_app() {
  local tag=$1 version=$2 broken=$3 ctx="$work/app-$2"
  mkdir -p "$ctx"
  printf '%s\n' "FROM $image" \
    "RUN mkdir -p /www && echo $version >/www/version.txt$([ "$broken" = 1 ] || echo ' && echo ok >/www/health.ok')" \
    "ENV PORT=8080 START=$app_start" \
    "LABEL version=$version" \
    'HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD wget -q -O /dev/null http://127.0.0.1:$PORT/health || exit 1' \
    'CMD ["sh", "-c", "trap \"exit 0\" TERM; sleep $START & wait; [ -f /www/health.ok ] && cp /www/health.ok /www/health; httpd -f -p 127.0.0.1:$PORT -h /www & wait"]' \
    >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker_cli build --quiet --network=none --tag "$reg/bench/app:$tag" "$ctx" >/dev/null
  docker_cli push "$reg/bench/app:$tag" >/dev/null
}
for v in v1 v2 v3; do build_app "$v" "$v" "$([ "$v" = v3 ] && echo 1 || echo 0)"; done

app_port=$(bench_free_port)
mkdir -p "$work/up"
cat >"$work/up/compose.yaml" <<YML
name: up
services:
  web:
    image: $reg/bench/app:latest
    network_mode: host
    restart: unless-stopped
    environment:
      PORT: "$app_port"
YML
compose() {
  env -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY DOCKER_HOST="$host" DOCKER_CONFIG="$engine_dir/cli-config" \
    "$compose_bin" --project-directory "$work/up" -f "$work/up/compose.yaml" "$@"
}
# push_latest V: V becomes :latest in the registry and on the engine.
push_latest() {
  docker_cli tag "$reg/bench/app:$1" "$reg/bench/app:latest"
  docker_cli push "$reg/bench/app:latest" >/dev/null
}
push_latest v1
compose up -d --quiet-pull web >/dev/null 2>&1

data="$work/data"
bench_server_start "$data"
export BENCH_COMPOSE="$compose_bin" BENCH_ENGINE_DIR="$engine_dir" BENCH_HOST="$host" BENCH_REG="$reg"
python3 - "$base" "$password" "$app_port" "$rounds" "$rb_rounds" "$gate_s" "$services" "$refs" "$parts" "$work" "$engine_version" <<'PY'
import http.client, json, os, re, subprocess, sys, threading, time
from benchlib import *
base, password, app_port, rounds, rb_rounds, gate_s, services, refs, parts, work, engine_version = sys.argv[1:]
rounds, rb_rounds, gate_s, services, refs = int(rounds), int(rb_rounds), int(gate_s), int(services), int(refs)
parts = parts.split()
api = Api(base, password, name="updates", hint404=" (a build from before the image updates?)")
host, reg, engine_dir = os.environ["BENCH_HOST"], os.environ["BENCH_REG"], os.environ["BENCH_ENGINE_DIR"]
env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY")}
env["DOCKER_CONFIG"] = f"{engine_dir}/cli-config"

def stats(values):
    v = sorted(values)
    return {"p50": median(v), "p99": pct(v, 99), "max": v[-1], "min": v[0]}

def parse_ts(s):
    from datetime import datetime
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

def bench_load():
    return "load average " + open("/proc/loadavg").read().split()[0]

def docker(*args):
    return subprocess.run(["docker", "-H", host, *args], env=env, check=True, capture_output=True, text=True).stdout

def compose(*args):
    e = dict(env, DOCKER_HOST=host)
    return subprocess.run([os.environ["BENCH_COMPOSE"], "--project-directory", f"{work}/up", "-f", f"{work}/up/compose.yaml", *args],
                          env=e, check=True, capture_output=True, text=True)

def get(path):
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(app_port), timeout=1)
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode().strip()
    except OSError:
        return None, None

def wait(what, check, timeout=180, every=0.1):
    t = time.monotonic()
    while True:
        ok, last = check()
        if ok:
            return
        if time.monotonic() - t > timeout:
            sys.exit(f"bench/updates: {what}: not within {timeout} s (last: {last})")
        time.sleep(every)

class Observer:
    """Polls every 20 ms until `version` answers /version.txt and /health is 200."""
    def __init__(self, version):
        self.version, self.at, self.stop = version, None, False
        self.t = threading.Thread(target=self.loop)
        self.t.start()
    def loop(self):
        while not self.stop:
            if get("/version.txt") == (200, self.version) and get("/health")[0] == 200:
                self.at = time.time()
                return
            time.sleep(0.02)
    def done(self, timeout=60):
        self.t.join(timeout=timeout)
        self.stop = True
        self.t.join()
        return self.at

def push_latest(v):
    docker("tag", f"{reg}/bench/app:{v}", f"{reg}/bench/app:latest")
    docker("push", f"{reg}/bench/app:latest")

api.json("POST", "/api/v1/engines", {"name": "bench", "endpoint": host})
def connected():
    e = next(e for e in api.json("GET", "/api/v1/engines") if e["name"] == "bench")
    return e["state"] == "connected" and e["containers"] >= 1, (e["state"], e["containers"], e["last_error"])
wait("engine connected", connected, every=0.5)
api.json("POST", "/api/v1/inventory/compose", {"content": open(f"{work}/up/compose.yaml").read(),
                                               "project": "up", "engine": "bench", "apply": True, "checks": []})
def row():
    return next((r for r in api.json("GET", "/api/v1/services") if r["service"]["name"] == "web"), None)
wait("service imported and running", lambda: ((r := row()) is not None and r["run_state"] == "running", r and r["run_state"]), every=0.5)
svc = row()["service"]
api.json("POST", "/api/v1/checks", {"service_id": svc["id"], "name": "health", "interval_s": 60, "timeout_ms": 2000,
                                    "spec": {"kind": "http", "url": f"http://127.0.0.1:{app_port}/health"}})
settings = api.json("GET", f"/api/v1/services/{svc['id']}/update-settings")
runbook = next(r for r in api.json("GET", "/api/v1/runbooks") if r["name"] == "image-update")
wait("v1 answers", lambda: (get("/version.txt") == (200, "v1"), get("/version.txt")), timeout=60)

def run_update(reason):
    """Queues image-update for web; returns (request time, run id)."""
    t0 = time.time()
    run = api.json("POST", f"/api/v1/runbooks/{runbook['id']}/runs", {"params": {"service": "web", "to": ""}, "reason": reason})
    return t0, run["id"]

def finished(run_id, timeout=300):
    t = time.monotonic()
    while True:
        r = api.json("GET", f"/api/v1/runs/{run_id}")
        if r["status"] in ("succeeded", "failed", "cancelled", "interrupted"):
            return r
        if time.monotonic() - t > timeout:
            sys.exit(f"bench/updates: run {run_id} not finished within {timeout} s: {r['status']}")
        time.sleep(0.05)

results = {"engine": engine_version}
if "U" in parts:
    api.json("PUT", f"/api/v1/services/{svc['id']}/update-settings", dict(settings, gate_seconds=120))
    print(f"   U: one service, pull excluded, {rounds} rounds each, alternating; app ready {os.environ.get('BENCH_APP_START_S', '2')} s after start; {bench_load()}")
    od, cp = [], []
    version = "v1"
    for i in range(rounds * 2):
        version = "v2" if version == "v1" else "v1"
        push_latest(version)
        docker("pull", f"{reg}/bench/app:latest")  # pull excluded, for both
        obs = Observer(version)
        if i % 2 == 0:
            t0, run_id = run_update("bench")
            r = finished(run_id)
            t1 = time.time()
            if r["status"] != "succeeded":
                sys.exit(f"bench/updates: the update run {run_id} ended {r['status']}")
            healthy = obs.done()
            od.append({"healthy_ms": (healthy - t0) * 1000, "total_ms": (t1 - t0) * 1000})
        else:
            t0 = time.time()
            compose("up", "-d", "web")
            while get("/health")[0] != 200:
                time.sleep(1)
            t1 = time.time()
            healthy = obs.done()
            cp.append({"healthy_ms": (healthy - t0) * 1000, "total_ms": (t1 - t0) * 1000})
        wait(f"{version} answers", lambda: (get("/version.txt") == (200, version), get("/version.txt")), timeout=60)
    o, c = stats([r["total_ms"] for r in od]), stats([r["total_ms"] for r in cp])
    oh, ch = stats([r["healthy_ms"] for r in od]), stats([r["healthy_ms"] for r in cp])
    results["update"] = {"opsdeck": od, "compose": cp}
    print(f"      done (run finished / curl loop ended), median: Opsdeck {o['p50']:.0f} ms, compose + curl {c['p50']:.0f} ms: ratio {o['p50'] / c['p50']:.2f} (goal ≤ 1.1)")
    print(f"      new version answering, median: Opsdeck {oh['p50']:.0f} ms, compose {ch['p50']:.0f} ms: ratio {oh['p50'] / ch['p50']:.2f}")
    print(f"      Opsdeck totals: {[round(r['total_ms']) for r in od]}; compose: {[round(r['total_ms']) for r in cp]}")

if "R" in parts:
    api.json("PUT", f"/api/v1/services/{svc['id']}/update-settings", dict(settings, gate_seconds=gate_s))
    good = get("/version.txt")[1]
    print(f"   R: rollback of a broken version, gate {gate_s} s, {rb_rounds} rounds; {bench_load()}")
    push_latest("v3")
    times = []
    for i in range(rb_rounds):
        docker("pull", f"{reg}/bench/app:latest")
        t0, run_id = run_update("bench rollback")
        # the old version stops answering once the new container replaced it
        wait("the old version replaced", lambda: (get("/version.txt")[1] != good, get("/version.txt")), timeout=120, every=0.02)
        obs = Observer(good)
        r = finished(run_id)
        back = obs.done(timeout=120)
        if r["status"] != "failed" or back is None:
            sys.exit(f"bench/updates: round {i}: the run ended {r['status']}, old version back: {back is not None}")
        step = next(s for s in r["steps"] if s.get("kind") == "image" or s.get("name") == "update")
        started = parse_ts(step["started_at"])
        times.append((back - started) * 1000)
    s = stats(times)
    results["rollback_ms"] = times
    print(f"      step start → old version healthy again: p50 {s['p50'] / 1000:.1f} s, max {s['max'] / 1000:.1f} s; goal ≤ gate + 5 s = {gate_s + 5} s: max/goal {s['max'] / 1000 / (gate_s + 5):.2f}")

if "S" in parts:
    print(f"   S: discovery, {services} services on one engine from {refs} distinct references; {bench_load()}")
    for k in range(refs):
        docker("tag", f"{reg}/bench/app:v1", f"{reg}/bench/app:r{k}")
        docker("push", f"{reg}/bench/app:r{k}")
    projects = 50
    per = max(1, services // projects)
    names = []
    for p in range(projects):
        for s in range(per):
            n = p * per + s
            name = f"bench-{p}-s{s}"
            docker("run", "-d", "--network", "none", "--no-healthcheck", "--name", name,
                   "--label", f"com.docker.compose.project=disc-{p}", "--label", f"com.docker.compose.service=p{p}s{s}",
                   "--label", "com.docker.compose.container-number=1", "--label", "com.docker.compose.oneoff=False",
                   "--entrypoint", "sleep", f"{reg}/bench/app:r{n % refs}", "3600")
            names.append(name)
    wait("containers seen", lambda: ((e := next(e for e in api.json("GET", "/api/v1/engines") if e["name"] == "bench"))["containers"] >= len(names) + 1, e["containers"]), every=0.5)
    for p in range(projects):
        api.json("POST", "/api/v1/inventory/discovered", {"engine": "bench", "project": f"disc-{p}", "apply": True})
    def log_lines():
        return open(f"{work}/registry.log").read().splitlines()
    # Background discovery (a new engine is due at once) must be over: wait
    # until the registry has been quiet for 3 s.
    n, quiet = len(log_lines()), time.time()
    while time.time() - quiet < 3:
        time.sleep(0.5)
        if len(log_lines()) != n:
            n, quiet = len(log_lines()), time.time()
    before = len(log_lines())
    t0 = time.time()
    statuses = api.json("POST", "/api/v1/updates/check", {})
    wall = time.time() - t0
    time.sleep(1)
    # Access-log lines only ("HEAD /v2/… HTTP/1.1"): the registry also logs
    # each request a second time in its own format.
    new = [l for l in log_lines()[before:] if "/manifests/" in l and re.search(r'"(HEAD|GET) /v2/', l)]
    kinds = {}
    for l in new:
        key = re.search(r'"(HEAD|GET) ', l).group(1)
        kinds[key] = kinds.get(key, 0) + 1
    refs_asked = len({re.search(r'/manifests/([^ "?]+)', l).group(1) for l in new if re.search(r'/manifests/([^ "?]+)', l)})
    requests = len(new)
    checked = [s for s in statuses if s["image_ref"].startswith(f"{reg}/bench/app:r")]
    errors = [s for s in checked if s["error"]]
    results["discovery"] = {"services": len(checked), "wall_s": wall, "manifest_requests": requests, "by_method": kinds,
                            "tags_or_digests_asked": refs_asked, "refs": refs, "errors": len(errors)}
    print(f"      {len(checked)} services checked ({len(errors)} errors) in {wall:.2f} s; registry manifest requests: {requests} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}) for {refs} distinct references, "
          f"{refs_asked} distinct tags/digests asked (goal: one per reference, not per container; ratio {requests / refs:.2f})")

save(work, "updates", results)
PY
