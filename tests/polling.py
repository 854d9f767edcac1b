"""Waiting for other processes and threads: they have no event to await, so tests poll, with a deadline."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.03


async def eventually(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 20.0) -> T:
    """Poll `probe` until `done` holds for its value; TimeoutError after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            value = await probe()
            if done(value):
                return value
            await asyncio.sleep(POLL_SECONDS)
