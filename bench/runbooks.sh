#!/usr/bin/env bash
# make bench, runbooks part (called by bench/run.sh): the run engine, each
# figure next to its goal from the issue.
#   Q. BENCH_RUNS (1,000) runs of a 3-step runbook (sleep 10ms, notify,
#      sleep 10ms; allow_parallel) submitted with POST
#      /api/v1/runbooks/{id}/runs by BENCH_CLIENTS (50) concurrent clients,
#      first as fast as they go (burst: the queue), then paced at
#      BENCH_PACED_RATE (25) runs/s: throughput (runs completed per second)
#      and the time from sending the request to the start of the run's first
#      step (the client's send time against run_steps.started_at of step 0;
#      both clocks are this machine's), p50 / p95 / p99 / max; also
#      runs.created_at → first step start, the POST's answer time, CPU
#   D. the handbooks' "Service down" procedure in bash (docker ps → docker
#      logs --tail 100 → docker restart → curl the health endpoint every 1 s,
#      or every 2 s, until it answers; and the MosAIc handbook's script as
#      written: restart, sleep 30, docker ps | grep) against Opsdeck's
#      built-in `service-down` runbook (status → logs → restart → wait
#      healthy → verify checks → notify), same container, alternating,
#      BENCH_ROUNDS (5) rounds each, in two scenarios:
#        crashed: the container was killed (exited); a restart is a start
#        hung:    the container runs but its health endpoint answers 404 and
#                 its PID 1 ignores SIGTERM; a restart waits the stop grace
#                 period (10 s, the default of both docker and Opsdeck)
#      The service is busybox httpd, answering BENCH_APP_START_S (2) seconds
#      after its container starts (an application's start-up time).
#
# Q runs `opsdeck serve` with no engine. D starts a private dockerd (no
# bridge, no iptables changes, own socket and data root in
# /tmp/odk-bench-rb-dockerd; containers on the host network), registers it
# with Opsdeck, imports the service from a compose file and adds an HTTP
# check on its health endpoint, so the runbook's wait_healthy step waits on
# it. Each part has its own fresh data directory (embedded Postgres).
#
# Environment: BENCH_RUNS, BENCH_CLIENTS, BENCH_PACED_RATE (0: no paced
# run), BENCH_ROUNDS, BENCH_APP_START_S, BENCH_SCENARIOS (default
# "crashed hung"), BENCH_PARTS (default "Q D"), OPSDECK_BIN (default: the
# release build).
# Needs: python3, curl, psql (postgresql-client), setsid; for D also root,
# dockerd + docker CLI (docker.io), /bin/busybox (busybox-static).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${BENCH_RUNS:-1000}
clients=${BENCH_CLIENTS:-50}
paced_rate=${BENCH_PACED_RATE:-25}
rounds=${BENCH_ROUNDS:-5}
app_start=${BENCH_APP_START_S:-2}
scenarios=${BENCH_SCENARIOS:-crashed hung}
parts=${BENCH_PARTS:-Q D}
image=opsdeck-bench/busybox:1
password="bench-orchid-compass-64"
engine_dir=/tmp/odk-bench-rb-dockerd
bench_name=runbooks
# shellcheck source=bench/lib.sh
. bench/lib.sh
bin=${OPSDECK_BIN:-$(bench_default_bin)}

bench_need "apt-get install python3 curl postgresql-client, or make test-deps" python3 curl psql setsid
[ -x "$bin" ] || die "no opsdeck binary at $bin (make bench builds it; or set OPSDECK_BIN)"
if [[ " $parts " == *" D "* ]]; then
  bench_engine_needs "part D needs root (it starts a private dockerd); BENCH_PARTS=Q skips it"
fi

