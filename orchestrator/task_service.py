"""What the task endpoints do: submit (decompose, store, queue), read, search, cancel, retry, re-run, and list tool
calls."""

from datetime import timedelta
from itertools import groupby

import structlog

from orchestrator.api.schemas import (
    AttemptToolCalls,
    TaskDetailResponse,
    TaskDryRunResponse,
    TaskResumedResponse,
    TaskRetriedResponse,
    TaskToolCallsResponse,
)
from orchestrator.estimates import CostEstimator
from orchestrator.idempotent_submits import IdempotentSubmits
from orchestrator.lifecycle import TaskLifecycle
from orchestrator.planning import Planner
from orchestrator.provider_waits import provider_unavailable
from orchestrator.task_analyzer import TaskAnalyzer
from shared import tracing
from shared.database import DatabaseManager
from shared.database.task_search import TaskSearch
from shared.errors import InvalidInputError, NotFoundError
from shared.models import (
    Task,
    TaskCreatedResponse,
    TaskCreateRequest,
    TaskSummary,
)
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)


class TaskService:
    def __init__(
        self,
        lifecycle: TaskLifecycle,
        db: DatabaseManager,
        redis: RedisManager,
        analyzer: TaskAnalyzer,
        estimator: CostEstimator,
    ) -> None:
        self._lifecycle = lifecycle
        self._db = db
        self._redis = redis
        self.planner = Planner(lifecycle, analyzer)  # the planning loop plans with it too
        self._estimator = estimator
        self._details = lifecycle.details
        self._idempotent = IdempotentSubmits(redis.idempotency, lifecycle.settings)

    async def submit_task_once(
        self, request: TaskCreateRequest, trace_id: str, idempotency_key: str
    ) -> tuple[TaskCreatedResponse, bool]:
        """`submit_task` at most once per key and body (orchestrator/idempotent_submits.py); whether the answer is
        a replay of an earlier request's."""
        return await self._idempotent.submit(idempotency_key, request, lambda: self.submit_task(request, trace_id))

    async def submit_task(self, request: TaskCreateRequest, trace_id: str) -> TaskCreatedResponse:
        """Decompose, store the task and its plan (with the request's trace id), and queue the subtasks that can
        start now; the answer has the plan's cost estimate (made once the ready subtasks are queued). A task whose
        planning waits on the provider is stored without a plan (and without an estimate), to be planned later."""
        await self._refuse_unknown_pack(request.context_pack_id)
        await self._lifecycle.refuse_when_over_budget()  # a decomposition would spend more of a spent budget
        await self._lifecycle.refuse_when_full()  # before asking Claude; submit checks again, atomically
        task = new_task(request, trace_id)
        with tracing.bound(task_id=task.id):
            queued = await self.planner.submit(task)
            estimate = await self._estimator.estimate(task) if task.subtasks else None
        return TaskCreatedResponse(
            task_id=task.id,
            subtasks_count=len(task.subtasks),
            initial_subtasks_queued=len(queued),
            trace_id=trace_id,
            estimate=estimate,
        )

    async def dry_run(self, request: TaskCreateRequest, trace_id: str) -> TaskDryRunResponse:
        """Plan and estimate the task as a submit would, and stop there: nothing is stored, queued or published."""
        await self._refuse_unknown_pack(request.context_pack_id)
        await self._lifecycle.refuse_when_over_budget()  # planning spends too
        task = new_task(request, trace_id)
        with tracing.bound(task_id=task.id):
            decomposition = await self.planner.decompose(task)
            spent = await self._lifecycle.record_model_calls(None, decomposition.calls)  # though no task is stored
            if decomposition.provider_wait is not None:  # nothing is stored to wait: the caller tries again
                raise provider_unavailable(decomposition.provider_wait, self._lifecycle.settings)
            if task.decomposition is not None:
                task.decomposition.cost_usd = spent  # what the ledger charged, as a submit's plan says
            estimate = await self._estimator.estimate(task)
        log.info("task_dry_run", subtasks=len(task.subtasks), estimate=estimate)
        return TaskDryRunResponse.of(task, estimate, trace_id)

    async def _refuse_unknown_pack(self, pack_id: str | None) -> None:
        """A pack that is not this tenant's is refused before Claude is asked for anything."""
        if pack_id is not None and not await self._db.repositories().context_packs.pack_exists(pack_id):
            raise InvalidInputError(
                f"context_pack_id: no context pack {pack_id!r} (another tenant's is unknown here too); "
                "upload one with POST /context-packs and send the context_pack_id it answers"
            )

    async def get_task_json(self, task_id: str) -> bytes:
        """The task's detail as the API serves it; kept once the task has ended."""
        body = self._details.get(task_id)
        if body is None:
            repos = self._db.repositories()
            detail = await repos.tasks.get_task_detail(task_id)
            if detail is None:
                raise NotFoundError(f"no task with id {task_id!r}")
            task, results = detail
            spent = (await repos.ledger.task_totals([task_id]))[task_id]
            body = TaskDetailResponse.of(task, results, spent).model_dump_json().encode()
            if task.status.is_terminal:
                self._details.put(task_id, body)
        return body

    async def list_tasks(self, search: TaskSearch, limit: int, offset: int) -> tuple[list[TaskSummary], int]:
        """A page of the tasks `search` finds, and how many it finds in all."""
        repos = self._db.repositories()
        tasks = await repos.tasks.list_tasks(search, limit=limit, offset=offset)
        return tasks, await repos.tasks.count_tasks(search)

    async def cancel_task(self, task_id: str) -> Task:
        with tracing.bound(task_id=task_id):  # under this request's trace: the task's is where it was submitted
            return await self._lifecycle.cancel(task_id)

    async def retry_task(self, task_id: str, subtask_id: str | None = None) -> TaskRetriedResponse:
        """An operator's retry of a failed task, or of one failed subtask (orchestrator/lifecycle.py says what)."""
        with tracing.bound(task_id=task_id, subtask_id=subtask_id):
            outcome = await self._lifecycle.retry(task_id, subtask_id)
        return TaskRetriedResponse(task_id=task_id, status=outcome.task.status, subtasks_requeued=len(outcome.requeued))

    async def resume_task(self, task_id: str, max_cost_usd: float | None) -> TaskResumedResponse:
        """Resume a paused task, with a new budget when `max_cost_usd` is given (orchestrator/lifecycle.py)."""
        with tracing.bound(task_id=task_id):
            outcome = await self._lifecycle.resume(task_id, max_cost_usd)
        task = outcome.task
        return TaskResumedResponse(
            task_id=task.id, status=task.status, max_cost_usd=task.max_cost_usd, subtasks_requeued=len(outcome.requeued)
        )

    async def rerun_task(self, task_id: str, trace_id: str) -> TaskCreatedResponse:
        """A new task with the same description, user, type, context pack, budget and time allowed
        (deadline_seconds), submitted like any other."""
        task = await self._db.repositories().tasks.get_task(task_id)
        if task is None:
            raise NotFoundError(f"no task with id {task_id!r}")
        request = TaskCreateRequest(
            description=task.description,
            user_id=task.user_id,
            task_type=task.task_type,
            context_pack_id=task.context_pack_id,
            max_cost_usd=task.max_cost_usd,
            deadline_seconds=deadline_seconds(task),
        )
        created = await self.submit_task(request, trace_id)
        log.info("task_rerun", task_id=task_id, new_task_id=created.task_id)
        return created

    async def tool_calls(self, task_id: str) -> TaskToolCallsResponse:
        """The task's tool calls grouped by attempt; 404 for a task that is not this tenant's."""
        repos = self._db.repositories()
        if not await repos.tasks.task_exists(task_id):
            raise NotFoundError(f"no task with id {task_id!r}")
        calls = await repos.audit.list_tool_calls(task_id)  # ordered by subtask and attempt
        attempts = [
            AttemptToolCalls(subtask_id=subtask_id, attempt=attempt, tool_calls=list(group))
            for (subtask_id, attempt), group in groupby(calls, key=lambda call: (call.subtask_id, call.attempt))
        ]
        return TaskToolCallsResponse(task_id=task_id, attempts=attempts)


def new_task(request: TaskCreateRequest, trace_id: str) -> Task:
    """The task a request asks for, before it is planned; its deadline is counted from now."""
    task = Task(
        description=request.description,
        user_id=request.user_id,
        task_type=request.task_type,
        trace_id=trace_id,
        context_pack_id=request.context_pack_id,
        max_cost_usd=request.max_cost_usd,
    )
    if request.deadline_seconds is not None:
        task.deadline_at = task.created_at + timedelta(seconds=request.deadline_seconds)
    return task


def deadline_seconds(task: Task) -> int | None:
    """The time the task was allowed when it was submitted (deadline_seconds), or None when it has no deadline."""
    if task.deadline_at is None:
        return None
    return max(1, round((task.deadline_at - task.created_at).total_seconds()))
