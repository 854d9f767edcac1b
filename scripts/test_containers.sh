#!/usr/bin/env bash
# Builds the container deployment and runs it for real, with podman instead of a Docker engine: the three images of
# the Dockerfiles, PostgreSQL 15 and Redis images from Debian's packages, and the whole compose fleet (simulator
# profile, offline) on a bridge network of its own through podman-compose. Then scripts/test_system.py against it,
# a code task whose program runs in an agent's sandbox, a restart of one agent's container and of the
# orchestrator's with tasks submitted around each (all must complete), and everything torn down, podman's storage
# included.
#
# No registry is reached: the base image is Debian bookworm made by mmdebstrap (its root file system is cached in
# .data/containers/cache/ between runs), and the Dockerfiles build on it through their BASE_IMAGE argument.
# Podman's configuration, storage, run state and networks live under .data/containers/ (CONTAINERS_CONF,
# CONTAINERS_STORAGE_CONF), never in the system's; the project name, containers, volumes, network and the one
# published port (127.0.0.1:$CT_ORCHESTRATOR_PORT) are the test's own, so a fleet of scripts/start.sh is never met.
# Installs what it lacks (Debian's podman, runc, mmdebstrap; podman-compose in a venv of its own).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
source scripts/lib/services.sh

CT_DIR="$DATA_DIR/containers"
CACHE_DIR="$CT_DIR/cache"  # kept between runs
STATE_DIR="$CT_DIR/state"  # podman's storage, run state and networks: removed at the end
LOG_DIR="$CT_DIR/logs"     # build and container logs of the last run, kept to read
VENV="$CT_DIR/venv"        # podman-compose; services.sh's ensure_venv installs into $VENV
PROJECT=mats-ctest
CT_ORCHESTRATOR_PORT="${CT_ORCHESTRATOR_PORT:-18700}"
ORCHESTRATOR_URL="http://127.0.0.1:$CT_ORCHESTRATOR_PORT"
BASE_IMAGE=localhost/mats-ctest-base:bookworm
export POSTGRES_IMAGE=localhost/mats-ctest-postgres:15 REDIS_IMAGE=localhost/mats-ctest-redis:7
HEALTHY_WITHIN_SECONDS=240
TASKS_WITHIN_SECONDS=300

phase_started=$SECONDS
TIMINGS=()
phase_done() {
    TIMINGS+=("$1 $((SECONDS - phase_started))s")
    say "$1 took $((SECONDS - phase_started)) s"
    phase_started=$SECONDS
}

install_tools() {
    # runc: crun refuses a host with mixed cgroup hierarchies. netavark and aardvark-dns: the bridge network and
    # its service names. No recommends: podman's would pull in a second network stack and rootless helpers.
    apt_install podman runc conmon netavark aardvark-dns iptables mmdebstrap
    ensure_venv tests/containers/requirements.txt
}

write_podman_config() {
    mkdir -p "$STATE_DIR"/{storage,run,tmp,networks} "$LOG_DIR"
    # Default ulimits spelled out: podman would raise nofile/nproc to the host's hard limits, which this kind of
    # sandbox does not permit. cgroupfs and file events: there is no systemd to ask.
    cat >"$CT_DIR/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[network]
network_backend = "netavark"
network_config_dir = "$STATE_DIR/networks"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$STATE_DIR/events.log"
tmp_dir = "$STATE_DIR/tmp"
volume_path = "$STATE_DIR/storage/volumes"
EOF
    cat >"$CT_DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$STATE_DIR/storage"
runroot = "$STATE_DIR/run"
EOF
    # No registry is used: short names resolve only to images built here.
    printf 'unqualified-search-registries = []\nshort-name-mode = "permissive"\n' >"$CT_DIR/registries.conf"
    export CONTAINERS_CONF="$CT_DIR/containers.conf" CONTAINERS_STORAGE_CONF="$CT_DIR/storage.conf" \
        CONTAINERS_REGISTRIES_CONF="$CT_DIR/registries.conf"
}

# The base image: Debian bookworm's Python 3.11 where the Dockerfiles expect python:3.11-slim. The host's extra CA
# certificates go in (pip and apt in the builds go through this network's proxy), and Debian's EXTERNALLY-MANAGED
# marker goes out (the images pip-install system-wide, as python:3.11-slim lets them).
base_image() {
    local recipe="minbase passwd,python3-venv,python3-pip,python-is-python3,ca-certificates" digest rootfs
    digest="$( (echo "$recipe"; cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true) | sha256sum)"
    digest="${digest:0:16}"
    rootfs="$CACHE_DIR/base-bookworm-$digest.tar"
    if [ ! -s "$rootfs" ]; then
        say "making the base image's root file system with mmdebstrap (cached in $CACHE_DIR)"
        rm -rf "$CACHE_DIR" && mkdir -p "$CACHE_DIR"
        mmdebstrap --quiet --format=tar --variant=minbase --include="${recipe#* }" \
            --customize-hook='cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" || true' \
            --customize-hook='chroot "$1" update-ca-certificates >/dev/null' \
            --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
            bookworm "$rootfs.partial" >"$LOG_DIR/mmdebstrap.log" 2>&1 \
            || { tail -n 30 "$LOG_DIR/mmdebstrap.log" >&2; die "mmdebstrap failed; see $LOG_DIR/mmdebstrap.log"; }
        mv "$rootfs.partial" "$rootfs"
    fi
    podman import --quiet --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["python"]' "$rootfs" "$BASE_IMAGE" >/dev/null
}