work=$(mktemp -d /tmp/opsdeck-bench-rb.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/results"
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

start_server() { bench_server_start "$@"; }
stop_server() { bench_server_stop; }
load() { bench_load; }

echo "== runbooks bench: $(bench_machine)"

# ------------------------------------------------------------ Q. queued runs
if [[ " $parts " == *" Q "* ]]; then
  data="$work/q"
  start_server "$data"
  echo "   Q: $runs runs of a 3-step runbook, $clients clients: as fast as they go, then paced at $paced_rate runs/s; $(load)"
  python3 - "$work" "$base" "$password" "$data" "$server_pid" "$runs" "$clients" "$paced_rate" <<'PY'
import http.client, json, sys, threading, time
from benchlib import *
work, base, password, data, pid, n, clients, paced_rate = sys.argv[1:]
pid, n, clients, paced_rate = int(pid), int(n), int(clients), float(paced_rate)
api = Api(base, password)
RUNBOOK = """
name: bench-three-steps
title: "Bench: three quick steps"
allow_parallel: true
steps:
  - name: first
    kind: sleep
    duration: 10ms
  - name: tell
    kind: notify
    message: "bench run"
  - name: last
    kind: sleep
    duration: 10ms
"""
rb = api.json("POST", "/api/v1/runbooks", {"yaml": RUNBOOK})
path = f"/api/v1/runbooks/{rb['id']}/runs"
body = json.dumps({"params": {}, "reason": "bench"}).encode()
headers = {"Cookie": api.cookie, "Content-Type": "application/json"}
addr = api.addr
pm = postmaster_pid(data)

def submit(count, rate):
    """`count` POSTs from `clients` threads (one keep-alive connection each);
    paced to `rate` per second when given. Returns [(sent, answered, id)]."""
    out = [None] * count
    nxt = [0]
    lock = threading.Lock()
    errors = []
    t_start = time.time() + 0.1
    def worker():
        conn = http.client.HTTPConnection(addr, timeout=120)
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= count:
                return
            if rate:
                d = t_start + i / rate - time.time()
                if d > 0:
                    time.sleep(d)
            t0 = time.time()
            conn.request("POST", path, body=body, headers=headers)
            res = conn.getresponse()
            raw = res.read()
            t1 = time.time()
            if res.status != 201:
                errors.append(f"{res.status} {raw[:200]!r}")
                return
            out[i] = (t0, t1, json.loads(raw)["id"])
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit(f"POST {path}: {len(errors)} errors, first: {errors[0]}")
    return out

def finished(ids, timeout=600):
    t = time.monotonic()
    lo, hi = min(ids), max(ids)
    while True:
        left = int(psql(data, f"SELECT count(*) FROM runs WHERE id BETWEEN {lo} AND {hi} AND finished_at IS NULL")[0][0])
        if left == 0:
            return
        if time.monotonic() - t > timeout:
            sys.exit(f"{left} runs not finished within {timeout} s")
        time.sleep(0.05)

def db_counters():
    c = psql(data, "SELECT xact_commit FROM pg_stat_database WHERE datname = 'opsdeck'", db="postgres")[0]
    a = psql(data, "SELECT coalesce(max(seq), 0) FROM audit_log")[0]
    return int(c[0]), int(a[0])

class Sampler:
    """Every 200 ms: backends of the opsdeck database that are active, and
    those waiting for an advisory lock (the audit chain's, taken by every
    audit_log insert and held until commit)."""
    def __init__(self):
        self.samples = []
        self.stop = False
        self.t = threading.Thread(target=self.loop)
        self.t.start()
    def loop(self):
        while not self.stop:
            r = psql(data, "SELECT count(*) FILTER (WHERE state <> 'idle'), count(*) FILTER (WHERE wait_event = 'advisory') "
                           "FROM pg_stat_activity WHERE datname = 'opsdeck' AND pid <> pg_backend_pid()")[0]
            self.samples.append((int(r[0]), int(r[1])))
            time.sleep(0.2)
    def done(self):
        self.stop = True
        self.t.join()
        n = max(1, len(self.samples))
        return sum(s[0] for s in self.samples) / n, sum(s[1] for s in self.samples) / n

def measure(name, count, rate):
    cpu0, pg0, wall0 = cpu_ticks(pid), tree_ticks(pm), time.monotonic()
    commits0, audit0 = db_counters()
    sampler = Sampler()
    sent = submit(count, rate)
    ids = [s[2] for s in sent]
    finished(ids)
    wall = time.monotonic() - wall0
    cpu1, pg1 = cpu_ticks(pid), tree_ticks(pm)
    active, advisory = sampler.done()
    commits1, audit1 = db_counters()
    audit_actions = {a: int(c) for a, c in psql(data, f"SELECT action, count(*) FROM audit_log WHERE seq > {audit0} AND seq <= {audit1} GROUP BY action ORDER BY 2 DESC")}
    lo, hi = min(ids), max(ids)
    rows = psql(data, f"""
        SELECT r.id, r.status, extract(epoch FROM r.created_at), extract(epoch FROM r.finished_at),
               extract(epoch FROM s.started_at)
        FROM runs r JOIN run_steps s ON s.run_id = r.id AND s.idx = 0
        WHERE r.id BETWEEN {lo} AND {hi} ORDER BY r.id""")
    db = {int(r[0]): (r[1], float(r[2]), float(r[3]), float(r[4])) for r in rows}
    statuses = {}
    req_to_step, created_to_step, answer, spans = [], [], [], []
    for t0, t1, rid in sent:
        status, created, fin, step0 = db[rid]
        statuses[status] = statuses.get(status, 0) + 1
        req_to_step.append((step0 - t0) * 1000)
        created_to_step.append((step0 - created) * 1000)
        answer.append((t1 - t0) * 1000)
        spans.append((step0, fin))
    first_sent = min(s[0] for s in sent)
    last_sent = max(s[0] for s in sent)
    last_done = max(f for _, f in spans)
    # Most runs active at once (first step start → finish).
    ev = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1]))
    cur = peak = 0
    for _, d in ev:
        cur += d
        peak = max(peak, cur)
    def stats(v):
        v = sorted(v)
        return {"p50": pct(v, 50), "p95": pct(v, 95), "p99": pct(v, 99), "max": v[-1]}
    total = last_done - first_sent
    r = {
        "name": name, "runs": count, "clients": clients, "rate": rate, "statuses": statuses,
        "submit_s": last_sent - first_sent, "submit_rate": count / max(1e-9, last_sent - first_sent),
        "total_s": total, "throughput": count / total,
        "req_to_step_ms": stats(req_to_step), "created_to_step_ms": stats(created_to_step), "answer_ms": stats(answer),
        "peak_active": peak,
        "cpu_pct": 100 * (cpu1 - cpu0) / HZ / wall, "pg_cpu_pct": 100 * (pg1 - pg0) / HZ / wall, "wall_s": wall,
        "commits_per_run": (commits1 - commits0) / count, "audit_per_run": (audit1 - audit0) / count,
        "audit_per_s": (audit1 - audit0) / total, "active_backends": active, "advisory_waiting": advisory,
        "audit_actions": audit_actions,
    }
    save(work, f"queue-{name}", r)
    q = r["req_to_step_ms"]
    print(f"      {name}: {count} runs {statuses}, submitted in {r['submit_s']:.2f} s ({r['submit_rate']:.0f}/s), "
          f"all finished after {total:.2f} s: {r['throughput']:.0f} runs/s; request → first step p50 {q['p50']:.0f} / "
          f"p99 {q['p99']:.0f} / max {q['max']:.0f} ms; at most {peak} active; CPU server {r['cpu_pct']:.0f} %, Postgres {r['pg_cpu_pct']:.0f} %; "
          f"{r['commits_per_run']:.1f} commits and {r['audit_per_run']:.1f} audit entries per run ({r['audit_per_s']:.0f} audit entries/s); "
          f"backends active {active:.1f}, of which waiting on the audit chain's lock {advisory:.1f} (mean); audit entries: {audit_actions}")
    return r

