"""Delivers the tenant's lifecycle events to its webhooks, as one consumer of a Redis consumer group.

Every orchestrator process is a consumer of the group `webhooks` on the tenant's event stream, under a name of its
own. An event is acknowledged only once it reached every webhook it is for (or they were given up on), so an event
whose deliverer died stays pending; after WEBHOOK_CLAIM_IDLE_SECONDS without a sign of life any deliverer takes it
over (XAUTOCLAIM). A live deliverer keeps resetting the idle time of the events it works on, however long their
endpoints take. Each webhook's delivery is recorded in PostgreSQL (one row per webhook and event), and the webhooks
an event already reached are skipped: a taken-over event goes only to those it did not reach. What is left is the
moment between an endpoint's 2xx and that record: a deliverer dying exactly there has the event sent again, under
the same `webhook-id`, by which the receiver recognises it.

Up to WEBHOOK_CONCURRENCY events are worked on at once, each to its webhooks at once, so an endpoint that is slow or
down holds back only its own deliveries (the order in which a webhook receives events is therefore not guaranteed:
each carries its time and id). PostgreSQL or Redis being down is logged once by the loop, which waits for them;
the events it was working on stay pending and are taken over again.
"""

import asyncio
import contextlib
import math
import secrets
import time
from datetime import UTC, datetime, timedelta

import structlog

from orchestrator.webhook_sender import WebhookSender
from shared.config import Settings
from shared.database import DatabaseManager
from shared.loop_service import LoopService
from shared.models import utc_now
from shared.outages import STORE_OUTAGES
from shared.redis.events import EventStream, StreamedEvent
from shared.webhooks import DeliveryStatus, Webhook

log = structlog.get_logger(__name__)

GROUP = "webhooks"
# The longest a read waits for new events, so the loop notices a stop, and keeps its events claimed, in time.
READ_BLOCK_MS = 1000
# Deliveries are remembered long after their events left the capped stream, then forgotten; so are the group's
# consumers that hold nothing and have not read for an hour (each orchestrator process joins under a new name).
DELIVERY_RETENTION = timedelta(days=7)
PRUNE_INTERVAL_SECONDS = 3600.0