# --format docker: the OCI format has no HEALTHCHECK, and the images' own checks are what is under test.
build_image() {
    local tag="$1" dockerfile="$2" context="$3" log
    log="$LOG_DIR/build-$(basename "$dockerfile").log"
    say "building $tag from $dockerfile"
    podman build --format docker --pull=never --build-arg "BASE_IMAGE=$BASE_IMAGE" -f "$dockerfile" -t "$tag" \
        "$context" >"$log" 2>&1 || { tail -n 40 "$log" >&2; die "building $tag failed; see $log"; }
}

build_images() {
    build_image mats-orchestrator:local Dockerfile.orchestrator .
    build_image mats-agent:local Dockerfile.agent .
    build_image mats-streamlit:local Dockerfile.streamlit .
    build_image "$POSTGRES_IMAGE" tests/containers/postgres.Dockerfile tests/containers
    build_image "$REDIS_IMAGE" tests/containers/redis.Dockerfile tests/containers
    podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -v mats-ctest-base | sed 's/^/    /' >&2
}

compose() { "$VENV/bin/podman-compose" --project-name "$PROJECT" -f "$CT_DIR/docker-compose.yml" "$@"; }

container_of() { echo "${PROJECT}_$1_1"; }

# podman runs health checks only when asked here (no systemd timers), and podman-compose ignores `condition:
# service_healthy` below podman 4.6: so this runs each container's own check until it passes, in the start order
# the compose file's depends_on gives Docker.
wait_healthy() {
    local deadline=$((SECONDS + HEALTHY_WITHIN_SECONDS)) service container pending
    pending=("$@")
    while [ ${#pending[@]} -gt 0 ]; do
        local still=()
        for service in "${pending[@]}"; do
            container="$(container_of "$service")"
            if ! timeout 30 podman healthcheck run "$container" >/dev/null 2>&1; then still+=("$service"); fi
        done
        pending=("${still[@]+"${still[@]}"}")
        [ ${#pending[@]} -eq 0 ] && break
        if [ $SECONDS -ge $deadline ]; then
            for service in "${pending[@]}"; do
                podman ps --all --filter "name=$(container_of "$service")" --format '{{.Names}} {{.Status}}' >&2
                podman logs --tail 30 "$(container_of "$service")" >&2 || true
            done
            die "not healthy within ${HEALTHY_WITHIN_SECONDS}s: ${pending[*]}"
        fi
        sleep 2
    done
    say "healthy: $*"
}

start_fleet() {
    "$VENV/bin/python" tests/containers/compose_copy.py docker-compose.yml "$CT_DIR/docker-compose.yml" "$PROJECT" \
        "$CT_ORCHESTRATOR_PORT"
    export ANTHROPIC_BASE_URL=http://simulator:8090 CLAUDE_SIMULATED=true ANTHROPIC_API_KEY=""
    FLEET_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    AGENT_DATA_PASSWORD="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    export FLEET_SECRET AGENT_DATA_PASSWORD
    local agents=(agent1 agent2 agent3 agent4 agent5)
    compose --profile simulator up --detach --no-deps postgres redis simulator >"$LOG_DIR/compose-up.log" 2>&1 \
        || { tail -n 30 "$LOG_DIR/compose-up.log" >&2; die "podman-compose up failed"; }
    wait_healthy postgres redis simulator
    compose --profile simulator up --detach --no-deps orchestrator >>"$LOG_DIR/compose-up.log" 2>&1 \
        || { tail -n 30 "$LOG_DIR/compose-up.log" >&2; die "podman-compose up failed"; }
    wait_healthy orchestrator
    compose --profile simulator up --detach --no-deps "${agents[@]}" streamlit >>"$LOG_DIR/compose-up.log" 2>&1 \
        || { tail -n 30 "$LOG_DIR/compose-up.log" >&2; die "podman-compose up failed"; }
    wait_healthy "${agents[@]}" streamlit
    create_api_key
}

# The operator key, made by the orchestrator's CLI in its container. There, once in seven runs, `postgres` did not
# resolve right after the agents joined the network ("Name or service not known") while every service's own
# connections held: a failed try is said and made again, twice.
create_api_key() {
    local try output
    for try in 1 2 3; do
        output="$(podman exec "$(container_of orchestrator)" python -m orchestrator api-keys create --tenant default \
            --name "container-test-$try" --scope operator 2>>"$LOG_DIR/api-key.log")" || true
        ORCHESTRATOR_API_KEY="$(tail -n 1 <<<"$output" | tr -d '\r\n')"
        if [[ "$ORCHESTRATOR_API_KEY" == mats_* ]]; then
            export ORCHESTRATOR_API_KEY
            return 0
        fi
        say "try $try: the orchestrator's CLI made no API key: $(tail -n 1 "$LOG_DIR/api-key.log")"
        sleep 2
    done
    die "the orchestrator's CLI made no API key ($LOG_DIR/api-key.log)"
}

fleet_tasks() { "$VENV/bin/python" tests/containers/fleet_tasks.py --url "$ORCHESTRATOR_URL" "$@"; }

# Every agent's code sandbox started (none offers its roles without run_command), and a code task's program ran in
# one: the demo's slugify task, whose answer quotes what the program printed.
sandbox_checks() {
    local service unavailable
    for service in agent1 agent2 agent3 agent4 agent5; do
        unavailable="$(podman logs "$(container_of "$service")" 2>&1 | grep -F code_sandbox_unavailable || true)"
        [ -z "$unavailable" ] || die "$service's code sandbox did not start: $unavailable"
    done
    fleet_tasks sandbox --timeout "$TASKS_WITHIN_SECONDS" || die "the code task's program did not run in the sandbox"
}

# Tasks submitted before and after each restart must all complete: nothing the fleet accepted is lost.
restart_checks() {
    local task_ids=() service
    for service in agent1 orchestrator; do
        mapfile -t -O ${#task_ids[@]} task_ids < <(fleet_tasks submit 3)
        say "restarting $service's container with tasks in flight"
        podman restart "$(container_of "$service")" >/dev/null
        wait_healthy "$service"
        mapfile -t -O ${#task_ids[@]} task_ids < <(fleet_tasks submit 3)
    done
    fleet_tasks wait --timeout "$TASKS_WITHIN_SECONDS" "${task_ids[@]}"
}

# Docker Compose's `down` stops the services in reverse start order; podman-compose stops them all at once, so an
# agent would shut down with its orchestrator and Redis already gone. A container SIGTERM did not stop (exit 137)
# is reported: each service is meant to drain and exit within its grace period.
stop_fleet() {
    local stage container
    for stage in "agent1 agent2 agent3 agent4 agent5 streamlit" orchestrator "simulator postgres redis"; do
        local containers=()
        for container in $stage; do containers+=("$(container_of "$container")"); done
        podman stop --ignore --time 40 "${containers[@]}" >/dev/null 2>&1
    done
    for container in $(podman ps --all --format '{{.Names}}'); do
        if [ "$(podman inspect --format '{{.State.ExitCode}}' "$container")" = 137 ]; then
            say "$container did not stop on SIGTERM within its grace period: killed"
        fi
    done
}

save_logs() {
    local container
    for container in $(podman ps --all --format '{{.Names}}' 2>/dev/null); do
        podman logs "$container" >"$LOG_DIR/$container.log" 2>&1 || true
    done
}

# Containers, volumes and network through podman, then podman's whole state: its storage is mounted privately on
# itself, so it is unmounted before it is removed.
tear_down() {
    local status=$? started=$SECONDS
    set +e
    if [ -d "$STATE_DIR" ] && [ -n "${CONTAINERS_CONF:-}" ]; then
        stop_fleet
        save_logs
        [ -f "$CT_DIR/docker-compose.yml" ] && compose --profile simulator down --volumes --timeout 20 \
            >"$LOG_DIR/compose-down.log" 2>&1
        podman rm --all --force --time 5 >/dev/null 2>&1
        podman volume rm --all --force >/dev/null 2>&1
        podman network rm --force "${PROJECT}_default" >/dev/null 2>&1
    fi
    findmnt --list --noheadings --output TARGET | grep -F "$STATE_DIR" | sort -r | xargs -r umount -l
    rm -rf "$STATE_DIR"
    if [ -d "$STATE_DIR" ]; then say "could not remove $STATE_DIR"; status=1; fi
    say "torn down in $((SECONDS - started)) s; logs in $LOG_DIR"
    exit "$status"
}

main() {
    mkdir -p "$LOG_DIR"
    install_tools
    phase_done "tools"
    [ ! -e "$STATE_DIR" ] || die "$STATE_DIR is there: another run is going on, or one was killed (remove it)"
    write_podman_config
    trap tear_down EXIT
    trap 'exit 130' INT TERM  # so that a stopped run tears down too
    base_image
    phase_done "base image"
    build_images
    phase_done "images"
    start_fleet
    phase_done "fleet healthy"
    "$VENV/bin/python" scripts/test_system.py --url "$ORCHESTRATOR_URL" --timeout "$TASKS_WITHIN_SECONDS"
    phase_done "test_system.py"
    sandbox_checks
    phase_done "code sandbox"
    restart_checks
    phase_done "restarts"
    say "passed in $SECONDS s (${TIMINGS[*]}), tearing down"
}

main
