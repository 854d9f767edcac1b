"""How an attempt is reported: its result on the result queue (exactly once), agent_logs rows, lifecycle events.

The result is what the orchestrator acts on, so it is retried while Redis is unreachable and, if it still cannot be
delivered, logged whole (and written to agent_logs) instead of vanishing. The logs and events are best effort.
"""

from typing import Any

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_delay, wait_exponential

from agent.executors.base import ExecutionOutcome
from agent.roles import LoadedRole
from shared.config import Settings
from shared.database import DatabaseManager
from shared.models import LogLevel, ResultStatus, SubTaskResult, TaskExecutionRequest
from shared.redis import LifecycleEventType
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)

REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)
PUBLISH_BACKOFF_MAX_SECONDS = 5.0
# execution_time must be positive; a stub without delay can finish within the clock's resolution.
MIN_EXECUTION_TIME = 1e-6


class ResultReporter:
    def __init__(self, settings: Settings, db: DatabaseManager, redis: RedisManager, executor_name: str) -> None:
        self._settings = settings
        self._db = db
        self._redis = redis
        self._executor_name = executor_name

    def build_result(
        self, request: TaskExecutionRequest, role: LoadedRole, outcome: ExecutionOutcome, execution_time: float
    ) -> SubTaskResult:
        return SubTaskResult(
            subtask_id=request.subtask.id,
            task_id=request.task_id,
            agent_id=self._settings.agent_id,
            attempt=request.subtask.attempt_count,
            status=ResultStatus.COMPLETED if outcome.succeeded else ResultStatus.FAILED,
            output=outcome.output if outcome.succeeded else None,
            error=outcome.error,
            retryable=outcome.retryable and not outcome.succeeded,
            execution_time=max(execution_time, MIN_EXECUTION_TIME),
            token_usage=outcome.token_usage,
            cost_usd=outcome.cost_usd,
            num_turns=outcome.num_turns,
            role_config_hash=role.config_hash,
            simulated=self._settings.claude_simulated,
        )

    async def started(self, request: TaskExecutionRequest, role: LoadedRole) -> None:
        details = {"attempt": request.subtask.attempt_count, "role": role.role.name, "executor": self._executor_name}
        await self._write_log(request.task_id, request.subtask.id, LogLevel.INFO, "subtask started", details)
        await self._event(LifecycleEventType.AGENT_STARTED, request, {"role": role.role.name})

    async def finished(self, result: SubTaskResult) -> bool:
        """Publish the result, then log it; False when it could not be published."""
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
        }
        if not succeeded:
            details |= {"error": result.error, "retryable": result.retryable}
        if not published:
            details["result"] = result.model_dump(mode="json")  # what the queue never got, for an operator to replay
        message = "subtask completed" if succeeded else "subtask failed"
        await self._write_log(result.task_id, result.subtask_id, level, message, details)
        event = LifecycleEventType.AGENT_COMPLETED if succeeded else LifecycleEventType.AGENT_FAILED
        await self._publish_event(event, result.task_id, result.subtask_id, {"attempt": str(result.attempt)})
        return published

    async def publish(self, result: SubTaskResult) -> bool:
        retrying = AsyncRetrying(
            stop=stop_after_delay(self._settings.agent_result_publish_timeout_seconds),
            wait=wait_exponential(multiplier=0.2, max=PUBLISH_BACKOFF_MAX_SECONDS),
            retry=retry_if_exception_type(REDIS_UNAVAILABLE),
            before_sleep=_log_publish_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._redis.enqueue_result(result)
        except REDIS_UNAVAILABLE as error:
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

    async def _write_log(
        self, task_id: str, subtask_id: str, level: LogLevel, message: str, details: dict[str, Any]
    ) -> None:
        try:
            await self._db.repositories().audit.log_agent_activity(
                self._settings.agent_id, task_id, level, message, details, subtask_id=subtask_id
            )
        except Exception as error:  # the audit trail must not stop a result; the structlog line still exists
            log.warning("agent_log_write_failed", task_id=task_id, subtask_id=subtask_id, error=repr(error))

    async def _event(self, event: LifecycleEventType, request: TaskExecutionRequest, fields: dict[str, str]) -> None:
        fields = {"attempt": str(request.subtask.attempt_count), **fields}
        await self._publish_event(event, request.task_id, request.subtask.id, fields)

    async def _publish_event(
        self, event: LifecycleEventType, task_id: str, subtask_id: str, fields: dict[str, str]
    ) -> None:
        try:
            await self._redis.events.publish_event(
                event.value,
                {"agent_id": self._settings.agent_id, "task_id": task_id, "subtask_id": subtask_id, **fields},
            )
        except Exception as error:  # events are for observers; the result queue is the contract
            log.warning("lifecycle_event_failed", event_type=event.value, subtask_id=subtask_id, error=repr(error))


def _log_publish_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning("result_publish_retrying", attempt=state.attempt_number, error=repr(error))
