"""database_query reads the tenant's data source and nothing else, whatever SQL the model writes.

The attacks are the ones tried against the tool when it ran on the orchestrator's database as its superuser login:
what stops them now is the reader role's privileges (shared/database/data_source.py), not a keyword filter.
"""

import datetime
import json
import random
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

from agent.tools import ToolContext
from agent.tools.data_source import DataSourcePool, redacted
from agent.tools.database import first_keyword, json_value
from shared.config import Settings
from shared.database import DatabaseManager
from shared.database.data_source import DataSource
from tests.data_sources import connected, drop_data_source, provisioned_data_source, source_admin_url
from tests.factories import build_task
from tests.unit.agent.fixtures import ContextFactory, SettingsFactory, call_tool


@pytest.fixture
def context(tool_context_factory: ContextFactory) -> ToolContext:
    return tool_context_factory()


@pytest.fixture
def reader(agent_settings: Settings) -> DataSource:
    return DataSource.from_url(agent_settings.data_url_for(agent_settings.tenant_id))


async def query(context: ToolContext, sql: str) -> tuple[dict[str, Any] | str, bool]:
    text, is_error = await call_tool(context, "database_query", query=sql)
    return (text if is_error else json.loads(text)), is_error


async def test_a_select_answers_columns_and_rows_with_integral_numerics_as_ints(context: ToolContext) -> None:
    answer, is_error = await query(context, "SELECT factorial(10) AS factorial_10, 2.5::numeric AS half")
    assert not is_error
    assert answer == {
        "columns": ["factorial_10", "half"],
        "rows": [{"factorial_10": 3628800, "half": 2.5}],
        "row_count": 1,
        "truncated": False,
    }


async def test_the_demo_sales_figures_are_in_the_data_schema(context: ToolContext) -> None:
    answer, is_error = await query(context, "SELECT quarter, revenue FROM quarterly_revenue ORDER BY quarter")
    assert not is_error, answer
    assert isinstance(answer, dict)
    assert answer["rows"][-1] == {"quarter": "Q4", "revenue": 151000}


async def test_it_runs_as_the_reader_role(context: ToolContext, reader: DataSource) -> None:
    answer, _ = await query(context, "SELECT current_user AS who, current_database() AS db")
    assert isinstance(answer, dict)
    assert answer["rows"] == [{"who": reader.role, "db": reader.database}]


ROLE_ESCAPES = [
    "SELECT set_config('role','postgres',true), query_to_xml('select current_user, "
    "pg_read_file(''/etc/passwd'',0,64)',true,false,'') AS who",
    "SELECT set_config('role', 'postgres', true) AS role, query_to_xml('select current_user', true, false, '') AS who",
    "SELECT set_config('role', 'none', true) AS role, query_to_xml('select current_user', true, false, '') AS who",
    "SELECT set_config('session_authorization', 'postgres', true) AS who",
    "SELECT query_to_xml('reset role; select current_user', true, false, '') AS who",
    "RESET ROLE",
    "SET SESSION AUTHORIZATION postgres",
    "SET ROLE postgres",
]


@pytest.mark.parametrize("sql", ROLE_ESCAPES)
async def test_no_role_escape_leaves_the_reader(context: ToolContext, reader: DataSource, sql: str) -> None:
    text, is_error = await call_tool(context, "database_query", query=sql)
    after, _ = await query(context, "SELECT current_user AS who")

    assert "root:" not in text  # /etc/passwd
    assert is_error or (reader.role in text and "postgres</" not in text), text
    assert isinstance(after, dict) and after["rows"] == [{"who": reader.role}]


@pytest.mark.parametrize(
    "call",
    [
        "pg_read_file('/etc/passwd', 0, 64)",
        "pg_read_binary_file('/etc/passwd')",
        "pg_ls_dir('.')",
        "pg_stat_file('postgresql.conf')",
        "lo_import('/etc/hostname')",
        "lo_create(0)",
        "pg_reload_conf()",
        "pg_rotate_logfile()",
    ],
)
async def test_server_file_large_object_and_admin_functions_are_denied(context: ToolContext, call: str) -> None:
    text, is_error = await call_tool(context, "database_query", query=f"SELECT {call}")
    escalated, escalated_error = await call_tool(
        context, "database_query", query=f"SELECT set_config('role', 'postgres', true), {call}"
    )
    assert is_error and "permission denied" in text, text
    assert escalated_error, escalated


