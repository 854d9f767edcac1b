"""Background loops as classes: `run_once()` is one iteration (what tests call), `start()` repeats it."""

import asyncio
import contextlib
import time
import weakref
from collections import defaultdict
from collections.abc import Callable

import structlog

from shared.outages import STORE_OUTAGES, unreachable_store

log = structlog.get_logger(__name__)

# After a failed iteration the loop waits this long, so a persistent fault is logged, not spun on.
FAILURE_BACKOFF_SECONDS = 1.0
# While a store stays unreachable the wait doubles up to this: a long outage costs a try every few seconds.
OUTAGE_BACKOFF_MAX_SECONDS = 5.0
# A store that fails again within this long after it came back is taken to be in the same outage.
OUTAGE_SETTLE_SECONDS = 30.0


# The watches of this process in an outage, by store. A process runs a dozen loops that all notice the same outage:
# the first to notice it warns, the others say so at info, so an outage costs the log one warning per store.
_IN_OUTAGE: defaultdict[str, weakref.WeakSet["OutageWatch"]] = defaultdict(weakref.WeakSet)


class OutageWatch:
    """What a store outage costs the log: one warning when the store goes away (info when another watch of the
    process already warned of it), one line when it is back.

    A relapse soon after it came back counts as the same outage (a loop that waits idle for work "succeeds" without
    touching the store), and the wait before the next try doubles, capped, for as long as the outage lasts.
    """

    def __init__(self, down_event: str, back_event: str, **fields: str) -> None:
        self._down_event, self._back_event, self._fields = down_event, back_event, fields
        self._store: str | None = None
        self._since = 0.0
        self._back_at: float | None = None
        self._backoff = FAILURE_BACKOFF_SECONDS / 2
        # Told the store (`PostgreSQL`, `Redis` or `unknown`) once per outage, e.g. to count it.
        self.on_outage: Callable[[str], None] | None = None

    def failed(self, error: Exception) -> float:
        """Note a failed try; returns how long to wait before the next one."""
        now = time.monotonic()
        settled = self._back_at is not None and now - self._back_at >= OUTAGE_SETTLE_SECONDS
        if self._store is None or settled:
            store = unreachable_store(error)
            self.forget()
            self._store, self._since = store or "a store", now
            self._backoff = FAILURE_BACKOFF_SECONDS / 2
            noticed = _IN_OUTAGE[self._store]
            level = log.info if noticed else log.warning
            noticed.add(self)
            level(self._down_event, store=self._store, error=repr(error), **self._fields)
            if self.on_outage is not None:
                self.on_outage(store or "unknown")
        else:
            log.debug(self._down_event, store=self._store, error=repr(error), **self._fields)
        self._back_at = None
        self._backoff = min(self._backoff * 2, OUTAGE_BACKOFF_MAX_SECONDS)
        return self._backoff

    def succeeded(self) -> None:
        if self._store is None:
            return
        now = time.monotonic()
        if self._back_at is None:
            self._back_at = now
            log.info(self._back_event, store=self._store, down_s=round(now - self._since, 1), **self._fields)
        elif now - self._back_at >= OUTAGE_SETTLE_SECONDS:
            self.forget()

    def forget(self) -> None:
        """End this watch's part in the outage it is in, if any (when it settled, or its loop stops)."""
        if self._store is not None:
            _IN_OUTAGE[self._store].discard(self)
            self._store = None


class LoopService:
    """Runs `run_once()` until `stop()`; an iteration that raises is logged and the loop goes on.

    `interval` is the pause between iterations (0 for loops that block inside `run_once`, such as a
    BLMOVE with a timeout). An iteration slower than a non-zero interval is logged as an overrun.
    """

    def __init__(self, name: str, interval: float = 0.0) -> None:
        self.name = name
        self.interval = interval
        self._stopping = asyncio.Event()
        self._watches: list[OutageWatch] = []
        self._outages = self.watch_outages("loop_store_unreachable", "loop_store_reachable", loop=name)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run_once(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        log.info("loop_started", loop=self.name)
        while not self.stopping:
            started = time.monotonic()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except STORE_OUTAGES as error:  # expected while a store restarts: one warning, then quiet back-off
                await self.sleep(self._outages.failed(error))
                continue
            except Exception:
                log.exception("loop_iteration_failed", loop=self.name)
                await self.sleep(FAILURE_BACKOFF_SECONDS)
                continue
            self._outages.succeeded()
            elapsed = time.monotonic() - started
            if self.interval and elapsed > self.interval:
                log.warning("loop_overran", loop=self.name, elapsed_s=round(elapsed, 3), interval_s=self.interval)
            await self.sleep(self.interval - elapsed)
        for watch in self._watches:
            watch.forget()
        log.info("loop_stopped", loop=self.name)

    def stop(self) -> None:
        self._stopping.set()

    def watch_outages(self, down_event: str, back_event: str, **fields: str) -> OutageWatch:
        """An outage watch of this loop's: told to `report_outages_to`'s note, done with when the loop stops."""
        watch = OutageWatch(down_event, back_event, **fields)
        self._watches.append(watch)
        return watch

    def report_outages_to(self, note: Callable[[str], None]) -> None:
        """Tell `note` the store of each outage this loop notices (once per outage per watch), e.g. to count it."""
        for watch in self._watches:
            watch.on_outage = note

    async def sleep(self, seconds: float) -> None:
        """Sleep that ends early when the loop is asked to stop."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)
