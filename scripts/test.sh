#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: virtualenv, requirements, system packages the tests
# need, PostgreSQL and Redis (the configured ones, or throwaway local servers), then pytest.
# Extra arguments go to pytest, e.g. `scripts/test.sh tests/unit -k models`.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
source scripts/lib/services.sh

# Tests get their own database and Redis database number so they never touch a running fleet's data.
export POSTGRES_URL="${TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/mats_test}"
export REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"

ensure_venv requirements-dev.txt
# The dashboard's browser test drives Debian's Chromium through playwright (never `playwright install`);
# the Redis restart test runs a redis-server of its own.
apt_install chromium redis-server bubblewrap  # bubblewrap: the sandbox of the code role's run_command
command -v psql >/dev/null || apt_install postgresql-client  # runs the SQL an operator would, in a test
ensure_backing_services test 55432 56379
trap 'stop_started_services test' EXIT
# The agents' data source (read-only sample data, so test runs may share it); the suite checks it again itself.
"$VENV/bin/python" -m shared.database.data_source || die "the agents' data source could not be provisioned"

# Coverage of the whole suite, printed at the end; a run of only some tests is not held to it.
coverage=(--cov --cov-report=term:skip-covered --cov-fail-under=85)
for arg in "$@"; do
    case "$arg" in
        -k | -m | --lf | --last-failed | --co | --collect-only) coverage=() ;;
        *) if [ -e "${arg%%::*}" ]; then coverage=(); fi ;;
    esac
done

say "running the test suite"
set +e
"$VENV/bin/python" -m pytest "${coverage[@]}" "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    die "pytest collected no tests: that is a failure, not a pass"
fi
exit "$status"
