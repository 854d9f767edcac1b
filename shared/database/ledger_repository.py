"""The cost ledger (`model_calls`) and its price table (`model_prices`): recording calls and summing them.

Every roll-up is SQL over the ledger: per task (`task_spend`, `task_totals`), per tenant and UTC day
(`tenant_spend_on`, `daily_spend`) and, for the operator, per tenant (`spend_by_tenant`). Days are UTC days.
"""

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from shared.database.executor import Executor
from shared.ledger import LedgerEntry, PriceVersion
from shared.models import CallPurpose, TokenUsage
from shared.pricing import ModelPrice

TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
PRICE_COLUMNS = ("input_per_million", "output_per_million", "cache_read_per_million", "cache_write_per_million")
# Sums of a group of rows, in the order `_totals` reads them.
TOTALS_SQL = ", ".join(
    ["coalesce(sum(cost_usd), 0)::float8 AS cost_usd", "count(*) AS calls"]
    + [f"coalesce(sum({column}), 0)::bigint AS {column}" for column in TOKEN_COLUMNS]
)
# One advisory lock key for syncing prices: two orchestrators starting together must not both add version N + 1.
PRICE_SYNC_LOCK = 0x6D6F64656C5F7072  # "model_pr"

SYNC_PRICES = f"""
WITH wanted AS (
    SELECT * FROM unnest($1::text[], $2::numeric[], $3::numeric[], $4::numeric[], $5::numeric[])
        AS w (model, {", ".join(PRICE_COLUMNS)})
), latest AS (
    SELECT DISTINCT ON (model) * FROM model_prices WHERE model = ANY ($1::text[]) ORDER BY model, version DESC
), added AS (
    INSERT INTO model_prices (model, version, {", ".join(PRICE_COLUMNS)})
    SELECT w.model, coalesce(l.version, 0) + 1, {", ".join(f"w.{column}" for column in PRICE_COLUMNS)}
    FROM wanted w LEFT JOIN latest l USING (model)
    WHERE l.id IS NULL
       OR ({", ".join(f"l.{column}" for column in PRICE_COLUMNS)})
          IS DISTINCT FROM ({", ".join(f"w.{column}" for column in PRICE_COLUMNS)})
    RETURNING id, model, version, {", ".join(PRICE_COLUMNS)}
)
SELECT * FROM added
UNION ALL
SELECT l.id, l.model, l.version, {", ".join(f"l.{column}" for column in PRICE_COLUMNS)}
FROM latest l JOIN wanted w USING (model)
WHERE ({", ".join(f"l.{column}" for column in PRICE_COLUMNS)})
      = ({", ".join(f"w.{column}" for column in PRICE_COLUMNS)})
"""

RECORD_CALLS = f"""
INSERT INTO model_calls (tenant_id, task_id, subtask_id, attempt, agent_id, purpose, model, {", ".join(TOKEN_COLUMNS)},
                         cost_usd, price_id)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::bigint[],
                         $9::bigint[], $10::bigint[], $11::bigint[], $12::numeric[], $13::bigint[])
"""


class CallTotals(BaseModel):
    """What a group of model calls cost and used."""

    cost_usd: float = Field(0.0, ge=0, description="US dollars, by the ledger")
    calls: int = Field(0, ge=0, description="How many model calls")
    tokens: TokenUsage = Field(default_factory=TokenUsage)


class ModelCallRecord(BaseModel):
    """One row of the ledger, with the version of the price it was charged at."""

    id: int
    purpose: CallPurpose
    subtask_id: str | None
    attempt: int | None
    agent_id: str | None
    model: str
    tokens: TokenUsage
    cost_usd: float = Field(ge=0)
    price_id: int | None = Field(description="The model_prices row it was priced with; null: the model had no price")
    price_version: int | None
    created_at: datetime


class ModelSpend(BaseModel):
    """One model's share of a group of calls."""

    model: str
    totals: CallTotals


class DaySpend(BaseModel):
    """The tenant's calls on one UTC day, and each model's share."""

    day: date
    totals: CallTotals
    models: list[ModelSpend] = Field(description="By model name")


class AttemptSpend(BaseModel):
    """One attempt's calls (its turns)."""

    subtask_id: str
    attempt: int
    agent_id: str | None
    totals: CallTotals


