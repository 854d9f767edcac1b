"""Following a lifecycle event stream for one reader: its history from where the reader left off, then live.

Each reader (an SSE client) reads the stream itself, with XRANGE to catch up and XREAD BLOCK to wait, so every reader
gets every event and none takes an event from another (webhooks use a consumer group instead). Stream ids are the
event ids readers resume from. The streams are capped: a reader whose next event was trimmed away is told to reload
(`Reset`) and goes on from the oldest event still held.
"""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import anyio
from redis.asyncio import Redis

from shared.models import TaskStatus
from shared.redis.events import StreamedEvent, parse_entries

# The id before every stream id: "from the start".
STREAM_START = "0-0"
# Events read per round trip; a reader far behind catches up in pages of this many.
PAGE_SIZE = 100
# How long one XREAD waits for a new event before the reader looks around (a task stream checks its task).
BLOCK_MS = 10_000
_MAX_ID_PART = 2**64 - 1


def parse_event_id(value: str) -> str | None:
    """A stream id `<ms>-<seq>` as given, or None when it is not one (each part a 64-bit unsigned number) or is
    the greatest id, after which no event can come and Redis refuses to read."""
    milliseconds, dash, sequence = value.partition("-")
    parts = (milliseconds, sequence)
    if not dash or not all(part.isascii() and part.isdigit() for part in parts):
        return None
    numbers = tuple(int(part) for part in parts)
    if any(number > _MAX_ID_PART for number in numbers) or numbers == (_MAX_ID_PART, _MAX_ID_PART):
        return None
    return value


