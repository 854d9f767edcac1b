"""The agent's intake: it takes its offers from its own Redis queue (shared/redis/offers.py), as many at once as it has
free slots, and hands them to the OfferBook, which accepts the batch in one PostgreSQL statement.

A taken offer stays in the agent's in-flight list until its result is pushed (in the same round trip: agent/reporting)
or it is refused. A refusal the orchestrator can act on (draining, a capability this agent lacks, an assignment that
expired while it waited) goes back on the shared refusal queue, so the orchestrator takes the attempt back and offers
it elsewhere at once; an offer that is not the fleet's (its signature does not hold) or no longer current is dropped.
"""

import asyncio
import contextlib
from collections.abc import Sequence

import structlog
from pydantic import ValidationError

from agent.offers import OfferBook, StaleOfferError
from agent.reporting import ResultReporter
from agent.runner import SubtaskRunner
from shared.config import Settings
from shared.errors import AppError
from shared.fleet_trust import ExpiredAssignmentError, UntrustedCallerError
from shared.loop_service import LoopService
from shared.models import TaskExecutionRequest
from shared.redis.offers import OFFER_CONSUMER, OfferRefusal
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)

# How long one wait for an offer (or for a slot to free) lasts before the loop looks at whether it should stop.
INTAKE_WAIT_SECONDS = 1.0
# At shutdown, how many waiting offers are handed back at most (the rest: the orchestrator's failure detection).
HAND_BACK_LIMIT = 1000
# Enough of an unreadable offer to recognise it in the log.
LOGGED_PAYLOAD_CHARS = 200


class OfferIntake(LoopService):
    def __init__(
        self, settings: Settings, redis: RedisManager, book: OfferBook, runner: SubtaskRunner, reporter: ResultReporter
    ) -> None:
        super().__init__("offer_intake")
        self._agent_id = settings.agent_id
        self._redis = redis
        self._book = book
        self._runner = runner
        self._reporter = reporter
        self._slots_changed = asyncio.Event()

    def slots_changed(self) -> None:
        """The runner's slots changed: one may be free for the next offer."""
        self._slots_changed.set()

    async def recover_held(self) -> int:
        """At start: offers an earlier process under this id took and never settled go back to the queue's head.
        Those it had accepted find their offer accepted already, and are dropped; nothing runs twice."""
        moved = await self._redis.offers.of(self._agent_id).recover(OFFER_CONSUMER)
        if moved:
            log.info("held_offers_recovered", count=moved)
        return moved

    async def run_once(self) -> None:
        free = self._runner.slots_free
        if not free:
            self._slots_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(INTAKE_WAIT_SECONDS):
                    await self._slots_changed.wait()
            return
        queue = self._redis.offers.of(self._agent_id)
        payloads = await queue.take_many(OFFER_CONSUMER, timeout=INTAKE_WAIT_SECONDS, limit=free)
        if payloads:
            await self.take(payloads)

    async def hand_back_waiting(self) -> int:
        """On shutdown, once no slot takes offers any more: refuse what still waits, so it runs elsewhere now."""
        queue = self._redis.offers.of(self._agent_id)
        payloads = await queue.take_many(OFFER_CONSUMER, timeout=0.01, limit=HAND_BACK_LIMIT)
        if payloads:
            await self.take(payloads)
        return len(payloads)

    async def take(self, payloads: Sequence[str]) -> None:
        """Run what can run; refuse or drop the rest, and settle those in one round trip."""
        readable: list[tuple[str, TaskExecutionRequest]] = []
        settled: list[str] = []  # payloads to drop from the in-flight list now
        for payload in payloads:
            try:
                readable.append((payload, TaskExecutionRequest.model_validate_json(payload)))
            except ValidationError as error:
                log.error("offer_unreadable", payload=payload[:LOGGED_PAYLOAD_CHARS], error=str(error))
                settled.append(payload)
        outcomes = await self._book.take([request for _, request in readable])
        refusals: list[OfferRefusal] = []
        for (payload, request), outcome in zip(readable, outcomes, strict=True):
            if outcome.started:
                self._reporter.hold_offer(request, payload)
                continue
            settled.append(payload)
            if outcome.refusal is not None and _worth_telling(outcome.refusal):
                refusals.append(self._refusal(request, outcome.refusal))
        await self._settle(settled, refusals)

    def _refusal(self, request: TaskExecutionRequest, refusal: AppError) -> OfferRefusal:
        subtask = request.subtask
        log.info("offer_declined", subtask_id=subtask.id, attempt=subtask.attempt_count, reason=refusal.message)
        return OfferRefusal(
            subtask_id=subtask.id,
            attempt=subtask.attempt_count,
            delivery_token=subtask.delivery_token or "",
            agent_id=self._agent_id,
            reason=refusal.message,
        )

    async def _settle(self, settled: Sequence[str], refusals: Sequence[OfferRefusal]) -> None:
        if not settled:
            return
        async with self._redis.client.pipeline(transaction=False) as pipe:
            if refusals:
                pipe.rpush(self._redis.offers.refusals.key, *(refusal.model_dump_json() for refusal in refusals))
            self._redis.offers.of(self._agent_id).ack_to(pipe, OFFER_CONSUMER, settled)
            await pipe.execute()


def _worth_telling(refusal: AppError) -> bool:
    """Whether the orchestrator can do something with the refusal: not for an offer no longer current (nothing to take
    back), nor for one the fleet did not sign (nobody to tell), but for an assignment that merely expired."""
    if isinstance(refusal, StaleOfferError):
        return False
    return isinstance(refusal, ExpiredAssignmentError) or not isinstance(refusal, UntrustedCallerError)
