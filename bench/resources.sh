#!/usr/bin/env bash
# make bench, resources part (alone: make bench-resources): resource history
# for BENCH_CONTAINERS (500) busybox `sleep` containers on a private dockerd,
# each mapped to a service of its own, sampled every BENCH_INTERVAL (10s).
# After a warm-up minute, over BENCH_MINUTES (3) minutes: the CPU of
# `opsdeck serve` (utime + stime from /proc/<pid>/stat, percent of one core)
# and of its embedded Postgres (the postmaster and its backends) and of the
# engine's dockerd (which answers the stats calls), and the
# rows written per minute (the minute table: one row per service, engine,
# the host and each mount; the hour table gets the same batch added up),
# with the number of samples in them (containers × ticks per minute).
#
# Environment: BENCH_CONTAINERS, BENCH_INTERVAL, BENCH_MINUTES, OPSDECK_BIN
# (default: the release build).
# Needs: root, python3, curl, psql, dockerd + docker CLI, /bin/busybox.
set -euo pipefail
cd "$(dirname "$0")/.."

containers=${BENCH_CONTAINERS:-500}
interval=${BENCH_INTERVAL:-10s}
minutes=${BENCH_MINUTES:-3}
image=opsdeck-bench/busybox:1
password="bench-lantern-meadow-83"
engine_dir=/tmp/odk-bench-res-dockerd
bench_name=resources
# shellcheck source=bench/lib.sh
. bench/lib.sh
bin=${OPSDECK_BIN:-$(bench_default_bin)}

bench_need "apt-get install python3 curl postgresql-client, or make test-deps" python3 curl psql
bench_engine_needs "the resources bench needs root (it starts a private dockerd)"
[ -x "$bin" ] || die "no opsdeck binary at $bin (make bench builds it; or set OPSDECK_BIN)"

work=$(mktemp -d /tmp/opsdeck-bench-res.XXXXXX)
chmod 755 "$work"
port=$(bench_free_port)
base="http://127.0.0.1:$port"

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  bench_server_stop
  bench_dockerd_stop
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== resources bench: $(bench_machine)"
bench_dockerd_start
echo "-- starting $containers sleeping containers"
seq 1 "$containers" | xargs -P 4 -I{} sh -c \
  'env -u DOCKER_HOST docker -H "$0" run -d --network host --name "bench-res-{}" "$1" sleep 86400 >/dev/null' \
  "$host" "$image"

data="$work/data"
OPSDECK_RESOURCE_SAMPLE_INTERVAL="$interval" bench_server_start "$data"

BENCH_HOST="$host" BENCH_DOCKERD_PID="$(cat "$engine_dir/docker.pid")" python3 - "$base" "$password" "$containers" "$minutes" "$server_pid" "$data" "$work" "$interval" "$engine_version" <<'PY'
import sys, time
from benchlib import *

base, password, n, minutes, pid, data, work, interval, engine_version = sys.argv[1:]
n, minutes, pid = int(n), int(minutes), int(pid)
host = os.environ["BENCH_HOST"]

def bench_load():
    with open("/proc/loadavg") as f:
        return "load average " + f.read().split()[0]

api = Api(base, password, name="resources", hint404=" (a build from before the resource history?)")
api.json("POST", "/api/v1/engines", {"name": "bench", "endpoint": host})
for _ in range(600):
    e = next(e for e in api.json("GET", "/api/v1/engines") if e["name"] == "bench")
    if e.get("containers", 0) >= n:
        break
    time.sleep(0.1)
for i in range(1, n + 1):
    api.json("POST", "/api/v1/services", {"name": f"svc-{i}", "container_name": f"bench-res-{i}"})

def minute_rows(since, until):
    r = psql(data, f"SELECT count(*), coalesce(sum(samples), 0), count(DISTINCT bucket) FROM resource_rollups_minute "
                   f"WHERE bucket >= to_timestamp({since}) AND bucket < to_timestamp({until})")
    return [int(x) for x in r[0]]

# Warm-up: the service list is read every 30 s and a container counts from
# its second sample; start at the next whole minute after a minute.
time.sleep(60)
start = (int(time.time()) // 60 + 1) * 60
time.sleep(start - time.time())
pg = postmaster_pid(data)
dockerd = int(os.environ["BENCH_DOCKERD_PID"])
t0, c0, p0, d0 = time.time(), cpu_ticks(pid), tree_ticks(pg), cpu_ticks(dockerd)
time.sleep(minutes * 60)
t1, c1, p1, d1 = time.time(), cpu_ticks(pid), tree_ticks(pg), cpu_ticks(dockerd)
end = start + minutes * 60
# The last minute is written a tick after it ends.
time.sleep(25)
rows, samples, buckets = minute_rows(start, end)
wall = t1 - t0
cpu = 100 * (c1 - c0) / HZ / wall
pgcpu = 100 * (p1 - p0) / HZ / wall
dcpu = 100 * (d1 - d0) / HZ / wall
svc_rows = int(psql(data, f"SELECT count(*) FROM resource_rollups_minute r JOIN resource_series s ON s.id = r.series_id "
                          f"WHERE s.kind = 'service' AND bucket >= to_timestamp({start}) AND bucket < to_timestamp({end})")[0][0])
print(f"   {n} containers (one service each), sampling every {interval}, engine {engine_version}; {minutes} min measured; {bench_load()}")
print(f"   opsdeck serve CPU: {cpu:.1f} % of one core; its Postgres: {pgcpu:.1f} %; dockerd (answering the stats calls): {dcpu:.1f} %")
print(f"   rows written per minute: {rows / max(buckets, 1):.0f} (minute table; {svc_rows / max(buckets, 1):.0f} of them services), "
      f"the same batch added into the hour table; {samples / max(buckets, 1):.0f} samples per minute in them")
print(f"   RSS of opsdeck serve: {status_kb(pid) // 1024} MiB")
save(work, "resources", {"containers": n, "cpu_pct": cpu, "pg_cpu_pct": pgcpu, "dockerd_cpu_pct": dcpu, "rows_per_min": rows / max(buckets, 1),
                         "samples_per_min": samples / max(buckets, 1)})
PY
