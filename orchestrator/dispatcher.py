"""Hands queued subtasks to agents.

An intake loop moves items from `agent_tasks` into this orchestrator's in-flight list (so a crash
loses nothing) and into an in-memory backlog. A matcher pairs backlog items with agents that have a
free slot whenever something changes (new work, a slot freed, the registry changed), so an item
that no agent can take yet never holds up items that another agent could run now. Each pairing is
delivered on its own: claim the attempt in PostgreSQL, POST /execute, and ack the queue item.
"""

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

from orchestrator.scheduling import AgentLoadTracker, SuccessHistory, rank_agents
from shared.database import DatabaseManager
from shared.loop_service import LoopService
from shared.models import AgentStatus, QueuedSubtask, SubTask, TaskExecutionRequest
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)

# Items held in memory at most; beyond it the intake waits and the rest stay in Redis.
MAX_BACKLOG = 1000
# The matcher looks again at least this often (agents' heartbeats expire without an announcement).
MATCH_INTERVAL_SECONDS = 1.0
# Agents announce every slot change; the directory is re-read at most this often (the load tracker
# already knows about slots this orchestrator fills and frees, so only joins and leaves wait for it).
REGISTRY_REFRESH_MIN_SECONDS = 0.1
# An agent that declined an item (busy, unreachable) is not offered that item again for this long.
REFUSAL_BACKOFF_SECONDS = 1.0


@dataclass
class BacklogItem:
    payload: str  # the exact queue string, to ack
    item: QueuedSubtask
    sequence: int  # arrival order, to keep FIFO among equal priorities
    refused_until: dict[str, float] = field(default_factory=dict)  # agent id -> monotonic time

    def refused_by(self, agent_id: str) -> bool:
        return self.refused_until.get(agent_id, 0.0) > time.monotonic()


class AgentDirectory:
    """The registry as last read: refreshed when an agent announces a change and at least every second."""

    def __init__(self, redis: RedisManager) -> None:
        self._redis = redis
        self.agents: list[AgentStatus] = []

    async def refresh(self) -> None:
        self.agents = await self._redis.get_agents()


class RegistryWatcher(LoopService):
    """Keeps the directory fresh and wakes the matcher when agents join, leave or report a change."""

    def __init__(self, redis: RedisManager, directory: AgentDirectory, load: AgentLoadTracker) -> None:
        super().__init__("registry_watcher")
        self._redis = redis
        self._directory = directory
        self._load = load

    async def run_once(self) -> None:
        # One subscription for as long as the loop runs; an error ends it and the loop subscribes again.
        async with self._redis.registry.watch() as watcher:
            while not self.stopping:
                if await watcher.wait(timeout=MATCH_INTERVAL_SECONDS):
                    await self.sleep(REGISTRY_REFRESH_MIN_SECONDS)  # let a burst of announcements settle
                await self._directory.refresh()
                self._load.notify()


