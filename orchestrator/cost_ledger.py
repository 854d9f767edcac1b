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
from shared.ledger import LedgerEntry, PriceBook

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

    def counted(self, entries: Sequence[LedgerEntry]) -> None:
        """After commit: the recorded rows' tokens and dollars on the Prometheus counters."""
        for entry in entries:
            self._metrics.model_call(self._settings.tenant_id, entry.model, entry.usage, entry.cost_usd)
