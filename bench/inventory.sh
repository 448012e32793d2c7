#!/usr/bin/env bash
# make bench, inventory part (called by bench/run.sh): Opsdeck over one
# engine with many containers, each figure next to its goal from the issue.
#   - GET /api/v1/services (the services page's data) over N services: p50 / p99
#   - memory of the state cache: server RSS before the engine is registered,
#     and after it is connected, its N containers cached and N services imported
#   - restart of one container through the Opsdeck API vs `docker restart`,
#     alternating in one run, same container, same stop timeout (1 s)
#
# A private dockerd (no bridge, no iptables changes, own socket and data root
# in /tmp/odk-bench-dockerd) runs N busybox containers: BENCH_PROJECTS compose
# projects (default N/10) of services labelled as `docker compose` would. Each
# container is a shell that exits at once on SIGTERM, so a restart measures
# the engine and Opsdeck, not a stop timeout.
#
# Environment: BENCH_CONTAINERS (default 500), BENCH_REQUESTS (default 300),
# BENCH_RESTARTS (default 20 of each), OPSDECK_BIN (default: the release build).
# Needs: root, dockerd + docker CLI (docker.io), /bin/busybox (busybox-static),
# python3, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${BENCH_CONTAINERS:-500}
requests=${BENCH_REQUESTS:-300}
restarts=${BENCH_RESTARTS:-20}
per_project=10
projects=${BENCH_PROJECTS:-$(( (n + per_project - 1) / per_project ))}
bin=${OPSDECK_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/opsdeck/target}/release/opsdeck}
image=opsdeck-bench/busybox:1
password="bench-orchid-compass-64"

bench_name=inventory
# shellcheck source=bench/lib.sh
. bench/lib.sh
[ "$(id -u)" -eq 0 ] || die "needs root (it starts a private dockerd)"
for tool in dockerd docker python3 curl setsid; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install docker.io busybox-static python3 curl, or make test-deps)"
done
[ -x /bin/busybox ] || die "/bin/busybox is missing: apt-get install busybox-static"
[ -x "$bin" ] || die "no opsdeck binary at $bin (make bench builds it; or set OPSDECK_BIN)"

engine_dir=/tmp/odk-bench-dockerd
host="unix://$engine_dir/docker.sock"
work=$(mktemp -d /tmp/opsdeck-bench-inv.XXXXXX)
chmod 755 "$work"
port=$(bench_free_port)
base="http://127.0.0.1:$port"
dockerd_pid=""
server_pid=""

