#!/usr/bin/env bash
# make bench, logs part (called by bench/run.sh; alone: make bench-logs):
# a regex search over BENCH_LOG_CONTAINERS (10) services' logs of
# BENCH_LOG_MB (1024) MiB each on a private engine, Opsdeck's
# `POST /api/v1/logs/search` against the handbook's loop
#   for c in …; do docker logs $c 2>&1 | grep -E '<regex>'; done
# side by side, alternating, BENCH_ROUNDS (3) rounds each, in one run.
# Timed: request → last byte of the answer (Opsdeck: its `end` event),
# command start → exit (the loop). Both find the same lines (checked).
# Peak RSS of `opsdeck serve` during its searches (sampled every 20 ms from
# /proc) is reported above its idle RSS; goal < 100 MB above idle. Goal for
# time: Opsdeck ≤ 0.5 × the loop. CPU seconds per side say where the time
# goes: the engine's (dockerd) and the client's (opsdeck serve; the docker
# CLI and grep). The engine here is local, so Opsdeck reads its json-file
# logs itself (server/src/docker/logfile.rs); through the API it would not.
#
# Each container writes its log once with busybox awk (an access-log-like
# line of ~100 bytes; every 100,000th an `ERROR … upstream timeout`) and
# then sleeps; the engine's json-file driver stores it. Writing 10 GiB takes
# minutes: BENCH_LOG_MB=64 gives a quick run.
#
# Environment: BENCH_LOG_CONTAINERS, BENCH_LOG_MB, BENCH_ROUNDS, OPSDECK_BIN
# (default: the release build). Needs: root, python3, curl, dockerd +
# docker CLI, /bin/busybox.
set -euo pipefail
cd "$(dirname "$0")/.."

containers=${BENCH_LOG_CONTAINERS:-10}
mb=${BENCH_LOG_MB:-1024}
rounds=${BENCH_ROUNDS:-3}
image=opsdeck-bench/busybox:1
password="bench-orchid-compass-64"
engine_dir=/tmp/odk-bench-logs-dockerd
bench_name=logs
# shellcheck source=bench/lib.sh
. bench/lib.sh
bin=${OPSDECK_BIN:-$(bench_default_bin)}

bench_need "apt-get install python3 curl, or make test-deps" python3 curl
bench_engine_needs "the logs bench needs root (it starts a private dockerd)"
[ -x "$bin" ] || die "no opsdeck binary at $bin (make bench builds it; or set OPSDECK_BIN)"

work=$(mktemp -d /tmp/opsdeck-bench-logs.XXXXXX)
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

echo "== logs bench: $(bench_machine)"
bench_dockerd_start

lines=$(( mb * 1024 * 1024 / 100 ))
echo "   writing $containers logs of $mb MiB ($lines lines each)…"
start=$(date +%s)
for i in $(seq 1 "$containers"); do
  docker_cli run -d --name "logs-$i" --network none \
    --label com.docker.compose.project=logbench --label "com.docker.compose.service=app$i" \
    --label com.docker.compose.container-number=1 --label com.docker.compose.oneoff=False \
    "$image" sh -c "awk -v n=$lines -v c=$i 'BEGIN { for (k = 1; k <= n; k++) {
        if (k % 100000 == 0) printf \"2026-12-07 08:00:00 ERROR app%d request %09d failed: upstream timeout after 30000 ms\\n\", c, k;
        else printf \"2026-12-07 08:00:00 INFO app%d GET /api/v1/items/%09d 200 12ms ua=Mozilla/5.0 rid=%08x\\n\", c, k, k } }';
      echo logbench-done; exec sleep 86400" >/dev/null
done
for i in $(seq 1 "$containers"); do
  for _ in $(seq 1 7200); do
    docker_cli logs --tail 1 "logs-$i" 2>/dev/null | grep -q logbench-done && break
    sleep 0.5
  done
done
echo "   written in $(( $(date +%s) - start )) s; json-file size: $(du -sh "$engine_dir/data/containers" | cut -f1)"

data="$work/data"
bench_server_start "$data"
BENCH_HOST="$host" BENCH_ENGINE_DIR="$engine_dir" python3 - "$base" "$password" "$containers" "$rounds" "$server_pid" "$work" "$dockerd_pid" <<'PY'
import json, os, resource, subprocess, sys, threading, time, urllib.request
from benchlib import *
base, password, containers, rounds, server_pid, work, dockerd_pid = sys.argv[1:]
dockerd_pid = int(dockerd_pid)
containers, rounds = int(containers), int(rounds)
api = Api(base, password, name="logs", hint404=" (a build from before the log search?)")
host, engine_dir = os.environ["BENCH_HOST"], os.environ["BENCH_ENGINE_DIR"]
env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY")}
env["DOCKER_CONFIG"] = f"{engine_dir}/cli-config"
regex = r"ERROR app[0-9]+ request [0-9]+ failed: upstream timeout"

