"""Reading the orchestrator's Server-Sent Events in tests, as a client would (httpx-sse over real HTTP)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse

from shared.redis import EventType, TaskEvent
from shared.redis_manager import RedisManager
from tests.polling import eventually

# Long enough for a loaded machine; a stream the test expects to close must close well within it.
STREAM_TIMEOUT_SECONDS = 30.0


@dataclass
class StreamReader:
    """A client following one stream in the background: what it got, and whether the server closed the stream."""

    messages: list[ServerSentEvent] = field(default_factory=list)
    status_code: int | None = None
    closed: bool = False

    @property
    def events(self) -> list[ServerSentEvent]:
        """The lifecycle events (what has an id), without reset, end and reconnection hints."""
        return [message for message in self.messages if message.event in EventType.__members__]

    @property
    def ids(self) -> list[str]:
        return [message.id for message in self.events]

    async def wait_for(self, count: int) -> None:
        """Until it has at least `count` lifecycle events."""

        async def got() -> int:
            return len(self.events)

        await eventually(got, lambda n: n >= count, timeout=STREAM_TIMEOUT_SECONDS)


async def read_stream(client: httpx.AsyncClient, path: str, reader: StreamReader, **kwargs: Any) -> None:
    """Follow `path` into `reader` until the server closes the stream."""
    async with aconnect_sse(client, "GET", path, timeout=httpx.Timeout(10, read=None), **kwargs) as source:
        reader.status_code = source.response.status_code
        if source.response.is_success:
            async for message in source.aiter_sse():
                reader.messages.append(message)
    reader.closed = True


@contextlib.asynccontextmanager
async def following(client: httpx.AsyncClient, path: str, **kwargs: Any) -> AsyncIterator[StreamReader]:
    """A StreamReader following `path` for the block; the stream is dropped at its end if still open."""
    reader = StreamReader()
    task = asyncio.create_task(read_stream(client, path, reader, **kwargs))
    try:
        yield reader
    finally:
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def read_until_closed(client: httpx.AsyncClient, path: str, **kwargs: Any) -> StreamReader:
    reader = StreamReader()
    async with asyncio.timeout(STREAM_TIMEOUT_SECONDS):
        await read_stream(client, path, reader, **kwargs)
    return reader


async def publish(redis: RedisManager, task_id: str, *event_types: EventType) -> list[str]:
    """Publish events of the task as the lifecycle would; returns their ids on the task's own stream."""
    await redis.events.publish([TaskEvent(event_type, task_id, {"n": n}) for n, event_type in enumerate(event_types)])
    entries = await redis.client.xrange(redis.events.task_key(task_id))
    return [str(entry_id) for entry_id, _ in entries][-len(event_types) :]


async def task_stream_ids(redis: RedisManager, task_id: str) -> list[str]:
    return [str(entry_id) for entry_id, _ in await redis.client.xrange(redis.events.task_key(task_id))]