async def test_another_session_cannot_be_terminated(context: ToolContext, reader: DataSource) -> None:
    """Even a session of the reader role itself (another agent's query) is out of reach."""
    async with connected(reader.url) as other:
        pid = await other.fetchval("SELECT pg_backend_pid()")
        for call in (f"pg_terminate_backend({pid})", f"pg_cancel_backend({pid})"):
            text, is_error = await call_tool(context, "database_query", query=f"SELECT {call}")
            assert is_error and "permission denied" in text, text
        assert await other.fetchval("SELECT 1") == 1


@pytest.mark.parametrize("table", ["tasks", "subtasks", "subtask_results", "agent_logs", "tool_calls"])
async def test_the_control_plane_is_not_reachable(context: ToolContext, db: DatabaseManager, table: str) -> None:
    await db.repositories().tasks.create_task(build_task(description="Tenant B's confidential plan"))

    text, is_error = await call_tool(context, "database_query", query=f"SELECT * FROM {table}")
    qualified, qualified_error = await call_tool(context, "database_query", query=f"SELECT * FROM public.{table}")

    assert is_error and "does not exist" in text, text
    assert qualified_error and "confidential" not in qualified


async def test_the_catalog_of_passwords_is_not_readable(context: ToolContext) -> None:
    for catalog in ("pg_authid", "pg_shadow", "pg_user_mapping"):
        text, is_error = await call_tool(context, "database_query", query=f"SELECT * FROM {catalog}")
        assert is_error and "permission denied" in text, (catalog, text)


async def test_an_advisory_lock_is_gone_after_the_call(context: ToolContext, settings: Settings) -> None:
    """A session-level lock survives the rolled-back transaction; the pool's reset must release it."""
    key = random.randrange(1 << 40)
    _text, is_error = await call_tool(context, "database_query", query=f"SELECT pg_advisory_lock({key})")
    assert not is_error

    async with connected(settings.postgres_url) as observer:
        held = await observer.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = $1",
            key,
        )
    assert held == 0


async def test_session_changes_made_by_a_query_do_not_reach_the_next_one(context: ToolContext) -> None:
    for _ in range(3):
        await query(context, "SELECT set_config('search_path', 'hijacked', false)")
        await query(context, "SELECT set_config('statement_timeout', '0', false)")
    answer, _ = await query(context, "SELECT current_setting('search_path') AS path")

    assert isinstance(answer, dict)
    assert answer["rows"] != [{"path": "hijacked"}]


async def test_a_huge_result_is_capped_in_bytes_and_says_so(context: ToolContext) -> None:
    cap = context.settings.agent_query_max_bytes

    text, is_error = await call_tool(
        context, "database_query", query="SELECT repeat('x',30000000) FROM generate_series(1,3)"
    )

    assert not is_error, text[:200]
    assert len(text) < cap
    answer = json.loads(text)
    assert answer["truncated"] is True and answer["row_count"] == 0
    assert str(cap) in answer["note"]


async def test_many_rows_stop_at_the_byte_cap(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    settings = agent_settings_factory(agent_query_max_bytes=64 * 1024, agent_query_row_cap=10_000)
    context = tool_context_factory(settings=settings)

    answer, is_error = await query(context, "SELECT n, repeat('y', 1000) AS filler FROM generate_series(1, 5000) AS n")

    assert not is_error and isinstance(answer, dict)
    assert answer["truncated"] is True
    assert 30 < answer["row_count"] < 70
    assert [row["n"] for row in answer["rows"]] == list(range(1, answer["row_count"] + 1))
    assert len(json.dumps(answer["rows"], separators=(",", ":"))) <= 64 * 1024


async def test_rows_are_capped_and_the_answer_says_so(tool_context_factory: ContextFactory) -> None:
    context = tool_context_factory()
    cap = context.settings.agent_query_row_cap

    answer, _ = await query(context, f"SELECT n FROM generate_series(1, {cap + 50}) AS n")
    exact, _ = await query(context, f"SELECT n FROM generate_series(1, {cap}) AS n")

    assert isinstance(answer, dict) and isinstance(exact, dict)
    assert (answer["row_count"], answer["truncated"]) == (cap, True)
    assert answer["rows"][-1] == {"n": cap}
    assert (exact["row_count"], exact["truncated"]) == (cap, False)
    assert "note" not in exact


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO sales.quarterly_revenue VALUES ('Q5', 1)",
        "UPDATE sales.quarterly_revenue SET revenue = 0",
        "DELETE FROM sales.quarterly_revenue",
        "DROP TABLE sales.quarterly_revenue",
        "TRUNCATE sales.quarterly_revenue",
        "COPY sales.quarterly_revenue TO '/tmp/revenue.csv'",
        "SELECT 1; DELETE FROM sales.quarterly_revenue",
        "WITH gone AS (DELETE FROM sales.quarterly_revenue RETURNING 1) SELECT count(*) FROM gone",
        "/* looks harmless */ -- really\n DELETE FROM sales.quarterly_revenue",
        "SELECT * INTO sales.copied FROM sales.quarterly_revenue",
        "SELECT query_to_xml('delete from sales.quarterly_revenue returning 1', true, false, '')",
    ],
)
async def test_writes_and_multiple_statements_are_refused(
    context: ToolContext, reader: DataSource, settings: Settings, sql: str
) -> None:
    text, is_error = await query(context, sql)

    assert is_error
    assert isinstance(text, str) and text
    answer, _ = await query(context, "SELECT count(*) AS quarters FROM sales.quarterly_revenue")
    assert isinstance(answer, dict) and answer["rows"] == [{"quarters": 4}]


