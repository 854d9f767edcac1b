"""Applies agents' results to the task state: completion, retries, blocking, and the task's end.

Results are taken from the queue in batches and a batch is applied in one transaction under the row locks of
its tasks: completions of distinct subtasks in one statement, everything else (failures, retries, several
results for one subtask) one result at a time in arrival order, exactly as if each had come alone.
"""

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import structlog

from orchestrator.aggregation import aggregate_results, describe_failure
from orchestrator.detail_cache import TaskDetailCache
from orchestrator.scheduling import AgentLoadTracker, SuccessHistory
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.database.task_repository import StatusChange
from shared.loop_service import LoopService
from shared.models import (
    LogLevel,
    QueuedSubtask,
    ResultStatus,
    SubTask,
    SubTaskResult,
    SubTaskStatus,
    Task,
    TaskStatus,
)
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)

LIVE_STATUSES = (SubTaskStatus.PENDING, SubTaskStatus.QUEUED, SubTaskStatus.RUNNING)
# Results applied in one transaction at most; a larger backlog is worked off in several.
RESULT_BATCH_SIZE = 64


@dataclass
class ResultOutcome:
    """What applying one result changed; `applied` is False for a late or duplicate result."""

    applied: bool = False
    subtask: SubTask | None = None
    queued: list[SubTask] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


@dataclass
class BatchOutcome:
    """What applying a batch of results changed."""

    applied: list[SubTaskResult] = field(default_factory=list)
    queued: list[SubTask] = field(default_factory=list)  # attempts to put on the task queue once committed
    finished: dict[str, TaskStatus] = field(default_factory=dict)  # tasks that ended, by id


def split_fast_path(results: Sequence[SubTaskResult]) -> tuple[list[int], list[int]]:
    """Positions of the completions of subtasks that have no other result in the batch, and of the rest."""
    per_subtask = Counter(result.subtask_id for result in results)
    fast: list[int] = []
    careful: list[int] = []
    for position, result in enumerate(results):
        alone = per_subtask[result.subtask_id] == 1
        (fast if alone and result.status is ResultStatus.COMPLETED else careful).append(position)
    return fast, careful


def task_ending(task: Task, results: Sequence[SubTaskResult], counts: dict[SubTaskStatus, int]) -> StatusChange:
    """How a task none of whose subtasks can run any more ends: completed with their aggregated outputs when all
    of them completed, otherwise failed with what went wrong (`results`: those that counted)."""
    if counts.get(SubTaskStatus.COMPLETED, 0) == len(task.subtasks):
        completed = [result for result in results if result.status is ResultStatus.COMPLETED]
        return StatusChange(task.id, TaskStatus.COMPLETED, result=aggregate_results(task.subtasks, completed))
    failures = [result for result in results if result.status is ResultStatus.FAILED]
    error = describe_failure(task.subtasks, failures, counts.get(SubTaskStatus.BLOCKED, 0))
    return StatusChange(task.id, TaskStatus.FAILED, error=error)


