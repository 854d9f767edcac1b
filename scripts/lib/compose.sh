# Shared by scripts/start.sh and scripts/stop.sh (sourced, not run): whether a Docker engine answers, and the
# Compose v2 CLI to drive docker-compose.yml with. Expects REPO_ROOT, VENV and die() from services.sh.

# `docker info` talks to the engine; the client alone (or an engine we may not use) is not enough.
# The timeout keeps an unreachable DOCKER_HOST from hanging the start.
docker_engine_answers() {
    command -v docker >/dev/null && timeout 15 docker info >/dev/null 2>&1
}

# Docker's compose plugin, else a standalone docker-compose, else the one requirements-dev.txt puts in .venv.
compose() {
    if docker compose version >/dev/null 2>&1; then
        docker compose --project-directory "$REPO_ROOT" "$@"
    elif command -v docker-compose >/dev/null; then
        docker-compose --project-directory "$REPO_ROOT" "$@"
    elif [ -x "$VENV/bin/docker-compose" ]; then
        "$VENV/bin/docker-compose" --project-directory "$REPO_ROOT" "$@"
    else
        die "a Docker engine answers but Docker Compose v2 is missing: install Docker's compose plugin"
    fi
}
