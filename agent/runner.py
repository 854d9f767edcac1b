"""The agent's slots: accepted subtasks run as background tasks, and every one of them ends in exactly one result.

Each accepted attempt is two asyncio tasks: the *execution* (the executor under the wall-clock timeout), which is
what a shutdown, a drain or the orchestrator's order to stop it cancels, and the *run* around it, which turns
whatever the execution ended with (an outcome, a timeout, a crash, a cancellation) into the result it publishes.
Cancelling only the inner task means a result that is already being published is never cut off.
"""

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from agent.executors.base import ExecutionOutcome, SubtaskExecutor
from agent.metrics import AgentMetrics
from agent.reporting import ResultReporter
from shared import tracing
from shared.attempt_output import workspace_name_problem
from shared.config import Settings
from shared.errors import ConflictError, InvalidInputError, ServiceUnavailableError
from shared.models import AgentState, ResultStatus, TaskExecutionRequest
from shared.roles import LoadedRole, RoleBook

log = structlog.get_logger(__name__)

SHUTDOWN_ERROR = "agent shutting down: the attempt was cancelled before it finished"

SlotKey = tuple[str, int]  # (subtask id, attempt)


def bound_to_request(request: TaskExecutionRequest, agent_id: str) -> AbstractContextManager[None]:
    """The log lines of the block carry the offer's trace, the attempt's ids and the agent running it."""
    subtask = request.subtask
    return tracing.bound(
        subtask.trace_id,
        task_id=request.task_id,
        subtask_id=subtask.id,
        attempt=subtask.attempt_count,
        agent_id=agent_id,
    )


class AgentBusyError(ServiceUnavailableError):
    pass


class AgentDrainingError(ServiceUnavailableError):
    pass


class AgentDrainedError(ConflictError):
    """The orchestrator told this agent to drain (it was declared failed): no offer is its to run any more."""


@dataclass(frozen=True)
class Reservation:
    """A slot taken for an attempt that has not started yet (its offer is being accepted)."""

    key: SlotKey
    request: TaskExecutionRequest
    role: LoadedRole


@dataclass(frozen=True)
class RunningSubtask:
    request: TaskExecutionRequest
    execution: "asyncio.Task[ExecutionOutcome]"
    run: "asyncio.Task[None]"


