#!/usr/bin/env bash
# Stops exactly what scripts/start.sh started. Native processes by PID: SIGTERM first (agents finish or hand
# back their running subtasks), SIGKILL only for a process still there after the grace period. Containers with
# `docker compose down` when the Docker engine answers and the project has any: the same SIGTERM drain, and
# the named volumes (PostgreSQL data, shared_files) are kept; `docker compose down --volumes` removes them.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
source scripts/lib/services.sh
source scripts/lib/compose.sh
source scripts/lib/settings.sh

source_env_file .env  # FLEET_PID_DIR, as the orchestrator reads it
FLEET_DIR="$DATA_DIR/fleet"
# start.sh's pidfiles and those of the agents the orchestrator started (POST /agents, /pool/initialize): agent-*.pid.
PID_DIR="${FLEET_PID_DIR:-$FLEET_DIR/pids}"
GRACE_SECONDS=40

stop_process() {
    local pidfile="$1" name pid
    name="$(basename "$pidfile" .pid)"
    pid="$(cat "$pidfile")"
    if ! kill -0 "$pid" 2>/dev/null; then
        say "$name (PID $pid) was not running"
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid"
    for _ in $(seq $((GRACE_SECONDS * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        say "$name (PID $pid) did not stop within ${GRACE_SECONDS}s: killed"
    else
        say "stopped $name (PID $pid)"
    fi
    rm -f "$pidfile"
}

stop_containers() {
    # The profile makes `down` include the simulator container when offline mode started one.
    if [ -n "$(compose --profile simulator ps --quiet 2>/dev/null)" ]; then
        say "stopping the fleet's containers (docker compose down)"
        compose --profile simulator down
        return 0
    fi
    return 1
}

containers_stopped=""
if docker_engine_answers && stop_containers; then containers_stopped=1; fi

shopt -s nullglob
pidfiles=("$PID_DIR"/*.pid)
if [ ${#pidfiles[@]} -eq 0 ]; then
    if [ -z "$containers_stopped" ]; then
        say "nothing to stop: no fleet started by scripts/start.sh is recorded in $PID_DIR"
    fi
else
    # Dashboard and orchestrator first so no new work is handed out, then the agents together, then the rest.
    for name in dashboard orchestrator; do
        if [ -f "$PID_DIR/$name.pid" ]; then stop_process "$PID_DIR/$name.pid"; fi
    done
    for pidfile in "$PID_DIR"/agent*.pid; do stop_process "$pidfile" & done
    wait
    for pidfile in "$PID_DIR"/*.pid; do stop_process "$pidfile"; done
fi

if [ -f "$FLEET_DIR/started-services" ]; then
    mapfile -t STARTED_SERVICES <"$FLEET_DIR/started-services"
    stop_started_services fleet
    rm -f "$FLEET_DIR/started-services"
fi
