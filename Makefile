# Opsdeck: two commands do all the set-up.
#   make run    build everything (release) and serve the panel on http://127.0.0.1:8080
#   make test   install what the tests need and run every test
#   make bench  run the benchmarks (see BENCHMARKS.md)
#
# Build output and tools live outside the clone (OPSDECK_CACHE), so later runs
# reuse them; everything still works when that directory is empty.

SHELL := /bin/bash
OPSDECK_CACHE ?= $(HOME)/.cache/opsdeck
TOOLS := $(OPSDECK_CACHE)/tools
export PATH := $(TOOLS)/bin:$(HOME)/.cargo/bin:$(PATH)
export CARGO_TARGET_DIR ?= $(OPSDECK_CACHE)/target
# Compile-checked SQL uses the committed .sqlx data: no database needed to build.
export SQLX_OFFLINE ?= true

BIN_RELEASE := $(CARGO_TARGET_DIR)/release/opsdeck
DIST := frontend/dist/index.html
FRONTEND_SOURCES := $(shell find frontend/src wire/src static -type f 2>/dev/null) \
	frontend/index.html frontend/Trunk.toml frontend/Cargo.toml wire/Cargo.toml Cargo.toml Cargo.lock .cargo/config.toml

.PHONY: run demo test chaos bench bench-backups bench-updates bench-logs bench-ssh bench-fleet bench-scrape bench-resources bench-load bench-ratelimit bench-compare tools test-deps frontend server check-sqlx sqlx-prepare fmt lint clean-cache

run: tools $(DIST) server
	@echo "==> starting Opsdeck (Ctrl-C stops it and its Postgres)"
	exec $(BIN_RELEASE) serve

# A live panel over a busybox stand-in of the MosAIc stack on a private
# Docker Engine (root; needs docker.io and busybox-static: make test-deps).
demo: tools $(DIST) server
	@scripts/demo.sh "$(BIN_RELEASE)"

tools:
	@scripts/install-build-tools.sh "$(TOOLS)"

frontend: tools $(DIST)

$(DIST): $(FRONTEND_SOURCES)
	@echo "==> building the SPA (trunk, release)"
	cd frontend && trunk build --release
	@scripts/precompress.sh frontend/dist
	@touch $(DIST)

server:
	cargo build --release -p opsdeck --bin opsdeck

test-deps:
	@scripts/install-test-deps.sh

test: test-deps tools $(DIST)
	python3 scripts/check-structure.py --enforce bollard,http,cycles,size
	python3 scripts/check-bundle.py frontend/dist
	cargo build -p opsdeck --bin opsdeck
	cargo test --workspace --exclude opsdeck-frontend -- --test-threads=4

# The fault suite alone; make test runs it too (so CI does). Postgres
# restarted and the Docker engine killed under a running panel, three
# replicas on one database, and Opsdeck killed -9 during a runbook, a local
# and an S3 backup, an escalation and a maintenance actuation.
CHAOS := faults:: replicas:: a_killed_server_leaves a_cancelled_or_killed_s3_upload \
	a_restart_mid_escalation two_processes_ a_server_killed_mid_enable
chaos: test-deps tools $(DIST)
	cargo build -p opsdeck --bin opsdeck
	cargo test -p opsdeck-e2e --test e2e -- --test-threads=4 $(CHAOS)

bench: tools $(DIST) server
	cargo build --release -p opsdeck-e2e --bin bench-target
	@bench/run.sh

# The rate-limit part of make bench alone (bench/ratelimit.sh: an anonymous
# flood of 10,000 POSTs/s while a logged-in user's status page is timed).
bench-ratelimit: server
	@bench/ratelimit.sh

# The backups part of make bench alone (bench/backups.sh; root, ~10 GB free).
bench-backups: server
	@bench/backups.sh

# The updates part of make bench alone (bench/updates.sh: the gated update
# vs docker compose, rollback time, discovery over 500 services; root).
bench-updates: server
	@bench/updates.sh

# The logs part of make bench alone (bench/logs.sh: a regex search over 10
# services x 1 GiB of logs vs a docker logs | grep loop; root, ~25 GB free;
# BENCH_LOG_MB=64 for a quick run).
bench-logs: server
	@bench/logs.sh

# The SSH part of make bench alone (bench/ssh.sh: inspect and restart over
# ssh:// vs the Unix socket vs docker -H ssh://; root, openssh-server).
bench-ssh: server
	@bench/ssh.sh

# The fleet part of make bench alone (bench/fleet.sh: 100 engines x 60
# containers, the engines socket relays over 4 private dockerds, then 10 of
# them hung: connect time, services page and engines overview p99, the
# dashboard in Chromium, RSS; root).
bench-fleet: tools $(DIST) server
	cargo build --release -p opsdeck-e2e --bin bench-target
	@bench/fleet.sh

# The metric-scrape part alone (bench/health.sh part A with 1,000 metric
# scrape checks every 10 s, the error rate over 60 s of bench-target's
# /metrics/<n>): CPU of opsdeck serve and the schedule lag.
bench-scrape: server
	cargo build --release -p opsdeck-e2e --bin bench-target
	@BENCH_PARTS=A BENCH_CHECKS=1000 BENCH_CHECK_KIND=scrape bench/health.sh

# The resources part of make bench alone (bench/resources.sh: 500 sleeping
# busybox containers sampled every 10 s for 3 minutes on a private dockerd;
# CPU of opsdeck serve and rows written per minute; root).
bench-resources: server
	@bench/resources.sh

# The load part of make bench alone (bench/load.sh: wrk on the main routes,
# a 10-minute soak with checks running; needs wrk).
bench-load: tools $(DIST) server
	@bench/load.sh

# The health, runbooks and incidents parts for the release build of BEFORE
# (a git revision) and of the working tree, side by side in one run
# (bench/compare.sh; root, like the parts that start a private engine).
bench-compare: tools
	@BEFORE="$(BEFORE)" bench/compare.sh

# Regenerates .sqlx (offline query data) against a scratch Postgres; run after
# changing a query or a migration, and commit the result.
sqlx-prepare:
	@scripts/sqlx-prepare.sh "$(TOOLS)"

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --exclude opsdeck-frontend --all-targets -- -D warnings
	cargo clippy -p opsdeck-frontend --target wasm32-unknown-unknown -- -D warnings

clean-cache:
	rm -rf "$(OPSDECK_CACHE)"