async def test_the_transaction_itself_is_read_only(context: ToolContext) -> None:
    """A data-modifying CTE passes the keyword check; PostgreSQL refuses it before the privileges come into it."""
    text, is_error = await query(
        context, "WITH gone AS (DELETE FROM quarterly_revenue RETURNING 1) SELECT count(*) FROM gone"
    )
    assert is_error
    assert "read-only" in str(text)


async def test_a_slow_statement_hits_the_time_limit(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    context = tool_context_factory(settings=agent_settings_factory(agent_query_timeout_ms=200))
    text, is_error = await query(context, "SELECT pg_sleep(30)")
    assert is_error
    assert "time limit" in str(text)


async def test_syntax_errors_and_parameters_come_back_as_tool_errors(context: ToolContext) -> None:
    for sql in ("SELEC 1", "SELECT $1::int", ""):
        _text, is_error = await query(context, sql)
        assert is_error, sql


@pytest.fixture
async def other_tenant_source(settings: Settings) -> AsyncIterator[DataSource]:
    """A second tenant's data source on the same server, with a table only it has."""
    source = await provisioned_data_source(settings, f"acme_{uuid.uuid4().hex[:8]}")
    async with connected(source_admin_url(settings, source)) as admin:
        await admin.execute("CREATE TABLE sales.acme_secrets (secret TEXT)")
        await admin.execute("INSERT INTO sales.acme_secrets VALUES ('acme only')")  # readable: default privileges
    yield source
    await drop_data_source(settings, source)


async def test_each_tenant_queries_its_own_data_source_only(
    agent_settings_factory: SettingsFactory,
    tool_context_factory: ContextFactory,
    agent_tenant: str,
    other_tenant_source: DataSource,
    reader: DataSource,
) -> None:
    mine = agent_settings_factory(tenant_data_urls={"acme": other_tenant_source.url})
    acme = agent_settings_factory(tenant_id="acme", tenant_data_urls={"acme": other_tenant_source.url})
    mine_pool, acme_pool = DataSourcePool(mine), DataSourcePool(acme)
    await mine_pool.open()
    await acme_pool.open()
    try:
        mine_context = tool_context_factory(settings=mine, data_source=mine_pool)
        acme_context = tool_context_factory(settings=acme, data_source=acme_pool)
        acme_answer, acme_error = await query(acme_context, "SELECT secret, current_user AS who FROM acme_secrets")
        mine_text, mine_error = await query(mine_context, "SELECT secret FROM sales.acme_secrets")
    finally:
        await mine_pool.close()
        await acme_pool.close()

    assert not acme_error
    assert isinstance(acme_answer, dict)
    assert acme_answer["rows"] == [{"secret": "acme only", "who": other_tenant_source.role}]
    assert mine_error and "does not exist" in str(mine_text)
    # Nor can one tenant's reader log in to the other's database.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await asyncpg.connect(
            other_tenant_source.with_names(role=reader.role, database=other_tenant_source.database).url
        )


async def test_a_missing_data_source_is_a_clear_tool_error(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory, settings: Settings
) -> None:
    absent = DataSource.from_url(settings.data_url_for("x")).with_names(role="mats_reader_absent", database="mats_data")
    missing_settings = agent_settings_factory(agent_data_url=absent.url)
    pool = DataSourcePool(missing_settings)
    await pool.open()
    try:
        text, is_error = await call_tool(tool_context_factory(data_source=pool), "database_query", query="SELECT 1")
    finally:
        await pool.close()
    assert is_error
    assert "data source is not available" in text and "mats_reader_absent" in text and "operator" in text


