"""The one owner of the task lifecycle: every transition of a task or its subtasks, and what follows once committed.

Each transition is a conditional statement of the repositories (shared/database/), run here inside the transaction
it needs: it names the state it moves from, so a duplicate, late or racing caller changes nothing. What follows a
commit happens here too, in one place: the attempts made ready go on the task queue and the transition's lifecycle
events (orchestrator/task_events.py) on the event streams, in one Redis round trip; cached details of the touched
tasks are forgotten, and the scheduler learns which agents' slots are free and how they did.

One outage policy for those effects: PostgreSQL is the truth and Redis is transport, so an enqueue that Redis cannot
take is logged once and left to `requeue_missing` (the recovery loop runs it), and events it cannot take are logged
once per batch and dropped; neither is retried inline or raised.

The loops are transport around this: the dispatcher claims and releases offers, the result processor applies what
agents report, the recovery loop fails stranded attempts and requeues what Redis lost.

An attempt's files are part of its result: the lifecycle promotes them into the task's output in the transaction
that applies the result (`shared.attempt_output`), so it needs the agents' workspaces folder (SHARED_FILES_DIR).
In that transaction it also records each promoted file as an artifact, its content kept in ARTIFACTS_DIR
(`shared.artifact_store`), so only applied attempts have artifacts.

Every model call goes into the cost ledger (shared/ledger.py) in the transaction that stores what it belongs to: a
decomposition's calls with the task, an attempt's turns with its result, whether the result applies or comes late
(a forged or rejected one is not recorded). A result's stored cost is the sum of its rows.
"""

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import structlog

from orchestrator import provider_waits, task_endings, task_events
from orchestrator.agent_client import AgentClient
from orchestrator.attempt_stopper import AttemptStopper
from orchestrator.backpressure import DrainMeter, QueueAdmission
from orchestrator.budgets import TENANT_DAILY_BUDGET, BudgetRules, DailySpend
from orchestrator.cost_ledger import CostLedger
from orchestrator.detail_cache import TaskDetailCache
from orchestrator.fleet_view import FleetView
from orchestrator.follow_up import follow_up_problems, limit_problem
from orchestrator.metrics import OPERATOR_RETRY, OrchestratorMetrics
from orchestrator.result_rules import bound_to_result, split_fast_path, stranded_failure, task_ending
from orchestrator.waiting_reasons import WaitingReasons
from shared import attempt_output
from shared.artifact_store import ArtifactStore
from shared.artifacts import Artifact, ArtifactRef
from shared.attempt_output import SettledAttempt
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.database.subtask_repository import AttemptTimes, ClaimedAttempt
from shared.errors import ConflictError, InvalidInputError, NotFoundError, TooManyRequestsError
from shared.fleet_trust import FleetTrust
from shared.follow_up import AttemptCredential, FollowUpSubtask
from shared.models import (
    LogLevel,
    ModelCallUsage,
    ProviderWait,
    QueuedSubtask,
    ResultStatus,
    StatusReason,
    SubTask,
    SubTaskResult,
    SubTaskStatus,
    Task,
    TaskStatus,
)
from shared.outages import STORE_OUTAGES
from shared.redis import TaskEvent
from shared.redis_manager import RedisManager, Undelivered

log = structlog.get_logger(__name__)

LIVE_STATUSES = (SubTaskStatus.PENDING, SubTaskStatus.QUEUED, SubTaskStatus.RUNNING)
# What PostgreSQL answers a result it can never store (a constraint, a NUL in text): not an outage, and no retry
# will change it.
POISON_ERRORS = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError)


@dataclass
class ResultOutcome:
    """What applying one result changed; `applied` is False for a late or duplicate result."""

    applied: bool = False
    subtask: SubTask | None = None
    queued: list[SubTask] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    times: AttemptTimes | None = None  # when the attempt the result ended was queued and assigned, if it applied

    @classmethod
    def finished(
        cls, subtask: SubTask | None, queued: list[SubTask] | None = None, blocked: list[str] | None = None
    ) -> "ResultOutcome":
        """The outcome of a transition that ended the subtask's current attempt (None: the result changed nothing);
        the subtask still holds that attempt's times."""
        if subtask is None:
            return cls()
        return cls(
            applied=True, subtask=subtask, queued=queued or [], blocked=blocked or [], times=AttemptTimes.of(subtask)
        )


