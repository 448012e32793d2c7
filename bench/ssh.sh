#!/usr/bin/env bash
# make bench, SSH part (alone: make bench-ssh): one private engine reached
# two ways by Opsdeck, over its Unix socket and over `ssh://` through a
# private sshd on loopback (its own host key and client key; DOCKER_HOST
# set for the session), and by the docker CLI over `ssh://` (the same
# sshd, `docker -H ssh://…`). Side by side, alternating, BENCH_ROUNDS (30)
# rounds each, in one run:
#   - a live container read: Opsdeck `GET /api/v1/services/{id}/inspect`
#     (unix vs ssh) and `docker -H ssh:// inspect`;
#   - a restart: Opsdeck `POST /api/v1/services/{id}/actions` restart
#     (unix vs ssh) and `docker -H ssh:// restart -t 0`.
# Timed: request → answer (Opsdeck), command start → exit (the CLI).
# Goal: Opsdeck's restart over SSH ≤ 1.1 × `docker -H ssh:// restart`.
#
# Environment: BENCH_ROUNDS, OPSDECK_BIN (default: the release build).
# Needs: root, python3, curl, dockerd + docker CLI, /bin/busybox, sshd
# (openssh-server) and ssh.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${BENCH_ROUNDS:-30}
image=opsdeck-bench/busybox:1
password="bench-orchid-compass-64"
engine_dir=/tmp/odk-bench-ssh-dockerd
bench_name=ssh
# shellcheck source=bench/lib.sh
. bench/lib.sh
bin=${OPSDECK_BIN:-$(bench_default_bin)}

bench_need "apt-get install python3 curl openssh-client, or make test-deps" python3 curl ssh ssh-keygen
bench_engine_needs "the SSH bench needs root (it starts a private dockerd and sshd)"
[ -x /usr/sbin/sshd ] || die "no /usr/sbin/sshd: apt-get install openssh-server (or make test-deps)"
[ -x "$bin" ] || die "no opsdeck binary at $bin (make bench builds it; or set OPSDECK_BIN)"

work=$(mktemp -d /tmp/opsdeck-bench-ssh.XXXXXX)
chmod 755 "$work"
port=$(bench_free_port)
base="http://127.0.0.1:$port"
sshd_pid=""

