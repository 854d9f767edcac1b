"""SIGTERM to a real `python -m agent` process mid-subtask: the subtask is reported failed and retryable, the
agent leaves the registry, and the process exits cleanly. Nothing it accepted is silently lost."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from agent.runner import SHUTDOWN_ERROR
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.models import LogLevel, ResultStatus
from shared.redis_manager import RedisManager
from tests.unit.agent.fixtures import OfferFactory, SettingsFactory, registered_until

REPO_ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 30.0
AGENT_ID = "agent-sigterm"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_healthy(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the agent exited during start-up with {process.returncode}"
        try:
            if httpx.get(f"{base_url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError("the agent did not become healthy")


@pytest.fixture
def process_settings(agent_settings_factory: SettingsFactory) -> Settings:
    """Settings of the agent process; its port is a free one, so the registry must accept any port."""
    return agent_settings_factory(agent_port_min=1024, agent_port_max=65535)


@pytest.fixture
async def registry_redis(process_settings: Settings) -> AsyncIterator[RedisManager]:
    manager = RedisManager(process_settings)
    await manager.connect()
    yield manager
    await manager.disconnect()


@pytest.fixture
def agent_process(
    process_settings: Settings, db: DatabaseManager, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real agent process (stub executor, subtasks that take minutes, a short grace period)."""
    port = free_port()
    env = os.environ | {
        "POSTGRES_URL": process_settings.postgres_url,
        "REDIS_URL": process_settings.redis_url,
        "TENANT_ID": process_settings.tenant_id,
        "AGENT_ID": AGENT_ID,
        "AGENT_HOST": "127.0.0.1",
        "AGENT_PORT": str(port),
        "AGENT_PORT_MIN": str(process_settings.agent_port_min),
        "AGENT_PORT_MAX": str(process_settings.agent_port_max),
        "AGENT_EXECUTOR": "stub",
        "AGENT_STUB_DELAY_SECONDS": "300",
        "AGENT_SHUTDOWN_GRACE_SECONDS": "0.5",
        "AGENT_CAPABILITIES": "DATA_ANALYSIS,CODE_GENERATION",
        "SHARED_FILES_DIR": str(tmp_path / "shared_files"),
        "AGENT_CLAUDE_CONFIG_ROOT": str(tmp_path / "claude"),
        "LOG_JSON": "true",
    }
    log_path = tmp_path / "agent.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "agent"], cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process)
        yield f"http://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(STOP_TIMEOUT_SECONDS)


async def test_sigterm_mid_subtask_reports_it_retryable_and_deregisters(
    agent_process: tuple[str, subprocess.Popen[bytes]],
    registry_redis: RedisManager,
    db: DatabaseManager,
    process_settings: Settings,
    offered_request: OfferFactory,
    tmp_path: Path,
) -> None:
    redis = registry_redis
    agent_log = tmp_path / "agent.log"  # where the agent_process fixture sends the process's output
    base_url, process = agent_process
    request = await offered_request(agent_id=AGENT_ID)
    async with httpx.AsyncClient(base_url=base_url) as client:
        accepted = await client.post("/execute", json=request.model_dump(mode="json"))
        assert accepted.status_code == 200, accepted.text
    registered = await registered_until(redis, AGENT_ID, lambda status: status.current_tasks == [request.subtask.id])
    assert not registered.is_available

    process.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal once its graceful shutdown is done, so the exit status is -SIGTERM.
    assert process.wait(STOP_TIMEOUT_SECONDS) == -signal.SIGTERM
    assert '"event": "agent_stopped"' in agent_log.read_text()

    delivery = await redis.dequeue_result("test-consumer", 5.0)
    assert delivery is not None, "the cancelled subtask was not reported"
    result = delivery[1]
    assert (result.subtask_id, result.attempt) == (request.subtask.id, request.subtask.attempt_count)
    assert (result.status, result.retryable, result.error) == (ResultStatus.FAILED, True, SHUTDOWN_ERROR)
    assert await redis.dequeue_result("test-consumer", 0.1) is None
    assert await redis.registry.get_agent(AGENT_ID) is None
    assert AGENT_ID not in await redis.client.smembers(redis.keys.active_agents())
    audit = Repositories(db.pool, process_settings.tenant_id).audit  # the agent's tenant
    logs = await audit.list_agent_logs(task_id=request.task_id, level=LogLevel.WARNING)
    assert [(log.message, log.metadata["retryable"]) for log in logs] == [("subtask failed", True)]
