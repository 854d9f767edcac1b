"""database_query: one read-only SQL statement on the tenant's data source, answered as JSON rows.

What keeps it harmless is where it runs, not what it says: the data source is a database of its own, reached through
a login role that can only read its data schema (shared/database/data_source.py), in a READ ONLY transaction that is
always rolled back, with a statement timeout, on a connection reset before its next use. The statement is prepared,
so PostgreSQL itself refuses several statements in one string. The keyword check below only gives the model a
friendlier message than PostgreSQL's. Answers are bounded in rows and in bytes.
"""

import asyncio
import datetime
import json
import math
import re
import uuid
from decimal import Decimal
from typing import Any

import asyncpg

from agent.tools.audit import ToolSpec, object_schema
from agent.tools.context import ToolContext
from agent.tools.errors import ToolError

READ_KEYWORDS = frozenset({"select", "with", "values", "table", "explain", "show"})
_LEADING_NOISE = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
_FIRST_WORD = re.compile(r"[A-Za-z]+")
# Rows are fetched a few at a time, so a handful of huge rows is not read whole once the byte budget is spent.
MAX_ROWS_PER_FETCH = 16


async def database_query(context: ToolContext, arguments: dict[str, Any]) -> str:
    query = str(arguments["query"])
    keyword = first_keyword(query)
    if keyword not in READ_KEYWORDS:
        shown = keyword.upper() if keyword else "nothing"
        raise ToolError(f"only read-only statements (SELECT, WITH, VALUES, TABLE, EXPLAIN, SHOW) run here; got {shown}")
    settings = context.settings
    timeout_ms = settings.agent_query_timeout_ms
    async with context.data_source.connection() as connection:
        transaction = connection.transaction(readonly=True)
        await transaction.start()
        try:
            await connection.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
            # statement_timeout bounds each FETCH of the cursor; this bounds the whole call.
            async with asyncio.timeout(timeout_ms / 1000):
                answer = await _fetch(connection, query, settings.agent_query_row_cap, settings.agent_query_max_bytes)
        except TimeoutError:
            raise ToolError(f"the query ran into the time limit ({timeout_ms} ms for the whole call)") from None
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise ToolError(f"the database refused the query: {_describe(error)}") from None
        except (ValueError, OverflowError, RecursionError) as error:  # a value asyncpg cannot turn into Python
            raise ToolError(f"a value in the answer cannot be read: {error!r}; cast it to text") from None
        finally:
            await transaction.rollback()
    return json.dumps(answer, ensure_ascii=False)


def first_keyword(query: str) -> str:
    """The statement's first word, lower-cased, after whitespace and comments; '' when there is none."""
    noise = _LEADING_NOISE.match(query)  # matches at least the empty string
    match = _FIRST_WORD.match(query, noise.end() if noise else 0)
    return match.group(0).lower() if match else ""


async def _fetch(connection: asyncpg.Connection, query: str, row_cap: int, byte_cap: int) -> dict[str, Any]:
    statement = await connection.prepare(query)
    columns = [attribute.name for attribute in statement.get_attributes()]
    cursor = await statement.cursor()
    rows: list[dict[str, Any]] = []
    size = 0
    wanted = 1  # the first row tells how big rows are
    while records := await cursor.fetch(wanted):
        for record in records:
            if len(rows) == row_cap:
                return _answer(columns, rows, f"more than {row_cap} rows; only the first {row_cap} are here")
            row = {name: json_value(value) for name, value in record.items()}
            size += len(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode())
            if size > byte_cap:
                return _answer(columns, rows, f"the rows pass {byte_cap} bytes of JSON; the first {len(rows)} are here")
            rows.append(row)
        if len(records) < wanted:
            break
        row_bytes = max(1, size // len(rows))
        wanted = max(1, min(MAX_ROWS_PER_FETCH, row_cap + 1 - len(rows), (byte_cap - size) // row_bytes))
    return _answer(columns, rows, None)


def _answer(columns: list[str], rows: list[dict[str, Any]], truncation: str | None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "columns": columns,
        "rows": rows,
        "row_count": len(rows),
        "truncated": truncation is not None,
    }
    if truncation:
        answer["note"] = f"truncated: {truncation}; select fewer or narrower rows to see the rest"
    return answer


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


def _describe(error: Exception) -> str:
    if isinstance(error, asyncpg.QueryCanceledError):
        return f"{error} (the statement ran into the time limit)"
    return str(error)


DATABASE_QUERY = ToolSpec(
    name="database_query",
    description=(
        "Run ONE read-only SQL statement (SELECT, WITH, VALUES, TABLE, EXPLAIN or SHOW) on the tenant's PostgreSQL "
        "data source; its tables are in the schema on the search_path (SELECT table_name FROM "
        "information_schema.tables WHERE table_schema = current_schema() lists them). Answers JSON: "
        '{"columns": [...], "rows": [{column: value}], "row_count": n, "truncated": bool}; rows and bytes are '
        'capped, and a "note" says when.'
    ),
    input_schema=object_schema({"query": {"type": "string", "description": "One SQL statement"}}, ["query"]),
    function=database_query,
)
