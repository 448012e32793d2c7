#!/usr/bin/env bash
# make demo: a live Opsdeck panel over a stand-in of the MosAIc stack, in one
# command.
#
#   1. starts a private Docker Engine in /tmp/opsdeck-demo (no bridge
#      network, no iptables changes, its own socket and data root: nothing
#      else on the machine is touched);
#   2. builds a busybox image FROM scratch (no registry needed) and runs one
#      small container per MosAIc service, labelled as `docker compose` would
#      label project `mosaic`; each serves /healthz on its loopback port;
#   3. imports docker/demo/mosaic.compose.yml into Opsdeck's inventory with
#      the checks the import proposes (a container check per service, an
#      HTTP check per web service from its healthcheck), so the dashboard
#      is green because the checks say so; the database proposals are left
#      out (PostgreSQL and MariaDB need a password, and the Redis stand-in
#      is an HTTP server);
#   4. runs `opsdeck serve` with DOCKER_HOST pointing at the private engine
#      (registered as engine `local` on first start).
#
# Ctrl-C stops Opsdeck, removes the containers and stops the engine.
#
# Usage: scripts/demo.sh [path/to/opsdeck]   (make demo passes the release build)
# Needs: root, dockerd + docker CLI (docker.io), /bin/busybox (busybox-static).
# Environment: OPSDECK_LISTEN (default 127.0.0.1:8080), OPSDECK_DATA_DIR
# (default /var/lib/opsdeck-demo: the embedded Postgres runs as `postgres`,
# which cannot reach a clone under /root).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-${OPSDECK_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/opsdeck/target}/release/opsdeck}}
demo_dir=/tmp/opsdeck-demo
sock="$demo_dir/docker.sock"
host="unix://$sock"
project=mosaic
image=opsdeck-demo/busybox:1
compose_file=docker/demo/mosaic.compose.yml
export OPSDECK_DATA_DIR=${OPSDECK_DATA_DIR:-/var/lib/opsdeck-demo}
export OPSDECK_LISTEN=${OPSDECK_LISTEN:-127.0.0.1:8080}

# Services in start order (dependencies first), their loopback ports (the same
# as in docker/demo/mosaic.compose.yml) and dependencies (its depends_on).
services=(npm postgres mariadb redis gitea bookstack woodpecker mcp portainer)
declare -A port=(
  [npm]=18081 [postgres]=18082 [mariadb]=18083 [gitea]=18084 [bookstack]=18085
  [woodpecker]=18086 [redis]=18087 [mcp]=18088 [portainer]=18089
)
declare -A depends=(
  [gitea]="mariadb redis" [bookstack]="mariadb" [woodpecker]="postgres gitea" [mcp]="redis"
)

# What every stand-in runs: a constant script; the service name and port come
# from the environment (SERVICE, PORT). It exits at once on SIGTERM.
script='trap "exit 0" TERM INT
echo "$SERVICE starting"
mkdir -p /www && echo "$SERVICE ok" > /www/healthz
echo "<h1>$SERVICE</h1><p>MosAIc stand-in for the Opsdeck demo</p>" > /www/index.html
httpd -f -p "127.0.0.1:$PORT" -h /www &
while :; do
  sleep 5 & wait $!
  echo "$SERVICE heartbeat"
done'