# Warm-up: connections, caches, the runbook's first runs.
finished([s[2] for s in submit(50, 0)])
time.sleep(1)
measure("burst", n, 0)
if paced_rate > 0:
    time.sleep(2)
    measure("paced", n, paced_rate)
PY
  stop_server
fi

# ---------------------------------------------------------- D. service down
if [[ " $parts " == *" D "* ]]; then
  bench_dockerd_start
  app_port=$(bench_free_port)
  # The service: busybox httpd serving /health after a start-up delay (read
  # from /startup in the container at each start), under a shell as PID 1
  # (which ignores SIGTERM, as a hung process would).
  docker_cli run --detach --network host --name sd-web-1 \
    --label com.docker.compose.project=sd --label com.docker.compose.service=web \
    --label com.docker.compose.container-number=1 --label com.docker.compose.oneoff=False \
    "$image" sh -c "d=\$(cat /startup 2>/dev/null || echo $app_start); echo \"web: starting (ready in \$d s)\"; sleep \$d; mkdir -p /www; echo ok >/www/health; echo \"web: listening on 127.0.0.1:$app_port\"; httpd -f -v -p 127.0.0.1:$app_port -h /www" >/dev/null

  # The handbooks' procedure, as an operator runs it (marks on stderr).
  cat >"$work/service-down.sh" <<'SH'
