"""The serialized detail (GET /tasks/{id}) of tasks that have ended.

An ended task no longer changes, except that a late or duplicate result can still be recorded for it, and that an
operator's retry can run a failed one again. This orchestrator's lifecycle says so (`forget`) once either is
committed. A result recorded by another orchestrator
sharing the database, or committed while a read of the task was under way, shows once the entry expires.
"""

import time

# How stale an entry may be when another orchestrator records a late result.
ENTRY_TTL_SECONDS = 2.0
MAX_ENTRIES = 1024


class TaskDetailCache:
    def __init__(self, ttl: float = ENTRY_TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, bytes]] = {}  # task id -> (expiry, body); oldest first

    def get(self, task_id: str) -> bytes | None:
        entry = self._entries.get(task_id)
        if entry is None:
            return None
        expires, body = entry
        if time.monotonic() >= expires:
            del self._entries[task_id]
            return None
        return body

    def put(self, task_id: str, body: bytes) -> None:
        self._entries.pop(task_id, None)
        if len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[task_id] = (time.monotonic() + self._ttl, body)

    def forget(self, task_id: str) -> None:
        self._entries.pop(task_id, None)
