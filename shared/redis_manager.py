"""RedisManager: one Redis client per process, and the tenant's queues, agent registry, shared state and events.

The components live in `shared.redis`; this facade connects them and keeps the seed's method names (T019) for the
two queues of domain models and the registry.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import structlog
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from shared.config import Settings
from shared.fleet_trust import FleetTrust
from shared.models import AgentCapability, AgentStatus, QueuedSubtask, ReportedResult, SubTaskResult
from shared.outages import REDIS_UNREACHABLE
from shared.redis import (
    RESULT_QUEUE,
    TASK_QUEUE,
    AgentRegistry,
    EventStream,
    RedisKeys,
    ReliableQueue,
    SharedState,
    TaskEvent,
    create_client,
)
from shared.redis.idempotency import IdempotencyRecords
from shared.redis.offers import OfferQueues
from shared.redis.pool_members import PoolMembers

log = structlog.get_logger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)
CONNECT_ATTEMPTS = 10
CONNECT_BACKOFF_MAX_SECONDS = 5.0
# Enough of a rejected payload to recognise it in the log; the whole payload is kept in the dead-letter list.
_LOGGED_PAYLOAD_CHARS = 500


@dataclass(frozen=True)
class _Connection:
    client: Redis
    task_queue: ReliableQueue
    result_queue: ReliableQueue
    offers: OfferQueues
    registry: AgentRegistry
    state: SharedState
    events: EventStream
    pool_members: PoolMembers
    idempotency: IdempotencyRecords


@dataclass(frozen=True)
class Undelivered:
    """What `enqueue_and_publish` could not do, with Redis's answer: the enqueue, the events (None: done)."""

    enqueue: Exception | None = None
    events: Exception | None = None