class TaskRollup(BaseModel):
    """A task's calls summed: in all, by purpose, by subtask and by attempt."""

    total: CallTotals
    by_purpose: dict[CallPurpose, CallTotals]
    by_subtask: dict[str, CallTotals]
    attempts: list[AttemptSpend] = Field(description="By subtask id, then attempt")


class TenantSpend(BaseModel):
    """One tenant's spend over a window, and on the current UTC day."""

    tenant_id: str
    totals: CallTotals
    today_usd: float = Field(ge=0)


def _totals(row: Mapping[str, Any]) -> CallTotals:
    return CallTotals(
        cost_usd=row["cost_usd"],
        calls=row["calls"],
        tokens=TokenUsage(**{column: row[column] for column in TOKEN_COLUMNS}),
    )


def _price_version(row: Mapping[str, Any]) -> PriceVersion:
    input_price, output_price, cache_read, cache_write = (float(row[column]) for column in PRICE_COLUMNS)
    price = ModelPrice(input=input_price, output=output_price, cache_read=cache_read, cache_write=cache_write)
    return PriceVersion(price_id=row["id"], model=row["model"], version=row["version"], price=price)


class LedgerRepository:
    def __init__(self, executor: Executor, tenant_id: str) -> None:
        self._executor = executor
        self._tenant_id = tenant_id

    # --- prices ---------------------------------------------------------------------------------------------------

    async def sync_prices(self, prices: Mapping[str, ModelPrice]) -> dict[str, PriceVersion]:
        """The price version of each model in `prices`: its latest one when that is the same price, else a new one.
        Run it inside a transaction (the advisory lock it takes is the transaction's)."""
        if not prices:
            return {}
        await self._executor.execute("SELECT pg_advisory_xact_lock($1)", PRICE_SYNC_LOCK)
        models = sorted(prices)
        columns = [
            [Decimal(str(getattr(prices[model], kind))) for model in models]
            for kind in ("input", "output", "cache_read", "cache_write")
        ]
        rows = await self._executor.fetch(SYNC_PRICES, models, *columns)
        return {row["model"]: _price_version(row) for row in rows}

    # --- recording ------------------------------------------------------------------------------------------------

    async def record(self, entries: Sequence[LedgerEntry]) -> None:
        """Insert the rows in one statement."""
        if not entries:
            return
        columns: list[list[Any]] = [
            [entry.task_id for entry in entries],
            [entry.subtask_id for entry in entries],
            [entry.attempt for entry in entries],
            [entry.agent_id for entry in entries],
            [entry.purpose.value for entry in entries],
            [entry.model for entry in entries],
            *([getattr(entry.usage, column) for entry in entries] for column in TOKEN_COLUMNS),
            [Decimal(repr(entry.cost_usd)) for entry in entries],
            [entry.price_id for entry in entries],
        ]
        await self._executor.execute(RECORD_CALLS, self._tenant_id, *columns)

    # --- roll-ups -------------------------------------------------------------------------------------------------

    async def task_spend(self, task_ids: Collection[str]) -> dict[str, float]:
        """US dollars each of these tasks of the tenant's has cost so far (planning included), by id."""
        return {task_id: totals.cost_usd for task_id, totals in (await self.task_totals(task_ids)).items()}

    async def task_totals(self, task_ids: Collection[str]) -> dict[str, CallTotals]:
        """What each of these tasks of the tenant's has cost and used so far, by id (none: zero)."""
        rows = await self._executor.fetch(
            f"""
            SELECT task_id, {TOTALS_SQL} FROM model_calls
            WHERE task_id = ANY ($1::text[]) AND tenant_id = $2 GROUP BY task_id
            """,
            list(task_ids),
            self._tenant_id,
        )
        found = {row["task_id"]: _totals(row) for row in rows}
        return {task_id: found.get(task_id, CallTotals()) for task_id in task_ids}

    async def tenant_spend_on(self, day: date) -> float:
        """US dollars the tenant spent on the UTC day `day` (tasks, dry runs and late results alike)."""
        spent: float = await self._executor.fetchval(
            """
            SELECT coalesce(sum(cost_usd), 0)::float8 FROM model_calls
            WHERE tenant_id = $1 AND created_at >= ($2::date)::timestamp AT TIME ZONE 'UTC'
              AND created_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'
            """,
            self._tenant_id,
            day,
        )
        return spent

    async def task_calls(self, task_id: str) -> list[ModelCallRecord]:
        """The task's rows, oldest first, each with its price version."""
        rows = await self._executor.fetch(
            f"""
            SELECT c.id, c.purpose, c.subtask_id, c.attempt, c.agent_id, c.model, {", ".join(TOKEN_COLUMNS)},
                   c.cost_usd::float8 AS cost_usd, c.price_id, p.version AS price_version, c.created_at
            FROM model_calls c LEFT JOIN model_prices p ON p.id = c.price_id
            WHERE c.task_id = $1 AND c.tenant_id = $2
            ORDER BY c.created_at, c.id
            """,
            task_id,
            self._tenant_id,
        )
        return [
            ModelCallRecord.model_validate({**dict(row), "tokens": {column: row[column] for column in TOKEN_COLUMNS}})
            for row in rows
        ]

    async def task_rollup(self, task_id: str) -> TaskRollup:
        """The task's spend in all, by purpose, by subtask and by attempt, in one statement."""
        rows = await self._executor.fetch(
            f"""
            SELECT purpose, subtask_id, attempt, agent_id, GROUPING(purpose, subtask_id, attempt, agent_id) AS level,
                   {TOTALS_SQL}
            FROM model_calls WHERE task_id = $1 AND tenant_id = $2
            GROUP BY GROUPING SETS ((), (purpose), (subtask_id), (subtask_id, attempt, agent_id))
            ORDER BY subtask_id, attempt
            """,
            task_id,
            self._tenant_id,
        )
        # GROUPING's bits, purpose first: 0b0111 grouped by purpose alone, 0b1011 by subtask, 0b1000 by attempt.
        by_level: dict[int, list[Mapping[str, Any]]] = {}
        for row in rows:
            by_level.setdefault(row["level"], []).append(row)
        total = by_level.get(0b1111, [])
        return TaskRollup(
            total=_totals(total[0]) if total else CallTotals(),
            by_purpose={row["purpose"]: _totals(row) for row in by_level.get(0b0111, [])},
            by_subtask={row["subtask_id"]: _totals(row) for row in by_level.get(0b1011, []) if row["subtask_id"]},
            attempts=[
                AttemptSpend(
                    subtask_id=row["subtask_id"], attempt=row["attempt"], agent_id=row["agent_id"], totals=_totals(row)
                )
                for row in by_level.get(0b1000, [])
                if row["subtask_id"]
            ],
        )

    async def daily_spend(self, since: date) -> list[DaySpend]:
        """The tenant's calls per UTC day from `since` on, with each model's share, oldest day first (days without
        calls left out)."""
        rows = await self._executor.fetch(
            f"""
            SELECT day, model, GROUPING(model) AS all_models, {TOTALS_SQL}
            FROM (
                SELECT (created_at AT TIME ZONE 'UTC')::date AS day, model, cost_usd, {", ".join(TOKEN_COLUMNS)}
                FROM model_calls
                WHERE tenant_id = $1 AND created_at >= ($2::date)::timestamp AT TIME ZONE 'UTC'
            ) calls
            GROUP BY GROUPING SETS ((day), (day, model)) ORDER BY day, all_models DESC, model
            """,
            self._tenant_id,
            since,
        )
        days: list[DaySpend] = []
        for row in rows:  # each day's total first, then its models
            if row["all_models"]:
                days.append(DaySpend(day=row["day"], totals=_totals(row), models=[]))
            else:
                days[-1].models.append(ModelSpend(model=row["model"], totals=_totals(row)))
        return days

    async def spend_by_tenant(self, since: date, today: date) -> list[TenantSpend]:
        """Every tenant's spend from the UTC day `since` on, and on `today`, by tenant id (the operator's view)."""
        rows = await self._executor.fetch(
            f"""
            SELECT tenant_id, {TOTALS_SQL},
                   coalesce(sum(cost_usd) FILTER (
                       WHERE created_at >= ($2::date)::timestamp AT TIME ZONE 'UTC'
                   ), 0)::float8 AS today_usd
            FROM model_calls
            WHERE created_at >= ($1::date)::timestamp AT TIME ZONE 'UTC'
            GROUP BY tenant_id ORDER BY tenant_id
            """,
            since,
            today,
        )
        return [
            TenantSpend(tenant_id=row["tenant_id"], totals=_totals(row), today_usd=row["today_usd"]) for row in rows
        ]
