#!/usr/bin/env bash
# Start the gateway as it runs in production, here: DAPHNES daphne processes behind nginx and
# FEEDS market_feed processes (one publishes, the others stand by), on the local PostgreSQL and
# Redis. `make deploy-local`; stop with Ctrl-C (everything stops).
#
# Each process runs under a small supervisor that starts it again when it exits, as systemd's
# Restart= does (deploy/systemd/); its pid is in $RUN_DIR/<name>.pid. deploy/rolling-restart.sh
# restarts the daphne processes one at a time through their graceful drain.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
DAPHNES=${DAPHNES:-2}
FEEDS=${FEEDS:-2}
FIRST_PORT=${FIRST_PORT:-8101}
LISTEN=${LISTEN:-127.0.0.1:8080}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/aktienanalyse}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export DJANGO_BEHIND_PROXY=1
export DJANGO_ALLOWED_HOSTS=${DJANGO_ALLOWED_HOSTS:-localhost,127.0.0.1}
export PYTHONUNBUFFERED=1
RUN_DIR=${RUN_DIR:-var/deploy}
mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)

"$PY" - <<'PY'
import os, socket, sys
from urllib.parse import urlparse
for name in ("DATABASE_URL", "REDIS_URL"):
    for url in os.environ[name].split(","):
        parsed = urlparse(url.strip())
        try:
            socket.create_connection((parsed.hostname, parsed.port or {"redis": 6379}.get(parsed.scheme, 5432)), timeout=3).close()
        except OSError as exc:
            sys.exit(f"deploy-local needs {name}={url} reachable: {exc}")
PY

if ! command -v nginx >/dev/null; then
    echo "nginx is missing; installing it from the Debian packages"
    apt-get install -y nginx >/dev/null
fi

# The database of this deployment, created on first use.
"$PY" - <<'PY'
import os
from urllib.parse import urlparse
import psycopg
url = urlparse(os.environ["DATABASE_URL"])
if url.scheme.startswith("postgres"):
    name = url.path.lstrip("/")
    admin = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
PY
"$PY" manage.py migrate --noinput
if [[ "${DEMO_DATA:-1}" == 1 ]]; then
    "$PY" manage.py demo_data
fi
"$PY" manage.py collectstatic --noinput >/dev/null

pids=()
stop() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop EXIT INT TERM

# supervise NAME COMMAND...: run COMMAND (output to $RUN_DIR/NAME.log, pid in $RUN_DIR/NAME.pid)
# and start it again whenever it exits, until the deployment stops; stopping the supervisor
# sends the process SIGTERM and waits for it (a daphne drains, a feed gives up its lease).
supervise() {
    local name=$1
    shift
    (
        child=
        trap '[[ -n "$child" ]] && kill -TERM "$child" 2>/dev/null; [[ -n "$child" ]] && wait "$child"; exit 0' TERM INT
        while true; do
            "$@" >>"$RUN_DIR/$name.log" 2>&1 &
            child=$!
            echo "$child" >"$RUN_DIR/$name.pid"
            wait "$child" || echo "$(date '+%F %T') $name exited with status $?; starting it again" >>"$RUN_DIR/$name.log"
            sleep 0.5  # a process that cannot start does not spin
        done
    ) &
    pids+=("$!")
}

# The gateway processes run on jemalloc when it is installed, as the systemd unit has them
# (docs/operations.md, "Memory"); GATEWAY_ALLOCATOR=system keeps glibc's malloc.
gateway_env=()
if [[ ${GATEWAY_ALLOCATOR:-jemalloc} == jemalloc ]] && ldconfig -p 2>/dev/null | grep -q 'libjemalloc\.so\.2 '; then
    gateway_env=(LD_PRELOAD=libjemalloc.so.2)
fi

rm -f "$RUN_DIR"/daphne-*.pid "$RUN_DIR"/feed-*.pid
ports=()
for ((i = 0; i < DAPHNES; i++)); do
    port=$((FIRST_PORT + i))
    ports+=("$port")
    supervise "daphne-$port" env "${gateway_env[@]}" SERVICE_NAME="aktienanalyse-gateway-$port" \
        "$PY" -m realtime.server -b 127.0.0.1 -p "$port" \
        --proxy-headers \
        --websocket-max-message-size 65536 \
        --ping-interval 35 --ping-timeout 30 --websocket_connect_timeout 30 \
        aktienanalyse.asgi:application
done
# The price feed: with several, one holds the lease and publishes, the others stand by.
for ((i = 1; i <= FEEDS; i++)); do
    supervise "feed-$i" "$PY" manage.py market_feed
done

"$PY" deploy/render_nginx.py --ports "$(IFS=,; echo "${ports[*]}")" --listen "$LISTEN" \
    --prefix "$RUN_DIR" --static-root static_root --out "$RUN_DIR/nginx.conf"
nginx -t -q -p "$RUN_DIR" -c "$RUN_DIR/nginx.conf"
nginx -p "$RUN_DIR" -c "$RUN_DIR/nginx.conf" -g "daemon off;" &
nginx_pid=$!
pids+=("$nginx_pid")

echo "Gateway: http://$LISTEN/ (nginx) -> daphne on ports ${ports[*]}, $FEEDS market feed(s); logs in $RUN_DIR/"
echo "PostgreSQL: $DATABASE_URL   Redis: $REDIS_URL   (stop with Ctrl-C; restart the daphnes: deploy/rolling-restart.sh)"
# A daphne process that dies is started again while the others serve (its clients reconnect
# through nginx); the deployment ends with nginx or Ctrl-C.
wait "$nginx_pid" || true
