"""Planning: a task's decomposition becomes its stored plan, at submit or later, when the provider could not serve it
at submit.

`POST /tasks` plans at once; when the provider cannot serve the planning call (or the fleet's limiter holds it back)
the task is stored without subtasks, pending, its status reason saying it waits on Claude and until when, and the
answer is the usual 201. The planning loop then plans such tasks as their time comes, each call through the same
limiter, and stores each plan with its ready subtasks queued in one transition, only while the task is still pending
without a plan (a cancel or a deadline may have ended it). A wait again defers it again, with a longer back-off.
"""

from datetime import UTC, datetime

import structlog

from orchestrator.lifecycle import TaskLifecycle
from orchestrator.task_analyzer import Decomposition, TaskAnalyzer
from shared import tracing
from shared.database import DatabaseManager
from shared.loop_service import LoopService
from shared.models import AgentStatus, DecompositionInfo, SubTask, Task

log = structlog.get_logger(__name__)

# Tasks one iteration plans, at most; more wait for the next.
PLANS_PER_ROUND = 20
# How often the loop looks for due tasks when none is known to come due sooner (another orchestrator of the tenant
# may have deferred one).
POLL_SECONDS = 1.0


class Planner:
    """Decomposes a task and hands the lifecycle its plan, or its wait on the provider."""

    def __init__(self, lifecycle: TaskLifecycle, analyzer: TaskAnalyzer) -> None:
        self._lifecycle = lifecycle
        self._analyzer = analyzer

    async def decompose(self, task: Task) -> Decomposition:
        """The task's decomposition, with its plan (and what it cost) put on the task, unless it waits."""
        agents = self._live_agents()
        decomposition = await self._analyzer.decompose_task(task.id, task.description, agents, task.task_type)
        if decomposition.provider_wait is not None:
            return decomposition
        task.subtasks = decomposition.subtasks
        task.decomposition_fallback = decomposition.fallback_used
        task.decomposition = DecompositionInfo(
            duration_ms=decomposition.duration_ms,
            repaired=decomposition.repaired,
            fallback_reason=decomposition.fallback_reason,
            token_usage=decomposition.usage,
            model=decomposition.model,
            cost_usd=0.0,  # no call got an answer, unless the cost ledger prices its calls when the plan is stored
        )
        return decomposition

    async def submit(self, task: Task) -> list[SubTask]:
        """Plan and store a new task, queueing what can start; stored without a plan when the planning waits."""
        decomposition = await self.decompose(task)
        if decomposition.provider_wait is not None:
            self._lifecycle.metrics.provider_waits.labels(decomposition.provider_wait.kind).inc()
            await self._lifecycle.submit_unplanned(task, decomposition.provider_wait, decomposition.calls)
            log.info("task_submitted_unplanned", task_id=task.id, waits_on=decomposition.provider_wait.kind)
            return []
        queued = await self._lifecycle.submit(task, decomposition.calls)
        log.info("task_submitted", task_id=task.id, subtasks=len(task.subtasks), queued=len(queued))
        return queued

    async def plan_later(self, task: Task) -> None:
        """Plan a stored task whose planning waited: store its plan, or defer it again."""
        decomposition = await self.decompose(task)
        if decomposition.provider_wait is not None:
            self._lifecycle.metrics.provider_waits.labels(decomposition.provider_wait.kind).inc()
            until = await self._lifecycle.defer_plan(task.id, decomposition.provider_wait, decomposition.calls)
            log.info("task_plan_deferred", task_id=task.id, until=until, waits_on=decomposition.provider_wait.kind)
            return
        queued = await self._lifecycle.store_plan(task, decomposition.calls)
        if queued is None:
            log.info("task_plan_dropped", task_id=task.id, reason="the task no longer waits for a plan")
        else:
            log.info("task_planned", task_id=task.id, subtasks=len(task.subtasks), queued=len(queued))

    def _live_agents(self) -> list[AgentStatus]:
        """The agents taking work as the fleet view last read the registry (orchestrator/fleet_view.py keeps it
        fresh: within REGISTRY_REFRESH_MIN_SECONDS of an agent's announcement). Not a registry read per task: at
        a burst of submits that read was 4 % of the orchestrator's CPU. While Redis is away it is the fleet as
        last seen."""
        return self._lifecycle.fleet.directory.agents


class PlanningLoop(LoopService):
    """Plans the tasks whose planning waited on the provider, each when its time comes."""

    def __init__(self, planner: Planner, db: DatabaseManager) -> None:
        super().__init__("planning")
        self._planner = planner
        self._db = db

    async def run_once(self) -> None:
        due, next_due = await self._db.repositories().provider_waits.plans_due(PLANS_PER_ROUND)
        for task in due:
            with tracing.bound(task.trace_id, task_id=task.id):
                await self._planner.plan_later(task)
        if len(due) < PLANS_PER_ROUND:
            await self.sleep(self._idle_seconds(next_due))

    @staticmethod
    def _idle_seconds(next_due: datetime | None) -> float:
        if next_due is None:
            return POLL_SECONDS
        return min(POLL_SECONDS, max((next_due - datetime.now(UTC)).total_seconds(), 0.0))