#!/usr/bin/env bash
# Service down: $1 container, $2 health URL, $3 curl every N seconds, or
# "sleep30" for the MosAIc handbook's script as written.
C=$1 URL=$2 POLL=$3
docker() { command docker -H "$BENCH_DOCKER_HOST" "$@"; }
mark() { echo "MARK $1 $EPOCHREALTIME" >&2; }
echo "=== Service Down: ${C} ==="
echo "Time: $(date)"
mark status
echo "1. Checking service status..."
docker ps | grep "${C}" || echo "${C} is not running"
mark logs
echo -e "\n2. Recent logs:"
docker logs --tail 100 "${C}" 2>&1
mark restart
echo -e "\n3. Attempting restart..."
docker restart "${C}"
mark wait
echo -e "\n4. Wait and verify"
if [ "$POLL" = sleep30 ]; then
  sleep 30
  if docker ps | grep -q "${C}"; then
    echo "Service restarted successfully"
  else
    echo "Service failed to restart - escalating"
  fi
else
  until curl -fsS -o /dev/null --max-time 2 "$URL"; do sleep "$POLL"; done
  echo "Service healthy again"
fi
mark done
SH
  chmod +x "$work/service-down.sh"

  data="$work/d"
  start_server "$data"
  echo "   D: \"Service down\" on one container (engine $engine_version), handbook bash vs Opsdeck's service-down runbook, $rounds rounds each, scenarios: $scenarios; $(load)"
  python3 - "$work" "$base" "$password" "$host" "$engine_dir" "$app_port" "$rounds" "$scenarios" "$app_start" "$engine_version" <<'PY'
import http.client, json, os, subprocess, sys, threading, time
from datetime import datetime
from benchlib import *
work, base, password, host, engine_dir, app_port, rounds, scenarios, app_start, engine_version = sys.argv[1:]
rounds = int(rounds)
scenarios = scenarios.split()
api = Api(base, password)
container = "sd-web-1"
url = f"http://127.0.0.1:{app_port}/health"
env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY")}
env["DOCKER_CONFIG"] = f"{engine_dir}/cli-config"
env["BENCH_DOCKER_HOST"] = host

def docker(*args):
    return subprocess.run(["docker", "-H", host, *args], env=env, check=True, capture_output=True, text=True).stdout

