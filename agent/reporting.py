"""How an attempt is reported: its result on the result queue (exactly once), agent_logs rows, lifecycle events.

The result is what the orchestrator acts on, so it is pushed at once, retried while Redis is unreachable and, if it
still cannot be delivered, logged whole (and written to agent_logs) instead of vanishing. The logs and events are
best effort, and written in batches a moment later: one round trip for all the records of a window. The agent's one
lifecycle event is AGENT_STARTED (only it knows when an attempt starts); what a result did is the orchestrator's to
tell (orchestrator/task_events.py), after it applies it.
"""

from typing import Any

import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_delay, wait_exponential

from agent.batching import BatchWriter
from agent.executors.base import ExecutionOutcome
from shared.config import Settings
from shared.database import DatabaseManager
from shared.fleet_trust import FleetTrust
from shared.loop_service import LoopService
from shared.models import AgentLog, LogLevel, ReportedResult, ResultStatus, SubTaskResult, TaskExecutionRequest
from shared.outages import REDIS_UNREACHABLE
from shared.redis import EventType, TaskEvent
from shared.redis.offers import OFFER_CONSUMER
from shared.redis_manager import RedisManager
from shared.roles import LoadedRole

log = structlog.get_logger(__name__)

PUBLISH_BACKOFF_MAX_SECONDS = 5.0
# execution_time must be positive; a stub without delay can finish within the clock's resolution.
MIN_EXECUTION_TIME = 1e-6
# How long an agent_logs row or an event may wait for others to share its write.
RECORD_BATCH_WINDOW_SECONDS = 0.1


