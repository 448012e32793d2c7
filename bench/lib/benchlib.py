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


# ------------------------------------------------------------------ browser
import urllib.error, urllib.request

# In every new document, before the app runs: log each change of the
# number of service rows with its time since navigation start, and the
# time of the first frame after it (rAF, then a task: after its paint).
# The rows are tracked from the mutation records (a set of row elements),
# so the cost stays proportional to what changed, not to the page.
ROWS_OBSERVER = r"""
(() => {
  if (document.__bench) return;
  const log = [];
  document.__bench = log;
  const sel = '[data-testid^="service-row-"]';
  const rows = new Set();
  const each = (node, f) => {
    if (node.nodeType !== 1) return;
    if (node.matches(sel)) f(node);
    node.querySelectorAll(sel).forEach(f);
  };
  let last = 0;
  new MutationObserver(records => {
    for (const r of records) {
      r.addedNodes.forEach(n => each(n, e => { if (e.isConnected) rows.add(e); }));
      r.removedNodes.forEach(n => each(n, e => { if (!e.isConnected) rows.delete(e); }));
    }
    const n = rows.size;
    if (n === last) return;
    last = n;
    const e = [performance.now(), n, null];
    log.push(e);
    requestAnimationFrame(() => setTimeout(() => { e[2] = performance.now(); }, 0));
  }).observe(document, {childList: true, subtree: true});
  log.push([performance.now(), 0, performance.now()]);
})();
"""

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class Browser:
    """Headless Chromium over plain WebDriver: chromedriver on
    127.0.0.1:`driver_port` (bench_chromedriver_start in lib.sh), a
    profile under `work`, and in every document the service-row log
    (ROWS_OBSERVER) that times the dashboard's paints.

        b = Browser(driver_port, "/usr/bin/chromium", work)
        b.login(base, password)
        runs = b.dashboard_loads(base, 5)   # {"cached": [...], "cold": [...]}
        b.close()
    """

    def __init__(self, driver_port, chromium, work):
        self.wd_base = f"http://127.0.0.1:{driver_port}"
        t = time.monotonic()
        while True:
            try:
                if self.wd("GET", "/status").get("ready"):
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() - t > 20:
                sys.exit("chromedriver did not come up")
            time.sleep(0.1)
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900", f"--user-data-dir={work}/profile"]
        sid = self.wd("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": {"binary": chromium, "args": args}}}})["sessionId"]
        self.S = f"/session/{sid}"
        self.cdp("Page.addScriptToEvaluateOnNewDocument", {"source": ROWS_OBSERVER})
        self.cdp("Network.enable")

    def wd(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.wd_base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return json.loads(r.read()).get("value")
        except urllib.error.HTTPError as e:
            sys.exit(f"WebDriver {method} {path}: {e.code} {e.read()[:500]!r}")

    def cdp(self, cmd, params=None):
        return self.wd("POST", f"{self.S}/goog/cdp/execute", {"cmd": cmd, "params": params or {}})

    def js(self, script, *args):
        return self.wd("POST", f"{self.S}/execute/sync", {"script": script, "args": list(args)})

    def element(self, css, timeout=15):
        t = time.monotonic()
        while True:
            found = self.wd("POST", f"{self.S}/elements", {"using": "css selector", "value": css})
            if found:
                return found[0][ELEMENT]
            if time.monotonic() - t > timeout:
                sys.exit(f"no {css} within {timeout} s")
            time.sleep(0.05)

    def settled(self, since_entries=0, want=None, timeout=60):
        """Waits until the row count is stable for 1.5 s (or reaches `want`)
        and its frame has been drawn; returns the log."""
        t = time.monotonic()
        while True:
            st = self.js("return [document.__bench || [], performance.now()]")
            log, now = st
            log = log[since_entries:]
            if log and log[-1][1] > 0 and log[-1][2] is not None:
                if (want is not None and log[-1][1] >= want) or (want is None and now - log[-1][0] > 1500):
                    return st[0]
            if time.monotonic() - t > timeout:
                page = self.js("return [location.href, (document.body || {}).innerText || '']")
                sys.exit(f"the dashboard did not settle within {timeout} s: rows log {log[-5:]}; "
                         f"at {page[0]}: {page[1][:400]!r}")
            time.sleep(0.1)

    def login(self, base, password, username="admin"):
        """Logs in through the form, as a user would; returns on the dashboard."""
        self.wd("POST", f"{self.S}/url", {"url": base + "/login"})
        self.wd("POST", f"{self.S}/element/{self.element('#username')}/value", {"text": username})
        self.wd("POST", f"{self.S}/element/{self.element('#password')}/value", {"text": password})
        self.wd("POST", f"{self.S}/element/{self.element('button[data-testid=login-submit]')}/click", {})
        t = time.monotonic()
        while self.js("return location.pathname") != "/":
            if time.monotonic() - t > 15:
                sys.exit("no dashboard after logging in")
            time.sleep(0.05)
        self.element("[data-testid=dashboard-banner]")

    def dashboard_loads(self, base, renders):
        """`renders` loads of the dashboard with cached assets and as many
        with the HTTP cache cleared, alternating: for each, the time from
        navigation start until the first rows and until the last rows were
        painted (ms), the row count, and the row log."""
        runs = {"cached": [], "cold": []}
        for i in range(2 * renders):
            kind = "cold" if i % 2 else "cached"
            self.wd("POST", f"{self.S}/url", {"url": "about:blank"})
            if kind == "cold":
                self.cdp("Network.clearBrowserCache")
            self.wd("POST", f"{self.S}/url", {"url": base + "/"})
            log = self.settled()
            first = next(e for e in log if e[1] > 0)
            done = log[-1]
            runs[kind].append({"first_rows_ms": first[2], "rows": done[1], "render_ms": done[2], "log": log})
        return runs

    def close(self):
        self.wd("DELETE", self.S)