def rss_kb(pid):
    return status_kb(pid)

def bench_load():
    return "load average " + open("/proc/loadavg").read().split()[0]

class Peak:
    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, False
        self.t = threading.Thread(target=self.loop)
        self.t.start()
    def loop(self):
        while not self.stop:
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.02)
    def done(self):
        self.stop = True
        self.t.join()
        return self.peak

api.json("POST", "/api/v1/engines", {"name": "bench", "endpoint": host})
for _ in range(600):
    e = next(e for e in api.json("GET", "/api/v1/engines") if e["name"] == "bench")
    if e["state"] == "connected" and e["containers"] >= containers:
        break
    time.sleep(0.2)
api.json("POST", "/api/v1/inventory/discovered", {"engine": "bench", "project": "logbench", "apply": True})
services = [r for r in api.json("GET", "/api/v1/services") if r["service"].get("compose_project") == "logbench"]
assert len(services) == containers, f"{len(services)} services imported"
names = [f"logs-{i}" for i in range(1, containers + 1)]

def children_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

def loop():
    t0, e0, c0 = time.time(), cpu_ticks(dockerd_pid), children_s()
    out = subprocess.run(["bash", "-c", 'for c in "$@"; do docker -H "$H" logs "$c" 2>&1 | grep -E "$R"; done', "loop", *names],
                         env=dict(env, H=host, R=regex), check=False, capture_output=True, text=True).stdout
    cpu = {"engine": (cpu_ticks(dockerd_pid) - e0) / HZ, "client": children_s() - c0}
    return time.time() - t0, sorted(l for l in out.splitlines() if l), cpu

def opsdeck():
    body = json.dumps({"projects": ["logbench"], "query": regex, "regex": True, "since": "7d", "limit": 10000}).encode()
    req = urllib.request.Request(base + "/api/v1/logs/search", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Cookie": api.cookie,
                                          "Origin": base, "X-Requested-With": "bench"})
    peak = Peak(int(server_pid))
    t0, e0, o0 = time.time(), cpu_ticks(dockerd_pid), cpu_ticks(int(server_pid))
    hits, end = [], None
    with urllib.request.urlopen(req, timeout=3600) as r:
        for raw in r:
            ev = json.loads(raw)
            if ev["type"] == "line" and ev["hit"]:
                hits.append(ev["line"])
            elif ev["type"] == "end":
                end = ev
    t = time.time() - t0
    cpu = {"engine": (cpu_ticks(dockerd_pid) - e0) / HZ, "client": (cpu_ticks(int(server_pid)) - o0) / HZ}
    return t, sorted(hits), end, peak.done(), cpu

time.sleep(2)
idle = rss_kb(int(server_pid))
print(f"   search {regex!r} over {containers} services; opsdeck serve idle RSS {idle / 1024:.0f} MB; {bench_load()}")
ot, lt, peaks = [], [], []
for i in range(rounds):
    t, hits, end, peak, ocpu = opsdeck()
    if end is None or end["errors"] or end["truncated"]:
        sys.exit(f"bench/logs: the search did not end cleanly: {end}")
    t2, lines, lcpu = loop()
    if hits != lines:
        sys.exit(f"bench/logs: Opsdeck found {len(hits)} lines, the loop {len(lines)}")
    ot.append(t); lt.append(t2); peaks.append(peak)
    print(f"      round {i + 1}: Opsdeck {t:.2f} s, loop {t2:.2f} s ({len(hits)} hits each); peak RSS {peak / 1024:.0f} MB")
    print(f"         CPU s: Opsdeck side: engine {ocpu['engine']:.1f}, opsdeck {ocpu['client']:.1f}; "
          f"loop side: engine {lcpu['engine']:.1f}, docker CLI + grep {lcpu['client']:.1f}")
o, l = median(ot), median(lt)
above = (max(peaks) - idle) / 1024
print(f"      median: Opsdeck {o:.2f} s, loop {l:.2f} s: ratio {o / l:.2f} (goal ≤ 0.5)")
print(f"      peak RSS above idle: {above:.0f} MB (goal < 100 MB)")
save(work, "logs", {"opsdeck_s": ot, "loop_s": lt, "idle_rss_kb": idle, "peak_rss_kb": peaks})
PY
