#!/usr/bin/env bash
# Run a command (the test suite) with DATABASE_URL and REDIS_URL pointing at real servers, and say
# which ones: those the environment names; else the machine's PostgreSQL and Redis on their
# default ports when they answer; else servers of this run's own (installed from Debian when
# missing) in a temporary directory, stopped and removed when the command ends. The developer's
# own state (var/, the database `make run` uses) is never touched: pytest-django works in a
# database of its own (test_<name>) and the tests use channel-layer prefixes of their own.
# TEST_SERVICES=own skips the machine's servers and always starts the run's own.
set -euo pipefail
PY=${PY:-.venv/bin/python}
scratch=""
pg_ctl=""
redis_pid=""

# The command's exit status is the script's: the trap keeps $? and every step below succeeds.
cleanup() {
  local status=$?
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; fi
  if [ -n "$pg_ctl" ]; then $pg_ctl -m fast -w stop >/dev/null 2>&1 || true; fi
  if [ -n "$scratch" ]; then rm -rf "$scratch"; fi
  exit "$status"
}
trap cleanup EXIT

as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
answers() { $PY -c "$1" >/dev/null 2>&1; }
need_debian() {
  local missing=("$@")
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "Installing ${missing[*]} from Debian for the test servers ..." >&2
  $sudo apt-get install -y "${missing[@]}" >/dev/null || { $sudo apt-get update >/dev/null && $sudo apt-get install -y "${missing[@]}" >/dev/null; }
}
scratch_dir() {
  [ -n "$scratch" ] || { scratch=$(mktemp -d /tmp/gateway-test-services-XXXXXX); chmod 755 "$scratch"; }
}

if [ -z "${DATABASE_URL:-}" ]; then
  if [ "${TEST_SERVICES:-}" != own ] && answers 'import psycopg; psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3).close()'; then
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
  else
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_debian postgresql
    bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
    scratch_dir
    mkdir "$scratch/pg"
    [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$scratch/pg"
    port=$(free_port)
    as_postgres "$bin/initdb" -D "$scratch/pg/data" -A trust -U postgres >/dev/null
    pg_ctl="as_postgres $bin/pg_ctl -D $scratch/pg/data"
    $pg_ctl -o "-p $port -k $scratch/pg -c listen_addresses=127.0.0.1 -c fsync=off" -w -l "$scratch/pg/log" start >/dev/null
    export DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres
  fi
fi

if [ -z "${REDIS_URL:-}" ]; then
  if [ "${TEST_SERVICES:-}" != own ] && answers 'import redis; redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=3).ping()'; then
    export REDIS_URL=redis://127.0.0.1:6379/0
  else
    command -v redis-server >/dev/null 2>&1 || need_debian redis-server
    scratch_dir
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$scratch" >"$scratch/redis.log" 2>&1 &
    redis_pid=$!
    for _ in $(seq 100); do answers "import redis; redis.Redis(port=$port).ping()" && break; sleep 0.1; done
    export REDIS_URL=redis://127.0.0.1:$port/0
  fi
fi

echo "Tests use PostgreSQL at ${DATABASE_URL%%\?*} and Redis at $REDIS_URL." >&2
"$@"
