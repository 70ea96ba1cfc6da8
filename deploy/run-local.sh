#!/usr/bin/env bash
# Start the gateway as it runs in production, here: DAPHNES daphne processes behind nginx, on
# the local PostgreSQL and Redis. `make deploy-local`; stop with Ctrl-C (everything stops).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
DAPHNES=${DAPHNES:-2}
FIRST_PORT=${FIRST_PORT:-8101}
LISTEN=${LISTEN:-127.0.0.1:8080}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/aktienanalyse}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export DJANGO_BEHIND_PROXY=1
export DJANGO_ALLOWED_HOSTS=${DJANGO_ALLOWED_HOSTS:-localhost,127.0.0.1}
export PYTHONUNBUFFERED=1
RUN_DIR=var/deploy
mkdir -p "$RUN_DIR"

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
"$PY" manage.py demo_data
"$PY" manage.py collectstatic --noinput >/dev/null

pids=()
stop() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop EXIT INT TERM

ports=()
for ((i = 0; i < DAPHNES; i++)); do
    port=$((FIRST_PORT + i))
    ports+=("$port")
    SERVICE_NAME="aktienanalyse-gateway-$port" "$PY" -m realtime.server -b 127.0.0.1 -p "$port" \
        --proxy-headers \
        --websocket-max-message-size 65536 \
        --ping-interval 35 --ping-timeout 30 \
        aktienanalyse.asgi:application >"$RUN_DIR/daphne-$port.log" 2>&1 &
    pids+=("$!")
done

"$PY" deploy/render_nginx.py --ports "$(IFS=,; echo "${ports[*]}")" --listen "$LISTEN" \
    --prefix "$RUN_DIR" --static-root static_root --out "$RUN_DIR/nginx.conf"
nginx -t -q -p "$RUN_DIR" -c "$(pwd)/$RUN_DIR/nginx.conf"
nginx -p "$RUN_DIR" -c "$(pwd)/$RUN_DIR/nginx.conf" -g "daemon off;" &
nginx_pid=$!
pids+=("$nginx_pid")

echo "Gateway: http://$LISTEN/ (nginx) -> daphne on ports ${ports[*]}; logs in $RUN_DIR/"
echo "PostgreSQL: $DATABASE_URL   Redis: $REDIS_URL   (stop with Ctrl-C)"
# A daphne process that dies leaves the others serving (its clients reconnect through nginx);
# the deployment ends with nginx or Ctrl-C.
wait "$nginx_pid" || true
