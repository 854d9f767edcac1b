"""database_query answers reads as JSON rows and refuses every write, for real (not only by keyword)."""

import datetime
import json
from decimal import Decimal
from typing import Any

import pytest

from agent.tools import ToolContext
from agent.tools.database import first_keyword, json_value
from shared.database import DatabaseManager
from tests.factories import build_task
from tests.unit.agent.fixtures import ContextFactory, SettingsFactory, call_tool


@pytest.fixture
def context(tool_context_factory: ContextFactory) -> ToolContext:
    return tool_context_factory()


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


async def test_rows_are_capped_and_the_answer_says_so(tool_context_factory: ContextFactory) -> None:
    context = tool_context_factory()
    cap = context.settings.agent_query_row_cap

    answer, _ = await query(context, f"SELECT n FROM generate_series(1, {cap + 50}) AS n")
    exact, _ = await query(context, f"SELECT n FROM generate_series(1, {cap}) AS n")

    assert isinstance(answer, dict) and isinstance(exact, dict)
    assert (answer["row_count"], answer["truncated"]) == (cap, True)
    assert answer["rows"][-1] == {"n": cap}
    assert (exact["row_count"], exact["truncated"]) == (cap, False)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO tasks (id, description, status) VALUES ('x', 'long enough text', 'pending')",
        "UPDATE tasks SET status = 'failed'",
        "DELETE FROM tasks",
        "DROP TABLE tasks",
        "TRUNCATE tasks",
        "COPY tasks TO '/tmp/tasks.csv'",
        "SELECT 1; DROP TABLE tasks",
        "WITH gone AS (DELETE FROM tasks RETURNING id) SELECT count(*) FROM gone",
        "SELECT nextval('agent_logs_id_seq')",
        "/* looks harmless */ -- really\n DELETE FROM tasks",
    ],
)
async def test_writes_and_multiple_statements_are_refused(context: ToolContext, db: DatabaseManager, sql: str) -> None:
    task = await db.repositories().tasks.create_task(build_task())

    text, is_error = await query(context, sql)

    assert is_error
    assert isinstance(text, str) and text
    stored = await db.repositories().tasks.get_task(task.id)
    assert stored is not None and stored.status == task.status


@pytest.mark.parametrize("role", ["pg_read_all_data", "none"])
async def test_the_transaction_itself_is_read_only(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory, db: DatabaseManager, role: str
) -> None:
    """A data-modifying CTE passes the keyword check; PostgreSQL refuses it, with or without the reader role."""
    context = tool_context_factory(settings=agent_settings_factory(agent_query_role=role))
    task = await db.repositories().tasks.create_task(build_task())

    text, is_error = await query(context, "WITH gone AS (DELETE FROM tasks RETURNING id) SELECT count(*) FROM gone")

    assert is_error
    assert "read-only" in str(text)
    assert await db.repositories().tasks.get_task(task.id) is not None


async def test_session_changes_made_by_a_query_are_rolled_back(context: ToolContext, db: DatabaseManager) -> None:
    """A statement may change its session (set_config); the pooled connection must not keep the change."""
    for _ in range(3):
        await query(context, "SELECT set_config('search_path', 'hijacked', false)")
    answer, _ = await query(context, "SHOW search_path")

    assert isinstance(answer, dict)
    assert answer["rows"] != [{"search_path": "hijacked"}]
    connections = [await db.pool.acquire() for _ in range(db.pool.get_size())]
    try:
        search_paths = [await connection.fetchval("SHOW search_path") for connection in connections]
    finally:
        for connection in connections:
            await db.pool.release(connection)
    assert "hijacked" not in search_paths


async def test_a_slow_statement_hits_the_time_limit(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    context = tool_context_factory(settings=agent_settings_factory(agent_query_timeout_ms=200))
    text, is_error = await query(context, "SELECT pg_sleep(30)")
    assert is_error
    assert "time limit" in str(text)


async def test_a_role_that_cannot_be_assumed_is_reported_not_bypassed(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    context = tool_context_factory(settings=agent_settings_factory(agent_query_role="no_such_role"))
    text, is_error = await query(context, "SELECT 1 AS one")
    assert is_error
    assert "no_such_role" in str(text)


async def test_syntax_errors_and_parameters_come_back_as_tool_errors(context: ToolContext) -> None:
    for sql in ("SELEC 1", "SELECT $1::int", ""):
        _text, is_error = await query(context, sql)
        assert is_error, sql


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
