"""When the queue is full: how fast it drains, measured, and so when a refused client should come back.

The meter counts the attempts this orchestrator handed to agents over the last minute. That is the rate at which
queued subtasks leave the queue, so the time until a task fits again is the excess over the limit divided by it.
"""

import math
import time
from collections import deque

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
