#!/usr/bin/env bash
# Starts the whole fleet: PostgreSQL, Redis, the orchestrator, agent1-agent5, the dashboard, and the Claude
# simulator when no ANTHROPIC_API_KEY is set. Running it again while the fleet is up changes nothing;
# scripts/stop.sh stops it.
#
# When a Docker engine answers: `docker compose up` of docker-compose.yml, waiting until every container is
# healthy. Otherwise native processes from .venv, with PostgreSQL and Redis at the configured URLs, or
# throwaway local ones under .data/ when none answer. `--native` or `--docker` chooses instead.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
source scripts/lib/services.sh
source scripts/lib/compose.sh
source scripts/lib/settings.sh

FLEET_DIR="$DATA_DIR/fleet"
LOG_DIR="$FLEET_DIR/logs"
PID_DIR="$FLEET_DIR/pids"
HEALTH_TIMEOUT_SECONDS=90
COMPOSE_WAIT_SECONDS=600  # the first start builds the images

# name port capabilities (seed 003; docker-compose.yml has the same fleet, a test keeps them equal)
AGENTS=(
    "agent1 8001 DATA_ANALYSIS,CODE_GENERATION"
    "agent2 8002 WEB_SCRAPING,API_INTEGRATION"
    "agent3 8003 FILE_PROCESSING,DATABASE_OPERATIONS"
    "agent4 8004 CODE_GENERATION,API_INTEGRATION"
    "agent5 8005 DATA_ANALYSIS,DATABASE_OPERATIONS"
)

running_pid() {
    local pidfile="$PID_DIR/$1.pid"
    [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && cat "$pidfile"
}

launch() {
    local name="$1"; shift
    if running_pid "$name" >/dev/null; then return 0; fi
    nohup "$@" >"$LOG_DIR/$name.log" 2>&1 &
    echo $! >"$PID_DIR/$name.pid"
}

wait_healthy() {
    local name="$1" url="$2"
    "$VENV/bin/python" - "$name" "$url" "$HEALTH_TIMEOUT_SECONDS" "$PID_DIR/$name.pid" <<'EOF' || die "$name did not become healthy; see $LOG_DIR/$name.log"
import os, sys, time
import httpx

name, url, timeout, pidfile = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
deadline = time.monotonic() + timeout
pid = int(open(pidfile).read())
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(f"{name} exited during start-up")
    try:
        if httpx.get(url, timeout=2).status_code == 200:
            sys.exit(0)
    except httpx.HTTPError:
        pass
    time.sleep(0.3)
sys.exit(f"{name} gave no healthy answer at {url} within {timeout:.0f} s")
EOF
}

print_offline_banner() {
    printf '\033[1;33m%s\033[0m\n' \
        "################################################################################" \
        "#  OFFLINE MODE: ANTHROPIC_API_KEY is not set.                                #" \
        "#  Claude is replaced by the local simulator (simulator/scenarios/demo.yaml). #" \
        "#  Every plan and answer is SIMULATED and labelled so in the API and UI.      #" \
        "################################################################################" >&2
}

print_urls() {
    local logs="$1" python="$2" api="http://localhost:$3" dashboard="http://localhost:$4"
    cat <<EOF

  Orchestrator API   $api        (docs: $api/docs)
  Dashboard          $dashboard
  Agents             http://localhost:8001 ... http://localhost:8005
  API key            ${ORCHESTRATOR_API_KEY:-none}   (operator; kept in .data/fleet/api-key)
  Logs               $logs
  Stop               scripts/stop.sh

  Try it:  curl -X POST -H "Authorization: Bearer \$(cat .data/fleet/api-key)" \\
                '$api/tasks?description=Calculate%20factorial%20of%2010'
           $python scripts/test_system.py --url $api
EOF
}

# The operator key the dashboard and scripts/test_system.py use. The command after the URL runs the orchestrator's
# CLI (its last line is the new key) on the first start, once the orchestrator has migrated its database.
ensure_operator_key() {
    local url="$1"; shift
    ensure_api_key "$url" "$API_KEY_FILE" -- "$@" api-keys create --tenant "${TENANT_ID:-default}" \
        --name fleet-operator --scope operator
}

start_with_docker() {
    local profile=()
    if [ -z "${ANTHROPIC_API_KEY:-}" ]; then
        # docker-compose.yml passes these two to the containers; the simulator is the `simulator` service.
        export ANTHROPIC_BASE_URL=http://simulator:8090 CLAUDE_SIMULATED=true
        profile=(--profile simulator)
    fi
    say "a Docker engine answers: starting the fleet with docker compose (the first start builds the images)"
    # The dashboard starts with the kept key; docker-compose.yml passes ORCHESTRATOR_API_KEY on to it.
    local dashboard_key="${ORCHESTRATOR_API_KEY:-$(cat "$API_KEY_FILE" 2>/dev/null || true)}"
    if ! ORCHESTRATOR_API_KEY="$dashboard_key" compose "${profile[@]}" up --detach --build --wait \
        --wait-timeout "$COMPOSE_WAIT_SECONDS"; then
        compose "${profile[@]}" ps --all >&2 || true
        die "the fleet did not become healthy; see docker compose logs [service]"
    fi
    ensure_operator_key "http://localhost:${ORCHESTRATOR_PORT:-8000}" compose exec -T orchestrator python -m orchestrator \
        || true
    if [ "$ORCHESTRATOR_API_KEY" != "$dashboard_key" ]; then  # a new key: the dashboard's container is made again
        compose "${profile[@]}" up --detach --wait streamlit || die "the dashboard did not start with the new API key"
    fi
    if [ ${#profile[@]} -gt 0 ]; then print_offline_banner; fi
    say "the fleet is up"
    # test_system.py needs httpx: the .venv has it; elsewhere `pip install httpx` first.
    local python=python3
    if [ -x "$VENV/bin/python" ]; then python=.venv/bin/python; fi
    # docker-compose.yml publishes the orchestrator and the dashboard on these host ports (from .env too).
    print_urls "docker compose logs [service]" "$python" "${ORCHESTRATOR_PORT:-8000}" "${STREAMLIT_PORT:-8501}"
}

MODE=""
case "${1:-}" in
    --native) MODE=native ;;
    --docker) MODE=docker ;;
    "") if docker_engine_answers; then MODE=docker; else MODE=native; fi ;;
    *) die "usage: scripts/start.sh [--native | --docker]" ;;
