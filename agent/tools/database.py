"""database_query: one read-only SQL statement, answered as JSON rows the model (and a scenario template) can read.

Read-only for real, in layers: only statements that start as reads are sent; they run in a READ ONLY transaction
that is always rolled back, as a least-privileged role, with a statement timeout; and as a prepared statement, so
PostgreSQL itself refuses several statements in one string.
"""

import datetime
import json
import math
import re
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import structlog

from agent.tools.audit import ToolSpec, object_schema
from agent.tools.context import ToolContext
from agent.tools.errors import ToolError

log = structlog.get_logger(__name__)

READ_KEYWORDS = frozenset({"select", "with", "values", "table", "explain", "show"})
NO_ROLE = "none"
_LEADING_NOISE = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
_FIRST_WORD = re.compile(r"[A-Za-z]+")


async def database_query(context: ToolContext, arguments: dict[str, Any]) -> str:
    query = str(arguments["query"])
    keyword = first_keyword(query)
    if keyword not in READ_KEYWORDS:
        shown = keyword.upper() if keyword else "nothing"
        raise ToolError(f"only read-only statements (SELECT, WITH, VALUES, TABLE, EXPLAIN, SHOW) run here; got {shown}")
    settings = context.settings
    async with context.db.pool.acquire() as connection:
        transaction = connection.transaction(readonly=True)
        await transaction.start()
        try:
            await _restrict(connection, settings.agent_query_timeout_ms, settings.agent_query_role)
            columns, rows, truncated = await _fetch(connection, query, settings.agent_query_row_cap)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise ToolError(f"the database refused the query: {_describe(error)}") from None
        finally:
            # Rolled back, never committed: whatever the statement changed in the session (SET, set_config) is undone.
            await transaction.rollback()
    return json.dumps({"columns": columns, "rows": rows, "row_count": len(rows), "truncated": truncated})


def first_keyword(query: str) -> str:
    """The statement's first word, lower-cased, after whitespace and comments; '' when there is none."""
    noise = _LEADING_NOISE.match(query)  # matches at least the empty string
    match = _FIRST_WORD.match(query, noise.end() if noise else 0)
    return match.group(0).lower() if match else ""


async def _restrict(connection: asyncpg.Connection, timeout_ms: int, role: str) -> None:
    await connection.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
    if role != NO_ROLE:
        try:
            await connection.execute(f"SET LOCAL ROLE {_quote_identifier(role)}")
        except asyncpg.PostgresError as error:
            log.error("query_role_unavailable", role=role, error=str(error))
            raise ToolError(
                f"database_query is misconfigured (cannot run as role {role!r}); tell the operator"
            ) from None


async def _fetch(
    connection: asyncpg.Connection, query: str, row_cap: int
) -> tuple[list[str], list[dict[str, Any]], bool]:
    statement = await connection.prepare(query)
    columns = [attribute.name for attribute in statement.get_attributes()]
    cursor = await statement.cursor()
    records = await cursor.fetch(row_cap + 1)  # one more than the cap tells whether there were more
    rows = [{name: json_value(value) for name, value in record.items()} for record in records[:row_cap]]
    return columns, rows, len(records) > row_cap


def json_value(value: Any) -> Any:
    """A JSON-friendly form of a PostgreSQL value; an integral numeric becomes an int (factorial(10) -> 3628800)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.date | datetime.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, dict | asyncpg.Record):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _describe(error: Exception) -> str:
    if isinstance(error, asyncpg.QueryCanceledError):
        return f"{error} (the statement ran into the time limit)"
    return str(error)


DATABASE_QUERY = ToolSpec(
    name="database_query",
    description=(
        "Run ONE read-only SQL statement (SELECT, WITH, VALUES, TABLE, EXPLAIN or SHOW) on PostgreSQL. Answers JSON: "
        '{"columns": [...], "rows": [{column: value}], "row_count": n, "truncated": bool}; rows are capped.'
    ),
    input_schema=object_schema({"query": {"type": "string", "description": "One SQL statement"}}, ["query"]),
    function=database_query,
)
