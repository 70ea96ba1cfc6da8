#!/usr/bin/env bash
# Restart the gateway's daphne processes one at a time, each through its graceful drain:
# SIGTERM (the process turns unready, refuses new sockets, lets commands in flight answer,
# closes its sockets with 1012 so their clients reconnect to the others at once), wait for it
# to exit, wait until its successor on the same port answers /readyz, then the next one.
#
#   deploy/rolling-restart.sh                  the processes of `make deploy-local` (their
#                                              supervisor starts each again; pids in RUN_DIR)
#   SYSTEMD=1 deploy/rolling-restart.sh 8101 8102 8103
#                                              aktienanalyse-gateway@PORT units (deploy/systemd/)
#
# Exit status 1 names the process that did not exit or did not come back ready in time; the
# processes after it are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_DIR=${RUN_DIR:-var/deploy}
HOST=${HOST:-127.0.0.1}
# The drain's bound (REALTIME_DRAIN_TIMEOUT_SECONDS) plus a margin, and the time a new process
# may take to start and become ready.
EXIT_TIMEOUT=${EXIT_TIMEOUT:-$(( ${REALTIME_DRAIN_TIMEOUT_SECONDS:-20} + 10 ))}
READY_TIMEOUT=${READY_TIMEOUT:-60}

log() { echo "$(date '+%T') $*"; }

ready() { curl -fs -o /dev/null --max-time 3 "http://$HOST:$1/readyz"; }

wait_ready() {  # PORT [OLD_PID]: until a process other than OLD_PID answers /readyz on PORT
    local port=$1 old=${2:-} deadline=$((SECONDS + READY_TIMEOUT)) pid
    while ((SECONDS < deadline)); do
        pid=$(cat "$RUN_DIR/daphne-$port.pid" 2>/dev/null || true)
        if [[ -z "$old" || ( -n "$pid" && "$pid" != "$old" ) ]] && ready "$port"; then
            return 0
        fi
        sleep 0.2
    done
    log "daphne on port $port is not ready after ${READY_TIMEOUT}s"
    return 1
}

restart_local() {  # PORT: SIGTERM the supervised process, wait for its exit and its successor
    local port=$1 pid deadline
    pid=$(cat "$RUN_DIR/daphne-$port.pid")
    log "port $port: draining pid $pid"
    kill -TERM "$pid"
    deadline=$((SECONDS + EXIT_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "port $port: pid $pid has not exited after ${EXIT_TIMEOUT}s"
            return 1
        fi
        sleep 0.1
    done
    log "port $port: pid $pid exited; waiting for its successor to be ready"
    wait_ready "$port" "$pid"
}

restart_systemd() {  # PORT: `systemctl restart` stops (drains) and starts the unit, then readiness
    local port=$1
    log "port $port: systemctl restart aktienanalyse-gateway@$port"
    systemctl restart "aktienanalyse-gateway@$port"
    wait_ready "$port"
}

if [[ "${SYSTEMD:-0}" == 1 ]]; then
    (($# > 0)) || { echo "usage: SYSTEMD=1 $0 PORT..." >&2; exit 2; }
    ports=("$@")
else
    ports=()
    for file in "$RUN_DIR"/daphne-*.pid; do
        [[ -e "$file" ]] || { echo "no daphne pid files in $RUN_DIR: is make deploy-local running?" >&2; exit 2; }
        name=${file##*/daphne-}
        ports+=("${name%.pid}")
    done
    ((${#ports[@]} > 1)) || log "warning: only one daphne process: its clients have nowhere to go while it restarts"
fi

for port in "${ports[@]}"; do
    ready "$port" || { log "port $port is not ready before its restart; stopping here"; exit 1; }
    if [[ "${SYSTEMD:-0}" == 1 ]]; then
        restart_systemd "$port" || exit 1
    else
        restart_local "$port" || exit 1
    fi
    log "port $port: ready"
done
log "restarted ${#ports[@]} processes"
