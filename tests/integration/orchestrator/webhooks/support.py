"""What the webhook tests share: the deliverers they run, and the events, outcomes and records they look at."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import httpx
from redis.exceptions import ResponseError

from orchestrator.webhook_deliverer import GROUP, WebhookDeliverer
from shared.database import DatabaseManager, Repositories
from shared.redis import EventType, TaskEvent
from shared.redis_manager import RedisManager
from shared.webhooks import DeliveryOutcome, Webhook
from tests.polling import eventually

Register = Callable[..., Awaitable[tuple[Webhook, str]]]


@dataclass
class RunningDeliverer:
    deliverer: WebhookDeliverer
    task: asyncio.Task[None]
    client: httpx.AsyncClient

    @property
    def consumer(self) -> str:
        return self.deliverer.consumer

    async def die(self) -> None:
        """Stop dead, wherever it is: nothing it was doing is finished or acknowledged."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


StartDeliverer = Callable[..., Awaitable[RunningDeliverer]]


async def publish(redis: RedisManager, *events: TaskEvent) -> list[str]:
    return await redis.events.publish(list(events))


def event(event_type: EventType = EventType.AGENT_COMPLETED, task_id: str = "task_1", **data: Any) -> TaskEvent:
    return TaskEvent(event_type, task_id, data or {"result": "done"}, subtask_id="subtask_1", trace_id="trace-1")


async def outcome_of(repositories: Repositories, webhook_id: str) -> DeliveryOutcome:
    """The webhook's last delivery outcome, once there is one."""

    async def last() -> DeliveryOutcome | None:
        found = {webhook.id: webhook for webhook in await repositories.webhooks.list_webhooks()}
        return found[webhook_id].last_delivery

    outcome = await eventually(last, lambda found: found is not None)
    assert outcome is not None
    return outcome


async def delivered_rows(db: DatabaseManager) -> list[tuple[str, str]]:
    rows = await db.pool.fetch("SELECT webhook_id, event_id FROM webhook_deliveries ORDER BY webhook_id, event_id")
    return [(row["webhook_id"], row["event_id"]) for row in rows]


async def pending(redis: RedisManager) -> int:
    """Events the group has handed out and not had acknowledged; -1 before a deliverer created the group."""
    try:
        summary = await redis.client.xpending(redis.keys.events(), GROUP)
    except ResponseError:
        return -1
    count: int = summary["pending"]
    return count


@asynccontextmanager
async def trickling_endpoint(answer: bytes, pause_seconds: float) -> AsyncIterator[str]:
    """An endpoint that reads a request and sends its whole `answer` back one byte per `pause_seconds`: each byte
    comes well within a read timeout, yet the answer takes len(answer) pauses. Yields its base URL."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            for byte in answer:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(pause_seconds)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