die() { echo "demo: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (it starts a private dockerd); run: sudo make demo"
for tool in dockerd docker curl setsid; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install docker.io busybox-static curl (or: make test-deps)"
done
[ -x /bin/busybox ] || die "/bin/busybox is missing: apt-get install busybox-static (or: make test-deps)"
[ -x "$bin" ] || die "no opsdeck binary at $bin (make demo builds it)"
[ -f "$compose_file" ] || die "$compose_file is missing"

docker_cli() {
  env -u DOCKER_HOST -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY DOCKER_CONFIG="$demo_dir/cli-config" \
    docker -H "$host" "$@"
}

dockerd_pid=""
serve_pid=""
interrupted=0
unmount_leftovers() {
  # dockerd leaves mounts under its exec root (netns, overlays): deepest first.
  local m
  while read -r m; do
    umount --lazy "$m" 2>/dev/null || true
  done < <(awk -v d="$demo_dir" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    # Ctrl-C reached Opsdeck too (same process group); otherwise ask it.
    [ "$interrupted" = 1 ] || kill -TERM "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    echo "==> removing the MosAIc containers and stopping the private engine"
    mapfile -t ids < <(docker_cli ps --all --quiet 2>/dev/null || true)
    [ ${#ids[@]} -eq 0 ] || docker_cli rm --force --volumes "${ids[@]}" >/dev/null 2>&1 || true
    kill -TERM "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 1 200); do
      kill -0 "$dockerd_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
  fi
  unmount_leftovers
  rm -rf "$demo_dir"
  exit "$status"
}

# A demo engine left running by another demo is not ours to stop.
if [ -f "$demo_dir/docker.pid" ]; then
  old=$(cat "$demo_dir/docker.pid" 2>/dev/null || true)
  if [ -n "$old" ] && tr '\0' ' ' <"/proc/$old/cmdline" 2>/dev/null | grep -q "$demo_dir"; then
    die "another demo engine runs (pid $old); stop that demo first"
  fi
fi
unmount_leftovers
rm -rf "$demo_dir"
mkdir -p "$demo_dir"
chmod 755 "$demo_dir"

for svc in "${services[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/${port[$svc]}") 2>/dev/null; then
    die "port ${port[$svc]} (for $svc) is in use on 127.0.0.1"
  fi
done

trap cleanup EXIT
trap 'interrupted=1; exit 130' INT
trap 'exit 143' TERM

echo "==> starting a private Docker Engine ($host)"
# Its own session: Ctrl-C reaches Opsdeck, and cleanup stops the engine.
setsid dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
  -H "$host" --data-root "$demo_dir/data" --exec-root "$demo_dir/exec" \
  --pidfile "$demo_dir/docker.pid" </dev/null >"$demo_dir/dockerd.log" 2>&1 &
dockerd_pid=$!
for i in $(seq 1 300); do
  docker_cli version --format '{{.Server.Version}}' >/dev/null 2>&1 && break
  kill -0 "$dockerd_pid" 2>/dev/null || { tail -n 20 "$demo_dir/dockerd.log" >&2; die "dockerd exited"; }
  [ "$i" -lt 300 ] || { tail -n 20 "$demo_dir/dockerd.log" >&2; die "dockerd did not answer within 60 s"; }
  sleep 0.2
done

echo "==> building $image (FROM scratch + busybox)"
ctx="$demo_dir/build"
mkdir -p "$ctx"
cp /bin/busybox "$ctx/busybox"
printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' 'RUN ["/bin/busybox", "--install", "-s", "/bin"]' >"$ctx/Dockerfile"
# The classic builder: no buildx plugin needed (its deprecation notice is noise).
if ! out=$(DOCKER_BUILDKIT=0 docker_cli build --quiet --network=none --tag "$image" "$ctx" 2>&1); then
  echo "$out" >&2
  die "building $image failed"
fi

echo "==> starting the MosAIc stand-in (project $project)"
for svc in "${services[@]}"; do
  labels=(
    --label "com.docker.compose.project=$project"
    --label "com.docker.compose.service=$svc"
    --label "com.docker.compose.container-number=1"
    --label "com.docker.compose.oneoff=False"
  )
  if [ -n "${depends[$svc]:-}" ]; then
    deps=""
    for d in ${depends[$svc]}; do
      deps="${deps:+$deps,}$d:service_started:false"
    done
    labels+=(--label "com.docker.compose.depends_on=$deps")
  fi
  env=(--env "SERVICE=$svc" --env "PORT=${port[$svc]}")
  if [ "$svc" = gitea ]; then
    # Shows as *** in Opsdeck's inspect view.
    env+=(--env "GITEA__security__SECRET_KEY=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')")
  fi
  docker_cli run --detach --network host --restart unless-stopped \
    --name "$project-$svc-1" "${labels[@]}" "${env[@]}" \
    "$image" sh -c "$script" >/dev/null
done
for svc in "${services[@]}"; do
  url="http://127.0.0.1:${port[$svc]}/healthz"
  for i in $(seq 1 100); do
    curl -fs --max-time 2 "$url" >/dev/null 2>&1 && break
    [ "$i" -lt 100 ] || die "$svc did not answer $url"
    sleep 0.2
  done
done

echo "==> importing $compose_file into the inventory with its checks ($OPSDECK_DATA_DIR)"
# One line per service (`+ gitea`: added, `= gitea`: unchanged since last
# time), then one per proposed check (`[x]` created, `[=]` already there).
OPSDECK_LOG=warn "$bin" import compose "$compose_file" --project "$project" \
  --skip-check redis/redis | grep -v '^    '

url="http://$OPSDECK_LISTEN"
cat <<MSG

==> Opsdeck demo: $url
    Services, dependency graph, logs, exec and restarts of the MosAIc stand-in.
    Log in as admin: on first start Opsdeck prints the admin password below
    (once; to start over: rm -rf $OPSDECK_DATA_DIR).
    Every service is checked: the dashboard turns green as the first probes
    settle (within a minute). Try: docker -H $host stop $project-redis-1
    and watch the board turn red at the next probes, with nothing added.
    Ctrl-C stops Opsdeck, the containers and the engine.

MSG
DOCKER_HOST="$host" "$bin" serve &
serve_pid=$!
wait "$serve_pid"
