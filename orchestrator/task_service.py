"""What the task endpoints do: submit (decompose, store, queue), read, list and cancel."""

import math

import redis.exceptions
import structlog

from orchestrator.api.schemas import TaskDetailResponse
from orchestrator.detail_cache import TaskDetailCache
from orchestrator.task_analyzer import TaskAnalyzer
from shared.config import Settings
from shared.database import DatabaseManager
from shared.errors import ConflictError, NotFoundError, TooManyRequestsError
from shared.models import (
    AgentStatus,
    DecompositionInfo,
    QueuedSubtask,
    SubTask,
    Task,
    TaskCreatedResponse,
    TaskCreateRequest,
    TaskStatus,
    TaskSummary,
)
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)


class TaskService:
    def __init__(
        self,
        settings: Settings,
        db: DatabaseManager,
        redis: RedisManager,
        analyzer: TaskAnalyzer,
        details: TaskDetailCache,
    ) -> None:
        self._settings = settings
        self._db = db
        self._redis = redis
        self._analyzer = analyzer
        self._details = details

    async def submit_task(self, request: TaskCreateRequest) -> TaskCreatedResponse:
        """Decompose, store the task and its plan, and queue the subtasks that can start now."""
        await self._refuse_when_full()
        task = Task(description=request.description, user_id=request.user_id)
        agents = await self._live_agents()
        decomposition = await self._analyzer.decompose_task(task.id, task.description, agents)
        task.subtasks = decomposition.subtasks
        task.decomposition_fallback = decomposition.fallback_used
        task.decomposition = DecompositionInfo(
            duration_ms=decomposition.duration_ms,
            repaired=decomposition.repaired,
            fallback_reason=decomposition.fallback_reason,
            token_usage=decomposition.usage,
        )
        queued = await self._db.repositories().tasks.create_and_queue(task)
        await self._publish(queued)
        log.info("task_submitted", task_id=task.id, subtasks=len(task.subtasks), queued=len(queued))
        return TaskCreatedResponse(
            task_id=task.id, subtasks_count=len(task.subtasks), initial_subtasks_queued=len(queued)
        )

    async def _live_agents(self) -> list[AgentStatus]:
        """The registry, or nobody when Redis is down: the plan is then checked against no fleet."""
        try:
            return await self._redis.get_agents()
        except redis.exceptions.RedisError as error:
            log.warning("registry_unavailable", error=str(error))
            return []

    async def _refuse_when_full(self) -> None:
        queued = await self._db.repositories().subtasks.count_queued()
        if queued >= self._settings.max_queue_depth:
            # Roughly how long the fleet needs to drain a full queue; at least a second.
            retry_after = max(1, math.ceil(queued / 100))
            raise TooManyRequestsError(
                f"the queue is full ({queued} subtasks waiting, limit {self._settings.max_queue_depth}); "
                f"retry in {retry_after} s",
                retry_after_seconds=retry_after,
                detail={"queued_subtasks": queued, "max_queue_depth": self._settings.max_queue_depth},
            )

    async def _publish(self, subtasks: list[SubTask]) -> None:
        items = [QueuedSubtask.for_subtask(subtask) for subtask in subtasks]
        try:
            await self._redis.enqueue_tasks(items)
        except redis.exceptions.RedisError as error:
            # PostgreSQL already says these are queued; the recovery loop puts them on the queue later.
            log.warning("enqueue_deferred_to_recovery", count=len(items), error=str(error))

    async def get_task_json(self, task_id: str) -> bytes:
        """The task's detail as the API serves it; kept once the task has ended."""
        body = self._details.get(task_id)
        if body is None:
            detail = await self._db.repositories().tasks.get_task_detail(task_id)
            if detail is None:
                raise NotFoundError(f"no task with id {task_id!r}")
            task, results = detail
            body = TaskDetailResponse(task=task, subtask_results=results).model_dump_json().encode()
            if task.status.is_terminal:
                self._details.put(task_id, body)
        return body

    async def list_tasks(
        self, status: TaskStatus | None, user_id: str | None, limit: int, offset: int
    ) -> tuple[list[TaskSummary], int]:
        repos = self._db.repositories()
        tasks = await repos.tasks.list_tasks(status=status, user_id=user_id, limit=limit, offset=offset)
        return tasks, await repos.tasks.count_tasks(status=status, user_id=user_id)

    async def cancel_task(self, task_id: str) -> Task:
        """Cancel what has not finished; results that arrive later are recorded but change nothing."""
        async with self._db.transaction() as tx:
            status = await tx.tasks.lock_task(task_id)
            if status is None:
                raise NotFoundError(f"no task with id {task_id!r}")
            if status.is_terminal:
                raise ConflictError(f"task {task_id} has already ended ({status.value}); nothing to cancel")
            cancelled = await tx.subtasks.cancel_unfinished(task_id)
            await tx.tasks.update_task_status(task_id, TaskStatus.CANCELLED, error="cancelled by request")
            task = await tx.tasks.get_task(task_id)
        assert task is not None
        log.info("task_cancelled", task_id=task_id, subtasks_cancelled=len(cancelled))
        return task
