"""The runner: slots, refusals, and exactly one result per accepted attempt whatever ends it."""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from agent.executors import ExecutionOutcome, StubExecutor, SubtaskExecutor
from agent.reporting import ResultReporter
from agent.runner import SHUTDOWN_ERROR, AgentBusyError, AgentDrainingError, SubtaskRunner
from shared.config import Settings
from shared.database import DatabaseManager
from shared.errors import InvalidInputError
from shared.models import AgentCapability, AgentLog, LogLevel, ResultStatus, SubTaskResult, TaskExecutionRequest
from shared.redis_manager import RedisManager
from shared.roles import LoadedRole, load_roles
from tests.polling import eventually
from tests.unit.agent.fixtures import RequestFactory, SettingsFactory, run_attempt

RunnerFactory = Callable[..., SubtaskRunner]
RESULT_WAIT_SECONDS = 10.0


class CrashingExecutor:
    name = "crashing"

    async def execute(self, request: TaskExecutionRequest, role: LoadedRole) -> ExecutionOutcome:
        raise RuntimeError("executor bug")


@pytest.fixture
async def runner_factory(
    agent_settings_factory: SettingsFactory, db: DatabaseManager, agent_redis: RedisManager
) -> AsyncIterator[RunnerFactory]:
    """Runners whose reporters' batch writers run as in the service, stopped after the test."""
    runners: list[SubtaskRunner] = []
    reporters: list[ResultReporter] = []
    loops: list[asyncio.Task[None]] = []

    def build(executor: SubtaskExecutor | None = None, **overrides: Any) -> SubtaskRunner:
        settings = agent_settings_factory(**overrides)
        executor = executor or StubExecutor.from_settings(settings)
        reporters.append(ResultReporter(settings, db, agent_redis, executor.name))
        loops.extend(asyncio.create_task(loop.start()) for loop in reporters[-1].background_loops)
        runners.append(SubtaskRunner(settings, load_roles(), executor, reporters[-1]))
        return runners[-1]

    yield build
    for runner in runners:
        await runner.shutdown(0)
    for reporter in reporters:
        for loop in reporter.background_loops:
            loop.stop()
    await asyncio.gather(*loops)


async def agent_logs(db: DatabaseManager, task_id: str, count: int, level: LogLevel | None = None) -> list[AgentLog]:
    """The task's agent_logs rows once there are `count` of them: the reporter writes them a moment later."""
    return await eventually(
        lambda: db.repositories().audit.list_agent_logs(task_id=task_id, level=level), lambda logs: len(logs) >= count
    )


async def next_result(redis: RedisManager) -> SubTaskResult:
    delivery = await redis.dequeue_result("test-consumer", RESULT_WAIT_SECONDS)
    assert delivery is not None, "no result was published"
    return delivery[1]


async def test_a_completed_attempt_publishes_its_result_and_logs(
    runner_factory: RunnerFactory, agent_redis: RedisManager, db: DatabaseManager, execution_request: RequestFactory
) -> None:
    runner = runner_factory(claude_simulated=True)
    request = execution_request("Summarise the sales", attempt_count=2)

    assert run_attempt(runner, request) is True
    result = await next_result(agent_redis)

    role = load_roles()[AgentCapability.DATA_ANALYSIS]
    assert (result.task_id, result.subtask_id, result.attempt) == (request.task_id, request.subtask.id, 2)
    assert result.status is ResultStatus.COMPLETED
    assert result.output is not None and request.subtask.id in result.output
    assert result.execution_time > 0
    assert result.role_config_hash == role.config_hash
    assert result.simulated is True
    assert result.agent_id == runner._settings.agent_id
    await runner.wait_until_idle()
    assert runner.current_tasks == []
    assert runner.tasks_completed == 1
    # Its "started" row is written by the statement that accepts an offer (tests/unit/agent/test_offer_intake.py).
    logs = await agent_logs(db, request.task_id, count=1)
    assert [log.message for log in logs] == ["subtask completed"]
    assert all(log.subtask_id == request.subtask.id for log in logs)


async def test_a_full_agent_refuses_with_busy_but_takes_a_redelivery_of_a_running_attempt(
    runner_factory: RunnerFactory, execution_request: RequestFactory
) -> None:
    runner = runner_factory(agent_stub_delay_seconds=30, agent_concurrency=1)
    first = execution_request()

    assert run_attempt(runner, first) is True
    assert run_attempt(runner, first) is False  # the same attempt again: accepted, not run twice
    with pytest.raises(AgentBusyError):
        run_attempt(runner, execution_request())
    assert runner.current_tasks == [first.subtask.id]
    assert not runner.is_available


