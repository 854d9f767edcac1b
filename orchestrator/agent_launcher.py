"""Starting agent processes for the pool: `python -m agent` on a free port of the agent port range.

A started agent runs in a session of its own, so it outlives the orchestrator (a restart adopts it, see
orchestrator/pool.py); its pidfile sits beside those of scripts/start.sh, named `agent-*.pid` so that
scripts/stop.sh stops it with the rest of the fleet. Where the orchestrator cannot start processes (containers,
AGENT_LAUNCHER=none) every start is refused with what to do instead.
"""

import os
import signal
import socket
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
CHILD_POLL_SECONDS = 0.1


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
        # `python -m agent` from this checkout, whatever the orchestrator's working directory (which the agent shares,
        # so relative paths in the settings mean the same folders to both).
        search_path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        self._environment["PYTHONPATH"] = os.pathsep.join(search_path)
        # Our own children, reaped here; their exit codes once they have ended (None: reaped by someone else).
        self._children: set[int] = set()
        self._exit_codes: dict[int, int | None] = {}

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
        pid = _spawn_agent(environment, log_path)
        self._children.add(pid)
        self._pidfile(agent_id).write_text(f"{pid}\n")
        return PoolMember(
            agent_id=agent_id,
            url=url,
            port=port,
            capabilities=capabilities,
            pid=pid,
            process_started_at=_started_at(pid) or time.time(),
            log_path=str(log_path),
        )

    def is_running(self, member: PoolMember) -> bool:
        """Whether the member's process is still there: its pid, started when the member's was (not a reused pid)."""
        if member.pid in self._children:
            return self._child_running(member.pid)
        try:
            process = psutil.Process(member.pid)
            return process.status() != psutil.STATUS_ZOMBIE and _same_start(process, member)
        except psutil.Error:
            return False

    def exit_code(self, member: PoolMember) -> int | None:
        """The exit code of an agent this orchestrator started; None while it runs or when another started it."""
        if member.pid not in self._children or self._child_running(member.pid):
            return None
        return self._exit_codes.get(member.pid)

    def stop(self, member: PoolMember, grace: float) -> int | None:
        """SIGTERM (the agent drains), SIGKILL after `grace` seconds; the exit code when it is known. Blocking."""
        if member.pid in self._children:
            return self._stop_child(member.pid, grace)
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
        self._children.discard(member.pid)
        self._exit_codes.pop(member.pid, None)
        pidfile = self._pidfile(member.agent_id)
        # Only our pidfile: another start of the same id may have written a newer one.
        if pidfile.exists() and pidfile.read_text().strip() == str(member.pid):
            pidfile.unlink(missing_ok=True)

    def _child_running(self, pid: int) -> bool:
        """Whether our child still runs; reaps it (and keeps its exit code) once it has ended."""
        if pid in self._exit_codes:
            return False
        try:
            ended, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: ended, how is unknown
            self._exit_codes[pid] = None
            return False
        if ended == 0:
            return True
        self._exit_codes[pid] = os.waitstatus_to_exitcode(status)
        return False

    def _stop_child(self, pid: int, grace: float) -> int | None:
        if self._child_running(pid):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        # No event announces a child's end to a thread; a tenth of a second is nothing next to a drain.
        while self._child_running(pid) and time.monotonic() < deadline:
            time.sleep(CHILD_POLL_SECONDS)
        if self._child_running(pid):
            log.warning("agent_stop_timed_out", pid=pid, grace_s=grace)
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            self._exit_codes[pid] = os.waitstatus_to_exitcode(status)
        return self._exit_codes.get(pid)

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


def _spawn_agent(environment: dict[str, str], log_path: Path) -> int:
    """`python -m agent` in a session of its own (a Ctrl-C or restart of the orchestrator leaves it be), its output
    in `log_path`; returns its pid. No Popen: the agent is meant to outlive this object, which Popen warns about."""
    with log_path.open("ab") as log_file:
        return os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", "agent"],
            environment,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_file.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, log_file.fileno(), 2),
            ],
            setsid=True,
        )


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
