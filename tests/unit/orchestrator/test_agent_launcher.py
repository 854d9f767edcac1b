"""The launcher's own decisions: which port a new agent gets, whether a pid is still the member's process, and the
refusal where no process may be started."""

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from orchestrator.agent_launcher import NativeLauncher, NoLauncher
from shared.config import Settings, load_settings
from shared.errors import ConflictError, ServiceUnavailableError
from shared.models import AgentCapability
from shared.redis.pool_members import PoolMember


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something listens on, followed by two ports the test may hand out."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port: int = server.getsockname()[1]
        if port + 2 > 65535:
            pytest.skip("the system gave the test the top of the port range")
        yield port


def launcher_settings(tmp_path: Path, low: int, high: int) -> Settings:
    return load_settings(
        _env_file=None,
        agent_port_min=low,
        agent_port_max=high,
        agent_port=low,
        fleet_pid_dir=str(tmp_path / "pids"),
        fleet_log_dir=str(tmp_path / "logs"),
    )


def member(pid: int, started_at: float, agent_id: str = "agent1") -> PoolMember:
    return PoolMember(
        agent_id=agent_id,
        url="http://127.0.0.1:8001",
        port=8001,
        capabilities=[AgentCapability.DATA_ANALYSIS],
        pid=pid,
        process_started_at=started_at,
        log_path="/tmp/agent1.log",
    )


def test_without_a_launcher_starting_is_refused_saying_what_to_do() -> None:
    with pytest.raises(ConflictError) as refused:
        NoLauncher().start("agent1", [AgentCapability.DATA_ANALYSIS], [])

    assert "cannot start agent processes" in refused.value.message
    assert "start another agent service" in refused.value.message


def test_a_new_agent_gets_the_first_port_neither_taken_nor_bound(tmp_path: Path, listening: int) -> None:
    launcher = NativeLauncher(launcher_settings(tmp_path, listening, listening + 2))

    # listening: bound by another process; listening + 1: a live agent's, which may not be bound on this machine.
    assert launcher._free_port({listening + 1}) == listening + 2
    with pytest.raises(ServiceUnavailableError, match="no free port in the agent port range"):
        launcher._free_port({listening + 1, listening + 2})


def test_a_member_is_running_only_while_its_pid_is_the_process_it_started(tmp_path: Path) -> None:
    launcher = NativeLauncher(launcher_settings(tmp_path, 8001, 8016))
    ours = psutil.Process(os.getpid())

    assert launcher.is_running(member(ours.pid, ours.create_time()))
    reused = member(ours.pid, ours.create_time() - 3600)  # the pid, but not the process the pool started
    assert not launcher.is_running(reused)
    assert launcher.stop(reused, grace=1) is None  # and it is never signalled
    assert not launcher.is_running(member(2**22 + 1, time.time()))  # no such pid


def test_forgetting_a_member_removes_its_pidfile_only_if_it_is_still_its_own(tmp_path: Path) -> None:
    settings = launcher_settings(tmp_path, 8001, 8016)
    launcher = NativeLauncher(settings)
    pidfile = Path(settings.fleet_pid_dir) / f"agent-{settings.tenant_id}-agent1.pid"
    pidfile.parent.mkdir(parents=True)
    pidfile.write_text("4321\n")  # a newer start of agent1

    launcher.forget(member(1234, time.time()))
    assert pidfile.exists()
    launcher.forget(member(4321, time.time()))
    assert not pidfile.exists()
