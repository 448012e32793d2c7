#!/usr/bin/env bash
# Regenerates the committed offline query data (.sqlx/) for sqlx's
# compile-checked macros: starts a scratch Postgres cluster, applies the
# migrations, runs `cargo sqlx prepare --workspace`, stops the cluster.
set -euo pipefail
tools=${1:?usage: sqlx-prepare.sh <tools dir>}
export PATH="$tools/bin:$PATH"
cd "$(dirname "$0")/.."
if ! cargo sqlx --version 2>/dev/null | grep -q '0.8'; then
  cargo install sqlx-cli@0.8.6 --no-default-features --features postgres,rustls --root "$tools"
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
dir=$(mktemp -d /tmp/opsdeck-sqlx.XXXXXX)
as=()
if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; as=(runuser -u postgres --); fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${as[@]}" "$bin/initdb" -D "$dir/data" -U opsdeck --auth=trust >/dev/null
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -o "-k $dir -c listen_addresses=127.0.0.1 -p $port" -l "$dir/log" -w start >/dev/null
trap '"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null; rm -rf "$dir"' EXIT
export DATABASE_URL="postgres://opsdeck@127.0.0.1:$port/opsdeck"
createdb -h 127.0.0.1 -p "$port" -U opsdeck opsdeck
cargo sqlx migrate run --source migrations
SQLX_OFFLINE=false cargo sqlx prepare --workspace -- --all-targets --workspace --exclude opsdeck-frontend
