"""Hands queued subtasks to agents.

An intake loop moves items from `agent_tasks` into this orchestrator's in-flight list (so a crash
loses nothing) and into an in-memory backlog. A matcher pairs backlog items with agents that have a
free slot whenever something changes (new work, a slot freed, the registry changed), so an item
that no agent can take yet never holds up items that another agent could run now. An item that waits on the
provider (its `not_before` is ahead) is neither offered nor claimed until then; the matcher wakes when the earliest
is due. An item that no live agent
could take even if all were free (or whose task type's dependency is down) waits, and the lifecycle records why
(orchestrator/waiting.py). The pairings of one
matching round are delivered together: their attempts are claimed in PostgreSQL in one statement, then each signed
offer is pushed to its agent's own Redis queue (shared/redis/offers.py) and the queue items are acked, all in one
pipelined round trip. An agent that cannot run an offer refuses it back (orchestrator/offer_refusals.py takes the
attempt back and requeues it); no answer is awaited here, so a slow agent never holds up a round.
"""

import asyncio
import itertools
import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from operator import attrgetter

import structlog

from orchestrator.fleet_view import MATCH_INTERVAL_SECONDS
from orchestrator.lifecycle import TaskLifecycle
from orchestrator.scheduling import rank_agents
from orchestrator.waiting import TaskTypeDependencies, waiting_reason
from shared import tracing
from shared.database.subtask_repository import ClaimedAttempt
from shared.fleet_trust import FleetTrust
from shared.loop_service import LoopService
from shared.models import (
    AgentStatus,
    ContextPackRef,
    QueuedSubtask,
    StatusReason,
    TaskExecutionRequest,
    TaskType,
)
from shared.outages import STORE_OUTAGES
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)

# Items held in memory at most; beyond it the intake waits and the rest stay in Redis.
MAX_BACKLOG = 1000
# Queue items the intake takes per round trip to Redis.
INTAKE_BATCH_SIZE = 64
# An agent that declined an item (busy, unreachable) is not offered that item again for this long.
REFUSAL_BACKOFF_SECONDS = 1.0


Route = tuple[frozenset[str], tuple[str, ...]]  # required capabilities, agents that failed the subtask


@dataclass
class BacklogItem:
    payload: str  # the exact queue string, to ack
    item: QueuedSubtask
    sequence: int  # arrival order, to keep FIFO among equal priorities
    refused_until: dict[str, float] = field(default_factory=dict)  # agent id -> monotonic time
    # Computed once: every matching round sorts and groups the whole backlog by them.
    order: tuple[int, int] = field(init=False)  # highest priority first, then first come first served
    route: Route = field(init=False)  # items that route alike get one answer to "is anyone free?"
    due_at: float = field(init=False)  # wall-clock time before which it is not offered (it waits on the provider)

    def __post_init__(self) -> None:
        self.order = (-self.item.priority, self.sequence)
        self.route = (frozenset(self.item.required_capabilities), tuple(self.item.failed_agent_ids))
        self.due_at = self.item.not_before.timestamp() if self.item.not_before else 0.0

    def refused_by(self, agent_id: str) -> bool:
        return self.refused_until.get(agent_id, 0.0) > time.monotonic()


def execution_request(attempt: ClaimedAttempt, trust: FleetTrust) -> TaskExecutionRequest:
    """The offer of a claimed attempt, signed for the agent it was claimed for."""
    subtask = attempt.subtask
    context = {
        "task_description": attempt.task_description,
        "attempt": subtask.attempt_count,
        "dependency_outputs": [
            {"subtask_id": dependency, "output": attempt.dependency_outputs.get(dependency, "")}
            for dependency in subtask.dependencies
        ],
    }
    pack = ContextPackRef(context_pack_id=attempt.context_pack_id) if attempt.context_pack_id else None
    request = TaskExecutionRequest(task_id=subtask.task_id, subtask=subtask, task_context=context, context_pack=pack)
    request.assignment = trust.sign_offer(request)
    return request


def bound_to_attempt(attempt: ClaimedAttempt) -> AbstractContextManager[None]:
    """The log lines of the block carry the attempt's trace, ids and the agent it is offered to."""
    subtask = attempt.subtask
    return tracing.bound(
        subtask.trace_id,
        task_id=subtask.task_id,
        subtask_id=subtask.id,
        attempt=subtask.attempt_count,
        agent_id=subtask.assigned_agent,
    )