def health():
    """HTTP status of the health endpoint, or None when nothing answers."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(app_port), timeout=1)
        c.request("GET", "/health")
        return c.getresponse().status
    except OSError:
        return None

def wait(what, check, timeout=120, every=0.1):
    t = time.monotonic()
    while True:
        ok, last = check()
        if ok:
            return
        if time.monotonic() - t > timeout:
            sys.exit(f"{what}: not within {timeout} s (last: {last})")
        time.sleep(every)

# Opsdeck: the engine, the service from a compose file, an HTTP check on it.
api.json("POST", "/api/v1/engines", {"name": "bench", "endpoint": host})
def connected():
    e = next(e for e in api.json("GET", "/api/v1/engines") if e["name"] == "bench")
    return e["state"] == "connected" and e["containers"] >= 1, (e["state"], e["containers"], e["last_error"])
wait("engine connected", connected, every=0.5)
api.json("POST", "/api/v1/inventory/compose", {"content": "name: sd\nservices:\n  web:\n    image: opsdeck-bench/busybox:1\n",
                                               "project": "sd", "engine": "bench", "apply": True})
def row():
    rows = api.json("GET", "/api/v1/services")
    return next((r for r in rows if r["containers"] and r["containers"][0]["name"] == container), None)
wait("service imported and running", lambda: ((r := row()) is not None and r["run_state"] == "running", r and r["run_state"]), every=0.5)
svc = row()["service"]
api.json("POST", "/api/v1/checks", {"service_id": svc["id"], "name": "health", "interval_s": 60, "timeout_ms": 2000,
                                    "spec": {"kind": "http", "url": url}})
rb = next(r for r in api.json("GET", "/api/v1/runbooks") if r["name"] == "service-down")
wait("the service answers", lambda: (health() == 200, health()), timeout=60)

def set_startup(seconds):
    with open(f"{work}/startup", "w") as f:
        f.write(f"{seconds:.1f}\n")
    docker("cp", f"{work}/startup", f"{container}:/startup")

def break_it(scenario):
    if scenario == "crashed":
        docker("kill", container)
        wait("Opsdeck sees the container exited",
             lambda: ((r := row())["run_state"] != "running", r["run_state"]))
        wait("health refused", lambda: (health() is None, health()))
    else:  # hung: running, health endpoint 404, PID 1 ignores SIGTERM
        docker("exec", container, "rm", "/www/health")
        wait("health 404", lambda: (health() == 404, health()))
    time.sleep(1)

class Observer:
    """Polls the health endpoint every 20 ms: when the service really answers
    (to within 20 ms plus a request)."""
    def __init__(self):
        self.healthy_at = None
        self.stop = False
        self.t = threading.Thread(target=self.loop)
        self.t.start()
    def loop(self):
        while not self.stop:
            if health() == 200:
                self.healthy_at = time.time()
                return
            time.sleep(0.02)
    def done(self):
        self.t.join(timeout=5)  # the procedure is over: the service answers
        self.stop = True
        self.t.join()
        return self.healthy_at

def bash(poll):
    obs = Observer()
    t0 = time.time()
    p = subprocess.run([f"{work}/service-down.sh", container, url, poll], env=env, capture_output=True, text=True)
    t1 = time.time()
    if p.returncode != 0:
        sys.exit(f"the handbook procedure failed: {p.stderr[-1000:]}")
    marks = {l.split()[1]: float(l.split()[2]) for l in p.stderr.splitlines() if l.startswith("MARK ")}
    healthy = obs.done()
    order = ["status", "logs", "restart", "wait", "done"]
    phases = {order[i]: (marks[order[i + 1]] - marks[order[i]]) * 1000 for i in range(4)}
    return {"total_ms": (t1 - t0) * 1000, "healthy_ms": (healthy - t0) * 1000 if healthy else None, "phases_ms": phases}

def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

def opsdeck():
    obs = Observer()
    t0 = time.time()
    run = api.json("POST", f"/api/v1/runbooks/{rb['id']}/runs", {"params": {"service": svc["name"]}, "reason": "bench: service down"})
    rid = run["id"]
    while run["status"] in ("queued", "running", "waiting"):
        time.sleep(0.05)
        run = api.json("GET", f"/api/v1/runs/{rid}")
    t_seen = time.time()
    healthy = obs.done()
    if run["status"] != "succeeded":
        sys.exit(f"service-down run {rid} {run['status']}: {run['error']}; steps: "
                 + "; ".join(f"{s['name']} {s['status']} {s['error']}" for s in run["steps"]))
    phases = {s["name"]: (ts(s["finished_at"]) - ts(s["started_at"])) * 1000 for s in run["steps"]}
    first = ts(run["steps"][0]["started_at"])
    phases["(queue, start)"] = (first - t0) * 1000
    wait_out = next(s["output"] for s in run["steps"] if s["name"] == "wait_healthy")
    return {"total_ms": (ts(run["finished_at"]) - t0) * 1000, "seen_ms": (t_seen - t0) * 1000,
            "healthy_ms": (healthy - t0) * 1000 if healthy else None, "phases_ms": phases, "run": rid,
            "wait_output": wait_out}

procs = {"bash-1s": lambda: bash("1"), "bash-2s": lambda: bash("2"), "bash-sleep30": lambda: bash("sleep30"), "opsdeck": opsdeck}
out = {"app_start_s": float(app_start), "engine": engine_version, "scenarios": {}}
for scenario in scenarios:
    res = {k: [] for k in procs}
    names = list(procs)
    for i in range(rounds):
        # The start-up time of round i: spread evenly over 2 s around
        # BENCH_APP_START_S (5 rounds, 2 s: -0.8 -0.4 0 +0.4 +0.8 s), the
        # same for every procedure in the round, so that no polling interval
        # is favoured by the phase of a fixed start-up time.
        startup = max(0.0, float(app_start) - 1 + (2 * i + 1) / rounds)
        order = names[i % len(names):] + names[:i % len(names)]
        for name in order:
            set_startup(startup)
            break_it(scenario)
            r = procs[name]()
            r["startup_s"] = startup
            res[name].append(r)
            time.sleep(0.5)
        print(f"      {scenario} round {i + 1} (start-up {startup:.1f} s): " + ", ".join(f"{k} {res[k][-1]['total_ms']/1000:.2f} s" for k in names), flush=True)
    out["scenarios"][scenario] = res
save(work, "service-down", out)
PY
  stop_server
fi

# ---------------------------------------------------------------- table
python3 - "$work" "$(nproc)" <<'PY'
import json, os, sys
from benchlib import median
work, cores = sys.argv[1:]
def load(name):
    p = f"{work}/results/{name}.json"
    return json.load(open(p)) if os.path.exists(p) else None
burst, paced, sd = load("queue-burst"), load("queue-paced"), load("service-down")
rows = []
for q in (burst, paced):
    if not q:
        continue
    how = f"{q['clients']} clients as fast as they go ({q['submit_rate']:.0f} POST/s)" if not q["rate"] else f"paced at {q['rate']:.0f} runs/s ({q['clients']} clients)"
    r, c, a = q["req_to_step_ms"], q["created_to_step_ms"], q["answer_ms"]
    rows += [
        (f"{q['runs']:,} runs of a 3-step runbook (sleep 10ms, notify, sleep 10ms), {how}: throughput (runs / first request → last run finished)", f"{q['throughput']:.0f} runs/s ({q['runs']:,} in {q['total_s']:.2f} s; {q['statuses']})", "report", ""),
        ("same: request sent → first step started: p50 / p95 / p99 / max", f"{r['p50']:.0f} / {r['p95']:.0f} / {r['p99']:.0f} / {r['max']:.0f} ms", "p99 < 200 ms", f"{r['p99']/200:.2f}"),
        ("same: run created (runs.created_at) → first step started: p50 / p99", f"{c['p50']:.0f} / {c['p99']:.0f} ms", "report", ""),
        ("same: POST answered (201, the run as JSON): p50 / p99", f"{a['p50']:.0f} / {a['p99']:.0f} ms", "report", ""),
        ("same: most runs active at once / CPU of `opsdeck serve` / of Postgres", f"{q['peak_active']} / {q['cpu_pct']:.0f} % / {q['pg_cpu_pct']:.0f} %", "report", ""),
        ("same: commits / audit entries per run; audit entries/s; Postgres backends active / of them waiting for the audit chain's lock (mean of 200 ms samples)", f"{q['commits_per_run']:.1f} / {q['audit_per_run']:.1f}; {q['audit_per_s']:.0f}/s; {q['active_backends']:.1f} / {q['advisory_waiting']:.1f}", "report", ""),
    ]
label = {"bash-1s": "handbook bash, curl every 1 s", "bash-2s": "handbook bash, curl every 2 s",
         "bash-sleep30": "MosAIc handbook script as written (sleep 30)", "opsdeck": "Opsdeck service-down runbook"}
if sd:
    for scenario, res in sd["scenarios"].items():
        med = {k: median([r["total_ms"] for r in v]) for k, v in res.items()}
        mean = {k: sum(r["total_ms"] for r in v) / len(v) for k, v in res.items()}
        hl = {k: median([r["healthy_ms"] if r["healthy_ms"] is not None else float("nan") for r in v]) for k, v in res.items()}
        o = med["opsdeck"]
        for k in ("bash-1s", "bash-2s", "bash-sleep30"):
            if k in med:
                rows.append((f"Service down, {scenario}: {label[k]} / Opsdeck runbook: start → procedure done, median (mean) of {len(res[k])}; service really answering: median {hl[k]/1000:.2f} / {hl['opsdeck']/1000:.2f} s",
                             f"{med[k]/1000:.2f} ({mean[k]/1000:.2f}) / {o/1000:.2f} ({mean['opsdeck']/1000:.2f}) s", "side by side", f"{o/med[k]:.2f}"))
print()
print(f"{cores} cores; load average now {open('/proc/loadavg').read().split()[0]}")
print()
print("| figure | measured | goal | measured/goal |")
print("|---|---|---|---|")
for r in rows:
    print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")
if sd:
    any_res = next(iter(sd["scenarios"].values()))
    startups = " ".join(f"{r['startup_s']:.1f}" for r in any_res["opsdeck"])
    print(f"\nService down: application start-up per round {startups} s (around {sd['app_start_s']} s), engine {sd['engine']}")
    for scenario, res in sd["scenarios"].items():
        print(f"  {scenario}:")
        for k, v in res.items():
            total = " ".join(f"{r['total_ms']:.0f}" for r in v)
            healthy = " ".join(f"{r['healthy_ms']:.0f}" if r["healthy_ms"] else "-" for r in v)
            print(f"    {k}: total ms {total}; healthy ms {healthy}")
            keys = list(v[0]["phases_ms"])
            print("      median phases: " + ", ".join(f"{p} {median([r['phases_ms'][p] for r in v]):.0f}" for p in keys) + " ms")
        print(f"    last Opsdeck wait_healthy output: {res['opsdeck'][-1]['wait_output'].strip()!r}")
PY
