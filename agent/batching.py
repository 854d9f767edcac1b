"""Work that may wait a few tens of milliseconds is done once per burst: slot-change heartbeats, audit rows, events.

Done once per subtask instead, each of them is a Redis or PostgreSQL round trip, and on a busy agent those round
trips, not the subtasks, are what the CPU goes to.
"""

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

from shared.loop_service import LoopService

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Enough for minutes of a busy agent's records; past it a stuck write costs records, not the agent's memory.
MAX_PENDING_ITEMS = 10_000
# A failed write is tried again this often, for this long (a PostgreSQL or Redis restart), before its items go.
WRITE_RETRY_SECONDS = 1.0
WRITE_RETRY_FOR_SECONDS = 15.0


class CoalescingLoop(LoopService):
    """A LoopService that also runs `window` seconds after a `notify()`, once for every notification of that window.

    The pause between iterations is still `interval` at most (`math.inf`: run only when notified).
    """

    def __init__(self, name: str, interval: float, window: float) -> None:
        super().__init__(name, interval)
        self.window = window
        self._wake = asyncio.Event()  # set by notify() and by stop()

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        super().stop()
        self._wake.set()

    async def sleep(self, seconds: float) -> None:
        """Until the pause is over or a notification's window has passed; at once when the loop is stopped."""
        if await _wait(self._wake, seconds) and not self.stopping:
            await _wait(self._stopping, self.window)  # let the rest of the burst arrive
        # Cleared before the next iteration takes its snapshot, so a notification during it is not lost.
        self._wake.clear()


class BatchWriter(CoalescingLoop, Generic[T]):
    """Items added within one window are written together, in one call of `write`.

    Best effort, like the records it carries: a write that fails is tried again every `retry_after` seconds, with
    whatever arrived meanwhile, and its items are logged as dropped once writes have failed for `retry_for` seconds
    (or when it fails during shutdown). `flush()` writes whatever is pending (after `stop()`, before the clients
    the write uses are closed).
    """

    def __init__(
        self,
        name: str,
        write: Callable[[list[T]], Awaitable[object]],
        window: float,
        max_pending: int = MAX_PENDING_ITEMS,
        retry_after: float = WRITE_RETRY_SECONDS,
        retry_for: float = WRITE_RETRY_FOR_SECONDS,
    ) -> None:
        super().__init__(name, interval=math.inf, window=window)
        self._write = write
        self._max_pending = max_pending
        self._retry_after = retry_after
        self._retry_for = retry_for
        self._pending: list[T] = []
        self._dropped = 0
        self._failing_since: float | None = None  # monotonic time of the first failed write since the last success

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, item: T) -> None:
        if len(self._pending) >= self._max_pending:
            self._dropped += 1
            return
        self._pending.append(item)
        self.notify()

    async def run_once(self) -> None:
        batch, self._pending = self._pending, []
        if self._dropped:
            log.warning("batch_items_dropped", writer=self.name, count=self._dropped, max_pending=self._max_pending)
            self._dropped = 0
        if not batch:
            return
        try:
            await self._write(batch)
        except Exception as error:
            await self._write_failed(batch, error)
        else:
            self._failing_since = None

    async def _write_failed(self, batch: list[T], error: Exception) -> None:
        now = time.monotonic()
        self._failing_since = self._failing_since or now
        if self.stopping or now - self._failing_since >= self._retry_for:
            # Every item still has its own structlog line.
            log.warning("batch_write_failed", writer=self.name, count=len(batch), error=repr(error))
            return
        log.info("batch_write_retrying", writer=self.name, count=len(batch), error=repr(error))
        self._pending[:0] = batch  # ahead of what arrived during the write, so the order holds
        await _wait(self._stopping, self._retry_after)
        self.notify()  # the next iteration retries even if nothing new arrives

    def take_pending(self) -> list[T]:
        """What waits to be written, for a caller that writes it along with other work (`put_back` if it fails)."""
        batch, self._pending = self._pending, []
        return batch

    def put_back(self, batch: list[T]) -> None:
        """Items `take_pending` gave out that were not written: ahead of the rest, as if never taken."""
        if batch:
            self._pending[:0] = batch
            self.notify()

    async def flush(self) -> None:
        """Write what is pending now."""
        await self.run_once()


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    """True once `event` is set, False when `seconds` (which may be infinite) pass first."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds if math.isfinite(seconds) else None):
            await event.wait()
    return event.is_set()