esac

source_env_file .env  # a setting the environment gives wins, as in the services themselves
# The agents the orchestrator starts keep their pidfiles and logs beside ours, where scripts/stop.sh finds them.
PID_DIR="${FLEET_PID_DIR:-$PID_DIR}"
export FLEET_PID_DIR="$PID_DIR" FLEET_LOG_DIR="${FLEET_LOG_DIR:-$LOG_DIR}"
# The agents' data-source reader logs in with this password wherever the server asks for one (docs/security.md).
export AGENT_DATA_PASSWORD="${AGENT_DATA_PASSWORD:-$(kept_secret "$FLEET_DIR/agent-data-password")}"
# The orchestrator signs the agents' assignments with it, and they check them (docs/security.md).
export FLEET_SECRET="${FLEET_SECRET:-$(kept_secret "$FLEET_DIR/fleet-secret")}"
API_KEY_FILE="$FLEET_DIR/api-key"

if [ "$MODE" = docker ]; then
    docker_engine_answers || die "--docker: no Docker engine answers (docker info failed)"
    start_with_docker
    exit 0
fi

export POSTGRES_URL="${POSTGRES_URL:-postgresql://postgres:postgres@localhost:5432/multi_agent_db}"
export REDIS_URL="${REDIS_URL:-redis://localhost:6379/0}"
# The orchestrator and the dashboard read these too (shared/config.py), so one setting moves both ends.
export ORCHESTRATOR_PORT="${ORCHESTRATOR_PORT:-8000}" STREAMLIT_PORT="${STREAMLIT_PORT:-8501}"
export ORCHESTRATOR_URL="${ORCHESTRATOR_URL:-http://localhost:$ORCHESTRATOR_PORT}"
mkdir -p "$LOG_DIR" "$PID_DIR"

if running_pid orchestrator >/dev/null; then
    export ORCHESTRATOR_API_KEY="${ORCHESTRATOR_API_KEY:-$(cat "$API_KEY_FILE" 2>/dev/null || true)}"
    say "the fleet is already running (orchestrator PID $(running_pid orchestrator)); nothing started"
    print_urls "$LOG_DIR/" .venv/bin/python "$ORCHESTRATOR_PORT" "$STREAMLIT_PORT"
    exit 0
fi

say "starting the fleet as native processes (no Docker engine answers, or --native)"

ensure_venv requirements.txt
# The sandbox the code role's run_command runs in; without it the agents start without that tool and say why.
[ "${CODE_SANDBOX:-bwrap}" = off ] || apt_install bubblewrap
ensure_backing_services fleet 55433 56380
printf '%s\n' "${STARTED_SERVICES[@]}" >"$FLEET_DIR/started-services"
export POSTGRES_URL REDIS_URL
# The database database_query reads and its least-privilege login; the fleet starts without it, the tool then says why.
"$VENV/bin/python" -m shared.database.data_source \
    || say "database_query answers with an error until the agents' data source is ready (see above)"

if [ -z "${ANTHROPIC_API_KEY:-}" ]; then
    launch simulator "$VENV/bin/python" -m simulator --host 127.0.0.1 --port 8090 \
        --scenarios simulator/scenarios/demo.yaml --request-log "$LOG_DIR/simulator-requests.jsonl"
    wait_healthy simulator http://127.0.0.1:8090/api/hello
    export ANTHROPIC_BASE_URL=http://127.0.0.1:8090 CLAUDE_SIMULATED=true
    print_offline_banner
fi

# The orchestrator migrates the database before it answers; the agents start once it does (as in compose).
launch orchestrator "$VENV/bin/python" -m orchestrator
wait_healthy orchestrator "http://127.0.0.1:$ORCHESTRATOR_PORT/health"
ensure_operator_key "http://127.0.0.1:$ORCHESTRATOR_PORT" "$VENV/bin/python" -m orchestrator || true
for agent in "${AGENTS[@]}"; do
    read -r name port capabilities <<<"$agent"
    AGENT_ID="$name" AGENT_PORT="$port" AGENT_CAPABILITIES="$capabilities" \
        launch "$name" "$VENV/bin/python" -m agent
done
launch dashboard "$VENV/bin/streamlit" run ui/streamlit_app.py --server.port "$STREAMLIT_PORT" \
    --server.address "${STREAMLIT_ADDRESS:-127.0.0.1}" --server.headless true \
    --browser.gatherUsageStats false

for agent in "${AGENTS[@]}"; do
    read -r name port _ <<<"$agent"
    wait_healthy "$name" "http://127.0.0.1:$port/health"
done
wait_healthy dashboard "http://127.0.0.1:$STREAMLIT_PORT/_stcore/health"
say "the fleet is up"
print_urls "$LOG_DIR/" .venv/bin/python "$ORCHESTRATOR_PORT" "$STREAMLIT_PORT"
