#!/usr/bin/env bash
# bench/ratelimit.sh (make bench-ratelimit; part of make bench): an anonymous
# flood against the panel's edge (issue 19, finding 4).
#
# wrk sends ~10,000 anonymous POST /api/v1/engines per second for 30 s
# (200 connections, each paced to one request per 20 ms) from one client
# behind a trusted proxy (X-Forwarded-For: 203.0.113.7; the server runs with
# OPSDECK_TRUSTED_PROXIES=127.0.0.1 and its default rate limits). Meanwhile a
# logged-in admin (another client: the loopback itself) fetches
# GET /api/v1/status every 50 ms; its latencies are the figure (goal:
# p99 < 100 ms). The server's RSS is sampled every second and the audit log's
# length (the newest entry's seq) is read before and after.
#
# Needs: wrk (apt-get install wrk), curl, python3; the release build
# (make server), or bin=PATH. Traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
bench_name=ratelimit
source bench/lib.sh
bench_need "apt-get install wrk" wrk curl python3
bin=${bin:-$(bench_default_bin)}
[ -x "$bin" ] || die "$bin is missing: make server (or bin=PATH)"
rate=${RATE:-10000}
secs=${SECS:-30}
conns=200
delay_ms=$(( conns * 1000 / rate ))
port=$(bench_free_port)
base="http://127.0.0.1:$port"
work=$(mktemp -d /tmp/opsdeck-bench-ratelimit.XXXXXX)
chmod 755 "$work"
password="bench-orchid-compass-64"
cleanup() { bench_server_stop; rm -rf "$work"; }
trap cleanup EXIT

echo "== bench/ratelimit: $(bench_machine)"
export OPSDECK_TRUSTED_PROXIES=127.0.0.1
bench_server_start "$work/data"

cat >"$work/flood.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Forwarded-For"] = "203.0.113.7"
wrk.body = '{"name":"flood","endpoint":"unix:///var/run/docker.sock"}'
function delay() return $delay_ms end
LUA

python3 - "$base" "$password" "$server_pid" "$work" "$secs" "$conns" <<'PY' &
import json, sys, threading, time
from opsdeck_api import Api
base, password, pid, work, secs, conns = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
admin = Api(base, password, name="ratelimit")
def seq():
    page = admin.json("GET", "/api/v1/audit?limit=1")
    return page["entries"][0]["seq"] if page["entries"] else 0
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
seq_before, rss_before = seq(), rss()
open(f"{work}/ready", "w").close()
lat, rss_samples, stop = [], [], time.time() + secs
def sample():
    while time.time() < stop + 5:
        rss_samples.append(rss()); time.sleep(1)
t = threading.Thread(target=sample); t.start()
while time.time() < stop:
    t0 = time.perf_counter()
    admin.call("GET", "/api/v1/status")
    lat.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.05)
t.join()
time.sleep(12)  # the folded refusal counts are written within 10 s of a minute's end
seq_after, rss_after = seq(), rss()
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p / 100))]
json.dump({"n": len(lat), "p50": pct(50), "p99": pct(99), "max": lat[-1],
           "rss_before": rss_before, "rss_peak": max(rss_samples), "rss_after": rss_after,
           "audit_rows": seq_after - seq_before}, open(f"{work}/status.json", "w"))
PY
probe=$!
until [ -f "$work/ready" ]; do kill -0 "$probe" 2>/dev/null || die "the status probe failed"; sleep 0.1; done
wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/flood.lua" "$base/api/v1/engines" >"$work/flood.txt"
wait "$probe" || die "the status probe failed"

python3 - "$work" "$rate" "$secs" <<'PY'
import json, re, sys
work, rate, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t = open(f"{work}/flood.txt").read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
total = int(re.search(r"(\d+) requests in", t).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
s = json.load(open(f"{work}/status.json"))
rows = [
    (f"anonymous POST flood, goal {rate:,}/s for {secs} s", f"{rps:,.0f} req/s ({total:,} requests, {int(non2xx.group(1)) if non2xx else 0:,} refused)", "-", ""),
    ("logged-in GET /api/v1/status during the flood: p50 / p99", f"{s['p50']:.1f} / {s['p99']:.1f} ms (n={s['n']}, max {s['max']:.0f} ms)", "p99 < 100 ms", f"{s['p99']/100:.2f}"),
    ("server RSS before / peak / after", f"{s['rss_before']:.0f} / {s['rss_peak']:.0f} / {s['rss_after']:.0f} MB", "bounded", ""),
    ("audit rows added by the flood", f"{s['audit_rows']}", "bounded (about 2 per source and minute)", ""),
]
print()
print("| figure | measured | goal | measured/goal |")
print("|---|---|---|---|")
for r in rows:
    print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")
PY