class ResultProcessor(LoopService):
    def __init__(
        self,
        settings: Settings,
        db: DatabaseManager,
        redis: RedisManager,
        load: AgentLoadTracker,
        history: SuccessHistory,
        consumer_id: str,
        details: TaskDetailCache | None = None,
    ) -> None:
        super().__init__("result_processor")
        self._details = details or TaskDetailCache()
        self._settings = settings
        self._db = db
        self._redis = redis
        self._load = load
        self._history = history
        self.consumer_id = consumer_id
        self._holding = False  # whether this consumer's in-flight list may hold a batch an iteration gave up on

    async def run_once(self) -> None:
        if self._holding:
            # The last batch failed (PostgreSQL or Redis went away) before it was acknowledged: it goes back to
            # the head of the queue and is taken again now, instead of waiting in flight for a restart.
            await self._redis.result_queue.recover(self.consumer_id)
            self._holding = False
        taken = await self._redis.dequeue_results(self.consumer_id, timeout=1.0, limit=RESULT_BATCH_SIZE)
        if not taken:
            return
        self._holding = True
        await self.settle([result for _, result in taken])
        # Acknowledged only now: a crash before this line leaves the results in flight, to be recovered.
        await self._redis.result_queue.ack_many(self.consumer_id, [payload for payload, _ in taken])
        self._holding = False

    async def settle(self, results: Sequence[SubTaskResult]) -> BatchOutcome:
        """Apply the results, then put the attempts they made ready on the task queue."""
        outcome = await self.apply_results(results)
        if outcome.queued:
            await self._redis.enqueue_tasks([QueuedSubtask.for_subtask(subtask) for subtask in outcome.queued])
        return outcome

    async def apply_results(self, results: Sequence[SubTaskResult]) -> BatchOutcome:
        """Apply results in one transaction; a result for an attempt that is no longer running changes nothing."""
        outcome = BatchOutcome()
        for result in results:  # whatever becomes of it, the agent no longer runs this attempt
            self._load.released(result.agent_id, result.subtask_id)
        async with self._db.transaction() as tx:
            known_tasks = await tx.tasks.lock_tasks({result.task_id for result in results})
            for result in results:
                if result.task_id not in known_tasks:
                    log.warning("result_for_unknown_task", task_id=result.task_id, subtask_id=result.subtask_id)
            results = [result for result in results if result.task_id in known_tasks]
            outcomes = await self._transitions(tx, results, outcome)
            await tx.results.save_subtask_results(list(zip(results, (item.applied for item in outcomes), strict=True)))
            outcome.applied = [result for result, item in zip(results, outcomes, strict=True) if item.applied]
            outcome.finished = await self._finish_tasks_if_done(tx, {result.task_id for result in outcome.applied})
        for task_id in known_tasks:  # each got a result on record: a cached detail would miss it
            self._details.forget(task_id)
        self._account(results, outcomes, outcome)
        return outcome

    async def _transitions(
        self, tx: Repositories, results: Sequence[SubTaskResult], batch: BatchOutcome
    ) -> list[ResultOutcome]:
        """Each result's transition, by position (a redelivered result may come twice): the lone completions in
        one statement, then the rest one by one in arrival order, each as if it had come alone."""
        outcomes = [ResultOutcome() for _ in results]
        fast, careful = split_fast_path(results)
        completed = await tx.subtasks.complete_attempts(
            [(results[position].subtask_id, results[position].attempt) for position in fast]
        )
        for position in fast:
            subtask = completed.get(results[position].subtask_id)
            outcomes[position] = ResultOutcome(applied=subtask is not None, subtask=subtask)
        progressed = {subtask.task_id for subtask in completed.values()}
        batch.queued += await tx.subtasks.queue_ready_in(progressed)
        for position in careful:
            result = results[position]
            outcomes[position] = single = await self._transition(tx, result)
            batch.queued += single.queued
            if single.applied and result.status is ResultStatus.FAILED:
                await self._log_failure(tx, result, single)
        return outcomes

    def _account(self, results: Sequence[SubTaskResult], outcomes: list[ResultOutcome], batch: BatchOutcome) -> None:
        """After commit: learn from each applied result, and log each result."""
        for result, outcome in zip(results, outcomes, strict=True):
            if outcome.applied and outcome.subtask is not None:
                self._history.record(result.agent_id, outcome.subtask, result.status)
            log.info(
                "result_applied" if outcome.applied else "result_ignored",
                task_id=result.task_id,
                subtask_id=result.subtask_id,
                attempt=result.attempt,
                agent_id=result.agent_id,
                status=result.status,
                blocked=len(outcome.blocked),
                task_status=batch.finished.get(result.task_id),
            )

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

    async def _finish_tasks_if_done(self, tx: Repositories, task_ids: Collection[str]) -> dict[str, TaskStatus]:
        """Complete or fail each task once none of its subtasks can run any more (all of them in two statements)."""
        counts = await tx.subtasks.count_by_status_in(task_ids)
        done = [task_id for task_id, count in counts.items() if not any(count.get(s) for s in LIVE_STATUSES)]
        if not done:
            return {}
        details = await tx.tasks.get_task_details(done, applied_only=True)
        endings = [task_ending(task, results, counts[task_id]) for task_id, (task, results) in details.items()]
        return {task_id: task.status for task_id, task in (await tx.tasks.update_task_statuses(endings)).items()}

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
