"""The Opsdeck API client the bench scripts share (standard library only).

One keep-alive HTTP connection to a loopback server, a session cookie from
logging in, and on every request the non-simple `X-Requested-With` header
the server's CSRF guard accepts (bodies are JSON as well). A request that
finds the connection closed by the server is sent once more on a new one.
An answer whose status is not accepted ends the script with the method,
path, status and the start of the body.

    api = Api("http://127.0.0.1:8080", password)          # logs in as admin
    me = api.json("GET", "/api/v1/me")
    raw = api.call("GET", "/api/v1/status", headers={"Accept-Encoding": "br"})
    api.headers["content-encoding"]                        # of the last answer
    api.status                                             # its status code
    for event, data in api.sse("/api/v1/status/events", timeout=10): ...
"""

import http.client
import json
import sys
import time

SESSION_COOKIE = "opsdeck_session"


class Api:
    def __init__(self, base, password=None, username="admin", timeout=120, ok=None, name="bench", hint404=""):
        """`ok`: the statuses accepted (default: any below 400). `name`
        prefixes failure messages ("bench/<name>: …"); `hint404` is added
        to a failure on a 404 (e.g. that the build may predate the API)."""
        self.addr = base.removeprefix("http://")
        self.timeout = timeout
        self.ok = ok
        self.name = name
        self.hint404 = hint404
        self.conn = http.client.HTTPConnection(self.addr, timeout=timeout)
        self.cookie = None
        self.headers = {}
        self.status = None
        if password:
            self.login(username, password)

    def fail(self, msg):
        sys.exit(f"bench/{self.name}: {msg}")

    def login(self, username, password):
        """POST /api/v1/auth/login; keeps the session cookie it sets."""
        self.call("POST", "/api/v1/auth/login", {"username": username, "password": password})
        if not self.cookie:
            self.fail(f"login as {username}: no {SESSION_COOKIE} cookie")

    def request_headers(self, extra=None):
        h = {"X-Requested-With": "bench"}
        h.update(extra or {})
        if self.cookie:
            h["Cookie"] = self.cookie
        return h

    def call(self, method, path, body=None, headers=None, ok=None):
        """The raw body of the answer; `body` (if any) is sent as JSON."""
        h = self.request_headers(headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=h)
                res = self.conn.getresponse()
                raw = res.read()
                break
            except (http.client.RemoteDisconnected, ConnectionError):
                if attempt:
                    raise
                self.conn = http.client.HTTPConnection(self.addr, timeout=self.timeout)
        self.headers = {k.lower(): v for k, v in res.getheaders()}
        self.status = res.status
        accepted = ok or self.ok
        if (res.status not in accepted) if accepted else res.status >= 400:
            hint = self.hint404 if res.status == 404 else ""
            self.fail(f"{method} {path}: {res.status} {raw[:500]!r}{hint}")
        for k, v in res.getheaders():
            if k.lower() == "set-cookie" and v.startswith(SESSION_COOKIE + "="):
                self.cookie = v.split(";")[0]
        return raw

    def json(self, method, path, body=None, headers=None, ok=None):
        """The answer's JSON body, or None when it is empty (204)."""
        raw = self.call(method, path, body, headers, ok)
        return json.loads(raw) if raw else None

    def sse(self, path, timeout=30):
        """Yields (event, data) of a Server-Sent Events stream, on a
        connection of its own, until `timeout` seconds have passed or the
        server ends the stream. Keep-alive comments are skipped."""
        conn = http.client.HTTPConnection(self.addr, timeout=timeout)
        try:
            conn.request("GET", path, headers=self.request_headers({"Accept": "text/event-stream"}))
            res = conn.getresponse()
            if res.status != 200:
                self.fail(f"GET {path}: {res.status} {res.read()[:500]!r}")
            deadline = time.monotonic() + timeout
            event, data = "message", []
            while time.monotonic() < deadline:
                try:
                    line = res.readline()
                except TimeoutError:
                    return
                if not line:
                    return
                line = line.decode().rstrip("\r\n")
                if line == "":
                    if data:
                        yield event, "\n".join(data)
                    event, data = "message", []
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
        finally:
            conn.close()
