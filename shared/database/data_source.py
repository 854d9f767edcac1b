"""The agents' data source: a database of its own, read through a login role that can do nothing else.

`database_query` runs SQL the model wrote, and the model is untrusted input. So it never connects to the
orchestrator's database; it reads `Settings.data_url_for(tenant)`, by default the database `mats_data` on the same
server as the login role `mats_reader`. What makes that safe is the role, not a filter: not a superuser, a member of
no role (so `SET ROLE` has nowhere to go), NOINHERIT, no CREATEROLE/CREATEDB/BYPASSRLS, a connection limit, CONNECT on
its database only, USAGE and SELECT on the data schema only, and no EXECUTE on the server-file, large-object and
admin functions in that database.

`python -m shared.database.data_source` provisions all of it idempotently, with the demo's sample data, when the login
of POSTGRES_URL is a superuser of the data source's server; otherwise it prints the SQL an operator runs
(`--print-sql` prints it in any case). The SQL is the same text either way: one definition, two uses.
"""

import argparse
import asyncio
import sys
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import asyncpg
import structlog

from shared.config import DEFAULT_DATA_SCHEMA, Settings

log = structlog.get_logger(__name__)

# Revoked from PUBLIC in the data database: reading or listing the server's files, large objects (lo_import reads
# server files too), and acting on the server or its other sessions. Most are superuser-only by default already;
# revoking them all says so in this database whatever an installation granted.
DENIED_FUNCTIONS = (
    "pg_read_file", "pg_read_binary_file", "pg_stat_file", "pg_ls_dir", "pg_ls_logdir", "pg_ls_waldir",
    "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_ls_logicalsnapdir", "pg_ls_logicalmapdir", "pg_ls_replslotdir",
    "pg_current_logfile",
    "lo_import", "lo_export", "lo_create", "lo_creat", "lo_unlink", "lo_open", "lo_close", "lo_get", "lo_put",
    "lo_from_bytea", "loread", "lowrite", "lo_lseek", "lo_lseek64", "lo_tell", "lo_tell64", "lo_truncate",
    "lo_truncate64",
    "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_promote",
    "pg_switch_wal", "pg_create_restore_point", "pg_log_backend_memory_contexts",
)  # fmt: skip

TEMP_FILE_LIMIT = "256MB"
# Any constant works; the migrations' lock is 7_316_001.
PROVISIONING_LOCK_ID = 7_316_002

SAMPLE_QUARTERLY_REVENUE = (("Q1", 120000), ("Q2", 135000), ("Q3", 128000), ("Q4", 151000))


@dataclass(frozen=True)
class DataSource:
    """Where a data source is (server, database, login role, from its URL) and the schema its reader may read."""

    url: str
    host: str
    port: int
    database: str
    role: str
    schema: str = DEFAULT_DATA_SCHEMA

    @classmethod
    def from_url(cls, url: str, schema: str = DEFAULT_DATA_SCHEMA) -> "DataSource":
        parts = urlsplit(url)
        database = unquote(parts.path.lstrip("/"))
        role = unquote(parts.username or "")
        if not database or not role:
            raise ValueError("a data source URL names its login role and database: postgresql://ROLE@HOST/DATABASE")
        return cls(url, parts.hostname or "localhost", parts.port or 5432, database, role, schema)

    @classmethod
    def of_tenant(cls, settings: Settings, tenant_id: str) -> "DataSource":
        return cls.from_url(settings.data_url_for(tenant_id), settings.agent_data_schema)

    def with_names(self, *, role: str, database: str) -> "DataSource":
        """The same server's data source `database`, as login role `role`."""
        parts = urlsplit(self.url)
        netloc = quote(role, safe="") + "@" + parts.netloc.rpartition("@")[2]
        url = parts._replace(netloc=netloc, path="/" + quote(database)).geturl()
        return DataSource.from_url(url, self.schema)

    def same_server(self, other_url: str) -> bool:
        other = urlsplit(other_url)
        return (self.host, self.port) == (other.hostname or "localhost", other.port or 5432)

    def describe(self) -> str:
        return f"database {self.database} as {self.role} on {self.host}:{self.port}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def server_statements(source: DataSource, connection_limit: int) -> list[str]:
    """On the server (any database): the login role, exactly as described above, and who may connect."""
    role, database, schema = _quote(source.role), _quote(source.database), _quote(source.schema)
    return [
        f"""DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(source.role)}) THEN CREATE ROLE {role}; END IF;
END $$""",
        f"ALTER ROLE {role} LOGIN NOSUPERUSER NOINHERIT NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
        f"CONNECTION LIMIT {int(connection_limit)}",
        # A member of no role: SET ROLE, set_config('role', ...) and SET SESSION AUTHORIZATION have nowhere to go.
        f"""DO $$ DECLARE granted regrole; BEGIN
    FOR granted IN SELECT roleid::regrole FROM pg_auth_members WHERE member = {_literal(source.role)}::regrole LOOP
        EXECUTE format('REVOKE %s FROM %I', granted, {_literal(source.role)});
    END LOOP;
END $$""",
        f"REVOKE ALL ON DATABASE {database} FROM PUBLIC",
        f"GRANT CONNECT ON DATABASE {database} TO {role}",
        f"ALTER ROLE {role} IN DATABASE {database} SET search_path = {schema}",
        f"ALTER ROLE {role} IN DATABASE {database} SET default_transaction_read_only = on",
        # Both settings are the superuser's to change: the reader cannot fill the server's disk with temporary
        # files, and its sessions' query text stays out of pg_stat_activity, which every session of the role sees.
        f"ALTER ROLE {role} IN DATABASE {database} SET temp_file_limit = '{TEMP_FILE_LIMIT}'",
        f"ALTER ROLE {role} SET track_activities = off",
    ]


