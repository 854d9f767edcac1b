"""Hands queued subtasks to agents: reliable pop, pick an agent, claim in PostgreSQL, POST /execute."""

from typing import Any

import httpx
import structlog

from orchestrator.scheduling import AgentLoadTracker, SuccessHistory, rank_agents
from shared.database import DatabaseManager
from shared.loop_service import LoopService
from shared.models import AgentStatus, QueuedSubtask, SubTask, SubTaskStatus, TaskExecutionRequest
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)

# How long a dispatcher holding an undeliverable subtask waits for capacity before looking again.
CAPACITY_WAIT_SECONDS = 1.0


class Dispatcher(LoopService):
    def __init__(
        self,
        db: DatabaseManager,
        redis: RedisManager,
        http: httpx.AsyncClient,
        load: AgentLoadTracker,
        history: SuccessHistory,
        consumer_id: str,
    ) -> None:
        super().__init__(f"dispatcher:{consumer_id}")
        self._db = db
        self._redis = redis
        self._http = http
        self._load = load
        self._history = history
        self.consumer_id = consumer_id

    async def run_once(self) -> None:
        delivery = await self._redis.dequeue_task(self.consumer_id, timeout=1.0)
        if delivery is None:
            return
        payload, item = delivery
        # The item stays in this consumer's in-flight list until it is delivered or found stale.
        while not self.stopping and not await self.dispatch(item):
            await self._load.wait_for_capacity(CAPACITY_WAIT_SECONDS)
        if not self.stopping:
            await self._redis.task_queue.ack(self.consumer_id, payload)

    async def dispatch(self, item: QueuedSubtask) -> bool:
        """True when the item is done with (delivered to an agent, or stale); False to try again later."""
        repos = self._db.repositories()
        subtask = await repos.subtasks.get_subtask(item.subtask_id)
        if subtask is None or subtask.status is not SubTaskStatus.QUEUED or subtask.attempt_count != item.attempt:
            log.debug("queue_item_stale", subtask_id=item.subtask_id, attempt=item.attempt)
            return True
        agents = await self._redis.get_agents()
        for agent in rank_agents(agents, subtask, self._load, self._history):
            if await self._offer(subtask, agent):
                return True
        log.debug("no_agent_available", subtask_id=subtask.id, capabilities=subtask.required_capabilities)
        return False

    async def _offer(self, subtask: SubTask, agent: AgentStatus) -> bool:
        """Claim the attempt for the agent, then send it; undo the claim if the agent does not take it."""
        if not self._load.try_reserve(agent, subtask.id):
            return False  # another dispatcher took the agent's last slot meanwhile
        repos = self._db.repositories()
        claimed = await repos.subtasks.claim(subtask.id, subtask.attempt_count, agent.agent_id)
        if claimed is None:
            self._load.released(agent.agent_id, subtask.id)
            return True  # someone else moved it on (cancelled, or a duplicate queue item won)
        request = await self._execution_request(claimed)
        if await self._post_execute(agent, request):
            await repos.tasks.mark_in_progress(subtask.task_id)
            log.info(
                "subtask_dispatched",
                task_id=subtask.task_id,
                subtask_id=subtask.id,
                agent_id=agent.agent_id,
                attempt=claimed.attempt_count,
                assignment_latency_ms=claimed.assignment_latency_ms,
            )
            return True
        self._load.released(agent.agent_id, subtask.id)
        await repos.subtasks.unclaim(subtask.id, claimed.attempt_count)
        return False

    async def _execution_request(self, subtask: SubTask) -> TaskExecutionRequest:
        repos = self._db.repositories()
        task = await repos.tasks.get_task(subtask.task_id)
        outputs = await repos.results.completed_outputs(subtask.task_id, subtask.dependencies)
        context: dict[str, Any] = {
            "task_description": task.description if task else "",
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


class RegistryWatcher(LoopService):
    """Wakes waiting dispatchers when an agent joins, leaves or reports a change, instead of polling."""

    def __init__(self, redis: RedisManager, load: AgentLoadTracker) -> None:
        super().__init__("registry_watcher")
        self._redis = redis
        self._load = load

    async def run_once(self) -> None:
        # One subscription for as long as the loop runs; an error ends it and the loop subscribes again.
        async with self._redis.registry.watch() as watcher:
            while not self.stopping:
                if await watcher.wait(timeout=1.0):
                    self._load.notify()