class SubtaskRunner:
    def __init__(
        self,
        settings: Settings,
        roles: RoleBook,
        executor: SubtaskExecutor,
        reporter: ResultReporter,
        on_change: Callable[[], None] = lambda: None,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics or AgentMetrics(settings.tenant_id)
        self._roles = roles
        self._executor = executor
        self._reporter = reporter
        self._on_change = on_change
        self._running: dict[SlotKey, RunningSubtask] = {}  # attempts holding a slot
        self._reserved: dict[SlotKey, Reservation] = {}  # slots held for attempts about to start
        self._runs: set[asyncio.Task[None]] = set()  # attempts not yet reported (a freed slot may still report)
        self._accepting = True
        self._drained_because: str | None = None  # the orchestrator's reason, once it told the agent to drain
        self._stopped_because: dict[SlotKey, str] = {}  # attempts the orchestrator told to stop, with its reason
        self.started_at = datetime.now(UTC)  # names this process in the registry: a restart is a new agent
        self.tasks_completed = 0
        self.tasks_failed = 0

    @property
    def executor_name(self) -> str:
        return self._executor.name

    @property
    def current_tasks(self) -> list[str]:
        return [subtask_id for subtask_id, _ in self._running]

    @property
    def state(self) -> AgentState:
        return AgentState.ACTIVE if self._accepting else AgentState.DRAINING

    @property
    def slots_busy(self) -> int:
        """Slots running an attempt or held for one about to start."""
        return len(self._running) + len(self._reserved)

    @property
    def slots_free(self) -> int:
        """Slots an offer could take now: none while draining."""
        return max(0, self._settings.agent_concurrency - self.slots_busy) if self._accepting else 0

    @property
    def is_available(self) -> bool:
        return self._accepting and len(self._running) + len(self._reserved) < self._settings.agent_concurrency

    def reserve(self, request: TaskExecutionRequest) -> Reservation | None:
        """Hold a slot for the attempt while its offer is accepted; None when this very attempt is already here.

        Raises InvalidInputError (400) for a request this agent can never run, AgentDrainedError (409) once the
        orchestrator told it to drain, AgentDrainingError or AgentBusyError (503) when it cannot run it now.
        """
        role = self._role_for(request)
        key = (request.subtask.id, request.subtask.attempt_count)
        if key in self._running or key in self._reserved:
            return None
        if self._drained_because is not None:
            raise AgentDrainedError(
                f"{self._settings.agent_id} was told to drain ({self._drained_because}) and takes no more subtasks"
            )
        if not self._accepting:
            raise AgentDrainingError(f"{self._settings.agent_id} is shutting down and accepts no more subtasks")
        if not self.is_available:
            slots = self._settings.agent_concurrency
            raise AgentBusyError(f"{self._settings.agent_id} is busy: all {slots} slot(s) are taken")
        self._reserved[key] = reservation = Reservation(key, request, role)
        return reservation

    def release(self, reservation: Reservation) -> None:
        """Give back a slot whose attempt will not start (its offer was not this agent's)."""
        self._reserved.pop(reservation.key, None)
        self._stopped_because.pop(reservation.key, None)

    def start(self, reservation: Reservation) -> None:
        """Run the reserved attempt in the background."""
        key, request, role = reservation.key, reservation.request, reservation.role
        self._reserved.pop(key, None)
        # The attempt's tasks and the done callback copy the context as it is here: their lines carry the trace too.
        with bound_to_request(request, self._settings.agent_id):
            execution = asyncio.create_task(self._execute(request, role), name=f"execute:{key[0]}:{key[1]}")
            run = asyncio.create_task(
                self._run(request, role, execution, time.monotonic()), name=f"run:{key[0]}:{key[1]}"
            )
            run.add_done_callback(lambda task: self._forget(key, task))
            log.info(
                "subtask_accepted", task_id=request.task_id, subtask_id=key[0], attempt=key[1], role=role.role.name
            )
        self._running[key] = RunningSubtask(request, execution, run)
        self._runs.add(run)
        if self._drained_because is not None or key in self._stopped_because:
            # Its offer was accepted while the drain or the order to stop it came in: it ends at once as failed.
            execution.cancel()
        self._on_change()

    def stop(self, subtask_id: str, attempt: int, delivery_token: str, reason: str) -> bool:
        """The orchestrator's order to stop one attempt (its task was cancelled or ran out of time): it ends as a
        failure that is not retried, naming `reason`. False when this agent does not run that offer (any more)."""
        key = (subtask_id, attempt)
        item = self._running.get(key) or self._reserved.get(key)
        if item is None or item.request.subtask.delivery_token != delivery_token:
            return False
        if key not in self._stopped_because:
            self._stopped_because[key] = reason
            log.info("subtask_told_to_stop", subtask_id=subtask_id, attempt=attempt, reason=reason)
        if isinstance(item, RunningSubtask):
            item.execution.cancel()  # its run reports it failed, not retryable; a reserved one is cancelled on start
        return True

    def drain(self, reason: str) -> int:
        """The orchestrator's order (the agent was declared failed): refuse every offer from now on and stop the
        running attempts, whose results would come too late to count. Returns how many were stopped."""
        first = self._drained_because is None
        self._drained_because = self._drained_because or reason
        self._accepting = False
        running = [
            item for item in self._running.values() if not (item.execution.done() or item.execution.cancelling())
        ]
        for item in running:
            item.execution.cancel()  # its run reports it as failed and retryable
        if first:
            log.warning("agent_told_to_drain", reason=reason, attempts_stopped=len(running))
        self._on_change()
        return len(running)

    async def shutdown(self, grace_seconds: float) -> None:
        """Stop accepting, give running attempts `grace_seconds`, cancel the rest; returns when all are reported."""
        self._accepting = False
        self._on_change()
        running = list(self._running.values())
        if not running:
            await self.wait_until_idle()  # attempts whose slot is free may still be publishing their result
            return
        log.info("agent_draining", running=len(running), grace_seconds=grace_seconds)
        runs = {item.run for item in running}
        _, pending = await asyncio.wait(runs, timeout=grace_seconds) if grace_seconds > 0 else (set(), runs)
        for item in running:
            if item.run in pending:
                item.execution.cancel()  # its run reports it as failed and retryable
        await self.wait_until_idle()
        log.info("agent_drained", finished=len(running) - len(pending), cancelled=len(pending))

    async def wait_until_idle(self) -> None:
        """Return once every accepted attempt has been reported and its slot freed."""
        while self._runs:
            await asyncio.wait(set(self._runs))
            await asyncio.sleep(0)  # the runs' done callbacks run on the next loop iteration

    def _role_for(self, request: TaskExecutionRequest) -> LoadedRole:
        subtask, capabilities = request.subtask, self._settings.agent_capabilities
        missing = [capability.value for capability in subtask.required_capabilities if capability not in capabilities]
        if missing:
            raise InvalidInputError(f"{self._settings.agent_id} lacks required capabilities: {', '.join(missing)}")
        if subtask.attempt_count < 1:
            raise InvalidInputError("subtask.attempt_count must be at least 1 (attempts are numbered from 1)")
        problem = workspace_name_problem(request.task_id)
        if problem:
            raise InvalidInputError(problem)
        role = self._roles.role_for(subtask, capabilities)
        assert role is not None  # every required capability is one of the agent's
        return role

    async def _execute(self, request: TaskExecutionRequest, role: LoadedRole) -> ExecutionOutcome:
        self._reporter.started(request, role)
        timeout = self._settings.subtask_timeout_seconds
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                return await self._executor.execute(request, role)
        except TimeoutError as error:
            if not deadline.expired():  # a timeout inside the executor, not the attempt's wall-clock limit
                return _crashed(error)
            return ExecutionOutcome.failure(f"timed out after {timeout:g} s", retryable=True)
        except Exception as error:
            return _crashed(error)

    async def _run(
        self,
        request: TaskExecutionRequest,
        role: LoadedRole,
        execution: "asyncio.Task[ExecutionOutcome]",
        started: float,
    ) -> None:
        try:
            outcome = await execution
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this run itself is being cancelled (the event loop is closing), not only its execution
            outcome = self._cancelled_outcome((request.subtask.id, request.subtask.attempt_count))
        result = self._reporter.build_result(request, role, outcome, time.monotonic() - started)
        # The slot is free before the result is out: the orchestrator may hand this agent new work the
        # moment it reads the result, and must not be refused for a slot that is only busy reporting.
        if result.status is ResultStatus.COMPLETED:
            self.tasks_completed += 1
        else:
            self.tasks_failed += 1
        self._metrics.attempt_finished(result)
        self._free_slot((request.subtask.id, request.subtask.attempt_count))
        await self._reporter.finished(result, outcome.timings)

    def _cancelled_outcome(self, key: SlotKey) -> ExecutionOutcome:
        """What a cancelled execution reports: an order to stop it is final; a drain or a shutdown is retried."""
        stop_reason = self._stopped_because.get(key)
        if stop_reason is not None:
            return ExecutionOutcome.failure(f"stopped by the orchestrator: {stop_reason}", retryable=False)
        stopped = f"agent drained: {self._drained_because}" if self._drained_because else SHUTDOWN_ERROR
        return ExecutionOutcome.failure(stopped, retryable=True)

    def _free_slot(self, key: SlotKey) -> None:
        if self._running.pop(key, None) is not None:
            self._on_change()

    def _forget(self, key: SlotKey, run: "asyncio.Task[None]") -> None:
        self._runs.discard(run)
        self._stopped_because.pop(key, None)
        self._free_slot(key)  # when the run ended before its result was built (cancelled with the event loop)
        if not run.cancelled() and run.exception() is not None:
            log.error("subtask_run_failed", subtask_id=key[0], attempt=key[1], error=repr(run.exception()))


def _crashed(error: Exception) -> ExecutionOutcome:
    # A bug or an unexpected outage: another attempt, maybe on another agent, may pass.
    log.error("subtask_execution_crashed", error=repr(error), exc_info=error)
    return ExecutionOutcome.failure(f"the agent failed to run the subtask: {error!r}", retryable=True)
