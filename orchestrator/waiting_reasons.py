"""The status reasons of waiting subtasks, as the task lifecycle records them: each change logged and written once.

The dispatcher's matcher says, every round, why each queued attempt it holds waits (orchestrator/waiting.py). Rounds
come many times a second under load and mostly find what the last one found, so only a change is logged
(`subtask_waiting` / `subtask_resumed`) and written to PostgreSQL, by one writer at a time so changes land in the
order they were seen. A write PostgreSQL cannot take is kept and tried again with the next round's changes; the
statement only touches an attempt that is still queued, so a late write never marks a claimed attempt as waiting.
"""

import asyncio
from collections.abc import Sequence

import structlog

from shared.database import DatabaseManager
from shared.loop_service import OutageWatch
from shared.models import QueuedSubtask, StatusReason
from shared.outages import STORE_OUTAGES

log = structlog.get_logger(__name__)

AttemptKey = tuple[str, int]  # subtask id, attempt
Change = tuple[QueuedSubtask, StatusReason | None]


def _key(item: QueuedSubtask) -> AttemptKey:
    return item.subtask_id, item.attempt


class WaitingReasons:
    def __init__(self, db: DatabaseManager) -> None:
        self._db = db
        self._waiting: dict[AttemptKey, StatusReason] = {}  # as last noted
        self._unwritten: dict[AttemptKey, Change] = {}
        self._writer: asyncio.Task[None] | None = None
        self._outages = OutageWatch("status_reasons_deferred", "status_reasons_written")

    def note(self, backlog: Sequence[Change]) -> None:
        """Why each queued attempt the matcher holds waits, or None; log and write what changed."""
        held = set()
        for item, reason in backlog:
            key = _key(item)
            held.add(key)
            if self._waiting.get(key) != reason:
                self._changed(item, reason)
                self._unwritten[key] = (item, reason)
        for key in self._waiting.keys() - held:  # handed to an agent (the claim cleared it), or superseded
            del self._waiting[key]
        for key in self._unwritten.keys() - held:
            del self._unwritten[key]
        if self._unwritten and (self._writer is None or self._writer.done()):
            changes, self._unwritten = list(self._unwritten.values()), {}
            self._writer = asyncio.create_task(self._write(changes), name=f"status_reasons:{len(changes)}")

    async def written(self) -> None:
        """Returns once the write under way, if any, has ended."""
        if self._writer is not None:
            await asyncio.wait([self._writer])

    def _changed(self, item: QueuedSubtask, reason: StatusReason | None) -> None:
        fields = {"task_id": item.task_id, "subtask_id": item.subtask_id, "attempt": item.attempt}
        if reason is None:
            del self._waiting[_key(item)]
            log.info("subtask_resumed", **fields)
        else:
            self._waiting[_key(item)] = reason
            log.info("subtask_waiting", code=reason.code, reason=reason.message, **fields)

    async def _write(self, changes: Sequence[Change]) -> None:
        try:
            await self._db.repositories().subtasks.set_status_reasons(
                [(item.subtask_id, item.attempt, reason) for item, reason in changes]
            )
        except STORE_OUTAGES as error:
            self._outages.failed(error)
            for item, reason in changes:  # again with the next round's changes; a newer change of its own wins
                self._unwritten.setdefault(_key(item), (item, reason))
        except Exception:
            log.exception("status_reasons_failed", count=len(changes))
        else:
            self._outages.succeeded()
