"""The orchestrator's side of the cost ledger: the prices in force, and counting what is recorded.

MODEL_PRICES is synced into `model_prices` once per process, before the first row is priced (at start, or at the
first need of a lifecycle made without one): a model whose price changed gets a new version, and rows recorded
from then on reference it, while older rows keep the version (and the cost) they were recorded with. The rows
themselves are written by the lifecycle, inside the transactions that store what they belong to.
"""

import asyncio
from collections.abc import Sequence

import structlog

from orchestrator.metrics import OrchestratorMetrics
from shared.config import Settings
from shared.database import DatabaseManager
from shared.ledger import LedgerEntry, PriceBook, total_cost
from shared.models import ModelCallUsage, Task

log = structlog.get_logger(__name__)


class CostLedger:
    def __init__(self, settings: Settings, db: DatabaseManager, metrics: OrchestratorMetrics) -> None:
        self._settings = settings
        self._db = db
        self._metrics = metrics
        self._book: PriceBook | None = None
        self._syncing = asyncio.Lock()

    async def price_book(self) -> PriceBook:
        """The price versions of MODEL_PRICES, synced into PostgreSQL on the first call (committed before any row
        references them)."""
        if self._book is None:
            async with self._syncing:
                if self._book is None:
                    async with self._db.transaction() as tx:
                        versions = await tx.ledger.sync_prices(self._settings.model_prices)
                    self._book = PriceBook(versions)
                    log.info(
                        "model_prices_synced",
                        models=len(versions),
                        versions={model: version.version for model, version in sorted(versions.items())},
                    )
        return self._book

    async def task_planning(self, task: Task, calls: Sequence[ModelCallUsage]) -> list[LedgerEntry]:
        """The rows of a task's planning calls, for the transaction that stores it; its decomposition's cost becomes
        theirs (None when a model of theirs has no price)."""
        entries = (await self.price_book()).planning_entries(task.id, calls)
        if task.decomposition is not None and entries:
            unpriced = any(entry.price_id is None for entry in entries)
            task.decomposition.cost_usd = None if unpriced else total_cost(entries)
        return entries

    async def record_planning(self, task_id: str | None, calls: Sequence[ModelCallUsage]) -> float:
        """Record planning calls in a statement of their own (no task stored with them); their cost in US dollars."""
        entries = (await self.price_book()).planning_entries(task_id, calls)
        await self._db.repositories().ledger.record(entries)
        self.counted(entries)
        return total_cost(entries)

    def counted(self, entries: Sequence[LedgerEntry]) -> None:
        """After commit: the recorded rows' tokens and dollars on the Prometheus counters."""
        for entry in entries:
            self._metrics.model_call(self._settings.tenant_id, entry.model, entry.usage, entry.cost_usd)
