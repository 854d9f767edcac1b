"""Applies agents' results to the task state: completion, retries, blocking, and the task's end."""

from dataclasses import dataclass, field

import structlog

from orchestrator.aggregation import aggregate_results, describe_failure
from orchestrator.scheduling import AgentLoadTracker, SuccessHistory
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.loop_service import LoopService
from shared.models import (
    LogLevel,
    QueuedSubtask,
    ResultStatus,
    SubTask,
    SubTaskResult,
    SubTaskStatus,
    TaskStatus,
)
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)

LIVE_STATUSES = (SubTaskStatus.PENDING, SubTaskStatus.QUEUED, SubTaskStatus.RUNNING)


@dataclass
class ResultOutcome:
    """What applying one result changed; `applied` is False for a late or duplicate result."""

    applied: bool = False
    subtask: SubTask | None = None
    queued: list[SubTask] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    task_status: TaskStatus | None = None


class ResultProcessor(LoopService):
    def __init__(
        self,
        settings: Settings,
        db: DatabaseManager,
        redis: RedisManager,
        load: AgentLoadTracker,
        history: SuccessHistory,
        consumer_id: str,
    ) -> None:
        super().__init__("result_processor")
        self._settings = settings
        self._db = db
        self._redis = redis
        self._load = load
        self._history = history
        self.consumer_id = consumer_id

    async def run_once(self) -> None:
        delivery = await self._redis.dequeue_result(self.consumer_id, timeout=1.0)
        if delivery is None:
            return
        payload, result = delivery
        outcome = await self.apply_result(result)
        await self.publish_queued(outcome.queued)
        # Acknowledged only now: a crash before this line leaves the result in flight, to be recovered.
        await self._redis.result_queue.ack(self.consumer_id, payload)

    async def publish_queued(self, subtasks: list[SubTask]) -> None:
        if subtasks:
            await self._redis.enqueue_tasks([QueuedSubtask.for_subtask(subtask) for subtask in subtasks])

    async def apply_result(self, result: SubTaskResult) -> ResultOutcome:
        """Apply one result in one transaction; a result for an attempt that is no longer running changes nothing."""
        async with self._db.transaction() as tx:
            task_status = await tx.tasks.lock_task(result.task_id)
            if task_status is None:
                log.warning("result_for_unknown_task", task_id=result.task_id, subtask_id=result.subtask_id)
                return ResultOutcome()
            outcome = await self._transition(tx, result)
            await tx.results.save_subtask_result(result, applied=outcome.applied)
            if outcome.applied:
                if result.status is ResultStatus.FAILED:
                    await self._log_failure(tx, result, outcome)
                outcome.task_status = await self._finish_task_if_done(tx, result.task_id)
        self._load.released(result.agent_id, result.subtask_id)
        if outcome.applied and outcome.subtask is not None:
            self._history.record(result.agent_id, outcome.subtask, result.status)
        log.info(
            "result_applied" if outcome.applied else "result_ignored",
            task_id=result.task_id,
            subtask_id=result.subtask_id,
            attempt=result.attempt,
            agent_id=result.agent_id,
            status=result.status,
            queued=len(outcome.queued),
            blocked=len(outcome.blocked),
            task_status=outcome.task_status,
        )
        return outcome

    async def _transition(self, tx: Repositories, result: SubTaskResult) -> ResultOutcome:
        if result.status is ResultStatus.COMPLETED:
            subtask = await tx.subtasks.finish_attempt(result.subtask_id, result.attempt, SubTaskStatus.COMPLETED)
            queued = await tx.subtasks.queue_ready(result.task_id) if subtask else []
            return ResultOutcome(applied=subtask is not None, subtask=subtask, queued=queued)
        if result.retryable and result.attempt < self._settings.max_retries:
            subtask = await tx.subtasks.retry_attempt(result.subtask_id, result.attempt, result.agent_id)
            return ResultOutcome(applied=subtask is not None, subtask=subtask, queued=[subtask] if subtask else [])
        subtask = await tx.subtasks.finish_attempt(result.subtask_id, result.attempt, SubTaskStatus.FAILED)
        blocked = await tx.subtasks.block_dependents(result.task_id, result.subtask_id) if subtask else []
        return ResultOutcome(applied=subtask is not None, subtask=subtask, blocked=blocked)

    async def _finish_task_if_done(self, tx: Repositories, task_id: str) -> TaskStatus | None:
        """Complete or fail the task once none of its subtasks can run any more."""
        counts = await tx.subtasks.count_by_status(task_id)
        if any(counts.get(status) for status in LIVE_STATUSES):
            return None
        subtasks = await tx.subtasks.list_for_task(task_id)
        results = await tx.results.get_subtask_results(task_id, applied_only=True)
        if counts.get(SubTaskStatus.COMPLETED, 0) == len(subtasks):
            completed = [result for result in results if result.status is ResultStatus.COMPLETED]
            task = await tx.tasks.update_task_status(
                task_id, TaskStatus.COMPLETED, result=aggregate_results(subtasks, completed)
            )
        else:
            failures = [result for result in results if result.status is ResultStatus.FAILED]
            error = describe_failure(subtasks, failures, counts.get(SubTaskStatus.BLOCKED, 0))
            task = await tx.tasks.update_task_status(task_id, TaskStatus.FAILED, error=error)
        return task.status if task else None

    async def _log_failure(self, tx: Repositories, result: SubTaskResult, outcome: ResultOutcome) -> None:
        """What the orchestrator decided about a failed attempt (the agent logs its own start and finish)."""
        if outcome.queued:
            level, message = LogLevel.WARNING, f"attempt {result.attempt} failed, retrying: {result.error}"
        else:
            level, message = LogLevel.ERROR, f"subtask failed: {result.error}"
        await tx.audit.log_agent_activity(
            result.agent_id,
            result.task_id,
            level,
            message,
            {"attempt": result.attempt, "retryable": result.retryable, "blocked": outcome.blocked},
            subtask_id=result.subtask_id,
        )
