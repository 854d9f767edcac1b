# Shared by scripts/start.sh and scripts/test.sh (sourced, not run): the virtualenv, and PostgreSQL
# and Redis at the configured URLs, or throwaway local servers from Debian's packages when none answer.
# Expects REPO_ROOT to be set by the caller.

DATA_DIR="${REPO_ROOT}/.data"
VENV="${REPO_ROOT}/.venv"

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs Debian packages that are missing (apt-get update at most once per run).
APT_UPDATED=""
apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    say "installing ${missing[*]}"
    if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq >/dev/null; APT_UPDATED=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Prints a requirements file's path and, depth first, those of the files it includes (-r/-c, relative to it).
requirements_files() {
    local file="$1" included
    echo "$file"
    sed -nE 's/^[[:space:]]*(-r|--requirement|-c|--constraint)[[:space:]=]*([^[:space:]#]+).*/\2/p' "$file" |
        while read -r included; do requirements_files "$(dirname "$file")/$included"; done
}

# A digest of a requirements file and every file it includes: a change to any of them means installing again.
requirements_digest() {
    local file
    requirements_files "$1" | while read -r file; do cat "$file"; done | sha256sum | cut -d' ' -f1
}

# One stamp per requirements file, holding its digest as last installed into the venv.
requirements_stamp() { echo "$VENV/.$(basename "$1").sha256"; }

# Creates or updates .venv from the given requirements file; skipped when it and the files it includes have not
# changed since installed. Installing a file stamps the files it includes too (requirements-dev.txt covers
# requirements.txt), so start.sh and test.sh leave the venv right for each other in either order.
ensure_venv() {
    local requirements="$REPO_ROOT/$1" file
    local python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
    [ -n "$python" ] || die "Python 3.11 is required"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11 or newer is required"
    [ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$python" -m venv "$VENV"; }
    if [ "$(cat "$(requirements_stamp "$requirements")" 2>/dev/null)" = "$(requirements_digest "$requirements")" ]; then
        return 0
    fi
    say "installing Python requirements ($1)"
    "$VENV/bin/pip" install --quiet --upgrade pip >/dev/null
    "$VENV/bin/pip" install --quiet -r "$requirements" || die "could not install $1"
    requirements_files "$requirements" | while read -r file; do
        requirements_digest "$file" >"$(requirements_stamp "$file")"
    done
}

url_part() { "$VENV/bin/python" -c 'import sys; from urllib.parse import urlsplit; u = urlsplit(sys.argv[1]); print(getattr(u, sys.argv[2]) or sys.argv[3])' "$@"; }

postgres_answers() { "$VENV/bin/python" - "$1" <<'EOF'
import asyncio, sys
import asyncpg

async def check(url: str) -> None:
    # Any answer from the server counts; a missing database is created by the migrations.
    try:
        connection = await asyncpg.connect(url, timeout=3)
    except asyncpg.InvalidCatalogNameError:
        return
    await connection.close()

try:
    asyncio.run(check(sys.argv[1]))
except Exception:
    sys.exit(1)
EOF
}

redis_answers() { "$VENV/bin/python" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_timeout=3).ping()' "$1" 2>/dev/null; }

# Starts a throwaway PostgreSQL under .data/<name>-postgres on the given port; prints its URL.
start_throwaway_postgres() {
    local name="$1" port="$2" dir="$DATA_DIR/$1-postgres"
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$bin" ]; then apt_install postgresql; bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1); fi
    local run=()
    if [ "$(id -u)" -eq 0 ]; then run=(runuser -u postgres --); fi  # initdb and pg_ctl refuse to run as root
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >"$dir/initdb.log" 2>&1 \
            || die "initdb failed, see $dir/initdb.log"
    fi
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1" \
        start >/dev/null || die "PostgreSQL did not start, see $dir/server.log"
    say "started a throwaway PostgreSQL on 127.0.0.1:$port (data in $dir)"
}

stop_throwaway_postgres() {
    local dir="$DATA_DIR/$1-postgres" bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -f "$dir/data/postmaster.pid" ] || return 0
    local run=()
    if [ "$(id -u)" -eq 0 ]; then run=(runuser -u postgres --); fi
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 && say "stopped the throwaway PostgreSQL"
}

start_throwaway_redis() {
    local name="$1" port="$2" dir="$DATA_DIR/$1-redis"
    command -v redis-server >/dev/null || apt_install redis-server
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --save "" --appendonly no \
        --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" || die "Redis did not start"
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    say "started a throwaway Redis on 127.0.0.1:$port"
}

stop_throwaway_redis() {
    local pidfile="$DATA_DIR/$1-redis/redis.pid"
    [ -f "$pidfile" ] || return 0
    kill "$(cat "$pidfile")" 2>/dev/null && say "stopped the throwaway Redis"
    rm -f "$pidfile"
}

# Makes POSTGRES_URL and REDIS_URL point at servers that answer; records what it started in STARTED_SERVICES.
STARTED_SERVICES=()
ensure_backing_services() {
    local name="$1" pg_port="$2" redis_port="$3"
    if ! postgres_answers "$POSTGRES_URL"; then
        say "no PostgreSQL answers at $(url_part "$POSTGRES_URL" hostname '?'):$(url_part "$POSTGRES_URL" port 5432)"
        start_throwaway_postgres "$name" "$pg_port"
        local database
        database=$(url_part "$POSTGRES_URL" path /postgres)
        export POSTGRES_URL="postgresql://postgres@127.0.0.1:${pg_port}${database}"
        STARTED_SERVICES+=(postgres)
    fi
    if ! redis_answers "$REDIS_URL"; then
        say "no Redis answers at $(url_part "$REDIS_URL" hostname '?'):$(url_part "$REDIS_URL" port 6379)"
        start_throwaway_redis "$name" "$redis_port"
        export REDIS_URL="redis://127.0.0.1:${redis_port}$(url_part "$REDIS_URL" path /0)"
        STARTED_SERVICES+=(redis)
    fi
}

stop_started_services() {
    local name="$1"
    for service in "${STARTED_SERVICES[@]}"; do
        case "$service" in
            postgres) stop_throwaway_postgres "$name" ;;
            redis) stop_throwaway_redis "$name" ;;
        esac
    done
}
