# bench/lib.sh: the parts the bench scripts share; sourced, not run.
#
# Before sourcing, a script sets:
#   bench_name   its name in messages ("runbooks" → "bench/runbooks: …")
# and, for the functions it uses:
#   work         its scratch directory (logs go there)
#   password     the admin password of the servers it starts
#   port, base   the server's loopback port and http://127.0.0.1:<port>
#   bin          the opsdeck binary
#   engine_dir   the private engine's directory (socket, data and exec root)
#   image        the tag of the busybox image built on the private engine
#
# What it provides:
#   PYTHONPATH                includes bench/lib: `from opsdeck_api import Api`
#                             and `from benchlib import *` in the scripts' Python
#   die MSG…                  the message on stderr, exit 1
#   bench_need HINT TOOL…     dies naming the first tool missing from PATH,
#                             with HINT (how to install it)
#   bench_free_port           a free loopback TCP port
#   bench_load                "load average 0.42" (1-minute)
#   bench_machine             "2 cores, 23 GiB; load average 0.42 0.50 0.61"
#   bench_default_bin         the release build's path (CARGO_TARGET_DIR aware)
#   bench_server_start DATA   `$bin serve` on $port with data dir DATA, log in
#                             $work/opsdeck.log; sets server_pid once /readyz
#                             answers (60 s at most)
#   bench_server_stop         SIGTERM, wait (the server stops its embedded
#                             Postgres on the way out)
#   bench_engine_needs MSG    root (else dies with MSG), dockerd, docker,
#                             /bin/busybox
#   docker_cli ARGS…          the docker CLI on the private engine only
#   bench_dockerd_start       a private dockerd (no bridge, no iptables
#                             changes; containers on the host network) in
#                             $engine_dir, and the busybox image $image built
#                             from /bin/busybox; sets dockerd_pid, host and
#                             engine_version
#   bench_dockerd_stop        removes its containers, stops it, unmounts what
#                             it left, removes $engine_dir
#   bench_dockerds_start K P  K private dockerds like the one above, in
#                             directories P1 … PK (logs $work/dockerd<i>.log),
#                             started side by side, $image built on each;
#                             sets dockerd_dirs, dockerd_pids, engine_version
#   bench_dockerds_stop       stops them all as bench_dockerd_stop does
#   docker_cli_at DIR ARGS…   the docker CLI on the engine in DIR
#   bench_chromedriver_start  chromedriver on a free loopback port (its own
#                             session, log in $work/chromedriver.log); sets
#                             driver_pid and driver_port
#   bench_chromedriver_stop   stops it with the browsers it started
# Each script keeps its own cleanup trap and calls the *_stop functions
# from it.

die() { echo "bench/${bench_name:-bench}: $*" >&2; exit 1; }

# The shared Python (bench/lib/): the API client (opsdeck_api.Api) and the
# measuring helpers (benchlib), importable from every script's Python.
export PYTHONPATH="$PWD/bench/lib${PYTHONPATH:+:$PYTHONPATH}"

bench_need() {
  local hint=$1 tool
  shift
  for tool; do
    command -v "$tool" >/dev/null || die "$tool is missing ($hint)"
  done
}

bench_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

bench_load() { echo "load average $(cut -d' ' -f1 /proc/loadavg)"; }

