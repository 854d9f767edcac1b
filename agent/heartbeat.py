"""The heartbeat: the agent's AgentStatus in the registry, renewed every interval and soon after slot changes.

Slot changes are announced within `SLOT_CHANGE_WINDOW_SECONDS`, one write for all the changes of that window: on a
busy agent a slot is taken and freed many times a second, and a registry write per change cost more CPU than the
subtasks. The orchestrator counts its own reservations, so it never waits on these writes to dispatch.
"""

import math
import time

import psutil
import structlog

from agent.batching import CoalescingLoop
from agent.runner import SubtaskRunner
from shared.config import Settings
from shared.models import AgentStatus
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)

SLOT_CHANGE_WINDOW_SECONDS = 0.05
HOST_READING_MAX_AGE_SECONDS = 1.0


class HostLoad:
    """The host's CPU and memory use, read from /proc at most once per `max_age` seconds (a read costs more than
    the rest of a heartbeat)."""

    def __init__(self, max_age: float = HOST_READING_MAX_AGE_SECONDS) -> None:
        self._max_age = max_age
        self._read_at = -math.inf
        self._reading = (0.0, 0.0)

    def cpu_and_memory_percent(self) -> tuple[float, float]:
        now = time.monotonic()
        if now - self._read_at >= self._max_age:
            # Non-blocking: the CPU share since the previous read (the first read of a process reports 0).
            cpu = min(psutil.cpu_percent(interval=None), 100.0)
            self._reading = (cpu, min(psutil.virtual_memory().percent, 100.0))
            self._read_at = now
        return self._reading


# One per process, like the baseline psutil.cpu_percent keeps for itself.
_host_load = HostLoad()


def agent_status(settings: Settings, runner: SubtaskRunner) -> AgentStatus:
    """What the agent reports about itself (GET /status and every heartbeat)."""
    current_tasks = runner.current_tasks
    cpu_usage, memory_usage = _host_load.cpu_and_memory_percent()
    return AgentStatus.model_validate(
        {
            "agent_id": settings.agent_id,
            "url": settings.agent_url,
            "port": settings.agent_port,
            "is_available": runner.is_available,
            "current_task": current_tasks[0] if current_tasks else None,
            "current_tasks": current_tasks,
            "capabilities": settings.agent_capabilities,
            "slots": settings.agent_concurrency,
            "cpu_usage": cpu_usage,
            "memory_usage": memory_usage,
            "tasks_completed": runner.tasks_completed,
            "tasks_failed": runner.tasks_failed,
            "executor": runner.executor_name,
            "state": runner.state,
            "started_at": runner.started_at,
        },
        context={"agent_port_range": settings.agent_port_range},
    )


class Heartbeat(CoalescingLoop):
    """Beats every `heartbeat_interval_seconds`, and `slot_change_window` seconds after `notify()` (a slot change)."""

    def __init__(
        self, settings: Settings, redis: RedisManager, *, slot_change_window: float = SLOT_CHANGE_WINDOW_SECONDS
    ) -> None:
        super().__init__("heartbeat", settings.heartbeat_interval_seconds, slot_change_window)
        self._settings = settings
        self._redis = redis
        self._runner: SubtaskRunner | None = None

    def attach(self, runner: SubtaskRunner) -> None:
        self._runner = runner

    async def run_once(self) -> None:
        if self._runner is None:
            raise RuntimeError("Heartbeat.attach(runner) has not been called")
        status = agent_status(self._settings, self._runner)
        await self._redis.register_agent(status)
        log.debug("heartbeat_sent", is_available=status.is_available, current_tasks=status.current_tasks)
