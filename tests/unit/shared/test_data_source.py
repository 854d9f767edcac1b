"""Provisioning of the agents' data source: the reader role has exactly the rights described, every time it runs."""

import asyncio
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared.config import Settings, load_settings
from shared.database.data_source import DataSource, check_reader, operator_script, provision, set_up
from tests.data_sources import connected, drop_data_source, provisioned_data_source, source_admin_url

REPO_ROOT = Path(__file__).resolve().parents[3]

ROLE_ATTRIBUTES_SQL = """
SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication, rolcanlogin, rolconnlimit,
       rolpassword IS NOT NULL AS has_password,
       ARRAY(SELECT roleid::regrole::text FROM pg_auth_members WHERE member = pg_authid.oid) AS member_of
FROM pg_authid WHERE rolname = $1
"""


@pytest.fixture
async def source(settings: Settings) -> AsyncIterator[DataSource]:
    provisioned = await provisioned_data_source(settings, uuid.uuid4().hex[:8])
    yield provisioned
    await drop_data_source(settings, provisioned)


async def role_attributes(settings: Settings, role: str) -> dict[str, object]:
    async with connected(settings.postgres_url) as admin:
        row = await admin.fetchrow(ROLE_ATTRIBUTES_SQL, role)
    assert row is not None
    return dict(row)


async def test_the_reader_is_a_login_with_no_privilege_and_no_role_to_switch_to(
    settings: Settings, source: DataSource
) -> None:
    attributes = await role_attributes(settings, source.role)

    assert attributes == {
        "rolsuper": False,
        "rolinherit": False,
        "rolcreaterole": False,
        "rolcreatedb": False,
        "rolbypassrls": False,
        "rolreplication": False,
        "rolcanlogin": True,
        "rolconnlimit": 5,
        "has_password": False,
        "member_of": [],
    }
    assert await check_reader(source, None) == ""


async def test_provisioning_again_takes_back_what_was_granted_since(settings: Settings, source: DataSource) -> None:
    async with connected(settings.postgres_url) as admin:
        await admin.execute(f'ALTER ROLE "{source.role}" SUPERUSER CREATEDB INHERIT CONNECTION LIMIT -1')
        await admin.execute(f'GRANT pg_read_all_data, pg_read_server_files TO "{source.role}"')
    assert "SUPERUSER" in await check_reader(source, None)

    await provision(
        settings.postgres_url, source, connection_limit=5, password="s3cret-reader-password", sample_data=False
    )

    attributes = await role_attributes(settings, source.role)
    assert (attributes["rolsuper"], attributes["rolcreatedb"], attributes["rolinherit"]) == (False, False, False)
    assert attributes["member_of"] == [] and attributes["rolconnlimit"] == 5
    assert attributes["has_password"] is True
    assert await check_reader(source, None) == ""


async def test_the_reader_reaches_only_its_database_and_schema(settings: Settings, source: DataSource) -> None:
    async with connected(source.url) as reader:
        assert await reader.fetchval("SELECT count(*) FROM quarterly_revenue") == 4  # search_path is the data schema
        assert await reader.fetchval("SHOW default_transaction_read_only") == "on"
        await reader.execute("SET default_transaction_read_only = off")  # the role may; its privileges still hold
        for write in (
            "CREATE TABLE public.planted (x int)",
            "CREATE TABLE planted (x int)",
            "DELETE FROM quarterly_revenue",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reader.execute(write)
    async with connected(source_admin_url(settings, source)) as admin:
        await admin.execute("CREATE SCHEMA private; CREATE TABLE private.payroll (salary int)")
    async with connected(source.url) as reader:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reader.fetch("SELECT * FROM private.payroll")
    control_database = DataSource.from_url(settings.postgres_url).database
    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # migration 0003 revokes CONNECT from PUBLIC there
        await asyncpg.connect(source.with_names(role=source.role, database=control_database).url)


@pytest.fixture
async def limited_login(settings: Settings) -> AsyncIterator[str]:
    """The URL of a login that may create roles and databases but is no superuser, like many managed servers'."""
    name = f"mats_limited_{uuid.uuid4().hex[:8]}"
    control = DataSource.from_url(settings.postgres_url)
    async with connected(settings.postgres_url) as admin:
        await admin.execute(f'CREATE ROLE "{name}" LOGIN CREATEROLE CREATEDB')
        await admin.execute(f'GRANT CONNECT ON DATABASE "{control.database}" TO "{name}"')
        yield control.with_names(role=name, database=control.database).url
        await admin.execute(f'REVOKE CONNECT ON DATABASE "{control.database}" FROM "{name}"')
        await admin.execute(f'DROP ROLE "{name}"')


async def run_as_operator(settings: Settings, sql: str) -> None:
    psql = shutil.which("psql")
    assert psql, "psql (Debian's postgresql-client) runs the operator's SQL"
    operator = await asyncio.create_subprocess_exec(
        psql, settings.postgres_url, "-q", "-v", "ON_ERROR_STOP=1", stdin=asyncio.subprocess.PIPE
    )
    await operator.communicate(sql.encode())
    assert operator.returncode == 0


async def test_a_login_that_may_not_create_roles_gets_the_sql_to_run(
    settings: Settings, limited_login: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator's path for the default data source: the SQL is printed, a superuser runs it, and it is ready."""
    limited = load_settings(_env_file=None, postgres_url=limited_login, agent_data_url=None)
    source = DataSource.of_tenant(limited, limited.tenant_id)

    await set_up(limited)
    printed = capsys.readouterr()
    assert "not a superuser" in printed.err
    assert printed.out == operator_script(source, limited.agent_data_connection_limit, sample_data=True)
    await run_as_operator(settings, printed.out)

    assert await set_up(limited) == 0
    assert await check_reader(source, None) == ""


async def test_a_configured_data_source_is_checked_never_provisioned(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator's own database gets no demo data planted in it; when it is not usable, the SQL is printed."""
    name = uuid.uuid4().hex[:8]
    source = DataSource.of_tenant(settings, "x").with_names(role=f"mats_reader_{name}", database=f"mats_data_{name}")
    configured = load_settings(_env_file=None, postgres_url=settings.postgres_url, agent_data_url=source.url)
    try:
        assert await set_up(configured) == 1
        printed = capsys.readouterr()
        assert "it is configured" in printed.err and "not usable" in printed.err
        assert "quarterly_revenue" not in printed.out
        await run_as_operator(settings, printed.out)

        assert await set_up(configured) == 0
        assert "SQL" not in capsys.readouterr().err
    finally:
        await drop_data_source(settings, source)


async def test_a_superuser_data_login_is_reported_not_used(settings: Settings) -> None:
    assert "SUPERUSER" in await check_reader(DataSource.from_url(settings.postgres_url), None)
    superuser = load_settings(_env_file=None, postgres_url=settings.postgres_url, agent_data_url=settings.postgres_url)
    assert await set_up(superuser) == 1


def test_the_module_prints_the_sql_and_names_what_it_provisions() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "shared.database.data_source", "--print-sql"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "AGENT_DATA_URL": "postgresql://acme_reader@db.example:5433/acme_data"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert 'CREATE ROLE "acme_reader"' in printed.stdout
    assert 'GRANT CONNECT ON DATABASE "acme_data" TO "acme_reader"' in printed.stdout
    assert '\\connect "acme_data"' in printed.stdout


def test_a_data_source_url_must_name_its_role_and_database() -> None:
    with pytest.raises(ValueError, match="ROLE@HOST/DATABASE"):
        DataSource.from_url("postgresql://db.example/acme_data")
