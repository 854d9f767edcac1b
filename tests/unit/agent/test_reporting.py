"""A finished attempt's result survives a short Redis outage, and is logged whole when Redis stays away."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from agent.executors import ExecutionOutcome
from agent.reporting import ResultReporter
from shared.config import Settings
from shared.database import DatabaseManager
from shared.models import AgentCapability, ContextPackRef, LogLevel, ReportedResult, ResultStatus, SubTaskResult
from shared.redis_manager import RedisManager
from shared.roles import load_roles
from tests.unit.agent.fixtures import RequestFactory, SettingsFactory

ROLE = load_roles()[AgentCapability.DATA_ANALYSIS]


class RedisProxy:
    """A TCP relay in front of the real Redis that can be taken down and brought back: a real outage."""

    def __init__(self, target_port: int, database: int) -> None:
        self._target_port = target_port
        self._database = database
        self._server: asyncio.Server | None = None
        self._streams: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._streams):
            writer.close()
        await self._server.wait_closed()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        self._streams |= {client_writer, server_writer}
        await asyncio.gather(_pipe(client_reader, server_writer), _pipe(server_reader, client_writer))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{self._database}"  # the test run's Redis database


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
async def proxy(agent_redis: RedisManager) -> AsyncIterator[RedisProxy]:
    options = agent_redis.client.connection_pool.connection_kwargs
    relay = RedisProxy(int(options["port"]), int(options.get("db", 0)))
    await relay.start()
    yield relay
    with contextlib.suppress(Exception):
        await relay.stop()


async def proxied_reporter(
    agent_settings_factory: SettingsFactory, db: DatabaseManager, proxy: RedisProxy, publish_timeout: float
) -> tuple[ResultReporter, RedisManager]:
    settings = agent_settings_factory(redis_url=proxy.url, agent_result_publish_timeout_seconds=publish_timeout)
    redis = RedisManager(settings)
    await redis.connect()
    return ResultReporter(settings, db, redis, "stub"), redis


def failed_result(reporter: ResultReporter, execution_request: RequestFactory) -> SubTaskResult:
    outcome = ExecutionOutcome.failure("upstream timed out", retryable=True)
    return reporter.build_result(execution_request(), ROLE, outcome, 0.5)


async def test_a_result_is_retried_until_redis_is_back(
    agent_settings_factory: SettingsFactory,
    db: DatabaseManager,
    agent_redis: RedisManager,
    proxy: RedisProxy,
    execution_request: RequestFactory,
) -> None:
    reporter, redis = await proxied_reporter(agent_settings_factory, db, proxy, publish_timeout=30)
    result = failed_result(reporter, execution_request)
    try:
        await proxy.stop()
        publishing = asyncio.create_task(reporter.publish(result))
        await asyncio.sleep(0.5)
        assert not publishing.done()  # still retrying, not given up and not lost
        await proxy.start()
        assert await asyncio.wait_for(publishing, 20) is True
    finally:
        await redis.disconnect()

    delivery = await agent_redis.dequeue_result("test-consumer", 1.0)
    assert delivery is not None
    assert delivery[1] == result


async def test_an_undeliverable_result_is_kept_in_agent_logs(
    agent_settings_factory: SettingsFactory,
    db: DatabaseManager,
    proxy: RedisProxy,
    execution_request: RequestFactory,
) -> None:
    reporter, redis = await proxied_reporter(agent_settings_factory, db, proxy, publish_timeout=0.5)
    result = failed_result(reporter, execution_request)
    try:
        await proxy.stop()
        assert await reporter.finished(result) is False
    finally:
        await redis.disconnect()
    await reporter.flush()  # what the service does before its clients close

    (entry,) = await db.repositories().audit.list_agent_logs(task_id=result.task_id)
    assert (entry.level, entry.message) == (LogLevel.WARNING, "subtask failed")
    assert entry.metadata["published"] is False
    assert ReportedResult.model_validate(entry.metadata["result"]) == result
    assert result.status is ResultStatus.FAILED


async def test_an_attempt_s_row_is_written_in_a_batch_with_its_own_time_and_its_start_event_before_its_result(
    agent_settings: Settings, db: DatabaseManager, agent_redis: RedisManager, execution_request: RequestFactory
) -> None:
    """The "started" row is the accept statement's (agent/offers.py), not the reporter's; its event rides with the
    result's round trip when it has not gone out before."""
    reporter = ResultReporter(agent_settings, db, agent_redis, "stub")
    request = execution_request()
    started_at = datetime.now(UTC)
    reporter.started(request, ROLE)
    result = reporter.build_result(request, ROLE, ExecutionOutcome(output="done"), 0.1)
    assert await reporter.finished(result) is True
    assert await db.repositories().audit.list_agent_logs(task_id=request.task_id) == []  # waiting for its batch
    # ...but not the start: the orchestrator tells what the result did once it applies it, after the start.
    [started] = await agent_redis.events.read_group("test-readers", "reader", count=10)
    assert (started.event.event_type, started.event.subtask_id) == ("AGENT_STARTED", request.subtask.id)
    assert started.event.trace_id == request.subtask.trace_id
    assert started.event.data == {
        "agent_id": agent_settings.agent_id,
        "attempt": 1,
        "role": ROLE.role.name,
        "executor": "stub",
        "context_pack_path": None,
    }

    await asyncio.sleep(0.2)
    await reporter.flush()

    logs = await db.repositories().audit.list_agent_logs(task_id=request.task_id)
    assert [log.message for log in logs] == ["subtask completed"]
    assert all(started_at <= log.created_at < started_at + timedelta(seconds=0.2) for log in logs)  # not the flush's
    assert reporter.started_record(request, ROLE).message == "subtask started"


async def test_the_start_of_an_attempt_with_a_context_pack_says_where_the_pack_is(
    agent_settings: Settings, db: DatabaseManager, agent_redis: RedisManager, execution_request: RequestFactory
) -> None:
    reporter = ResultReporter(agent_settings, db, agent_redis, "sdk")
    request = execution_request().model_copy(update={"context_pack": ContextPackRef(context_pack_id="pack_1")})

    reporter.started(request, ROLE)
    await reporter.flush()

    [started] = await agent_redis.events.read_group("test-readers", "reader", count=10)
    assert started.event.data["context_pack_path"] == "context"  # relative to the task's workspace