async def test_a_privileged_login_is_refused_whatever_the_query(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory, settings: Settings
) -> None:
    """Pointing AGENT_DATA_URL at the superuser login by mistake must not hand the model the server."""
    pool = DataSourcePool(agent_settings_factory(agent_data_url=settings.postgres_url))
    await pool.open()
    try:
        text, is_error = await call_tool(tool_context_factory(data_source=pool), "database_query", query="SELECT 1")
    finally:
        await pool.close()
    assert is_error and "SUPERUSER" in text


def test_first_keyword_skips_whitespace_and_comments() -> None:
    assert first_keyword("  -- note\n/* block\n comment */ WITH x AS (SELECT 1) SELECT * FROM x") == "with"
    assert first_keyword("(SELECT 1)") == ""
    assert first_keyword("") == ""


def test_values_become_json_friendly() -> None:
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert json_value(Decimal("3628800")) == 3628800
    assert json_value(Decimal("1E+3")) == 1000
    assert json_value(Decimal("0.125")) == 0.125
    assert json_value(Decimal("NaN")) == "NaN"
    assert json_value(float("inf")) == "inf"
    assert json_value(moment) == "2026-01-02T03:04:05+00:00"
    assert json_value(datetime.date(2026, 1, 2)) == "2026-01-02"
    assert json_value(datetime.timedelta(minutes=2)) == 120.0
    assert json_value(b"\x01\xff") == "\\x01ff"
    assert json_value([Decimal("1"), None, {"a": Decimal("2.5")}]) == [1, None, {"a": 2.5}]


async def test_the_time_limit_bounds_the_whole_call_not_each_fetch(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    """A huge first row makes the rows come one fetch at a time; each fetch is a statement of its own."""
    context = tool_context_factory(settings=agent_settings_factory(agent_query_timeout_ms=1000))
    sql = (
        "SELECT CASE WHEN g = 1 THEN repeat('x', 100000) ELSE '' END AS s, pg_sleep(0.4) FROM generate_series(1, 12) g"
    )

    text, is_error = await call_tool(context, "database_query", query=sql)
    after, after_error = await query(context, "SELECT 1 AS still_fine")

    assert is_error and "time limit" in text, text[:300]
    assert not after_error and isinstance(after, dict) and after["rows"] == [{"still_fine": 1}]


async def test_values_python_cannot_hold_are_tool_errors_and_big_numbers_survive(context: ToolContext) -> None:
    answer, is_error = await query(context, "SELECT factorial(25) AS big")
    text, date_error = await call_tool(context, "database_query", query="SELECT '10000-01-01'::date AS far")

    assert not is_error and isinstance(answer, dict) and answer["rows"] == [{"big": 15511210043330985984000000}]
    assert date_error and "cast it to text" in text


async def test_the_byte_cap_counts_the_bytes_the_answer_takes(tool_context_factory: ContextFactory) -> None:
    context = tool_context_factory()
    cap = context.settings.agent_query_max_bytes

    text, is_error = await call_tool(
        context, "database_query", query="SELECT repeat(chr(128512), 100000) AS s, n FROM generate_series(1, 20) n"
    )

    assert not is_error
    assert len(text.encode()) <= cap + 1024
    assert json.loads(text)["truncated"] is True


async def test_the_reader_can_neither_spill_to_disk_nor_see_other_sessions_queries(
    context: ToolContext, reader: DataSource
) -> None:
    async with connected(reader.url) as other:
        await other.execute("SELECT 'another agent''s confidential query'")
        text, _ = await call_tool(
            context, "database_query", query="SELECT query FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
        )
        spill, spill_error = await call_tool(
            context, "database_query", query="SELECT set_config('temp_file_limit', '-1', false)"
        )
        setting, _ = await query(context, "SHOW temp_file_limit")

    assert "confidential" not in text
    assert isinstance(setting, dict) and setting["rows"] == [{"temp_file_limit": "256MB"}]
    assert spill_error and "permission denied" in spill


@pytest.mark.parametrize("password", ["plain-secret", "p@ss:w/rd%", "s p a c e"])
def test_a_data_source_url_is_logged_without_its_password(password: str) -> None:
    url = f"postgresql://mats_reader:{quote(password, safe='')}@db.example:5433/mats_data?sslmode=require"

    shown = redacted(url)

    assert shown == "postgresql://mats_reader:***@db.example:5433/mats_data?sslmode=require"
    assert quote(password, safe="") not in shown and password not in shown