async def test_slots_follow_the_configured_concurrency(
    runner_factory: RunnerFactory, execution_request: RequestFactory
) -> None:
    runner = runner_factory(agent_stub_delay_seconds=30, agent_concurrency=2)
    run_attempt(runner, execution_request())
    assert runner.is_available
    run_attempt(runner, execution_request())
    assert not runner.is_available
    assert len(runner.current_tasks) == 2


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"required_capabilities": [AgentCapability.DATA_ANALYSIS, AgentCapability.WEB_SCRAPING]}, "WEB_SCRAPING"),
        ({"attempt_count": 0}, "attempt_count"),
        ({"task_id": ".."}, "workspace"),
    ],
)
async def test_requests_the_agent_can_never_run_are_invalid(
    runner_factory: RunnerFactory, execution_request: RequestFactory, fields: dict[str, Any], problem: str
) -> None:
    runner = runner_factory(agent_capabilities="DATA_ANALYSIS,CODE_GENERATION")
    with pytest.raises(InvalidInputError, match=problem):
        run_attempt(runner, execution_request(**fields))
    assert runner.current_tasks == []


async def test_an_attempt_over_the_time_limit_fails_retryable(
    runner_factory: RunnerFactory, agent_redis: RedisManager, execution_request: RequestFactory
) -> None:
    runner = runner_factory(agent_stub_delay_seconds=30, subtask_timeout_seconds=0.2)
    run_attempt(runner, execution_request())
    result = await next_result(agent_redis)
    assert result.status is ResultStatus.FAILED
    assert result.retryable
    assert result.error == "timed out after 0.2 s"


async def test_a_crashing_executor_becomes_a_failed_retryable_result(
    runner_factory: RunnerFactory, agent_redis: RedisManager, execution_request: RequestFactory
) -> None:
    runner = runner_factory(executor=CrashingExecutor())
    run_attempt(runner, execution_request())
    result = await next_result(agent_redis)
    assert result.status is ResultStatus.FAILED
    assert result.retryable
    assert result.error is not None and "executor bug" in result.error


async def test_a_permanent_failure_is_counted_and_logged_as_an_error(
    runner_factory: RunnerFactory, agent_redis: RedisManager, db: DatabaseManager, execution_request: RequestFactory
) -> None:
    runner = runner_factory(agent_stub_fail_pattern="doomed")
    request = execution_request("A doomed subtask")
    run_attempt(runner, request)
    result = await next_result(agent_redis)
    await runner.wait_until_idle()

    assert (result.status, result.retryable) == (ResultStatus.FAILED, False)
    assert (runner.tasks_completed, runner.tasks_failed) == (0, 1)
    logs = await agent_logs(db, request.task_id, count=1, level=LogLevel.ERROR)
    assert [log.message for log in logs] == ["subtask failed"]
    assert logs[0].metadata["error"] == result.error


async def test_shutdown_cancels_what_outlives_the_grace_period_and_reports_it_retryable(
    runner_factory: RunnerFactory, agent_redis: RedisManager, execution_request: RequestFactory
) -> None:
    runner = runner_factory(agent_stub_delay_seconds=30, agent_concurrency=2)
    requests = [execution_request(), execution_request()]
    for request in requests:
        run_attempt(runner, request)

    await runner.shutdown(grace_seconds=0.1)

    results = [await next_result(agent_redis), await next_result(agent_redis)]
    assert {result.subtask_id for result in results} == {request.subtask.id for request in requests}
    assert all(result.status is ResultStatus.FAILED and result.retryable for result in results)
    assert all(result.error == SHUTDOWN_ERROR for result in results)
    assert runner.current_tasks == []
    with pytest.raises(AgentDrainingError):
        run_attempt(runner, execution_request())


async def test_shutdown_lets_attempts_finish_within_the_grace_period(
    runner_factory: RunnerFactory, agent_redis: RedisManager, execution_request: RequestFactory
) -> None:
    runner = runner_factory(agent_stub_delay_seconds=0.2)
    run_attempt(runner, execution_request())

    await runner.shutdown(grace_seconds=30)

    result = await next_result(agent_redis)
    assert result.status is ResultStatus.COMPLETED
    assert await agent_redis.dequeue_result("test-consumer", 0.1) is None  # exactly one result


class SlowPublishingRedis(RedisManager):
    async def enqueue_result(self, result: SubTaskResult) -> int:
        await asyncio.sleep(0.3)
        return await super().enqueue_result(result)


async def test_shutdown_waits_for_a_result_still_being_published_after_its_slot_was_freed(
    agent_settings: Settings, db: DatabaseManager, execution_request: RequestFactory
) -> None:
    redis = SlowPublishingRedis(agent_settings)
    await redis.connect()
    try:
        executor = StubExecutor.from_settings(agent_settings)
        reporter = ResultReporter(agent_settings, db, redis, executor.name)
        runner = SubtaskRunner(agent_settings, load_roles(), executor, reporter)
        run_attempt(runner, execution_request())
        await eventually(lambda: asyncio.sleep(0, result=runner.current_tasks), lambda running: running == [])

        await runner.shutdown(grace_seconds=0)

        assert await redis.result_queue.length() == 1  # published before shutdown returned, not cut off after
    finally:
        await redis.disconnect()