class ResultReporter:
    """Publishes results at once; agent_logs rows and lifecycle events go through batch writers.

    The writers are loops (`background_loops`) the service runs; `flush()` writes what they still hold.
    """

    def __init__(
        self,
        settings: Settings,
        db: DatabaseManager,
        redis: RedisManager,
        executor_name: str,
        *,
        batch_window: float = RECORD_BATCH_WINDOW_SECONDS,
    ) -> None:
        self._settings = settings
        self._trust = FleetTrust.from_settings(settings)
        self._redis = redis
        self._executor_name = executor_name
        self._db = db
        self._audit_log = BatchWriter[AgentLog]("agent_logs", self._write_logs, batch_window)
        self._events = BatchWriter[TaskEvent]("lifecycle_events", self._publish_events, batch_window)
        self._held_offers: dict[tuple[str, int], str] = {}  # (subtask id, attempt) -> its offer as the queue had it

    @property
    def background_loops(self) -> tuple[LoopService, ...]:
        return (self._audit_log, self._events)

    async def flush(self) -> None:
        """Write the pending agent_logs rows and events now (on shutdown: before the clients close)."""
        await self._audit_log.flush()
        await self._events.flush()

    def build_result(
        self, request: TaskExecutionRequest, role: LoadedRole, outcome: ExecutionOutcome, execution_time: float
    ) -> ReportedResult:
        report = ReportedResult(
            subtask_id=request.subtask.id,
            task_id=request.task_id,
            agent_id=self._settings.agent_id,
            attempt=request.subtask.attempt_count,
            delivery_token=request.subtask.delivery_token,
            status=ResultStatus.COMPLETED if outcome.succeeded else ResultStatus.FAILED,
            output=outcome.output if outcome.succeeded else None,
            error=outcome.error,
            retryable=outcome.retryable and not outcome.succeeded,
            execution_time=max(execution_time, MIN_EXECUTION_TIME),
            token_usage=outcome.token_usage,
            cost_usd=outcome.cost_usd,
            num_turns=outcome.num_turns,
            role_config_hash=role.config_hash,
            claude_session_id=outcome.claude_session_id,
            claude_config_dir=outcome.claude_config_dir,
            allowed_tools=list(role.role.allowed_tools),
            simulated=self._settings.claude_simulated,
            provider_wait=None if outcome.succeeded else outcome.provider_wait,
            model=role.role.model or self._settings.claude_model,
            model_calls=outcome.model_calls,
            limit_reached=outcome.limit_reached,
            assignment=request.assignment,  # the orchestrator applies only results of offers it signed
            trace_id=request.subtask.trace_id,
        )
        return self._trust.seal(report)  # and only reports a member of the fleet made

    def started_record(self, request: TaskExecutionRequest, role: LoadedRole) -> AgentLog:
        """The attempt's "started" agent_logs row: the statement that accepts the offer writes it (agent/offers.py)."""
        details = {"attempt": request.subtask.attempt_count, "role": role.role.name, "executor": self._executor_name}
        return self._record(request, LogLevel.INFO, "subtask started", details)

    def hold_offer(self, request: TaskExecutionRequest, payload: str) -> None:
        """The attempt came from the agent's offer queue as `payload`: its in-flight copy goes with its result."""
        self._held_offers[(request.subtask.id, request.subtask.attempt_count)] = payload

    def started(self, request: TaskExecutionRequest, role: LoadedRole) -> None:
        """AGENT_STARTED, written with the next batch of events or, at the latest, with the attempt's result."""
        data = {
            "attempt": request.subtask.attempt_count,
            "role": role.role.name,
            "executor": self._executor_name,
            # Where the task's context pack is, relative to its workspace (the executor puts it there).
            "context_pack_path": request.context_pack.path if request.context_pack else None,
        }
        self._event(EventType.AGENT_STARTED, request, data)

    async def finished(self, result: SubTaskResult, timings: dict[str, float] | None = None) -> bool:
        """Publish the result, then log it (with the executor's `timings`); False when it could not be published.

        The events still waiting in the batch (this attempt's AGENT_STARTED among them) are written first: the
        orchestrator publishes what the result did once it applies it, and a task's stream must tell its story in
        order, its end last. They go in the result's round trip (`_push_once`)."""
        published = await self.publish(result)
        succeeded = result.status is ResultStatus.COMPLETED
        level = LogLevel.INFO if succeeded else LogLevel.WARNING if result.retryable else LogLevel.ERROR
        details: dict[str, Any] = {
            "attempt": result.attempt,
            "execution_time": result.execution_time,
            "num_turns": result.num_turns,
            "cost_usd": result.cost_usd,
            "total_tokens": result.token_usage.total_tokens,
            "published": published,
            **(timings or {}),
        }
        if not succeeded:
            details |= {"error": result.error, "retryable": result.retryable}
        if not published:
            details["result"] = result.model_dump(mode="json")  # what the queue never got, for an operator to replay
        message = "subtask completed" if succeeded else "subtask failed"
        self._log(result, level, message, details)
        return published

    async def publish(self, result: SubTaskResult) -> bool:
        try:
            await self._push_result(result)
        except REDIS_UNREACHABLE as error:
            log.error("result_publish_failed", result=result.model_dump_json(), error=repr(error))
            return False
        log.info(
            "result_published",
            task_id=result.task_id,
            subtask_id=result.subtask_id,
            attempt=result.attempt,
            status=result.status.value,
            retryable=result.retryable,
            execution_time=round(result.execution_time, 3),
        )
        return True

    async def _push_result(self, result: SubTaskResult) -> None:
        """Push the result, retrying with backoff while Redis is unreachable, up to the publish timeout.

        The first try goes without tenacity: it nearly always succeeds, and tenacity's bookkeeping costs more CPU
        than the push itself.
        """
        try:
            await self._push_once(result)
            return
        except REDIS_UNREACHABLE as error:
            log.warning("result_publish_retrying", attempt=1, error=repr(error))
        retrying = AsyncRetrying(
            stop=stop_after_delay(self._settings.agent_result_publish_timeout_seconds),
            wait=wait_exponential(multiplier=0.2, max=PUBLISH_BACKOFF_MAX_SECONDS),
            retry=retry_if_exception_type(REDIS_UNREACHABLE),
            before_sleep=_log_publish_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._push_once(result)

    async def _push_once(self, result: SubTaskResult) -> None:
        """One round trip: the events still waiting (this attempt's AGENT_STARTED among them), the result, and the
        removal of the attempt's offer from the agent's in-flight list (what a restart would otherwise look at)."""
        events = self._events.take_pending()
        held = self._held_offers.get((result.subtask_id, result.attempt))
        try:
            async with self._redis.client.pipeline(transaction=False) as pipe:
                event_replies = self._redis.events.add_unless_ended_to(pipe, events)
                pipe.rpush(self._redis.result_queue.key, result.model_dump_json())
                if held is not None:
                    self._redis.offers.of(self._settings.agent_id).ack_to(pipe, OFFER_CONSUMER, [held])
                replies = await pipe.execute(raise_on_error=False)
        except BaseException:
            self._events.put_back(events)
            raise
        if event_replies and isinstance(replies[0], Exception):
            self._events.put_back(events)  # Redis lost the script (a restart): the writer's next batch loads it
        if isinstance(replies[event_replies], Exception):
            raise replies[event_replies]
        self._held_offers.pop((result.subtask_id, result.attempt), None)

    def _log(
        self, attempt: TaskExecutionRequest | SubTaskResult, level: LogLevel, message: str, details: dict[str, Any]
    ) -> None:
        """An agent_logs row about the attempt of the offer or result `attempt`, under its trace, in the next batch."""
        self._audit_log.add(self._record(attempt, level, message, details))

    def _record(
        self, attempt: TaskExecutionRequest | SubTaskResult, level: LogLevel, message: str, details: dict[str, Any]
    ) -> AgentLog:
        if isinstance(attempt, TaskExecutionRequest):
            subtask_id, trace_id = attempt.subtask.id, attempt.subtask.trace_id
        else:
            subtask_id, trace_id = attempt.subtask_id, attempt.trace_id if isinstance(attempt, ReportedResult) else None
        return AgentLog(
            agent_id=self._settings.agent_id,
            task_id=attempt.task_id,
            subtask_id=subtask_id,
            trace_id=trace_id,
            level=level,
            message=message,
            metadata=details,
        )

    def _event(self, event_type: EventType, request: TaskExecutionRequest, data: dict[str, Any]) -> None:
        self._events.add(
            TaskEvent(
                event_type,
                request.task_id,
                {"agent_id": self._settings.agent_id, **data},
                subtask_id=request.subtask.id,
                trace_id=request.subtask.trace_id,
            )
        )

    async def _write_logs(self, entries: list[AgentLog]) -> None:
        await self._db.repositories().audit.log_agent_activities(entries)

    async def _publish_events(self, events: list[TaskEvent]) -> None:
        # Unless their task has ended: one cancelled while the event waited for its batch ends its stream.
        await self._redis.events.publish_unless_ended(events)


def _log_publish_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    # The first try, made before tenacity's, is attempt 1.
    log.warning("result_publish_retrying", attempt=state.attempt_number + 1, error=repr(error))
