"""Takes agents' results off the result queue and has the task lifecycle apply them, a batch at a time.

A batch stays in this consumer's in-flight list until it is applied and acknowledged, so a crash or an outage in
between loses nothing: the batch is taken again (by this loop on its next iteration, or by recovery after a crash).
"""

import structlog

from orchestrator.lifecycle import TaskLifecycle
from shared.loop_service import LoopService
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)

# Results applied in one transaction at most; a larger backlog is worked off in several.
RESULT_BATCH_SIZE = 64


class ResultProcessor(LoopService):
    def __init__(self, lifecycle: TaskLifecycle, redis: RedisManager, number: int) -> None:
        super().__init__("result_processor")
        self._lifecycle = lifecycle
        self._redis = redis
        self.consumer_id = f"{lifecycle.settings.orchestrator_instance_id}-results-{number}"
        self._holding = False  # whether this consumer's in-flight list may hold a batch an iteration gave up on

    async def run_once(self) -> None:
        if self._holding:
            # The last batch failed (PostgreSQL or Redis went away) before it was acknowledged: it goes back to
            # the head of the queue and is taken again now, instead of waiting in flight for a restart.
            moved = await self._redis.result_queue.recover(self.consumer_id)
            log.debug("result_batch_taken_again", consumer_id=self.consumer_id, results=moved)
            self._holding = False
        taken = await self._redis.dequeue_results(self.consumer_id, timeout=1.0, limit=RESULT_BATCH_SIZE)
        if not taken:
            return
        self._holding = True
        outcome = await self._lifecycle.apply_results([result for _, result in taken])
        for position, reason in outcome.rejected.items():
            await self._redis.result_queue.reject(self.consumer_id, taken[position][0], reason)
        # Acknowledged only now: a crash before this line leaves the results in flight, to be recovered.
        await self._redis.result_queue.ack_many(
            self.consumer_id,
            [payload for position, (payload, _) in enumerate(taken) if position not in outcome.rejected],
        )
        self._holding = False