def occurred_at(streamed: StreamedEvent) -> datetime:
    """When the event happened, as its publisher's clock said (now, for a time that does not parse)."""
    try:
        moment = datetime.fromisoformat(streamed.event.occurred_at)
    except ValueError:
        return utc_now()
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class WebhookDeliverer(LoopService):
    def __init__(
        self, settings: Settings, db: DatabaseManager, events: EventStream, sender: WebhookSender, consumer: str = ""
    ) -> None:
        super().__init__("webhook_deliverer")
        self.consumer = consumer or f"{settings.orchestrator_instance_id}-{secrets.token_hex(4)}"
        self._db = db
        self._events = events
        self._sender = sender
        self._capacity = settings.webhook_concurrency
        self._claim_idle_ms = max(1, int(settings.webhook_claim_idle_seconds * 1000))
        # Claimed events are touched three times per idle period: a live deliverer's are never taken from it.
        self._touch_every = settings.webhook_claim_idle_seconds / 3
        self._touched_at = time.monotonic()
        self._claim_from = "0-0"
        self._claimed_at = -math.inf  # the first round looks for abandoned events at once
        self._pruned_at: float | None = None
        self._working: dict[str, asyncio.Task[None]] = {}
        self._outage: Exception | None = None

    async def start(self) -> None:
        try:
            await super().start()
        finally:  # what is unfinished stays pending in the group: another deliverer, or our successor, takes it over
            for work in self._working.values():
                work.cancel()
            await asyncio.gather(*self._working.values(), return_exceptions=True)

    async def run_once(self) -> None:
        if self._outage is not None:  # met by an event's work: the loop logs it once and waits
            outage, self._outage = self._outage, None
            raise outage
        await self._keep_claimed()
        room = self._capacity - len(self._working)
        if room <= 0:
            await asyncio.wait(self._working.values(), timeout=self._touch_every, return_when=asyncio.FIRST_COMPLETED)
            return
        events = await self._claim_abandoned(room) if self._claim_due() else []
        if not events:
            block_ms = max(1, min(READ_BLOCK_MS, int(self._touch_every * 1000)))
            events = await self._events.read_group(GROUP, self.consumer, count=room, block_ms=block_ms)
        await self._start_work([streamed for streamed in events if streamed.event_id not in self._working])
        await self._prune_when_due()

    async def _start_work(self, events: list[StreamedEvent]) -> None:
        """Deliver each event some webhook wants in a task of its own; acknowledge the others at once, together.

        Most events are for no webhook (a tenant without any sees every event so): one query of the tenant's
        webhooks, made after the events were read so it sees every webhook created before they happened, and one
        XACK answer them all, where each event's own checks would cost a query and a command apiece."""
        if not events:
            return
        webhooks = await self._db.repositories().webhooks.list_webhooks()
        unwanted = []
        for streamed in events:
            event = streamed.event
            if any(webhook.wants(event.event_type.value, event.task_id) for webhook in webhooks):
                self._working[streamed.event_id] = asyncio.create_task(self._deliver_event(streamed))
            else:
                unwanted.append(streamed.event_id)
        await self._events.ack_all(GROUP, unwanted)

    def _claim_due(self) -> bool:
        """Whether to look for abandoned events now: while a scan goes on, and a few times per idle period."""
        if self._claim_from != "0-0" or time.monotonic() - self._claimed_at >= self._touch_every:
            self._claimed_at = time.monotonic()
            return True
        return False

    async def _claim_abandoned(self, count: int) -> list[StreamedEvent]:
        self._claim_from, events = await self._events.claim_idle(
            GROUP, self.consumer, self._claim_idle_ms, self._claim_from, count
        )
        for streamed in events:
            log.info("webhook_event_taken_over", event_id=streamed.event_id, consumer=self.consumer)
        return events

    async def _keep_claimed(self) -> None:
        if time.monotonic() - self._touched_at < self._touch_every:
            return
        if self._working:
            await self._events.keep_claimed(GROUP, self.consumer, list(self._working))
        self._touched_at = time.monotonic()

    async def _deliver_event(self, streamed: StreamedEvent) -> None:
        """Deliver the event to each webhook it has not reached yet, then acknowledge it."""
        try:
            event = streamed.event
            webhooks = await self._db.repositories().webhooks.awaiting(
                streamed.event_id, event.event_type.value, event.task_id, occurred_at(streamed)
            )
            failures = await asyncio.gather(
                *(self._deliver_to(webhook, streamed) for webhook in webhooks), return_exceptions=True
            )
            for failure in failures:
                if isinstance(failure, BaseException):
                    raise failure
            await self._events.ack(GROUP, streamed.event_id)
        except STORE_OUTAGES as error:  # left pending, taken over again once the store is back
            self._outage = error
        except Exception:
            log.exception("webhook_event_failed", event_id=streamed.event_id)
        finally:
            self._working.pop(streamed.event_id, None)

    async def _deliver_to(self, webhook: Webhook, streamed: StreamedEvent) -> None:
        outcome = await self._sender.deliver(webhook, streamed)
        if outcome is None:
            log.info("webhook_deleted_during_delivery", webhook_id=webhook.id, event_id=streamed.event_id)
            return
        recorded = await self._db.repositories().webhooks.record_delivery(webhook.id, outcome)
        report = log.info if outcome.status is DeliveryStatus.DELIVERED else log.warning
        report(
            f"webhook_{outcome.status.value}",
            webhook_id=webhook.id,
            event_id=streamed.event_id,
            event_type=streamed.event.event_type.value,
            attempts=outcome.attempts,
            http_status=outcome.http_status,
            error=outcome.error,
            recorded=recorded,
        )

    async def _prune_when_due(self) -> None:
        now = time.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_INTERVAL_SECONDS:
            return
        self._pruned_at = now
        with contextlib.suppress(*STORE_OUTAGES):  # tried again in an hour
            pruned = await self._db.repositories().webhooks.prune_deliveries(utc_now() - DELIVERY_RETENTION)
            forgotten = await self._events.forget_idle_consumers(GROUP, int(PRUNE_INTERVAL_SECONDS * 1000))
            if pruned or forgotten:
                log.info("webhook_records_pruned", deliveries=pruned, consumers=forgotten)