class RedisManager:
    def __init__(
        self,
        settings: Settings,
        *,
        connect_attempts: int = CONNECT_ATTEMPTS,
        connect_backoff_max: float = CONNECT_BACKOFF_MAX_SECONDS,
    ) -> None:
        self._settings = settings
        self._connect_attempts = connect_attempts
        self._connect_backoff_max = connect_backoff_max
        self.keys = RedisKeys(settings.tenant_id)
        # The fleet's services sign their registry entries and read only signed ones; tools without the secret
        # (the dashboard's tests, scripts) read the registry as it is.
        self._trust = FleetTrust.from_settings(settings) if settings.fleet_secret is not None else None
        self._connection: _Connection | None = None

    async def connect(self) -> None:
        """Create the client and wait for Redis to answer, retrying with backoff; raises the last error."""
        if self._connection is not None:
            return
        client = create_client(self._settings.redis_url)
        try:
            await self._ping_with_retries(client)
        except BaseException:
            await client.aclose()
            raise
        self._connection = self._wire(client)
        log.info("redis_connected", tenant_id=self.keys.tenant_id, **_address(client))

    async def disconnect(self) -> None:
        if self._connection is not None:
            await self._connection.client.aclose()
            self._connection = None

    async def ping(self) -> None:
        await self.client.ping()

    @property
    def client(self) -> Redis:
        return self._connected.client

    @property
    def task_queue(self) -> ReliableQueue:
        return self._connected.task_queue

    @property
    def result_queue(self) -> ReliableQueue:
        return self._connected.result_queue

    @property
    def offers(self) -> OfferQueues:
        """Each agent's offer queue and the queue of refused offers."""
        return self._connected.offers

    @property
    def registry(self) -> AgentRegistry:
        return self._connected.registry

    @property
    def state(self) -> SharedState:
        return self._connected.state

    @property
    def events(self) -> EventStream:
        return self._connected.events

    @property
    def pool_members(self) -> PoolMembers:
        return self._connected.pool_members

    @property
    def idempotency(self) -> IdempotencyRecords:
        return self._connected.idempotency

    async def dead_letter_counts(self) -> dict[str, int]:
        """How many items each queue set aside as unprocessable, in one round trip."""
        queues = (self.task_queue, self.result_queue)
        async with self.client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.llen(queue.dead_letter_key)
            lengths = await pipe.execute()
        return {queue.name: int(length) for queue, length in zip(queues, lengths, strict=True)}

    async def forget_tasks(self, task_ids: Sequence[str]) -> None:
        """Delete what removed tasks left in Redis: each one's event stream and shared state. (Both expire by
        themselves too; the tenant's stream keeps their events until it is trimmed past them.)"""
        if task_ids:
            await self.client.delete(*(self.keys.task_events(task_id) for task_id in task_ids))
            await self.state.forget_tasks(task_ids)

    async def enqueue_task(self, item: QueuedSubtask) -> int:
        """Queue one subtask attempt; returns the queue's length."""
        return await self.task_queue.push(item.model_dump_json())

    async def enqueue_tasks(self, items: Sequence[QueuedSubtask]) -> int:
        """Queue several subtask attempts in one round trip; returns the queue's length."""
        return await self.task_queue.push_many([item.model_dump_json() for item in items])

    async def enqueue_and_publish(self, items: Sequence[QueuedSubtask], events: Sequence[TaskEvent]) -> "Undelivered":
        """Queue subtask attempts and publish lifecycle events in one round trip, the events first: a reader of the
        streams sees an attempt queued before any agent can say it started it. An outage raises; a command Redis
        refuses does not hold back the other kind, and comes back in `Undelivered`."""
        if not items and not events:
            return Undelivered()
        async with self.client.pipeline(transaction=False) as pipe:
            event_replies = self.events.add_to(pipe, events)
            if items:
                pipe.rpush(self.task_queue.key, *[item.model_dump_json() for item in items])
            replies = await pipe.execute(raise_on_error=False)
        refused = [reply for reply in replies[:event_replies] if isinstance(reply, Exception)]
        enqueue_reply = replies[event_replies] if items else None
        return Undelivered(
            enqueue=enqueue_reply if isinstance(enqueue_reply, Exception) else None,
            events=refused[0] if refused else None,
        )

    async def queued_task_items(self) -> set[tuple[str, int]]:
        """(subtask_id, attempt) of every attempt waiting in the task queue or held by a dispatcher."""
        items = set()
        for payload in await self.task_queue.waiting_and_inflight():
            try:
                item = QueuedSubtask.model_validate_json(payload)
            except ValidationError:
                continue  # garbage is dead-lettered by the consumer that takes it
            items.add((item.subtask_id, item.attempt))
        return items

    async def dequeue_task(self, consumer_id: str, timeout: float) -> tuple[str, QueuedSubtask] | None:
        """The next subtask attempt and its raw payload (to ack), or None after `timeout` seconds."""
        taken = await self.dequeue_tasks(consumer_id, timeout, limit=1)
        return taken[0] if taken else None

    async def dequeue_tasks(self, consumer_id: str, timeout: float, limit: int) -> list[tuple[str, QueuedSubtask]]:
        """Up to `limit` subtask attempts with their raw payloads: waits for the first, takes what else is there."""
        return await self._take_models(self.task_queue, consumer_id, timeout, QueuedSubtask, limit)

    async def enqueue_result(self, result: SubTaskResult) -> int:
        return await self.result_queue.push(result.model_dump_json())

    async def dequeue_result(self, consumer_id: str, timeout: float) -> tuple[str, ReportedResult] | None:
        """The next result and its raw payload (to ack), or None after `timeout` seconds."""
        taken = await self.dequeue_results(consumer_id, timeout, limit=1)
        return taken[0] if taken else None

    async def dequeue_results(self, consumer_id: str, timeout: float, limit: int) -> list[tuple[str, ReportedResult]]:
        """Up to `limit` results with their raw payloads: waits for the first, takes what else is there."""
        return await self._take_models(self.result_queue, consumer_id, timeout, ReportedResult, limit)

    async def register_agent(self, status: AgentStatus) -> None:
        await self.registry.register_agent(status, ttl=self._settings.heartbeat_ttl_seconds)

    async def update_agent_status(self, status: AgentStatus) -> None:
        """The heartbeat: rewrites the status and renews its lifetime (same as `register_agent`)."""
        await self.register_agent(status)

    async def get_agents(self) -> list[AgentStatus]:
        """Every agent whose heartbeat has not expired."""
        return await self.registry.get_agents()

    async def get_available_agents(self, capability: AgentCapability | None = None) -> list[AgentStatus]:
        return await self.registry.get_available_agents(capability)

    @property
    def _connected(self) -> _Connection:
        if self._connection is None:
            raise RuntimeError("RedisManager.connect() has not been awaited")
        return self._connection

    def _wire(self, client: Redis) -> _Connection:
        return _Connection(
            client=client,
            task_queue=ReliableQueue(client, self.keys, TASK_QUEUE),
            result_queue=ReliableQueue(client, self.keys, RESULT_QUEUE),
            offers=OfferQueues(client, self.keys),
            registry=AgentRegistry(
                client, self.keys, self._settings.agent_port_range, self._trust, self._settings.max_pool_size
            ),
            state=SharedState(client, self.keys),
            events=EventStream(
                client,
                self.keys,
                maxlen=self._settings.events_stream_maxlen,
                task_maxlen=self._settings.task_events_stream_maxlen,
                ended_task_ttl_seconds=self._settings.ended_task_events_ttl_seconds,
            ),
            pool_members=PoolMembers(client, self.keys, self._trust),
            idempotency=IdempotencyRecords(client, self.keys),
        )

    async def _ping_with_retries(self, client: Redis) -> None:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._connect_attempts),
            wait=wait_exponential(multiplier=0.2, max=self._connect_backoff_max),
            retry=retry_if_exception_type(REDIS_UNREACHABLE),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                try:
                    await client.ping()
                except REDIS_UNREACHABLE as error:
                    number = attempt.retry_state.attempt_number
                    log.warning("redis_connect_failed", attempt=number, of=self._connect_attempts, error=str(error))
                    raise

    async def _take_models(
        self, queue: ReliableQueue, consumer_id: str, timeout: float, model: type[ModelT], limit: int
    ) -> list[tuple[str, ModelT]]:
        """Take up to `limit` items that parse; the others go to the dead-letter list, never silently away."""
        while payloads := await queue.take_many(consumer_id, timeout, limit):
            taken = []
            for payload in payloads:
                try:
                    taken.append((payload, model.model_validate_json(payload)))
                except ValidationError as error:
                    log.error(
                        "queue_payload_rejected",
                        queue=queue.name,
                        consumer_id=consumer_id,
                        payload=payload[:_LOGGED_PAYLOAD_CHARS],
                        error=str(error),
                    )
                    await queue.reject(consumer_id, payload, f"unreadable: {error}")
            if taken:
                return taken
        return []


def _address(client: Redis) -> dict[str, object]:
    """Where the client points, without the password a URL may carry."""
    options = client.connection_pool.connection_kwargs
    return {"host": options.get("host"), "port": options.get("port"), "db": options.get("db", 0)}