def database_statements(source: DataSource) -> list[str]:
    """Inside the data database: nothing for PUBLIC, the dangerous functions revoked, the data schema readable."""
    role, schema = _quote(source.role), _quote(source.schema)
    functions = ", ".join(_literal(name) for name in DENIED_FUNCTIONS)
    return [
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
        f"""DO $$ DECLARE denied regprocedure; BEGIN
    FOR denied IN SELECT oid::regprocedure FROM pg_proc
                  WHERE pronamespace = 'pg_catalog'::regnamespace AND proname IN ({functions}) LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', denied);
    END LOOP;
END $$""",
        f"CREATE SCHEMA IF NOT EXISTS {schema}",
        f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role}",
    ]


def sample_data_statements(source: DataSource) -> list[str]:
    """The demo's sales figures (the sales-report scenario reads them); only ever put into the default data source."""
    table = f"{_quote(source.schema)}.quarterly_revenue"
    rows = ", ".join(f"({_literal(quarter)}, {revenue})" for quarter, revenue in SAMPLE_QUARTERLY_REVENUE)
    return [
        f"CREATE TABLE IF NOT EXISTS {table} (quarter TEXT PRIMARY KEY, revenue NUMERIC NOT NULL)",
        f"INSERT INTO {table} (quarter, revenue) VALUES {rows} ON CONFLICT (quarter) DO NOTHING",
    ]


def in_database_statements(source: DataSource, *, sample_data: bool) -> list[str]:
    return database_statements(source) + (sample_data_statements(source) if sample_data else [])


def operator_script(source: DataSource, connection_limit: int, *, sample_data: bool) -> str:
    """The whole provisioning as a psql script a superuser of the data source's server runs."""
    database = source.database
    lines = [
        f"-- The data source of database_query: database {database}, login role {source.role}, schema {source.schema}.",
        "-- Run as a superuser of its server: psql -v ON_ERROR_STOP=1 -f this-file.sql",
        f"SELECT {_literal('CREATE DATABASE ' + _quote(database))} "
        f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {_literal(database)})\\gexec",
        *(statement + ";" for statement in server_statements(source, connection_limit)),
        f"-- With password authentication: ALTER ROLE {_quote(source.role)} PASSWORD '<AGENT_DATA_PASSWORD>';",
        f"\\connect {_quote(database)}",
        *(statement + ";" for statement in in_database_statements(source, sample_data=sample_data)),
    ]
    return "\n".join(lines) + "\n"


async def provision(
    admin_url: str, source: DataSource, *, connection_limit: int, password: str | None, sample_data: bool
) -> None:
    """Create or correct the data source on the server `admin_url` reaches; the login must be a superuser."""
    admin = await _connect_to_server(admin_url)
    try:
        # Two provisionings at once (a fleet starting while tests run) would trip over each other's catalog updates.
        await admin.execute("SELECT pg_advisory_lock($1)", PROVISIONING_LOCK_ID)
        exists = await admin.fetchval("SELECT true FROM pg_database WHERE datname = $1", source.database)
        if not exists:
            await admin.execute(f"CREATE DATABASE {_quote(source.database)}")
        for statement in server_statements(source, connection_limit):
            await admin.execute(statement)
        if password is not None:
            # Utility statements take no parameters; format() quotes the password on the server.
            statement = "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)"
            await admin.execute(await admin.fetchval(statement, source.role, password))
        data_admin = await asyncpg.connect(_with_database(admin_url, source.database))
        try:
            for statement in in_database_statements(source, sample_data=sample_data):
                await data_admin.execute(statement)
        finally:
            await data_admin.close()
    finally:
        await admin.close()  # which releases the lock


