"""Background loops as classes: `run_once()` is one iteration (what tests call), `start()` repeats it."""

import asyncio
import contextlib
import time

import structlog

from shared.outages import STORE_OUTAGES, unreachable_store

log = structlog.get_logger(__name__)

# After a failed iteration the loop waits this long, so a persistent fault is logged, not spun on.
FAILURE_BACKOFF_SECONDS = 1.0


class LoopService:
    """Runs `run_once()` until `stop()`; an iteration that raises is logged and the loop goes on.

    `interval` is the pause between iterations (0 for loops that block inside `run_once`, such as a
    BLMOVE with a timeout). An iteration slower than a non-zero interval is logged as an overrun.
    """

    def __init__(self, name: str, interval: float = 0.0) -> None:
        self.name = name
        self.interval = interval
        self._stopping = asyncio.Event()

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
            except STORE_OUTAGES as error:  # expected while a store restarts: one line, not a traceback a second
                log.warning("loop_store_unreachable", loop=self.name, store=unreachable_store(error), error=repr(error))
                await self.sleep(FAILURE_BACKOFF_SECONDS)
                continue
            except Exception:
                log.exception("loop_iteration_failed", loop=self.name)
                await self.sleep(FAILURE_BACKOFF_SECONDS)
                continue
            elapsed = time.monotonic() - started
            if self.interval and elapsed > self.interval:
                log.warning("loop_overran", loop=self.name, elapsed_s=round(elapsed, 3), interval_s=self.interval)
            await self.sleep(self.interval - elapsed)
        log.info("loop_stopped", loop=self.name)

    def stop(self) -> None:
        self._stopping.set()

    async def sleep(self, seconds: float) -> None:
        """Sleep that ends early when the loop is asked to stop."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)