def id_tuple(event_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = event_id.partition("-")
    return int(milliseconds), int(sequence)


@dataclass(frozen=True)
class Reset:
    """Events after the reader's id were trimmed from the capped stream: what it holds of the past is incomplete."""

    after_id: str
    oldest_id: str


@dataclass(frozen=True)
class TaskEnded:
    """The task ended and its stream holds no ending event after the reader's id (the stream expired, or the
    reader had already seen it): the task's status from PostgreSQL."""

    task_id: str
    status: TaskStatus


FeedItem = StreamedEvent | Reset | TaskEnded
# The status of the followed task, from PostgreSQL; None only if the task was deleted while followed.
StatusProbe = Callable[[], Awaitable[TaskStatus | None]]


@dataclass
class Cursor:
    """Where a reader is in one stream. `resuming`: the id is one the reader saw, so trimming past it is a gap."""

    key: str
    last_id: str
    resuming: bool

    def advance(self, event_id: str) -> None:
        self.last_id = event_id
        self.resuming = True


@dataclass(frozen=True)
class _Read:
    """What one read found: its events, and the id of its last entry (an entry that is no event is passed over)."""

    events: list[StreamedEvent]
    last_id: str | None
    entries: int
    reset: Reset | None = None

    @classmethod
    def of(cls, entries: Sequence[Any], reset: Reset | None = None) -> "_Read":
        last_id = str(entries[-1][0]) if entries else None
        return cls(parse_entries(entries), last_id, len(entries), reset)


class EventFeed:
    """Reads lifecycle event streams for any number of readers, through a Redis client of its own."""

    def __init__(self, redis: Redis, *, page_size: int = PAGE_SIZE, block_ms: int = BLOCK_MS) -> None:
        self._redis = redis
        self._page_size = page_size
        self._block_ms = block_ms

    async def latest_id(self, key: str) -> str:
        """The id of the stream's newest event (STREAM_START when it has none): following from it gets new events."""
        newest = await self._redis.xrevrange(key, count=1)
        return str(newest[0][0]) if newest else STREAM_START

    async def follow(self, cursor: Cursor, stopping: anyio.Event) -> AsyncIterator[FeedItem]:
        """The stream's events after the cursor, then each new one as it comes, until `stopping` is set."""
        async with aclosing(self._follow(cursor, stopping, None)) as items:
            async for item in items:
                yield item

    async def follow_task(
        self, cursor: Cursor, stopping: anyio.Event, task_id: str, status: StatusProbe
    ) -> AsyncIterator[FeedItem]:
        """Like `follow`, for a task's own stream: it ends with the task's ending event, or, when the task has ended
        and its stream holds no ending event after the cursor, with `TaskEnded`. An ending event that more events
        follow (an operator retried the task) is read past."""
        async with aclosing(self._follow(cursor, stopping, _ended_probe(task_id, status))) as items:
            async for item in items:
                yield item
                if (
                    isinstance(item, StreamedEvent)
                    and item.event.event_type.ends_task
                    and not await self._after(cursor, item)
                ):
                    return

    async def _after(self, cursor: Cursor, event: StreamedEvent) -> bool:
        """Whether the stream holds anything after the event."""
        return bool(await self._redis.xrange(cursor.key, f"({event.event_id}", count=1))

    async def _follow(
        self, cursor: Cursor, stopping: anyio.Event, ended: Callable[[], Awaitable[TaskEnded | None]] | None
    ) -> AsyncGenerator[FeedItem, None]:
        # Pages (with the trim check) while there may be more to catch up on; blocking reads once caught up. When
        # caught up, and after each wait that brought nothing, the task's status is looked at: a task that ended
        # gets one more page (its ending event may be published just after its status commits), then TaskEnded.
        look_around, task_ended = ended is not None, None
        while not stopping.is_set():
            page = await self._page(cursor)
            if page.reset is not None:
                yield page.reset
            for event in _delivered(page, cursor):
                yield event
            if page.entries >= self._page_size:
                continue
            if task_ended is not None:
                yield task_ended
                return
            if look_around and ended is not None:
                task_ended, look_around = await ended(), False
                if task_ended is not None:
                    continue
            waited = await self._wait(cursor, stopping)
            if waited is None:
                return
            look_around = ended is not None and not waited.entries
            for event in _delivered(waited, cursor):
                yield event

    async def _page(self, cursor: Cursor) -> _Read:
        """The next page after the cursor, read in one transaction with the stream's oldest entry: an oldest entry
        newer than a resumed id means the events between them were trimmed."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xrange(cursor.key, count=1)
            pipe.xrange(cursor.key, f"({cursor.last_id}", count=self._page_size)
            oldest, entries = await pipe.execute()
        reset = None
        if cursor.resuming and oldest and id_tuple(str(oldest[0][0])) > id_tuple(cursor.last_id):
            reset = Reset(after_id=cursor.last_id, oldest_id=str(oldest[0][0]))
        return _Read.of(entries, reset)

    async def _wait(self, cursor: Cursor, stopping: anyio.Event) -> _Read | None:
        """New events after the cursor (none when none came within the block time), None when `stopping` was set.

        The blocking read races `stopping` in tasks of its own, so a Redis error reaches the caller as itself."""
        read = asyncio.ensure_future(
            self._redis.xread({cursor.key: cursor.last_id}, count=self._page_size, block=self._block_ms)
        )
        stop = asyncio.ensure_future(stopping.wait())
        try:
            await asyncio.wait((read, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            read.cancel()  # a read cut short drops its connection (redis-py cannot reuse it mid-reply)
        if stopping.is_set():
            if read.done() and not read.cancelled():
                read.exception()  # retrieved: a read that failed as the stream stopped has nobody to tell
            return None
        reply: Any = read.result()
        return _Read.of([entry for _stream, entries in reply or [] for entry in entries])


def _delivered(read: _Read, cursor: Cursor) -> Iterator[StreamedEvent]:
    """The read's events, the cursor moving past each as it is handed on, and past the read's last entry at the end."""
    for event in read.events:
        cursor.advance(event.event_id)
        yield event
    if read.last_id is not None:
        cursor.advance(read.last_id)


def _ended_probe(task_id: str, status: StatusProbe) -> Callable[[], Awaitable[TaskEnded | None]]:
    async def ended() -> TaskEnded | None:
        current = await status()
        return TaskEnded(task_id, current) if current is not None and current.is_terminal else None

    return ended
