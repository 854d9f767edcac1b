"""The retention loop: ended tasks older than RETENTION_DAYS go with all they left (orchestrator/task_removal.py).

Each round removes expired tasks in batches of RETENTION_BATCH_SIZE, one transaction each, so a large backlog never
holds a long transaction or many locks; then it sweeps what outlived removed tasks: folders named for tasks that no
longer exist (once untouched for LEFTOVER_AGE_SECONDS, so nothing an agent is still writing is raced), and the agent
logs and tool calls agents wrote for a removed task after it went (found through `removed_tasks`; an audit row
naming a task that never existed here is not the retention's to remove). With RETENTION_DAYS=0 tasks are kept
forever, and the sweep still clears what DELETE /tasks/{id} left behind. A store outage costs the log one warning
(LoopService's OutageWatch), not a traceback per round.
"""

import asyncio
from datetime import UTC, datetime, timedelta

import structlog

from orchestrator.task_removal import TaskRemoval
from shared.config import Settings
from shared.database import DatabaseManager
from shared.loop_service import LoopService

log = structlog.get_logger(__name__)

LEFTOVER_AGE_SECONDS = 3600.0
# How long a removed task's id is remembered: its agents' late audit rows come within a subtask's timeout.
REMOVED_TASKS_KEPT = timedelta(days=1)
# Task ids asked of PostgreSQL per query while sweeping folders.
SWEEP_CHUNK = 1000


class RetentionLoop(LoopService):
    def __init__(
        self, settings: Settings, db: DatabaseManager, removal: TaskRemoval, leftover_age: float = LEFTOVER_AGE_SECONDS
    ) -> None:
        super().__init__("retention", settings.retention_interval_seconds)
        self._retention_days = settings.retention_days
        self._batch_size = settings.retention_batch_size
        self._db = db
        self._removal = removal
        self._leftover_age = leftover_age

    async def run_once(self) -> None:
        removed = await self.purge_expired()
        swept = await self.sweep_leftovers()
        if removed or swept:
            log.info("retention_round", tasks_removed=removed, leftovers_swept=swept)

    async def purge_expired(self) -> int:
        """Remove every task that ended more than RETENTION_DAYS ago, a batch per transaction; how many went."""
        if self._retention_days == 0:
            return 0
        ended_before = datetime.now(UTC) - timedelta(days=self._retention_days)
        removed = 0
        while not self.stopping:
            expired = await self._db.repositories().retention.expired_task_ids(ended_before, self._batch_size)
            if not expired:
                break
            found = await self._removal.remove_ended(expired)
            removed += sum(1 for status in found.values() if status.is_terminal)
            if len(expired) < self._batch_size:
                break
        return removed

    async def sweep_leftovers(self) -> int:
        """Remove folders and audit rows whose task no longer exists; how many."""
        named = await asyncio.to_thread(self._removal.folders.named_for_tasks, self._leftover_age)
        orphaned: list[str] = []
        names = sorted(named)
        for start in range(0, len(names), SWEEP_CHUNK):
            chunk = names[start : start + SWEEP_CHUNK]
            existing = await self._db.repositories().retention.existing_task_ids(chunk)
            orphaned += [task_id for task_id in chunk if task_id not in existing]
        if orphaned:
            await asyncio.to_thread(self._removal.folders.remove, orphaned)
        rows = await self._db.repositories().retention.sweep_late_audit_rows(
            self._batch_size, forget_before=datetime.now(UTC) - REMOVED_TASKS_KEPT
        )
        return len(orphaned) + rows