class Dispatcher(LoopService):
    def __init__(
        self,
        lifecycle: TaskLifecycle,
        redis: RedisManager,
        dependencies: TaskTypeDependencies | None = None,
    ) -> None:
        super().__init__("dispatcher")
        self._lifecycle = lifecycle
        self._dependencies = dependencies or TaskTypeDependencies({})
        self._redis = redis
        self._trust = lifecycle.trust
        self._metrics = lifecycle.metrics
        fleet = lifecycle.fleet
        self._directory, self._load, self._history = fleet.directory, fleet.load, fleet.history
        self.consumer_id = f"{lifecycle.settings.orchestrator_instance_id}-dispatch"
        self._backlog: dict[str, BacklogItem] = {}
        self._arrivals = itertools.count()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._unacked: list[str] = []  # settled items whose ack Redis could not take yet
        # Attempts an agent refused, taken back and queued again: the agents to skip when they come back.
        self._refusals: defaultdict[tuple[str, int], dict[str, float]] = defaultdict(dict)
        # While PostgreSQL is away nothing is offered: agents would only be held by offers that cannot be claimed.
        self._claim_outages = self.watch_outages("dispatch_paused", "dispatch_resumed")
        self._paused_until = 0.0
        self._next_due: float | None = None  # wall-clock time the earliest item waiting on the provider is due

    async def run_once(self) -> None:
        """Intake: queue items into the backlog (each stays in this consumer's in-flight list until acked)."""
        if self._unacked:
            await self._acknowledge([])
        room = MAX_BACKLOG - len(self._backlog)
        if room <= 0:
            await self.sleep(0.05)
            return
        taken = await self._redis.dequeue_tasks(self.consumer_id, timeout=1.0, limit=min(room, INTAKE_BATCH_SIZE))
        for payload, item in taken:
            entry = BacklogItem(payload, item, next(self._arrivals))
            entry.refused_until = self._refusals.pop((item.subtask_id, item.attempt), {})
            self._backlog[payload] = entry
        if taken:
            self._load.notify()

    async def run_matcher(self) -> None:
        """Pairs backlog items with free agents each time something changes, until the dispatcher stops."""
        while not self.stopping:
            until_due = MATCH_INTERVAL_SECONDS if self._next_due is None else self._next_due - time.time()
            await self._load.wait_for_change(min(MATCH_INTERVAL_SECONDS, max(until_due, 0.0)))
            try:
                self.match()
            except Exception:
                log.exception("matching_failed")
        if self._deliveries:
            await asyncio.wait(self._deliveries)

    def match(self) -> int:
        """Start delivering every backlog item an agent can take now; returns how many were paired."""
        deferred = self._deferred()
        waiting = self._note_waiting(deferred)
        free_slots = sum(max(0, a.slots - self._load.running(a.agent_id)) for a in self._directory.agents)
        if not self._backlog or not free_slots or time.monotonic() < self._paused_until:
            return 0
        pairs: list[tuple[BacklogItem, AgentStatus]] = []
        exhausted: set[Route] = set()
        # Sorted afresh each round; cheap, as the keys are stored and the dict keeps arrival order (long sorted runs).
        for entry in sorted(self._backlog.values(), key=attrgetter("order")):
            if entry.route in exhausted or entry.payload in waiting or entry.payload in deferred:
                continue
            ranked = rank_agents(self._directory.agents, entry.item, self._load, self._history)
            ranked = [a for a in ranked if self._directory.unresponsive_since(a) is None]
            agent = next((a for a in ranked if not entry.refused_by(a.agent_id)), None)
            if agent is None:
                if not ranked:
                    exhausted.add(entry.route)
                continue
            self._load.try_reserve(agent, entry.item.subtask_id)
            del self._backlog[entry.payload]
            pairs.append((entry, agent))
            free_slots -= 1
            if not free_slots:
                break
        if pairs:
            delivery = asyncio.create_task(self._deliver(pairs), name=f"deliver:{len(pairs)}")
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)
        return len(pairs)

    def _deferred(self) -> set[str]:
        """The payloads of the backlog items waiting on the provider (not due yet), and when the earliest is due."""
        now = time.time()
        deferred = {entry.payload: entry.due_at for entry in self._backlog.values() if entry.due_at > now}
        self._next_due = min(deferred.values(), default=None)
        return set(deferred)

    def _note_waiting(self, deferred: set[str]) -> set[str]:
        """Tell the lifecycle why each backlog item waits, if it does: no live agent has what it needs (as opposed
        to all of them being busy), or its task type's dependency is down. Returns the waiting items' payloads.
        Items waiting on the provider keep the reason their wait wrote (`deferred`, left out here)."""
        agents = self._directory.agents
        reasons: dict[tuple[Route, TaskType], StatusReason | None] = {}  # items that route alike wait alike
        noted: list[tuple[QueuedSubtask, StatusReason | None]] = []
        waiting = set()
        for entry in self._backlog.values():
            if entry.payload in deferred:
                continue
            kind = (entry.route, entry.item.task_type)
            if kind not in reasons:
                reasons[kind] = waiting_reason(entry.item, agents, self._dependencies)
            noted.append((entry.item, reasons[kind]))
            if reasons[kind] is not None:
                waiting.add(entry.payload)
        self._lifecycle.note_waiting(noted)
        return waiting

    async def _deliver(self, pairs: Sequence[tuple[BacklogItem, AgentStatus]]) -> None:
        try:
            await self._offer(pairs)
        except STORE_OUTAGES as error:
            # PostgreSQL or Redis is away: nothing can be claimed or delivered, so nothing is offered until they
            # answer again; the pairings wait in the backlog (an attempt claimed meanwhile was taken back).
            self._paused_until = time.monotonic() + self._claim_outages.failed(error)
            for entry, agent in pairs:
                self._put_back(entry, agent)
            return
        except Exception:
            log.exception("delivery_failed", subtask_ids=[entry.item.subtask_id for entry, _ in pairs])
            for entry, agent in pairs:
                self._refused(entry, agent)
            return
        self._claim_outages.succeeded()

    async def _acknowledge(self, payloads: list[str]) -> None:
        """Ack settled items, with any whose ack failed before; while Redis is away they wait for the next try
        (the intake's next iteration), rather than in flight until a restart recovers them."""
        pending, self._unacked = self._unacked + payloads, []
        try:
            await self._redis.task_queue.ack_many(self.consumer_id, pending)
        except STORE_OUTAGES as error:
            self._unacked = pending + self._unacked
            log.warning("ack_deferred", count=len(pending), error=repr(error))

    def _refused(self, entry: BacklogItem, agent: AgentStatus) -> None:
        """Back into the backlog; this agent is skipped for it for a moment."""
        entry.refused_until[agent.agent_id] = time.monotonic() + REFUSAL_BACKOFF_SECONDS
        self._put_back(entry, agent)

    def _put_back(self, entry: BacklogItem, agent: AgentStatus) -> None:
        self._backlog[entry.payload] = entry
        self._load.released(agent.agent_id, entry.item.subtask_id)

    async def _offer(self, pairs: Sequence[tuple[BacklogItem, AgentStatus]]) -> None:
        """Claim the pairings, then push each claimed attempt's signed offer to its agent's queue and ack the queue
        items in one round trip."""
        claims = [(entry.item.subtask_id, entry.item.attempt, agent.agent_id) for entry, agent in pairs]
        claimed = {
            (attempt.subtask.id, attempt.subtask.attempt_count, attempt.subtask.assigned_agent): attempt
            for attempt in await self._lifecycle.claim(claims)
        }
        offers: list[tuple[AgentStatus, ClaimedAttempt]] = []
        for (entry, agent), claim in zip(pairs, claims, strict=True):
            attempt = claimed.pop(claim, None)
            if attempt is not None:
                offers.append((agent, attempt))
                continue
            # Cancelled, already claimed through a duplicate item, or superseded by a retry.
            self._load.released(agent.agent_id, entry.item.subtask_id)
            item = entry.item
            with tracing.bound(
                item.trace_id, task_id=item.task_id, subtask_id=item.subtask_id, agent_id=agent.agent_id
            ):
                log.debug("queue_item_stale", subtask_id=item.subtask_id, attempt=item.attempt)
        try:
            await self._push(offers, [entry.payload for entry, _ in pairs])
        except STORE_OUTAGES:
            # An offer that did reach its agent finds its attempt no longer offered to it there, and is dropped.
            await self._lifecycle.release_unaccepted(
                [(a.subtask.id, a.subtask.delivery_token or "") for _, a in offers]
            )
            raise
        for agent, attempt in offers:
            self._dispatched(agent, attempt)

    async def _push(self, offers: Sequence[tuple[AgentStatus, ClaimedAttempt]], settled: list[str]) -> None:
        """The offers, then the acks of the settled queue items (and of any whose ack failed before), in one round
        trip: an item is acked only once its offer is in the agent's queue."""
        bodies: dict[str, list[str]] = defaultdict(list)
        for agent, attempt in offers:
            bodies[agent.agent_id].append(execution_request(attempt, self._trust).model_dump_json())
        unacked, self._unacked = self._unacked, []
        try:
            async with self._redis.client.pipeline(transaction=False) as pipe:
                self._redis.offers.add_to(pipe, bodies)
                self._redis.task_queue.ack_to(pipe, self.consumer_id, [*unacked, *settled])
                await pipe.execute()
        except BaseException:
            self._unacked = unacked + self._unacked
            raise

    def _dispatched(self, agent: AgentStatus, attempt: ClaimedAttempt) -> None:
        subtask = attempt.subtask
        with bound_to_attempt(attempt):
            if subtask.assignment_latency_ms is not None:
                self._metrics.assignment_latency.observe(subtask.assignment_latency_ms / 1000)
            log.info(
                "subtask_dispatched",
                task_id=subtask.task_id,
                subtask_id=subtask.id,
                agent_id=agent.agent_id,
                attempt=subtask.attempt_count,
                assignment_latency_ms=subtask.assignment_latency_ms,
            )

    def note_refusal(self, subtask_id: str, attempt: int, agent_id: str) -> None:
        """An agent refused the attempt's offer (it was taken back and queued again): when its queue item comes back,
        that agent is skipped for it for a moment."""
        self._refusals[(subtask_id, attempt)][agent_id] = time.monotonic() + REFUSAL_BACKOFF_SECONDS