class Dispatcher(LoopService):
    def __init__(
        self,
        db: DatabaseManager,
        redis: RedisManager,
        http: httpx.AsyncClient,
        directory: AgentDirectory,
        load: AgentLoadTracker,
        history: SuccessHistory,
        consumer_id: str,
    ) -> None:
        super().__init__("dispatcher")
        self._db = db
        self._redis = redis
        self._http = http
        self._directory = directory
        self._load = load
        self._history = history
        self.consumer_id = consumer_id
        self._backlog: dict[str, BacklogItem] = {}
        self._arrivals = itertools.count()
        self._deliveries: set[asyncio.Task[None]] = set()

    async def run_once(self) -> None:
        """Intake: one queue item into the backlog (the item stays in this consumer's in-flight list)."""
        if len(self._backlog) >= MAX_BACKLOG:
            await self.sleep(0.05)
            return
        taken = await self._redis.dequeue_task(self.consumer_id, timeout=1.0)
        if taken is not None:
            payload, item = taken
            self._backlog[payload] = BacklogItem(payload, item, next(self._arrivals))
            self._load.notify()

    async def run_matcher(self) -> None:
        """Pairs backlog items with free agents each time something changes, until the dispatcher stops."""
        while not self.stopping:
            await self._load.wait_for_change(MATCH_INTERVAL_SECONDS)
            try:
                self.match()
            except Exception:
                log.exception("matching_failed")
        if self._deliveries:
            await asyncio.wait(self._deliveries)

    def match(self) -> int:
        """Start a delivery for every backlog item an agent can take now; returns how many started."""
        if not self._backlog or not any(self._load.running(a.agent_id) < a.slots for a in self._directory.agents):
            return 0
        started = 0
        # Items that route alike (same capabilities, same failed agents) share one answer to "is anyone free?".
        exhausted: set[tuple[frozenset[str], tuple[str, ...]]] = set()
        for entry in sorted(self._backlog.values(), key=lambda entry: (-entry.item.priority, entry.sequence)):
            route = (frozenset(entry.item.required_capabilities), tuple(entry.item.failed_agent_ids))
            if route in exhausted:
                continue
            ranked = rank_agents(self._directory.agents, entry.item, self._load, self._history)
            agent = next((a for a in ranked if not entry.refused_by(a.agent_id)), None)
            if agent is None:
                if not ranked:
                    exhausted.add(route)
                continue
            self._load.try_reserve(agent, entry.item.subtask_id)
            del self._backlog[entry.payload]
            delivery = asyncio.create_task(self._deliver(entry, agent), name=f"deliver:{entry.item.subtask_id}")
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)
            started += 1
        return started

    async def _deliver(self, entry: BacklogItem, agent: AgentStatus) -> None:
        item = entry.item
        try:
            delivered = await self._offer(item, agent)
        except Exception:
            log.exception("delivery_failed", subtask_id=item.subtask_id, agent_id=agent.agent_id)
            delivered = False
        if delivered is None or delivered:
            await self._redis.task_queue.ack(self.consumer_id, entry.payload)
            return
        # Back into the backlog; this agent is skipped for it for a moment.
        entry.refused_until[agent.agent_id] = time.monotonic() + REFUSAL_BACKOFF_SECONDS
        self._backlog[entry.payload] = entry
        self._load.released(agent.agent_id, item.subtask_id)

    async def _offer(self, item: QueuedSubtask, agent: AgentStatus) -> bool | None:
        """True when the agent took the attempt, False when it did not, None when the item is stale."""
        repos = self._db.repositories()
        claimed = await repos.subtasks.claim(item.subtask_id, item.attempt, agent.agent_id)
        if claimed is None:
            self._load.released(agent.agent_id, item.subtask_id)
            log.debug("queue_item_stale", subtask_id=item.subtask_id, attempt=item.attempt)
            return None  # cancelled, already claimed through a duplicate item, or superseded by a retry
        request = await self._execution_request(claimed)
        if await self._post_execute(agent, request):
            log.info(
                "subtask_dispatched",
                task_id=claimed.task_id,
                subtask_id=claimed.id,
                agent_id=agent.agent_id,
                attempt=claimed.attempt_count,
                assignment_latency_ms=claimed.assignment_latency_ms,
            )
            return True
        await repos.subtasks.unclaim(claimed.id, claimed.attempt_count)
        return False

    async def _execution_request(self, subtask: SubTask) -> TaskExecutionRequest:
        repos = self._db.repositories()
        description, outputs = await repos.tasks.start_and_describe(subtask.task_id, subtask.dependencies)
        context: dict[str, Any] = {
            "task_description": description,
            "attempt": subtask.attempt_count,
            "dependency_outputs": [
                {"subtask_id": dependency, "output": outputs.get(dependency, "")} for dependency in subtask.dependencies
            ],
        }
        return TaskExecutionRequest(task_id=subtask.task_id, subtask=subtask, task_context=context)

    async def _post_execute(self, agent: AgentStatus, request: TaskExecutionRequest) -> bool:
        try:
            response = await self._http.post(f"{agent.url}/execute", content=request.model_dump_json())
        except httpx.HTTPError as error:
            log.warning("agent_unreachable", agent_id=agent.agent_id, url=agent.url, error=repr(error))
            return False
        if response.status_code == 200:
            return True
        log.info("agent_refused", agent_id=agent.agent_id, status_code=response.status_code, body=response.text[:200])
        return False
