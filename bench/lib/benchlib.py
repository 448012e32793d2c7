"""What the bench scripts measure with, besides the API client: percentiles
and medians, CPU ticks and RSS from /proc, psql on the embedded cluster,
and saving a part's results. `from benchlib import *` also brings `Api`.
"""

import http.client, json, math, os, subprocess, sys, time

from opsdeck_api import Api

def pct(sorted_values, p):  # nearest rank
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]

def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2

def status_kb(pid, key="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0

def _stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()  # fields from the 3rd (state) on

def cpu_ticks(pid, children=False):
    f = _stat(pid)
    t = int(f[11]) + int(f[12])  # utime, stime
    if children:
        t += int(f[13]) + int(f[14])  # cutime, cstime (reaped children)
    return t

def tree_ticks(root):
    """CPU of a process, its reaped children and its live children."""
    t = cpu_ticks(root, children=True)
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                f = _stat(int(d))
                if int(f[1]) == root:
                    t += cpu_ticks(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return t

HZ = os.sysconf("SC_CLK_TCK")

def machine_busy_ticks():
    """CPU ticks spent by the whole machine (all cores), idle and iowait excluded."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:8]) - v[3] - v[4]  # user..steal, minus idle and iowait

def psql(data, query, db="opsdeck"):
    out = subprocess.run(["psql", "-X", "-At", "-F", " ", "-h", f"{data}/run", "-U", "opsdeck", "-d", db, "-c", query],
                         check=True, capture_output=True, text=True).stdout
    return [line.split(" ") for line in out.strip().splitlines()]

def postmaster_pid(data):
    with open(f"{data}/postgres/postmaster.pid") as f:
        return int(f.readline())

def http_get(addr, path):
    c = http.client.HTTPConnection(addr, timeout=10)
    c.request("GET", path)
    return c.getresponse().read()

def save(work, name, obj):
    os.makedirs(f"{work}/results", exist_ok=True)
    with open(f"{work}/results/{name}.json", "w") as f:
        json.dump(obj, f)
