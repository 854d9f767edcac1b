"""Starting agent processes for the pool: `python -m agent` on a free port of the agent port range.

A started agent runs in a session of its own, so it outlives the orchestrator (a restart adopts it, see
orchestrator/pool.py); its pidfile sits beside those of scripts/start.sh, named `agent-*.pid` so that
scripts/stop.sh stops it with the rest of the fleet. Where the orchestrator cannot start processes (containers,
AGENT_LAUNCHER=none) every start is refused with what to do instead.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import psutil
import structlog

from shared.config import Settings
from shared.errors import ConflictError, ServiceUnavailableError
from shared.models import AgentCapability
from shared.redis.pool_members import PoolMember

log = structlog.get_logger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
# Spawned agents listen on the loopback: the orchestrator that starts them is on the same machine.
AGENT_BIND_HOST = "127.0.0.1"
# After the agent's own drain (AGENT_SHUTDOWN_GRACE_SECONDS), how long it may take to write its last records and exit.
STOP_MARGIN_SECONDS = 15.0


class AgentLauncher(Protocol):
    name: str

    def start(self, agent_id: str, capabilities: list[AgentCapability], taken_ports: Iterable[int]) -> PoolMember: ...

    def is_running(self, member: PoolMember) -> bool: ...

    def exit_code(self, member: PoolMember) -> int | None: ...

    def stop(self, member: PoolMember, grace: float) -> int | None: ...

    def forget(self, member: PoolMember) -> None: ...


class NoLauncher:
    """AGENT_LAUNCHER=none: this deployment starts its agents as services of its own."""

    name = "none"

    def start(self, agent_id: str, capabilities: list[AgentCapability], taken_ports: Iterable[int]) -> PoolMember:
        raise ConflictError(
            "this deployment cannot start agent processes (AGENT_LAUNCHER=none, e.g. in docker compose): start "
            "another agent service instead (docker compose up --scale, or `python -m agent` with its own AGENT_ID "
            "on another machine); it joins the pool through its heartbeat"
        )

    def is_running(self, member: PoolMember) -> bool:
        return False

    def exit_code(self, member: PoolMember) -> int | None:
        return None

    def stop(self, member: PoolMember, grace: float) -> int | None:
        return None

    def forget(self, member: PoolMember) -> None:
        pass


class NativeLauncher:
    """Agent processes on this machine, with the orchestrator's own settings plus the agent's identity."""

    name = "native"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pid_dir = Path(settings.fleet_pid_dir)
        self._log_dir = Path(settings.fleet_log_dir)
        # The environment the orchestrator runs with (PATH, PYTHONPATH, ...) under the settings it was given: what
        # an agent of this fleet needs (database, Redis, tenant, FLEET_SECRET, Claude endpoint) is in the settings.
        self._environment = {**os.environ, **settings.as_environment()}
        self._children: dict[int, subprocess.Popen[bytes]] = {}  # our own children, to reap and read exit codes

    def start(self, agent_id: str, capabilities: list[AgentCapability], taken_ports: Iterable[int]) -> PoolMember:
        port = self._free_port(set(taken_ports))
        url = f"http://{AGENT_BIND_HOST}:{port}"
        environment = {
            **self._environment,
            "AGENT_ID": agent_id,
            "AGENT_HOST": AGENT_BIND_HOST,
            "AGENT_PORT": str(port),
            "AGENT_PUBLIC_URL": url,
            "AGENT_CAPABILITIES": ",".join(capabilities),
        }
        self._pid_dir.mkdir(parents=True, exist_ok=True)
        self._log_dir.mkdir(parents=True, exist_ok=True)
        log_path = (self._log_dir / self._file_name(agent_id, "log")).resolve()
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "agent"],
                cwd=REPO_ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not in the orchestrator's process group: a Ctrl-C or restart leaves it be
            )
        self._children[process.pid] = process
        self._pidfile(agent_id).write_text(f"{process.pid}\n")
        return PoolMember(
            agent_id=agent_id,
            url=url,
            port=port,
            capabilities=capabilities,
            pid=process.pid,
            process_started_at=_started_at(process.pid) or time.time(),
            log_path=str(log_path),
        )

    def is_running(self, member: PoolMember) -> bool:
        """Whether the member's process is still there: its pid, started when the member's was (not a reused pid)."""
        child = self._children.get(member.pid)
        if child is not None:
            return child.poll() is None
        try:
            process = psutil.Process(member.pid)
            return process.status() != psutil.STATUS_ZOMBIE and _same_start(process, member)
        except psutil.Error:
            return False

    def exit_code(self, member: PoolMember) -> int | None:
        """The exit code of an agent this orchestrator started; None while it runs or when another started it."""
        child = self._children.get(member.pid)
        return None if child is None else child.poll()

    def stop(self, member: PoolMember, grace: float) -> int | None:
        """SIGTERM (the agent drains), SIGKILL after `grace` seconds; the exit code when it is known. Blocking."""
        child = self._children.get(member.pid)
        if child is not None:
            return self._stop_child(child, grace)
        try:
            process = psutil.Process(member.pid)
            if not _same_start(process, member):
                return None
            process.terminate()
            try:
                return process.wait(grace)
            except psutil.TimeoutExpired:
                process.kill()
                return process.wait(grace)
        except psutil.NoSuchProcess:
            return None

    def forget(self, member: PoolMember) -> None:
        """Drop what is kept about a member that has ended: its pidfile and its process handle."""
        self._children.pop(member.pid, None)
        pidfile = self._pidfile(member.agent_id)
        # Only our pidfile: another start of the same id may have written a newer one.
        if pidfile.exists() and pidfile.read_text().strip() == str(member.pid):
            pidfile.unlink(missing_ok=True)

    def _stop_child(self, child: subprocess.Popen[bytes], grace: float) -> int:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        try:
            return child.wait(grace)
        except subprocess.TimeoutExpired:
            log.warning("agent_stop_timed_out", pid=child.pid, grace_s=grace)
            child.kill()
            return child.wait()

    def _pidfile(self, agent_id: str) -> Path:
        return self._pid_dir / self._file_name(agent_id, "pid")

    def _file_name(self, agent_id: str, suffix: str) -> str:
        # `agent-` first: scripts/stop.sh stops every `agent*.pid`; the tenant, so fleets on one machine never clash.
        return f"agent-{self._settings.tenant_id}-{agent_id}.{suffix}"

    def _free_port(self, taken: set[int]) -> int:
        low, high = self._settings.agent_port_range
        for port in range(low, high + 1):
            if port not in taken and _can_bind(port):
                return port
        raise ServiceUnavailableError(
            f"no free port in the agent port range {low}-{high} (AGENT_PORT_MIN, AGENT_PORT_MAX): stop an agent, or "
            "widen the range"
        )


def build_launcher(settings: Settings) -> AgentLauncher:
    return NativeLauncher(settings) if settings.agent_launcher == "native" else NoLauncher()


def _can_bind(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
        try:
            probe.bind((AGENT_BIND_HOST, port))
        except OSError:
            return False
    return True


def _started_at(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _same_start(process: psutil.Process, member: PoolMember) -> bool:
    # create_time is rounded differently by different reads; a reused pid starts far later than a second.
    return abs(process.create_time() - member.process_started_at) < 1.0