@dataclass
class BatchOutcome:
    """What applying a batch of results changed, and which results can never apply (by position, with why)."""

    applied: list[SubTaskResult] = field(default_factory=list)
    queued: list[SubTask] = field(default_factory=list)  # attempts put on the task queue once committed
    finished: dict[str, TaskStatus] = field(default_factory=dict)  # tasks that ended, by id
    rejected: dict[int, str] = field(default_factory=dict)
    # What each applied completion produced, by (subtask id, attempt): recorded with it, for its events.
    artifacts: dict[tuple[str, int], list[ArtifactRef]] = field(default_factory=dict)
    events: list[TaskEvent] = field(default_factory=list)  # what the applied results did (task_events), in order
    paused: list[Task] = field(default_factory=list)  # tasks the spend of these results paused

    def add(self, part: "BatchOutcome") -> None:
        self.applied += part.applied
        self.queued += part.queued
        self.finished |= part.finished
        self.paused += part.paused
        self.rejected |= part.rejected
        self.artifacts |= part.artifacts
        self.events += part.events


@dataclass
class RetryOutcome:
    """What an operator's retry (or resume) did: the task as it is now, and the attempts it queued."""

    task: Task
    requeued: list[SubTask]


class TaskLifecycle:
    def __init__(
        self,
        settings: Settings,
        db: DatabaseManager,
        redis: RedisManager,
        fleet: FleetView,
        metrics: OrchestratorMetrics | None = None,
        agents: AgentClient | None = None,
    ) -> None:
        self.settings = settings
        self.fleet = fleet
        self.metrics = metrics or OrchestratorMetrics()  # what the transitions count, for GET /metrics
        self.trust = FleetTrust.from_settings(settings)  # signs the offers, checks the results
        self.stopper = AttemptStopper(self.trust, redis, agents)  # tells agents to stop attempts of ended tasks
        self.details = TaskDetailCache()  # ended tasks' serialized detail; this class says when one changes
        self.drain = DrainMeter()  # attempts handed to agents lately: how fast the queue empties
        self._admission = QueueAdmission(settings.max_queue_depth, self._count_queued, self.drain)
        self._db = db
        self._redis = redis
        self._waiting = WaitingReasons(db)
        self.budgets = BudgetRules(settings)  # when a task, or the tenant's work, must pause
        self.artifact_store = ArtifactStore(settings.artifacts_dir)
        self.ledger = CostLedger(settings, db, self.metrics)

    # --- submit, cancel, retry ------------------------------------------------------------------------------------

    async def refuse_when_full(self, arriving: int = 1) -> None:
        """TooManyRequestsError when `arriving` more queued subtasks would not fit (an empty queue takes any task)."""
        await self._admission.check(arriving)

    async def refuse_when_over_budget(self) -> None:
        """TooManyRequestsError, with Retry-After until the next UTC midnight, once the tenant's daily budget is
        spent (TENANT_DAILY_BUDGET_USD)."""
        await self.budgets.refuse_when_spent(self._db.repositories())

    async def submit(self, task: Task, calls: Sequence[ModelCallUsage] = ()) -> list[SubTask]:
        """Store a decomposed task, with its planning `calls` in the cost ledger (its decomposition's cost is
        theirs), and queue the subtasks that are ready (returned), if they fit beside those queued; submits arriving
        together cannot overshoot MAX_QUEUE_DEPTH between them. A task refused for room still spent its calls: they
        are recorded without a task. A task whose decomposition alone passed its max_cost_usd is stored paused, and
        nothing of it is offered.

        What is ready is decided by the same statement that decides it after each completion (`queue_ready`); the
        room held for the task is what a plan can have ready before anything ran: its subtasks without dependencies.
        """
        entries = await self.ledger.task_planning(task, calls)
        roots = sum(1 for subtask in task.subtasks if not subtask.dependencies)
        try:
            async with self._admission.admitted(roots), self._db.transaction() as tx:
                await tx.tasks.create_task(task)
                await tx.ledger.record(entries)
                queued = await tx.subtasks.queue_ready(task.id)
                paused = await self.budgets.pause_over_budget(tx, [task.id]) if task.max_cost_usd is not None else []
        except TooManyRequestsError:
            await self.record_model_calls(None, calls)
            raise
        self.ledger.counted(entries)
        if paused:
            queued = []  # they go on the queue when it resumes
        await self._publish(queued, task_events.submitted(task) + self._paused(paused))
        return queued

    async def record_model_calls(self, task_id: str | None, calls: Sequence[ModelCallUsage]) -> float:
        """Record planning calls made outside a submit (a dry run's, without a task) in the cost ledger; their cost
        in US dollars."""
        return await self.ledger.record_planning(task_id, calls)

    async def submit_unplanned(self, task: Task, wait: ProviderWait, calls: Sequence[ModelCallUsage] = ()) -> None:
        """Store a task whose planning the provider could not serve (with the planning calls it answered before, in
        the cost ledger): no subtasks, pending, waiting on the provider (its status reason says until when); the
        planning loop plans it then (`store_plan`)."""
        entries = await self.ledger.task_planning(task, calls)
        async with self._db.transaction() as tx:
            await tx.tasks.create_task(task)
            await provider_waits.defer_plan(tx, task.id, wait, self.settings)
            await tx.ledger.record(entries)
        self.ledger.counted(entries)
        await self._publish([], task_events.received(task))

    async def defer_plan(
        self, task_id: str, wait: ProviderWait, calls: Sequence[ModelCallUsage] = ()
    ) -> datetime | None:
        """The planning of a task that still has no plan waits on the provider again (the calls it answered before
        go into the cost ledger); until when (None: it no longer waits for one)."""
        entries = (await self.ledger.price_book()).planning_entries(task_id, calls)
        async with self._db.transaction() as tx:
            until = await provider_waits.defer_plan(tx, task_id, wait, self.settings)
            await tx.ledger.record(entries)
        self.ledger.counted(entries)
        return until

    async def store_plan(self, task: Task, calls: Sequence[ModelCallUsage] = ()) -> list[SubTask] | None:
        """Store the plan of a task whose planning waited, with its planning calls, and queue what is ready, in one
        transaction, only while it is still pending without a plan (None when it is not: cancelled, failed by its
        deadline, or planned; its calls are recorded all the same)."""
        entries = await self.ledger.task_planning(task, calls)
        async with self._db.transaction() as tx:
            stored = await provider_waits.store_plan(tx, task)
            queued = await tx.subtasks.queue_ready(task.id) if stored else []
            await tx.ledger.record(entries)
        self.ledger.counted(entries)
        if not stored:
            return None
        self.details.forget(task.id)
        await self._publish(queued, task_events.planned(task))
        return queued

    async def resume(self, task_id: str, max_cost_usd: float | None = None, *, by: str = "operator") -> RetryOutcome:
        """paused → in progress (pending when nothing of it ran yet), with `max_cost_usd` as its new budget when
        given, and its queued subtasks go on the queue again. ConflictError when the task is not paused, or would
        pause again at once (its budget or the tenant's daily budget still spent); NotFoundError when it is not
        this tenant's."""
        async with self._db.transaction() as tx:
            status = await tx.tasks.lock_task(task_id)
            if status is None:
                raise NotFoundError(f"no task with id {task_id!r}")
            if status is not TaskStatus.PAUSED:
                raise ConflictError(f"task {task_id} is {status.value}: only a paused task can be resumed")
            await self.budgets.refuse_resume(tx, task_id, max_cost_usd)
            task = await tx.budgets.resume(task_id, max_cost_usd)
            subtasks = await tx.subtasks.list_for_task(task_id)
        assert task is not None
        self.details.forget(task_id)
        queued = [subtask for subtask in subtasks if subtask.status is SubTaskStatus.QUEUED]
        await self._publish(queued, task_events.resumed(task, by))
        log.info("task_resumed", task_id=task_id, status=task.status, by=by, requeued=len(queued))
        return RetryOutcome(task, queued)

    async def resume_within_daily_budget(self) -> int:
        """Resume the tasks paused on the tenant's daily budget once it allows again (a new UTC day, or a raised
        TENANT_DAILY_BUDGET_USD); one whose own max_cost_usd is spent stays paused, for that reason. Returns how many
        resumed."""
        repos = self._db.repositories()
        waiting = await repos.budgets.paused_for(TENANT_DAILY_BUDGET)
        daily = await self.budgets.daily_spend(repos) if waiting else None
        if not waiting or (daily is not None and daily.exhausted):
            return 0
        resumed = 0
        for task_id in waiting:
            try:
                await self.resume(task_id, by="daily_budget")
                resumed += 1
            except ConflictError:  # its own budget is spent (or the day's was spent again meanwhile)
                async with self._db.transaction() as tx:
                    await tx.budgets.pause(
                        list((await self.budgets.over_budget(tx, [task_id], paused_too=True)).items())
                    )
            except NotFoundError:
                continue  # removed meanwhile
        return resumed

    async def _count_queued(self) -> int:
        return await self._db.repositories().subtasks.count_queued()

    async def cancel(self, task_id: str) -> Task:
        """Cancel what has not finished, and tell the agents running its attempts to stop them; what they report
        later is recorded but changes nothing."""
        async with self._db.transaction() as tx:
            ended = await task_endings.cancel(tx, task_id)
        await self._ended_early(ended)
        log.info("task_cancelled", task_id=task_id, subtasks_cancelled=len(ended.cancelled))
        return ended.tasks[0]

    async def fail_past_deadline(self, limit: int) -> list[Task]:
        """Up to `limit` tasks past their deadline fail in one transaction (`deadline_exceeded`), whatever they
        wait on; their unfinished subtasks are cancelled and the agents running their attempts told to stop."""
        async with self._db.transaction() as tx:
            ended = await task_endings.fail_past_deadline(tx, limit)
        if ended.tasks:
            await self._ended_early(ended)
            log.warning("tasks_past_deadline_failed", task_ids=[task.id for task in ended.tasks])
        return ended.tasks

    async def _ended_early(self, ended: task_endings.EndedEarly) -> None:
        """After the commit of a cancel or a deadline: staged files go, events out, running attempts stopped."""
        await self._discard_staged_output([task.id for task in ended.tasks])
        await self._publish([], ended.events())
        await self.stopper.stop(ended.running(), ended.reasons())

    async def retry(self, task_id: str, subtask_id: str | None = None) -> RetryOutcome:
        """An operator's retry: every failed subtask of a failed task (or the one `subtask_id` names, failed, of a
        task that failed or still runs) gets a fresh attempt with MAX_RETRIES counted afresh, the subtasks only
        those failures blocked wait for their dependencies again, and a failed task is in progress again with its
        result and error cleared. Under the task's row lock: of two racing retries, or a retry and a cancel, one
        goes first and the other sees its effect."""
        async with self._db.transaction() as tx:
            status = await tx.tasks.lock_task(task_id)
            if status is None:
                raise NotFoundError(f"no task with id {task_id!r}")
            if subtask_id is None and status is not TaskStatus.FAILED:
                raise ConflictError(f"task {task_id} is {status.value}: only a failed task can be retried")
            only = None if subtask_id is None else [await self._retryable_subtask(tx, task_id, status, subtask_id)]
            retried = await tx.subtasks.reopen_failed(task_id, only)
            if not retried:  # reopened with nothing to run, the task would never end: leave it as it is
                raise ConflictError(f"task {task_id} has no failed subtask to retry")
            unblocked = await tx.subtasks.unblock(task_id)
            reopened = await tx.tasks.reopen_task(task_id)
            queued = await tx.subtasks.queue_ready(task_id)
            # A paused task stays paused (for its own reason); a reopened one may not run past a spent budget.
            paused = await self.budgets.pause_reopened(tx, task_id) if status is not TaskStatus.PAUSED else []
            task = await tx.tasks.get_task(task_id)
        assert task is not None
        self.details.forget(task_id)
        self.metrics.retries.labels(OPERATOR_RETRY).inc(len(retried))
        retried_ids = [subtask.id for subtask in retried]
        queued_retries = [subtask for subtask in queued if subtask.id in retried_ids]
        events = task_events.retried(task, queued_retries, unblocked, reopened=reopened) + self._paused(paused)
        if paused:
            queued = queued_retries = []  # they go on the queue when it resumes
        await self._publish(queued, events)
        log.info("task_retried", task_id=task_id, subtasks_retried=len(retried), unblocked=len(unblocked))
        return RetryOutcome(task, queued_retries)

    @staticmethod
    async def _retryable_subtask(tx: Repositories, task_id: str, status: TaskStatus, subtask_id: str) -> str:
        """The id of the failed subtask of the task an operator retries; NotFoundError or ConflictError otherwise."""
        subtask = await tx.subtasks.get_subtask(subtask_id)
        if subtask is None or subtask.task_id != task_id:
            raise NotFoundError(f"task {task_id} has no subtask with id {subtask_id!r}")
        if status in (TaskStatus.COMPLETED, TaskStatus.CANCELLED):
            raise ConflictError(f"task {task_id} is {status.value}: its subtasks can no longer be retried")
        if subtask.status is not SubTaskStatus.FAILED:
            raise ConflictError(f"subtask {subtask_id} is {subtask.status.value}: only a failed subtask can be retried")
        return subtask_id

    async def add_follow_up(self, attempt: AttemptCredential, follow_up: FollowUpSubtask) -> tuple[SubTask, int]:
        """Add a subtask to the plan of the task whose current attempt asks (ConflictError when it is not current),
        queued at once when its dependencies are done (the same ready rule as submit's); the subtask as stored and
        how many the task has now. A request repeated with the same subtask id adds nothing."""
        task_id = attempt.task_id
        # Room for one more queued subtask, whatever its dependencies: one that is done already queues it at once,
        # and a model would otherwise pass MAX_QUEUE_DEPTH by naming a completed sibling.
        async with self._admission.admitted(1), self._db.transaction() as tx:
            status = await tx.tasks.lock_task(task_id)
            current = await tx.follow_ups.is_current_attempt(
                task_id, attempt.subtask_id, attempt.attempt, attempt.delivery_token, attempt.agent_id
            )
            if status is None or status.is_terminal or not current:
                raise ConflictError(
                    f"attempt {attempt.attempt} of subtask {attempt.subtask_id} is not the current attempt of task "
                    f"{task_id}: only a running attempt adds follow-up subtasks to its own task"
                )
            existing = await tx.follow_ups.subtask_ids(task_id)
            added = follow_up.id not in existing
            if added:
                await self._store_follow_up(tx, follow_up, task_id, existing)
            queued = await tx.subtasks.queue_ready(task_id)
            stored = await tx.subtasks.get_subtask(follow_up.id)
        assert stored is not None
        self.details.forget(task_id)
        added_events = task_events.follow_up_added(stored, attempt.subtask_id, attempt.attempt) if added else []
        await self._publish(queued, added_events)
        log.info("follow_up_subtask_added", task_id=task_id, subtask_id=stored.id, by_subtask=attempt.subtask_id)
        return stored, len(existing) + added

    async def _store_follow_up(
        self, tx: Repositories, follow_up: FollowUpSubtask, task_id: str, existing: list[str]
    ) -> None:
        problems = follow_up_problems(follow_up, task_id, existing)
        if problems:
            raise InvalidInputError("the follow-up subtask is invalid: " + "; ".join(problems))
        limit = limit_problem(len(existing), self.settings.max_subtasks_per_task)
        if limit:
            raise ConflictError(limit)
        if (
            await tx.follow_ups.add_subtask(follow_up.to_subtask(task_id), own_type=follow_up.task_type is not None)
            is None
        ):
            raise ConflictError(f"subtask id {follow_up.id!r} is taken by another task; draw a new one")

    # --- offers to agents -----------------------------------------------------------------------------------------

    async def claim(self, claims: Sequence[tuple[str, int, str]]) -> list[ClaimedAttempt]:
        """queued → running for each (subtask id, attempt, agent id) whose attempt is still queued."""
        claimed = await self._db.repositories().subtasks.claim_for_delivery(claims)
        self.drain.record(len(claimed))
        return claimed

    async def release_unaccepted(self, subtask: SubTask) -> bool:
        """running → queued, same attempt, when the agent never accepted the offer (it refused, could not be reached,
        or did not answer in time); False when it did accept it meanwhile: the offer stands, and is its own."""
        if subtask.delivery_token is None:
            return False
        return await self._db.repositories().subtasks.unclaim(subtask.id, subtask.delivery_token) is not None

    # --- waiting: queued attempts no live agent can take ---------------------------------------------------------

    def note_waiting(self, backlog: Sequence[tuple[QueuedSubtask, StatusReason | None]]) -> None:
        """The matcher's view of the queued attempts it holds: why each waits (None: it can run once an agent is
        free). Only what changed since the last note is logged and written to PostgreSQL (in the background), so a
        matching round that finds what the last one found costs nothing; a claim clears the reason in its own
        statement."""
        self._waiting.note(backlog)

    async def reasons_written(self) -> None:
        """Returns once the reasons noted so far are written, or deferred by an outage."""
        await self._waiting.written()

    # --- results --------------------------------------------------------------------------------------------------

    async def apply_results(self, results: Sequence[SubTaskResult]) -> BatchOutcome:
        """Apply results (a result for an attempt no longer running changes nothing), then put the attempts they
        made ready on the task queue.

        A result that can never apply (poison: not this tenant's subtask, or one PostgreSQL refuses) is left out
        with its reason in `rejected`, and never holds back the others: what the checks find is left out of the
        batch's one transaction; should PostgreSQL still refuse the batch, each result is applied alone."""
        outcome = BatchOutcome()
        for result in results:  # whatever becomes of it, the agent no longer runs this attempt
            self.fleet.load.released(result.agent_id, result.subtask_id)
        batch = list(enumerate(results))
        try:
            outcome.add(await self._apply(batch))
        except POISON_ERRORS as error:
            log.warning("result_batch_refused", results=len(batch), error=str(error))
            for position, result in batch:
                try:
                    outcome.add(await self._apply([(position, result)]))
                except POISON_ERRORS as single_error:
                    outcome.rejected[position] = f"PostgreSQL refused it: {single_error}"
        if outcome.rejected:
            self.metrics.results_rejected.inc(len(outcome.rejected))
        for position, reason in outcome.rejected.items():
            result = results[position]
            with bound_to_result(result):
                log.error("result_rejected", task_id=result.task_id, subtask_id=result.subtask_id, reason=reason)
        await self._publish(outcome.queued, outcome.events)
        return outcome

    async def _apply(self, batch: Sequence[tuple[int, SubTaskResult]]) -> BatchOutcome:
        """Apply (position, result) pairs in one transaction, under the row locks of their tasks; a result naming no
        subtask of this tenant's, or the wrong task, is rejected by its position."""
        outcome = BatchOutcome()
        prices = await self.ledger.price_book()
        async with self._db.transaction() as tx:
            locked = await tx.subtasks.lock_tasks_of({result.subtask_id for _, result in batch})
            owners = locked.owners
            for position, result in batch:
                reason = self._foreign(result, owners) or self._never_assigned(result)
                if reason:
                    outcome.rejected[position] = reason
            # Priced once their signatures are checked: each result's cost becomes the sum of its ledger rows, which
            # are recorded once per result id (under the tasks' locks, so no other batch records the same meanwhile).
            checked = [result for position, result in batch if position not in outcome.rejected]
            # Only results with rows need the look-up (one without any, a stub's or a lost attempt's, records none).
            billed = {result.result_id for result in checked if prices.has_calls(result)}
            recorded = await tx.results.recorded(billed) if billed else set()
            results, entries = prices.priced_results(checked, recorded)
            outcomes = await self._transitions(tx, results, outcome)
            await tx.results.save_subtask_results(
                [(result, item.applied, item.times) for result, item in zip(results, outcomes, strict=True)]
            )
            await tx.ledger.record(entries)
            outcome.applied = [result for result, item in zip(results, outcomes, strict=True) if item.applied]
            ended = await self._finish_tasks_if_done(tx, {result.task_id for result in outcome.applied})
            outcome.finished = {task.id: task.status for task in ended}
            # Every saved result spent money, applied or not: the tasks left running may have to pause (only a task
            # with a budget can; the lock said which have one).
            spent = {result.task_id for result in results} & locked.budgeted
            outcome.paused = await self.budgets.pause_over_budget(tx, spent)
            daily = await self.budgets.daily_spend(tx)
            # Last: whatever PostgreSQL refuses, it refused before (artifact rows are valid by construction).
            outcome.artifacts = await self._settle_output(tx, results, outcomes)
        for task_id in set(owners.values()):  # each got a result on record: a cached detail would miss it
            self.details.forget(task_id)
        await self._discard_staged_output(outcome.finished)
        self.ledger.counted(entries)
        self._account(results, outcomes, outcome)
        outcome.events = [
            event
            for result, item in zip(results, outcomes, strict=True)
            if item.applied and item.subtask is not None
            for event in task_events.result_applied(
                result, item.subtask, item.blocked, outcome.artifacts.get((result.subtask_id, result.attempt), [])
            )
        ] + task_events.ended(ended)
        if daily is not None and daily.exhausted:
            outcome.paused += await self._pause_tenant_work(daily)
        outcome.events += self._paused(outcome.paused)
        paused_ids = {task.id for task in outcome.paused}
        outcome.queued = [subtask for subtask in outcome.queued if subtask.task_id not in paused_ids]
        return outcome

    async def _pause_tenant_work(self, daily: DailySpend) -> list[Task]:
        """The tenant's daily budget is spent: every task of it that runs pauses. In a transaction of its own, after
        the results' commit: it locks tasks beyond those of the batch, which a batch may take only in one go."""
        async with self._db.transaction() as tx:
            paused = await self.budgets.pause_tenant_work(tx, daily)
        for task in paused:
            self.details.forget(task.id)
        return paused

    def _paused(self, tasks: Sequence[Task]) -> list[TaskEvent]:
        """Count the tasks just paused, log them, and tell it in their events."""
        for task in tasks:
            reason = task.status_reason.code if task.status_reason else "unknown"
            self.metrics.pauses.labels(reason).inc()
            log.info("task_paused", task_id=task.id, reason=reason)
        return task_events.paused(tasks)

    async def _settle_output(
        self, tx: Repositories, results: Sequence[SubTaskResult], outcomes: Sequence[ResultOutcome]
    ) -> dict[tuple[str, int], list[ArtifactRef]]:
        """Inside the transaction that applies them, before it commits: the files of each attempt whose completion
        applies become the task's output and its recorded artifacts, and those of an applied failure are removed.
        A late or superseded result's token is not the current offer's, so its files stay staged until the task
        ends, and are never artifacts."""
        shared_files_dir = self.settings.shared_files_dir
        settled = {
            result.delivery_token: result
            for result, outcome in zip(results, outcomes, strict=True)
            if outcome.applied
            and result.delivery_token is not None
            and attempt_output.may_hold_staged(shared_files_dir, result.task_id, result.delivery_token)
        }
        if not settled:
            return {}
        attempts = [
            SettledAttempt(result.task_id, token, completed=result.status is ResultStatus.COMPLETED)
            for token, result in settled.items()
        ]
        kept = await asyncio.to_thread(attempt_output.settle, shared_files_dir, attempts, self.artifact_store)
        now = datetime.now(UTC)  # one moment per batch: an attempt's artifacts list by name
        artifacts = {token: [Artifact.of(file, settled[token], now) for file in files] for token, files in kept.items()}
        await tx.artifacts.record([artifact for made in artifacts.values() for artifact in made])
        return {
            (settled[token].subtask_id, settled[token].attempt): [artifact.ref() for artifact in made]
            for token, made in artifacts.items()
        }

    async def _discard_staged_output(self, ended_task_ids: Collection[str]) -> None:
        shared_files_dir = self.settings.shared_files_dir
        ended = [task_id for task_id in ended_task_ids if attempt_output.may_hold_staged(shared_files_dir, task_id)]
        if ended:
            await asyncio.to_thread(attempt_output.discard_ended, shared_files_dir, ended)

    def _foreign(self, result: SubTaskResult, owners: dict[str, str]) -> str | None:
        """Why the result can never apply here, if it names no subtask of this tenant's or the wrong task."""
        task_id = owners.get(result.subtask_id)
        if task_id is None:
            return f"no subtask {result.subtask_id!r} of tenant {self.settings.tenant_id!r}"
        if task_id != result.task_id:
            return f"subtask {result.subtask_id!r} belongs to task {task_id!r}, not {result.task_id!r}"
        return None

    def _never_assigned(self, result: SubTaskResult) -> str | None:
        """Why the result is not the answer to an offer this fleet signed, if it is not (a forged or stray result)."""
        problem = self.trust.result_problem(result)
        return f"not an attempt the orchestrator assigned: {problem}" if problem else None

    async def running_attempts(self) -> list[SubTask]:
        """Every attempt PostgreSQL says an agent runs: what recovery checks against the agents' heartbeats."""
        return await self._db.repositories().subtasks.list_running()

    async def fail_stranded(self, stranded: Sequence[tuple[SubTask, str]]) -> BatchOutcome:
        """Running attempts no live agent runs any more fail retryably (with the reason), so they run elsewhere."""
        outcome = await self._fail_running(stranded)
        if stranded:
            log.warning("stranded_attempts_retried", count=len(stranded))
        return outcome

    async def hand_back(self, agent_id: str, reason: str) -> BatchOutcome:
        """Every attempt running on `agent_id` (an agent declared failed) fails retryably now, so it is queued again
        at once with the agent among its failed_agent_ids; `applied` are those handed back. Like any lost attempt,
        one that was its subtask's last try fails the subtask. What the agent reports of them later is a superseded
        offer's result: it changes nothing, and its staged files never reach the task's output."""
        return await self._fail_running([(subtask, reason) for subtask in await self.running_on(agent_id)])

    async def running_on(self, agent_id: str) -> list[SubTask]:
        """The attempts PostgreSQL says `agent_id` runs (offered to it, accepted or not)."""
        return await self._db.repositories().subtasks.list_running_on(agent_id)

    async def _fail_running(self, attempts: Sequence[tuple[SubTask, str]]) -> BatchOutcome:
        now = datetime.now(UTC)
        # Signed like an agent's result: every result that applies answers an assignment of this fleet's.
        failures = [
            self.trust.sign_result(stranded_failure(subtask, reason, now), subtask.trace_id)
            for subtask, reason in attempts
        ]
        return await self.apply_results(failures)

    async def _transitions(
        self, tx: Repositories, results: Sequence[SubTaskResult], batch: BatchOutcome
    ) -> list[ResultOutcome]:
        """Each result's transition, by position (a redelivered result may come twice): the lone completions in
        one statement, then the rest one by one in arrival order, each as if it had come alone."""
        outcomes = [ResultOutcome() for _ in results]
        fast, careful = split_fast_path(results)
        completed, queued = await tx.subtasks.complete_attempts_and_queue_ready(
            [(results[p].subtask_id, results[p].attempt, results[p].delivery_token) for p in fast]
        )
        for position in fast:
            outcomes[position] = ResultOutcome.finished(completed.get(results[position].subtask_id))
        batch.queued += queued
        for position in careful:
            result = results[position]
            outcomes[position] = single = await self._transition(tx, result)
            batch.queued += single.queued
            if single.applied and result.status is ResultStatus.FAILED:
                await self._log_failure(tx, result, single)
        return outcomes

    async def _transition(self, tx: Repositories, result: SubTaskResult) -> ResultOutcome:
        offer = (result.subtask_id, result.attempt, result.delivery_token)
        if result.provider_wait is not None:  # not the attempt's failure: the same attempt waits on the queue
            waiting = await provider_waits.requeue_attempt(tx, result, self.settings)
            if waiting is None:
                return ResultOutcome()
            return ResultOutcome(
                applied=True, subtask=waiting.subtask, queued=[waiting.subtask], times=waiting.failed_attempt
            )
        if result.status is ResultStatus.COMPLETED:
            subtask = await tx.subtasks.finish_attempt(*offer, SubTaskStatus.COMPLETED)
            queued = await tx.subtasks.queue_ready(result.task_id) if subtask else []
            return ResultOutcome.finished(subtask, queued=queued)
        if result.retryable:  # another attempt, unless the subtask has had MAX_RETRIES since its attempt base
            retried = await tx.subtasks.retry_attempt(
                *offer, result.agent_id, error=result.error, max_attempts=self.settings.max_retries
            )
            if retried is not None:
                subtask, times = retried.subtask, retried.failed_attempt
                return ResultOutcome(applied=True, subtask=subtask, queued=[subtask], times=times)
        subtask = await tx.subtasks.finish_attempt(*offer, SubTaskStatus.FAILED, result.error)
        blocked = await tx.subtasks.block_dependents(result.task_id, result.subtask_id) if subtask else []
        return ResultOutcome.finished(subtask, blocked=blocked)

    async def _finish_tasks_if_done(self, tx: Repositories, task_ids: Collection[str]) -> list[Task]:
        """Complete or fail each task once none of its subtasks can run any more (all of them in two statements);
        the tasks that ended."""
        counts = await tx.subtasks.count_by_status_in(task_ids)
        done = [task_id for task_id, count in counts.items() if not any(count.get(s) for s in LIVE_STATUSES)]
        if not done:
            return []
        details = await tx.tasks.get_task_details(done, applied_only=True)
        endings = [task_ending(task, results, counts[task_id]) for task_id, (task, results) in details.items()]
        return list((await tx.tasks.update_task_statuses(endings)).values())

    async def _log_failure(self, tx: Repositories, result: SubTaskResult, outcome: ResultOutcome) -> None:
        """What the orchestrator decided about a failed attempt (the agent logs its own start and finish)."""
        if result.provider_wait is not None:
            level, message = provider_waits.activity(result)
        elif outcome.queued:
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
            # A stranded attempt's failure is the orchestrator's, with no report: the subtask row has the trace.
            trace_id=outcome.subtask.trace_id if outcome.subtask else None,
        )

    def _account(self, results: Sequence[SubTaskResult], outcomes: list[ResultOutcome], batch: BatchOutcome) -> None:
        """After commit: learn from each applied result, count it, and log each result."""
        for result, outcome in zip(results, outcomes, strict=True):
            if outcome.applied and result.provider_wait is not None:  # the provider's doing, not the agent's
                self.metrics.provider_waits.labels(result.provider_wait.kind).inc()
            elif outcome.applied and outcome.subtask is not None:
                self.fleet.history.record(result.agent_id, outcome.subtask, result.status, result.execution_time)
                self.metrics.result_applied(result, outcome.subtask.status is SubTaskStatus.QUEUED)
            else:
                self.metrics.results_ignored.inc()
            with bound_to_result(result):
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

    # --- the queue as PostgreSQL says it should be ----------------------------------------------------------------

    async def requeue_missing(self) -> int:
        """Every subtask PostgreSQL calls queued must be on the queue (Redis may have lost it, or refused it)."""
        queued = await self._db.repositories().subtasks.list_queued()
        present = await self._redis.queued_task_items()
        missing = [item for item in queued if (item.subtask_id, item.attempt) not in present]
        if missing:
            await self._redis.enqueue_tasks(missing)
            log.warning("queue_items_restored", count=len(missing))
        return len(missing)

    async def _publish(self, subtasks: Sequence[SubTask], events: Sequence[TaskEvent] = ()) -> None:
        """After commit, in one round trip: the attempts made ready go on the task queue, and the transition's events
        with theirs on the streams. While Redis is away recovery queues the attempts later; the events are lost."""
        events = [*events, *task_events.queued(subtasks)]
        if not events:
            return
        items = [QueuedSubtask.for_subtask(subtask) for subtask in subtasks]
        try:
            undelivered = await self._redis.enqueue_and_publish(items, events)
        except STORE_OUTAGES as error:
            undelivered = Undelivered(enqueue=error if items else None, events=error)
        if undelivered.enqueue:
            log.warning("enqueue_deferred_to_recovery", count=len(items), error=repr(undelivered.enqueue))
        if undelivered.events:
            log.warning("events_dropped", count=len(events), error=repr(undelivered.events))
