# Shared by scripts/start.sh and scripts/stop.sh (sourced, not run): the settings start.sh hands the services. `.env`
# under the environment, as the services read it themselves (shared/config.py), and the secrets generated on the
# first start and kept
# private under .data/fleet/: FLEET_SECRET, the data-source reader's password and the operator's API key.
# Expects say() and die() from services.sh.

# Exports the variables of an env file, except those the environment already sets (non-empty): `ANTHROPIC_API_KEY=...
# scripts/start.sh` wins over a `.env` copied from .env.example, whose key is empty.
source_env_file() {
    local file="$1" name
    [ -f "$file" ] || return 0
    local -A environment=()
    for name in $(compgen -e); do
        if [ -n "${!name:-}" ]; then environment[$name]="${!name}"; fi
    done
    set -a
    # shellcheck disable=SC1090
    source "$file"
    set +a
    for name in "${!environment[@]}"; do export "$name=${environment[$name]}"; done
}

# A secret generated on the first start and kept private under .data/fleet/ (64 hex characters); prints it.
kept_secret() {
    local file="$1"
    if [ ! -s "$file" ]; then
        (umask 077 && mkdir -p "$(dirname "$file")" && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
    fi
    chmod 600 "$file"  # a kept file made readable to others since is private again
    cat "$file"
}

# Whether the orchestrator at $1 refuses the API key $2 (a kept key its database no longer knows, e.g. after the
# database was wiped). Only a 401 or 403 counts: an orchestrator that cannot be asked leaves the key as it is.
api_key_refused() {
    local url="$1" key="$2" status
    command -v curl >/dev/null || return 1
    # The header goes in on stdin (printf is a shell builtin): on curl's command line, `ps` would show the key.
    status="$(printf 'header = "Authorization: Bearer %s"\n' "$key" | curl --silent --output /dev/null \
        --max-time 5 --write-out '%{http_code}' --config - "$url/tasks?limit=1")" || return 1
    [ "$status" = 401 ] || [ "$status" = 403 ]
}

# Exports ORCHESTRATOR_API_KEY: the environment's (or .env's) if set; else the operator key kept in $2, or a new one
# made by the command after `--` (`python -m orchestrator api-keys create ...`, whose last line is the key) when there
# is none or the orchestrator at $1 refuses it. Returns 0 when it made a new key, 1 otherwise.
ensure_api_key() {
    local url="$1" file="$2" key=""
    shift 3  # url, file, --
    if [ -n "${ORCHESTRATOR_API_KEY:-}" ]; then return 1; fi
    if [ -s "$file" ]; then key="$(cat "$file")"; fi
    if [ -n "$key" ] && ! api_key_refused "$url" "$key"; then
        export ORCHESTRATOR_API_KEY="$key"
        return 1
    fi
    [ -z "$key" ] || say "the orchestrator refuses the kept API key in $file: making a new one"
    key="$("$@" | tail -n 1 | tr -d '\r\n')" || die "could not create an API key: $*"
    [ -n "$key" ] || die "could not create an API key: $* printed none"
    (umask 077 && mkdir -p "$(dirname "$file")" && printf '%s\n' "$key" >"$file")
    export ORCHESTRATOR_API_KEY="$key"
    return 0
}
