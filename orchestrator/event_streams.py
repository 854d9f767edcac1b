"""What the event endpoints do: admit a Server-Sent Events client, and turn what its feed reads into SSE messages.

A client holds one of SSE_MAX_CLIENTS slots, and its reads one connection of a Redis pool of that size that serves
nothing else, so streaming clients can never take the connections the orchestrator's own work needs. A client key
holds at most SSE_MAX_CLIENTS_PER_KEY of the slots, so one client cannot leave none to the others (the dashboard's
operator key is held only to the total). A stream ends
cleanly (with a `retry:` hint for the client's reconnection) when Redis goes away or the orchestrator shuts down;
the client resumes from its Last-Event-ID.
"""

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import redis.exceptions
import structlog
from redis.asyncio import Redis
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from orchestrator.event_feed import STREAM_START, Cursor, EventFeed, FeedItem, Reset, TaskEnded
from shared.api_keys import ApiKey, ApiKeyScope
from shared.database import DatabaseManager
from shared.errors import NotFoundError, ServiceUnavailableError
from shared.outages import REDIS_UNREACHABLE, STORE_OUTAGES
from shared.redis import RedisKeys
from shared.redis.events import StreamedEvent

log = structlog.get_logger(__name__)

# Comment lines that keep proxies from closing an idle stream.
PING_SECONDS = 15
# What a client told to reconnect waits first (the SSE `retry:` field), and what a refused one is told to wait.
RECONNECT_AFTER_MS = 3_000
FULL_RETRY_AFTER_SECONDS = 5
# A client that takes no bytes for this long is dropped: it would hold its slot for nothing.
SEND_TIMEOUT_SECONDS = 30.0
# On shutdown a stream gets this long to send its goodbye; well inside uvicorn's graceful shutdown timeout.
SHUTDOWN_GRACE_SECONDS = 3.0


class StreamSlots:
    """At most `capacity` open streams, and at most `per_key` of them for one client key (operator keys are held
    only to `capacity`); `claim` refuses the next one with 503 and Retry-After."""

    def __init__(self, capacity: int, per_key: int) -> None:
        self.capacity = capacity
        self.per_key = per_key
        self.open = 0
        self._by_key: Counter[str] = Counter()

    def claim(self, key: ApiKey) -> Callable[[], None]:
        """Takes a slot for `key`; returns its release, which frees it once however often it is called."""
        if self.open >= self.capacity:
            raise _full(f"this orchestrator already streams events to {self.capacity} clients (SSE_MAX_CLIENTS)")
        limited = key.scope is not ApiKeyScope.OPERATOR
        if limited and self._by_key[key.id] >= self.per_key:
            raise _full(f"this API key already holds {self.per_key} event streams (SSE_MAX_CLIENTS_PER_KEY)")
        self.open += 1
        if limited:
            self._by_key[key.id] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.open -= 1
                if limited:
                    self._by_key[key.id] -= 1
                    if not self._by_key[key.id]:
                        del self._by_key[key.id]

        return release


def _full(why: str) -> ServiceUnavailableError:
    return ServiceUnavailableError(
        f"{why}; retry after {FULL_RETRY_AFTER_SECONDS} s", headers={"Retry-After": str(FULL_RETRY_AFTER_SECONDS)}
    )


class SlotHoldingResponse(EventSourceResponse):
    """An EventSourceResponse that frees its client's slot however the response ends."""

    def __init__(self, content: AsyncIterator[ServerSentEvent], release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


class EventStreams:
    def __init__(self, redis: Redis, keys: RedisKeys, db: DatabaseManager, max_clients: int, per_key: int) -> None:
        self._feed = EventFeed(redis)
        self._keys = keys
        self._db = db
        self.slots = StreamSlots(max_clients, per_key)

    async def task_stream(self, task_id: str, last_event_id: str | None, api_key: ApiKey) -> EventSourceResponse:
        """The task's events from the start (or after `last_event_id`), ending with the task; 404 for a task that is
        not this tenant's."""
        repositories = self._db.repositories()
        if await repositories.tasks.task_status(task_id) is None:
            raise NotFoundError(f"no task with id {task_id!r}")
        release = self.slots.claim(api_key)
        cursor = Cursor(self._keys.task_events(task_id), last_event_id or STREAM_START, last_event_id is not None)
        stopping = anyio.Event()
        items = self._feed.follow_task(cursor, stopping, task_id, lambda: repositories.tasks.task_status(task_id))
        return self._respond(items, stopping, release, task_id=task_id)

    async def tenant_stream(self, last_event_id: str | None, from_start: bool, api_key: ApiKey) -> EventSourceResponse:
        """Every event of the tenant's tasks after `last_event_id`; without one, new events (or, `from_start`, every
        event the stream still holds)."""
        key = self._keys.events()
        release = self.slots.claim(api_key)  # first: the slot is what lets it use a connection of the streaming pool
        try:
            if last_event_id is not None:
                cursor = Cursor(key, last_event_id, resuming=True)
            else:
                # Read before the stream starts: with Redis down the client gets a 503 rather than an empty stream.
                start = STREAM_START if from_start else await self._feed.latest_id(key)
                cursor = Cursor(key, start, resuming=False)
        except BaseException:
            release()
            raise
        stopping = anyio.Event()
        return self._respond(self._feed.follow(cursor, stopping), stopping, release)

    def _respond(
        self, items: AsyncIterator[FeedItem], stopping: anyio.Event, release: Callable[[], None], **context: str
    ) -> EventSourceResponse:
        return SlotHoldingResponse(
            _messages(items, stopping, context),
            release,
            ping=PING_SECONDS,
            send_timeout=SEND_TIMEOUT_SECONDS,
            shutdown_event=stopping,
            shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
        )


async def _messages(
    items: AsyncIterator[FeedItem], stopping: anyio.Event, context: dict[str, str]
) -> AsyncIterator[ServerSentEvent]:
    """The feed as SSE messages; a Redis outage or a shutdown ends the stream with a reconnection hint."""
    try:
        async for item in items:
            yield as_message(item)
    except (*STORE_OUTAGES, *REDIS_UNREACHABLE) as error:
        log.warning("event_stream_interrupted", error=str(error) or type(error).__name__, **context)
        yield _reconnect_hint("the event store is unreachable")
        return
    except redis.exceptions.ResponseError as error:  # e.g. the key holds something else: nothing to resume
        log.error("event_stream_failed", error=str(error), **context)
        return
    if stopping.is_set():
        yield _reconnect_hint("the orchestrator is shutting down")


def _reconnect_hint(why: str) -> ServerSentEvent:
    return ServerSentEvent(comment=f"{why}; reconnect with Last-Event-ID", retry=RECONNECT_AFTER_MS)


def as_message(item: FeedItem) -> ServerSentEvent:
    """An event with its stream id as the SSE id; `reset` and `end` carry no id, so a client's resume point stays
    the last event it got."""
    if isinstance(item, StreamedEvent):
        return ServerSentEvent(
            _json(item.event.as_json(item.event_id)), id=item.event_id, event=item.event.event_type.value
        )
    if isinstance(item, Reset):
        reason = (
            f"events after {item.after_id} were trimmed from the capped stream; reload what you show, then follow "
            f"from the oldest event still held, {item.oldest_id}"
        )
        body = {"reason": reason, "after_id": item.after_id, "oldest_id": item.oldest_id}
        return ServerSentEvent(_json(body), event="reset")
    assert isinstance(item, TaskEnded)
    reason = "the task has ended and its stream holds no later event; reload the task"
    return ServerSentEvent(_json({"task_id": item.task_id, "status": item.status.value, "reason": reason}), event="end")


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)