sshd_stop() {
  [ -n "$sshd_pid" ] || return 0
  # Each connection's process leads its own session: signal them first.
  local c
  for c in $(ps -o pid= --ppid "$sshd_pid" 2>/dev/null); do kill -TERM "$c" 2>/dev/null || true; done
  kill -TERM "$sshd_pid" 2>/dev/null || true
  wait "$sshd_pid" 2>/dev/null || true
  sshd_pid=""
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  bench_server_stop
  sshd_stop
  bench_dockerd_stop
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== ssh bench: $(bench_machine)"
bench_dockerd_start

ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/host_key"
ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/client_key"
cp "$work/client_key.pub" "$work/authorized_keys"
mkdir -p /run/sshd
ssh_port=$(bench_free_port)
cat >"$work/sshd_config" <<EOF
Port $ssh_port
ListenAddress 127.0.0.1
HostKey $work/host_key
PidFile $work/sshd.pid
AuthorizedKeysFile $work/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers root
SetEnv DOCKER_HOST=$host
EOF
setsid /usr/sbin/sshd -D -e -f "$work/sshd_config" </dev/null >"$work/sshd.log" 2>&1 &
sshd_pid=$!
for i in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$ssh_port") 2>/dev/null && break
  kill -0 "$sshd_pid" 2>/dev/null || { cat "$work/sshd.log" >&2; die "sshd exited"; }
  [ "$i" -lt 100 ] || die "sshd did not listen within 10 s"
  sleep 0.1
done
# The docker CLI runs `ssh` from PATH: a wrapper gives it the run's key
# and the pinned host key (the CLI has no options for them).
echo "[127.0.0.1]:$ssh_port $(cut -d' ' -f1,2 "$work/host_key.pub")" >"$work/known_hosts"
mkdir -p "$work/bin"
cat >"$work/bin/ssh" <<EOF
#!/bin/sh
exec /usr/bin/ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes \
  -o UserKnownHostsFile=$work/known_hosts -o IdentitiesOnly=yes -i $work/client_key "\$@"
EOF
chmod 755 "$work/bin/ssh"

docker_cli run -d --name ssh-app --network none \
  --label com.docker.compose.project=sshbench --label com.docker.compose.service=app \
  --label com.docker.compose.container-number=1 --label com.docker.compose.oneoff=False \
  "$image" sh -c 'trap "exit 0" TERM; while true; do sleep 1; done' >/dev/null

data="$work/data"
bench_server_start "$data"
BENCH_SSH_ENDPOINT="ssh://root@127.0.0.1:$ssh_port" BENCH_SSH_HOST_KEY="$(cut -d' ' -f1,2 "$work/host_key.pub")" \
BENCH_SSH_KEY="$work/client_key" BENCH_CLI_PATH="$work/bin:$PATH" BENCH_HOST="$host" BENCH_ENGINE_DIR="$engine_dir" \
python3 - "$base" "$password" "$rounds" "$work" <<'PY'
import os, subprocess, sys, time
from benchlib import *
base, password, rounds, work = sys.argv[1:]
rounds = int(rounds)
api = Api(base, password, name="ssh", hint404=" (a build from before SSH engines?)")
ssh = os.environ["BENCH_SSH_ENDPOINT"]
env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY")}
env["DOCKER_CONFIG"] = f"{os.environ['BENCH_ENGINE_DIR']}/cli-config"
env["PATH"] = os.environ["BENCH_CLI_PATH"]

api.json("POST", "/api/v1/engines", {"name": "viaunix", "endpoint": os.environ["BENCH_HOST"]})
api.json("POST", "/api/v1/engines", {"name": "viassh", "endpoint": ssh,
                                     "ssh_host_key": os.environ["BENCH_SSH_HOST_KEY"],
                                     "ssh_key": os.environ["BENCH_SSH_KEY"]})
ids = {}
for engine in ("viaunix", "viassh"):
    s = api.json("POST", "/api/v1/services", {"name": f"app-{engine}", "engine": engine,
                                              "compose_project": "sshbench", "compose_service": "app"})
    ids[engine] = s["id"]
for _ in range(300):
    ok = all(api.json("GET", f"/api/v1/services/{i}")["containers"] for i in ids.values())
    if ok:
        break
    time.sleep(0.2)
else:
    sys.exit("bench/ssh: the services' containers never showed on both engines")

def timed(f):
    t0 = time.perf_counter()
    f()
    return (time.perf_counter() - t0) * 1000

def cli(*args):
    r = subprocess.run(["docker", "-H", ssh, *args], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench/ssh: docker {' '.join(args)}: {r.stderr.strip()}")

def restart(engine):
    r = api.json("POST", f"/api/v1/services/{ids[engine]}/actions", {"action": "restart", "timeout_secs": 0})
    if r.get("outcome") != "succeeded":
        sys.exit(f"bench/ssh: restart via {engine}: {r}")

cases = {
    "inspect: Opsdeck over unix": lambda: api.json("GET", f"/api/v1/services/{ids['viaunix']}/inspect"),
    "inspect: Opsdeck over ssh": lambda: api.json("GET", f"/api/v1/services/{ids['viassh']}/inspect"),
    "inspect: docker -H ssh://": lambda: cli("inspect", "ssh-app"),
    "restart: Opsdeck over unix": lambda: restart("viaunix"),
    "restart: Opsdeck over ssh": lambda: restart("viassh"),
    "restart: docker -H ssh://": lambda: cli("restart", "-t", "0", "ssh-app"),
}
for f in cases.values():  # warm-up: the SSH session, the CLI's first run
    f()
times = {k: [] for k in cases}
for _ in range(rounds):
    for k, f in cases.items():
        times[k].append(timed(f))
med = {k: median(v) for k, v in times.items()}
for k, v in times.items():
    s = sorted(v)
    print(f"   {k:30s} median {med[k]:7.1f} ms  p90 {pct(s, 90):7.1f} ms")
print(f"   restart, Opsdeck over ssh / over unix: {med['restart: Opsdeck over ssh'] / med['restart: Opsdeck over unix']:.2f}")
print(f"   restart, Opsdeck over ssh / docker -H ssh://: {med['restart: Opsdeck over ssh'] / med['restart: docker -H ssh://']:.2f} (goal ≤ 1.1)")
print(f"   inspect, Opsdeck over ssh / over unix: {med['inspect: Opsdeck over ssh'] / med['inspect: Opsdeck over unix']:.2f}")
print(f"   inspect, Opsdeck over ssh / docker -H ssh://: {med['inspect: Opsdeck over ssh'] / med['inspect: docker -H ssh://']:.2f}")
save(work, "ssh", {k: v for k, v in times.items()})
PY