docker_cli() {
  env -u DOCKER_HOST -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY DOCKER_CONFIG="$engine_dir/cli-config" \
    docker -H "$host" "$@"
}
unmount_leftovers() {
  local m
  while read -r m; do
    umount --lazy "$m" 2>/dev/null || true
  done < <(awk -v d="$engine_dir" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    mapfile -t ids < <(docker_cli ps --all --quiet 2>/dev/null || true)
    if [ ${#ids[@]} -gt 0 ]; then
      printf '%s\n' "${ids[@]}" | xargs -r -n 50 env -u DOCKER_HOST DOCKER_CONFIG="$engine_dir/cli-config" \
        docker -H "$host" rm --force >/dev/null 2>&1 || true
    fi
    kill -TERM "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
      kill -0 "$dockerd_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
  fi
  unmount_leftovers
  rm -rf "$engine_dir" "$work"
  exit "$status"
}

if [ -f "$engine_dir/docker.pid" ]; then
  old=$(cat "$engine_dir/docker.pid" 2>/dev/null || true)
  if [ -n "$old" ] && tr '\0' ' ' <"/proc/$old/cmdline" 2>/dev/null | grep -q "$engine_dir"; then
    die "another inventory bench engine runs (pid $old)"
  fi
fi
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
unmount_leftovers
rm -rf "$engine_dir"
mkdir -p "$engine_dir"

echo "== inventory bench: $n containers in $projects compose projects on one private engine"
setsid dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
  -H "$host" --data-root "$engine_dir/data" --exec-root "$engine_dir/exec" \
  --pidfile "$engine_dir/docker.pid" </dev/null >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for i in $(seq 1 300); do
  docker_cli version --format '{{.Server.Version}}' >/dev/null 2>&1 && break
  kill -0 "$dockerd_pid" 2>/dev/null || { tail -n 20 "$work/dockerd.log" >&2; die "dockerd exited"; }
  [ "$i" -lt 300 ] || die "dockerd did not answer within 60 s"
  sleep 0.2
done
engine_version=$(docker_cli version --format '{{.Server.Version}}')

ctx="$engine_dir/build"
mkdir -p "$ctx"
cp /bin/busybox "$ctx/busybox"
printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' 'RUN ["/bin/busybox", "--install", "-s", "/bin"]' >"$ctx/Dockerfile"
if ! out=$(DOCKER_BUILDKIT=0 docker_cli build --quiet --network=none --tag "$image" "$ctx" 2>&1); then
  echo "$out" >&2
  die "building $image failed"
fi

# The containers: pPP-sS in project bench-pPP; sS (S > 0) depends on s0, and
# s5..s9 also on s1 (compose v2's depends_on label).
specs="$work/containers.txt"
: >"$specs"
count=0
for ((p = 0; p < projects && count < n; p++)); do
  for ((s = 0; s < per_project && count < n; s++)); do
    printf 'p%03d %d\n' "$p" "$s" >>"$specs"
    count=$((count + 1))
  done
done
create_one() {  # args: project-tag service-index
  local p=$1 s=$2 deps=""
  if [ "$s" -gt 0 ]; then deps="$p-s0:service_started:false"; fi
  if [ "$s" -ge 5 ]; then deps="$deps,$p-s1:service_started:false"; fi
  local labels=(--label "com.docker.compose.project=bench-$p" --label "com.docker.compose.service=$p-s$s"
    --label "com.docker.compose.container-number=1" --label "com.docker.compose.oneoff=False")
  [ -z "$deps" ] || labels+=(--label "com.docker.compose.depends_on=$deps")
  env -u DOCKER_HOST -u DOCKER_CONTEXT DOCKER_CONFIG="$ENGINE_DIR/cli-config" docker -H "$HOST" \
    run --detach --network host --name "bench-$p-s$s-1" "${labels[@]}" "$IMAGE" \
    sh -c 'trap "exit 0" TERM; sleep 2147483647 & wait $!' >/dev/null
}
export -f create_one
t0=$(date +%s)
ENGINE_DIR="$engine_dir" HOST="$host" IMAGE="$image" \
  xargs -a "$specs" -P 4 -L 1 bash -c 'create_one "$0" "$1"'
running=$(docker_cli ps --quiet | wc -l)
[ "$running" -eq "$n" ] || die "$running of $n containers run"
echo "   $n containers running after $(( $(date +%s) - t0 )) s"

echo "   starting Opsdeck ($bin)"
# DOCKER_HOST=none: no default engine; the bench registers it through the API.
DOCKER_HOST=none OPSDECK_DATA_DIR="$work/data" OPSDECK_LISTEN="127.0.0.1:$port" \
  OPSDECK_ADMIN_PASSWORD="$password" OPSDECK_LOG=warn \
  "$bin" serve >"$work/opsdeck.log" 2>&1 &
server_pid=$!
for i in $(seq 1 600); do
  curl -fs "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/opsdeck.log" >&2; die "opsdeck exited"; }
  [ "$i" -lt 600 ] || die "opsdeck not ready within 60 s"
  sleep 0.1
done

python3 - "$base" "$password" "$host" "$engine_dir" "$server_pid" "$n" "$requests" "$restarts" "$engine_version" "$(nproc)" <<'PY'
import http.client, json, math, os, statistics, subprocess, sys, time

from opsdeck_api import Api

base, password, host, engine_dir, pid, n, requests, restarts, version, cores = sys.argv[1:]
n, requests, restarts, pid = int(n), int(requests), int(restarts), int(pid)
addr = base.removeprefix("http://")

def rss_mb():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")

def wait(what, check, timeout=600):
    t = time.monotonic()
    last = None
    while time.monotonic() - t < timeout:
        ok, last = check()
        if ok:
            return
        time.sleep(0.5)
    sys.exit(f"{what}: not within {timeout} s (last: {last})")

api = Api(base, password, name="inventory")
api.call("GET", "/api/v1/services")
time.sleep(3)
rss_before = rss_mb()

t0 = time.monotonic()
engine = json.loads(api.call("POST", "/api/v1/engines", {"name": "bench", "endpoint": host}))
def connected():
    e = next(e for e in json.loads(api.call("GET", "/api/v1/engines")) if e["name"] == "bench")
    return e["state"] == "connected" and e["containers"] >= n, (e["state"], e["containers"], e["last_error"])
wait("engine connected with every container cached", connected)
connect_s = time.monotonic() - t0

# One compose file per project, as generated for the containers.
projects = {}
for c in json.loads(api.call("GET", f"/api/v1/engines/{engine['id']}/containers")):
    if c["compose_project"]:
        projects.setdefault(c["compose_project"], []).append(c["compose_service"])
t0 = time.monotonic()
for project, services in sorted(projects.items()):
    lines = [f"name: {project}", "services:"]
    for s in sorted(services):
        lines += [f"  {s}:", "    image: opsdeck-bench/busybox:1"]
        idx = int(s.rsplit("-s", 1)[1])
        p = s.rsplit("-s", 1)[0]
        deps = ([f"{p}-s0"] if idx > 0 else []) + ([f"{p}-s1"] if idx >= 5 else [])
        if deps:
            lines.append(f"    depends_on: [{', '.join(deps)}]")
    api.call("POST", "/api/v1/inventory/compose",
             {"content": "\n".join(lines) + "\n", "project": project, "engine": "bench", "apply": True})
import_s = time.monotonic() - t0
def all_running():
    rows = json.loads(api.call("GET", "/api/v1/services"))
    up = sum(1 for r in rows if r["run_state"] == "running")
    return len(rows) == n and up == n, f"{up} running of {len(rows)}"
wait("every service running", all_running)
time.sleep(3)
rss_after = rss_mb()

# GET /api/v1/services: sequential, one keep-alive connection.
size = len(api.call("GET", "/api/v1/services"))
for _ in range(10):
    api.call("GET", "/api/v1/services")
lat = []
for _ in range(requests):
    t = time.perf_counter()
    api.call("GET", "/api/v1/services")
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
def pct(p):  # nearest rank
    return lat[max(0, math.ceil(p / 100 * len(lat)) - 1)]
p50, p99 = pct(50), pct(99)

# Restart of one container: the API vs the docker CLI, alternating.
rows = json.loads(api.call("GET", "/api/v1/services"))
target = next(r for r in rows if r["service"]["name"] == "p000-s9")
sid, container = target["service"]["id"], target["containers"][0]["name"]
env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
env["DOCKER_CONFIG"] = f"{engine_dir}/cli-config"
def via_api():
    t = time.perf_counter()
    rec = json.loads(api.call("POST", f"/api/v1/services/{sid}/actions", {"action": "restart", "timeout_secs": 1}))
    d = time.perf_counter() - t
    if rec["outcome"] != "succeeded":
        sys.exit(f"API restart failed: {rec}")
    return d * 1000
def via_cli():
    t = time.perf_counter()
    subprocess.run(["docker", "-H", host, "restart", "-t", "1", container], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000
via_api(); via_cli()  # warm-up
api_ms, cli_ms = [], []
for i in range(restarts):
    if i % 2 == 0:
        api_ms.append(via_api()); cli_ms.append(via_cli())
    else:
        cli_ms.append(via_cli()); api_ms.append(via_api())
api_med, cli_med = statistics.median(api_ms), statistics.median(cli_ms)
ratio = api_med / cli_med

print()
print(f"engine {version}, {cores} cores; {n} containers / services in {len(projects)} compose projects")
print()
print("| figure | measured | goal | measured/goal |")
print("|---|---|---|---|")
print(f"| GET /api/v1/services, {n} services ({size/1024:.0f} KB), {requests} sequential: p50 / p99 | {p50:.1f} / {p99:.1f} ms (max {lat[-1]:.1f}) | p99 < 100 ms | {p99/100:.2f} |")
print(f"| server RSS before the engine / with {n} containers cached and {n} services | {rss_before:.1f} / {rss_after:.1f} MB (+{rss_after-rss_before:.1f} MB) | report | |")
print(f"| engine connect + cache of {n} containers / import of {len(projects)} compose files | {connect_s:.1f} s / {import_s:.1f} s | report | |")
print(f"| restart of one container, median of {restarts}: API / docker CLI (-t 1) | {api_med:.0f} / {cli_med:.0f} ms | ratio <= 1.1 | {ratio:.2f} (goal 1.1: {ratio/1.1:.2f}) |")
print()
print(f"restart API ms:  {' '.join(f'{x:.0f}' for x in api_ms)}")
print(f"restart CLI ms:  {' '.join(f'{x:.0f}' for x in cli_ms)}")
PY