async def is_superuser(admin_url: str) -> bool:
    connection = await _connect_to_server(admin_url)
    try:
        return bool(await connection.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
    finally:
        await connection.close()


READER_PRIVILEGES_SQL = """
SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication,
       EXISTS (SELECT FROM pg_auth_members WHERE member = pg_roles.oid) AS member_of_a_role
FROM pg_roles WHERE rolname = current_user
"""
PRIVILEGE_NAMES = {
    "rolsuper": "SUPERUSER",
    "rolcreaterole": "CREATEROLE",
    "rolcreatedb": "CREATEDB",
    "rolbypassrls": "BYPASSRLS",
    "rolreplication": "REPLICATION",
    "member_of_a_role": "membership of another role",
}


async def privilege_problem(connection: asyncpg.Connection) -> str | None:
    """What the connection's login role may do beyond reading, or None for a proper least-privilege reader."""
    row = await connection.fetchrow(READER_PRIVILEGES_SQL)
    if row is None:
        return "the login role is not in pg_roles"
    granted = [name for column, name in PRIVILEGE_NAMES.items() if row[column]]
    if not granted:
        return None
    return f"its login role {row['rolname']} has {', '.join(granted)}; a data source's login must have none of these"


async def check_reader(source: DataSource, password: str | None) -> str:
    """Log in as the reader, as the agents will, and check its privileges; returns a problem or ''."""
    connection = await asyncpg.connect(source.url, password=password)
    try:
        return await privilege_problem(connection) or ""
    finally:
        await connection.close()


async def _connect_to_server(url: str) -> asyncpg.Connection:
    """A connection to the server `url` names: in its database, or in `postgres` before migrations created that."""
    try:
        return await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        return await asyncpg.connect(_with_database(url, "postgres"))


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path="/" + database).geturl()


def reader_password(settings: Settings, url: str) -> str | None:
    """The reader's password: the URL's own, else AGENT_DATA_PASSWORD; None for password-less (trust, peer) logins."""
    if urlsplit(url).password is not None or settings.agent_data_password is None:
        return None
    return settings.agent_data_password.get_secret_value()


def uses_default_data_source(settings: Settings) -> bool:
    """Whether this tenant reads the default data source (AGENT_DATA_URL unset), which the scripts provision."""
    return not settings.agent_data_url and settings.tenant_id not in settings.tenant_data_urls


async def set_up(settings: Settings) -> int:
    """Make sure this tenant's data source is usable; 0 when it is.

    The default one is provisioned with the demo's data where the login of POSTGRES_URL may; else its SQL is printed
    for an operator. One that an operator configured is theirs: it is only checked, and the SQL that would set it up
    is printed when it is not usable."""
    source = DataSource.of_tenant(settings, settings.tenant_id)
    password = reader_password(settings, source.url)
    default = uses_default_data_source(settings)
    not_provisioned = await _provision_default(settings, source, password) if default else "it is configured"
    try:
        problem = await check_reader(source, password)
    except (OSError, asyncpg.PostgresError) as error:
        problem = f"it does not answer: {error}"
    if not_provisioned and (default or problem):
        print(
            f"the agents' data source ({source.describe()}) was not provisioned here: {not_provisioned}. "
            "A superuser of its server runs this SQL to set it up (docs/security.md):\n",
            file=sys.stderr,
        )
        print(operator_script(source, settings.agent_data_connection_limit, sample_data=default), end="")
    if problem:
        print(f"the agents' data source ({source.describe()}) is not usable: {problem}", file=sys.stderr)
        return 1
    print(f"the agents' data source is ready: {source.describe()}", file=sys.stderr)
    return 0


async def _provision_default(settings: Settings, source: DataSource, password: str | None) -> str:
    """Provision the default data source; returns why it could not, or ''."""
    if not source.same_server(settings.postgres_url):
        return "it is on another server than POSTGRES_URL"
    if not await is_superuser(settings.postgres_url):
        return "the login of POSTGRES_URL is not a superuser"
    limit = settings.agent_data_connection_limit
    await provision(settings.postgres_url, source, connection_limit=limit, password=password, sample_data=True)
    return ""


def main() -> None:
    """`python -m shared.database.data_source [--print-sql]`: a step of scripts/start.sh and scripts/test.sh."""
    from shared.config import load_settings
    from shared.logging import configure_logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print-sql", action="store_true", help="only print the SQL an operator would run")
    arguments = parser.parse_args()
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    if arguments.print_sql:
        source = DataSource.of_tenant(settings, settings.tenant_id)
        default = uses_default_data_source(settings)
        print(operator_script(source, settings.agent_data_connection_limit, sample_data=default), end="")
        return
    sys.exit(asyncio.run(set_up(settings)))


if __name__ == "__main__":
    main()