bench_machine() {
  echo "$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

bench_default_bin() { echo "${CARGO_TARGET_DIR:-$HOME/.cache/opsdeck/target}/release/opsdeck"; }

server_pid=""
bench_server_start() {
  DOCKER_HOST=none OPSDECK_DATA_DIR="$1" OPSDECK_LISTEN="127.0.0.1:$port" \
    OPSDECK_ADMIN_PASSWORD="$password" OPSDECK_LOG=warn \
    "$bin" serve >>"$work/opsdeck.log" 2>&1 &
  server_pid=$!
  local i
  for i in $(seq 1 600); do
    curl -fs "$base/readyz" >/dev/null 2>&1 && return 0
    if ! kill -0 "$server_pid" 2>/dev/null; then
      server_pid=""
      tail -n 30 "$work/opsdeck.log" >&2
      die "opsdeck exited"
    fi
    [ "$i" -lt 600 ] || die "opsdeck not ready within 60 s"
    sleep 0.1
  done
}

bench_server_stop() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# ------------------------------------------------------------ private engine
dockerd_pid=""
host="unix://${engine_dir:-/nonexistent}/docker.sock"

bench_engine_needs() {
  [ "$(id -u)" -eq 0 ] || die "$1"
  bench_need "apt-get install docker.io, or make test-deps" dockerd docker
  [ -x /bin/busybox ] || die "/bin/busybox is missing: apt-get install busybox-static"
}

docker_cli() {
  env -u DOCKER_HOST -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY DOCKER_CONFIG="$engine_dir/cli-config" \
    docker -H "$host" "$@"
}

docker_cli_at() {
  local dir=$1
  shift
  env -u DOCKER_HOST -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY DOCKER_CONFIG="$dir/cli-config" \
    docker -H "unix://$dir/docker.sock" "$@"
}

unmount_leftovers() {  # [dir], default $engine_dir
  local m d=${1:-$engine_dir}
  while read -r m; do
    umount --lazy "$m" 2>/dev/null || true
  done < <(awk -v d="$d" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
}

# dir log: a fresh dockerd on dir (socket dir/docker.sock), not waited
# for; sets _dockerd_spawned to its pid.
_dockerd_spawn() {
  local dir=$1 log=$2 old
  if [ -f "$dir/docker.pid" ]; then
    old=$(cat "$dir/docker.pid" 2>/dev/null || true)
    if [ -n "$old" ] && tr '\0' ' ' <"/proc/$old/cmdline" 2>/dev/null | grep -q "$dir"; then
      die "another $bench_name bench engine runs (pid $old)"
    fi
  fi
  unmount_leftovers "$dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  setsid dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
    -H "unix://$dir/docker.sock" --data-root "$dir/data" --exec-root "$dir/exec" \
    --pidfile "$dir/docker.pid" </dev/null >"$log" 2>&1 &
  _dockerd_spawned=$!
}

# dir pid log: waits (60 s at most) until the dockerd answers, then builds
# $image on it. Runs in a subshell too (several engines side by side).
_dockerd_ready() {
  local dir=$1 pid=$2 log=$3 i
  for i in $(seq 1 300); do
    docker_cli_at "$dir" version --format '{{.Server.Version}}' >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$log" >&2; die "dockerd exited"; }
    [ "$i" -lt 300 ] || die "dockerd did not answer within 60 s"
    sleep 0.2
  done
  local ctx="$dir/build" out
  mkdir -p "$ctx"
  cp /bin/busybox "$ctx/busybox"
  printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' 'RUN ["/bin/busybox", "--install", "-s", "/bin"]' >"$ctx/Dockerfile"
  if ! out=$(DOCKER_BUILDKIT=0 docker_cli_at "$dir" build --quiet --network=none --tag "$image" "$ctx" 2>&1); then
    echo "$out" >&2
    die "building $image failed"
  fi
}

_dockerd_remove_containers() {  # dir
  local ids
  mapfile -t ids < <(docker_cli_at "$1" ps --all --quiet 2>/dev/null || true)
  [ ${#ids[@]} -eq 0 ] || docker_cli_at "$1" rm --force --volumes "${ids[@]}" >/dev/null 2>&1 || true
}

_dockerd_wait_gone() {  # pid: 30 s after SIGTERM, then SIGKILL
  for _ in $(seq 1 300); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

bench_dockerd_start() {
  host="unix://$engine_dir/docker.sock"
  _dockerd_spawn "$engine_dir" "$work/dockerd.log"
  dockerd_pid=$_dockerd_spawned
  _dockerd_ready "$engine_dir" "$dockerd_pid" "$work/dockerd.log"
  engine_version=$(docker_cli version --format '{{.Server.Version}}')
}

bench_dockerd_stop() {
  [ -n "$dockerd_pid" ] || return 0
  if kill -0 "$dockerd_pid" 2>/dev/null; then
    _dockerd_remove_containers "$engine_dir"
    kill -TERM "$dockerd_pid" 2>/dev/null || true
    _dockerd_wait_gone "$dockerd_pid"
  fi
  unmount_leftovers
  rm -rf "$engine_dir"
  dockerd_pid=""
}

dockerd_dirs=()
dockerd_pids=()
bench_dockerds_start() {
  local n=$1 prefix=$2 i failed=0 waits=()
  for i in $(seq 1 "$n"); do
    _dockerd_spawn "$prefix$i" "$work/dockerd$i.log"
    dockerd_dirs+=("$prefix$i")
    dockerd_pids+=("$_dockerd_spawned")
  done
  # Each takes seconds (its containerd, the image build): side by side.
  for i in $(seq 1 "$n"); do
    _dockerd_ready "${dockerd_dirs[i - 1]}" "${dockerd_pids[i - 1]}" "$work/dockerd$i.log" &
    waits+=($!)
  done
  for i in "${waits[@]}"; do
    wait "$i" || failed=1
  done
  [ "$failed" -eq 0 ] || die "a private dockerd did not come up"
  engine_version=$(docker_cli_at "${dockerd_dirs[0]}" version --format '{{.Server.Version}}')
}

bench_dockerds_stop() {
  [ ${#dockerd_pids[@]} -gt 0 ] || return 0
  local i pid waits=()
  for i in "${!dockerd_pids[@]}"; do
    if kill -0 "${dockerd_pids[i]}" 2>/dev/null; then
      _dockerd_remove_containers "${dockerd_dirs[i]}" &
      waits+=($!)
    fi
  done
  for pid in "${waits[@]}"; do wait "$pid" || true; done
  for pid in "${dockerd_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${dockerd_pids[@]}"; do _dockerd_wait_gone "$pid"; done
  for i in "${dockerd_dirs[@]}"; do
    unmount_leftovers "$i"
    rm -rf "$i"
  done
  dockerd_pids=()
  dockerd_dirs=()
}

# ------------------------------------------------------------- chromedriver
driver_pid=""
driver_port=""
bench_chromedriver_start() {
  driver_port=$(bench_free_port)
  setsid "${chromedriver:-/usr/bin/chromedriver}" --port="$driver_port" --allowed-ips=127.0.0.1 \
    </dev/null >"$work/chromedriver.log" 2>&1 &
  driver_pid=$!
}

bench_chromedriver_stop() {
  [ -n "$driver_pid" ] || return 0
  # Its own session: the browsers it started go with it.
  kill -TERM -- "-$driver_pid" 2>/dev/null || true
  wait "$driver_pid" 2>/dev/null || true
  driver_pid=""
}
