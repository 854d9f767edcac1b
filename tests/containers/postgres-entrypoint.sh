#!/bin/sh
# The official image's first start, in short: a cluster with POSTGRES_USER/POSTGRES_PASSWORD and POSTGRES_DB
# in an empty PGDATA, password logins from the network, then the server as user postgres (PID 1).
set -eu
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

chown postgres:postgres "$PGDATA"
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password_file=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" >"$password_file"
    chown postgres "$password_file"
    # UTF-8, as the official image has it (its LANG): without a locale initdb picks SQL_ASCII, and the drivers then
    # hand back bytes (SQLAlchemy's server version check fails on them).
    as_postgres initdb --encoding=UTF8 --locale=C.UTF-8 --username="${POSTGRES_USER:-postgres}" \
        --pwfile="$password_file" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$password_file"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "${POSTGRES_DB:-postgres}" != postgres ]; then
        as_postgres postgres --single -D "$PGDATA" -j postgres <<SQL >/dev/null
CREATE DATABASE "${POSTGRES_DB}";
SQL
    fi
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups "$@" -c listen_addresses='*'
