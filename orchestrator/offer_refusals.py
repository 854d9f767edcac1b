"""Offers agents refused: the attempt is taken back and offered again at once, to another agent for a moment.

An agent refuses an offer it took from its queue when it cannot run it (it is draining or shutting down, lacks a
capability, or the assignment expired while it waited) and pushes an OfferRefusal (shared/redis/offers.py) to the
tenant's refusal queue. This loop takes the refusals, releases their attempts in PostgreSQL in one statement (only
offers still unaccepted under that token and made to the agent the refusal names: a late, repeated or forged refusal
changes nothing, not even the named agent's standing with the dispatcher), puts each released attempt
back at the head of the task queue and acks the refusals in one round trip, and tells the dispatcher which agent to
skip for it. The refusing agent gets no offer at all until it heartbeats again (its heartbeat says whether it can).
A refusal is held in this consumer's in-flight list until then, so a crash loses none.
"""

import structlog
from pydantic import ValidationError

from orchestrator.dispatcher import Dispatcher
from orchestrator.lifecycle import TaskLifecycle
from shared.loop_service import LoopService
from shared.models import QueuedSubtask
from shared.redis.offers import OfferRefusal
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)

REFUSALS_PER_ROUND = 64


class OfferRefusals(LoopService):
    def __init__(self, lifecycle: TaskLifecycle, redis: RedisManager, dispatcher: Dispatcher) -> None:
        super().__init__("offer_refusals")
        self._lifecycle = lifecycle
        self._redis = redis
        self._dispatcher = dispatcher
        self._load = lifecycle.fleet.load
        self._directory = lifecycle.fleet.directory
        self.consumer_id = f"{lifecycle.settings.orchestrator_instance_id}-refusals"

    async def run_once(self) -> None:
        queue = self._redis.offers.refusals
        payloads = await queue.take_many(self.consumer_id, timeout=1.0, limit=REFUSALS_PER_ROUND)
        refusals: list[OfferRefusal] = []
        for payload in payloads:
            try:
                refusals.append(OfferRefusal.model_validate_json(payload))
            except ValidationError as error:
                await queue.reject(self.consumer_id, payload, f"unreadable: {error}")
        if not refusals:
            return
        try:
            await self.apply(refusals, payloads)
        except Exception:
            await queue.recover(self.consumer_id)  # tried again next round
            raise

    async def apply(self, refusals: list[OfferRefusal], payloads: list[str]) -> None:
        released = await self._lifecycle.release_unaccepted(
            [(r.subtask_id, r.delivery_token) for r in refusals], offered_to=[r.agent_id for r in refusals]
        )
        # Only a refusal that took its offer back says anything about its agent: anyone who can write Redis can push
        # one, and a late one (its offer already taken back, perhaps offered to the agent again) is news of nothing.
        by_subtask: dict[str, OfferRefusal | None] = {}
        for refusal in refusals:
            earlier = by_subtask.setdefault(refusal.subtask_id, refusal)
            if earlier is not None and earlier.agent_id != refusal.agent_id:
                by_subtask[refusal.subtask_id] = None  # which of them took the offer back is not known: neither
        for subtask in released:
            named = by_subtask[subtask.id]
            if named is None:
                continue
            self._dispatcher.note_refusal(subtask.id, subtask.attempt_count, named.agent_id)
            self._load.released(named.agent_id, named.subtask_id)
            # Draining, shutting down or otherwise unable: no more offers until its next heartbeat says how it is.
            self._directory.mark_unresponsive(named.agent_id)
            log.info(
                "offer_refused_released",
                subtask_id=subtask.id,
                attempt=subtask.attempt_count,
                agent_id=named.agent_id,
                reason=named.reason,
            )
        async with self._redis.client.pipeline(transaction=False) as pipe:
            if released:
                # At the head: they were next before the refusal, and go before work queued since.
                pipe.lpush(
                    self._redis.task_queue.key, *(QueuedSubtask.for_subtask(s).model_dump_json() for s in released)
                )
            self._redis.offers.refusals.ack_to(pipe, self.consumer_id, payloads)
            await pipe.execute()
