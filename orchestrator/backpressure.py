"""When the queue is full: how fast it drains, measured, and so when a refused client should come back.

The meter counts the attempts this orchestrator handed to agents over the last minute. That is the rate at which
queued subtasks leave the queue, so the time until a task fits again is the excess over the limit divided by it.
"""

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from shared.errors import TooManyRequestsError

WINDOW_SECONDS = 60.0
# Bounds of Retry-After: never "now", and never so long a client gives up on a fleet that is merely slow.
MIN_RETRY_AFTER_SECONDS = 1
MAX_RETRY_AFTER_SECONDS = 300


class DrainMeter:
    """How many queued attempts left the queue over the last minute."""

    def __init__(self, window_seconds: float = WINDOW_SECONDS) -> None:
        self._window = window_seconds
        self._claims: deque[tuple[float, int]] = deque()  # (monotonic time, attempts claimed then)
        self._total = 0

    def record(self, claimed: int, now: float | None = None) -> None:
        if claimed:
            self._claims.append((time.monotonic() if now is None else now, claimed))
            self._total += claimed

    def per_second(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        while self._claims and self._claims[0][0] <= now - self._window:
            self._total -= self._claims.popleft()[1]
        return self._total / self._window


def queue_full(queued: int, arriving: int, limit: int, drain_per_second: float) -> TooManyRequestsError:
    """The 429 for a task whose `arriving` ready subtasks do not fit beside the `queued` ones."""
    excess = queued + arriving - limit
    if drain_per_second > 0:
        retry_after = math.ceil(excess / drain_per_second)
        pace = f"the fleet took {drain_per_second * 60:.0f} subtasks in the last minute"
    else:
        retry_after = MAX_RETRY_AFTER_SECONDS
        pace = "no agent took work in the last minute"
    retry_after = min(max(retry_after, MIN_RETRY_AFTER_SECONDS), MAX_RETRY_AFTER_SECONDS)
    return TooManyRequestsError(
        f"the queue is full ({queued} subtasks waiting, limit {limit}); {pace}: retry in {retry_after} s",
        retry_after_seconds=retry_after,
        detail={"queued_subtasks": queued, "max_queue_depth": limit},
    )


class QueueAdmission:
    """Lets submits into the queue only while their first subtasks fit beside those queued (MAX_QUEUE_DEPTH).

    Submits arriving together cannot overshoot between them: each is admitted in turn, and reserves its room until
    its rows are committed. Reading the depth costs a query, so it is read only when an estimate says the room may
    be short: the depth last read plus everything admitted since can only be more than what is queued now (within
    this orchestrator; others of the same tenant are not seen). Near the limit a submit that does not fit waits
    for the submits still being stored and reads again, so nothing is refused for room that is really there.
    """

    def __init__(self, limit: int, count_queued: Callable[[], Awaitable[int]], drain: DrainMeter) -> None:
        self._limit = limit
        self._count_queued = count_queued
        self._drain = drain
        self._turn = asyncio.Lock()
        self._storing = 0  # room reserved by admitted submits whose rows are not committed yet
        self._stored = asyncio.Condition()  # notified as each of them is
        self._estimate: int | None = None  # an upper bound of the queued subtasks, None until read

    async def check(self, arriving: int) -> None:
        """TooManyRequestsError when the room is short now (no reservation: the early answer before any work)."""
        if self._estimate is None or self._estimate + arriving > self._limit:
            self._refuse_unless_fits(await self._count_queued() + self._storing, arriving)

    @asynccontextmanager
    async def admitted(self, arriving: int) -> AsyncIterator[None]:
        """Hold room for `arriving` queued subtasks while the block stores them, or TooManyRequestsError."""
        async with self._turn:
            if self._estimate is None or self._estimate + arriving > self._limit:
                self._estimate = await self._exact_depth(arriving)
                self._refuse_unless_fits(self._estimate, arriving)
            self._estimate += arriving
            self._storing += arriving
        try:
            yield
        finally:
            async with self._stored:
                self._storing -= arriving
                self._stored.notify_all()

    async def _exact_depth(self, arriving: int) -> int:
        """Queued subtasks plus the room of submits being stored, waiting for those when that decides the answer
        (a read while they commit may count one twice, as a row and as room, never zero times)."""
        while True:
            storing = self._storing
            depth = await self._count_queued() + storing
            if not storing or self._fits(depth, arriving):
                return depth
            async with self._stored:
                await self._stored.wait_for(lambda: self._storing < storing)  # noqa: B023 - evaluated at once

    def _fits(self, queued: int, arriving: int) -> bool:
        return not queued or queued + arriving <= self._limit  # an empty queue takes any task

    def _refuse_unless_fits(self, queued: int, arriving: int) -> None:
        if not self._fits(queued, arriving):
            raise queue_full(queued, arriving, self._limit, self._drain.per_second())
