"""The heartbeat: the agent's AgentStatus in the registry, renewed every interval and at once on every slot change."""

import asyncio
import contextlib

import psutil
import structlog

from agent.runner import SubtaskRunner
from shared.config import Settings
from shared.loop_service import LoopService
from shared.models import AgentStatus
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)


def agent_status(settings: Settings, runner: SubtaskRunner) -> AgentStatus:
    """What the agent reports about itself (GET /status and every heartbeat)."""
    current_tasks = runner.current_tasks
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
            # Non-blocking: the CPU share since the previous call (the first call of a process reports 0).
            "cpu_usage": min(psutil.cpu_percent(interval=None), 100.0),
            "memory_usage": min(psutil.virtual_memory().percent, 100.0),
            "tasks_completed": runner.tasks_completed,
            "tasks_failed": runner.tasks_failed,
            "executor": runner.executor_name,
        },
        context={"agent_port_range": settings.agent_port_range},
    )


class Heartbeat(LoopService):
    def __init__(self, settings: Settings, redis: RedisManager) -> None:
        super().__init__("heartbeat", settings.heartbeat_interval_seconds)
        self._settings = settings
        self._redis = redis
        self._runner: SubtaskRunner | None = None
        self._changed = asyncio.Event()

    def attach(self, runner: SubtaskRunner) -> None:
        self._runner = runner

    def notify_change(self) -> None:
        """Ask for a heartbeat now (a slot was taken or freed), without waiting for the interval."""
        self._changed.set()

    async def run_once(self) -> None:
        if self._runner is None:
            raise RuntimeError("Heartbeat.attach(runner) has not been called")
        self._changed.clear()  # cleared before the snapshot, so a change during the write triggers another beat
        status = agent_status(self._settings, self._runner)
        await self._redis.register_agent(status)
        log.debug("heartbeat_sent", is_available=status.is_available, current_tasks=status.current_tasks)

    async def sleep(self, seconds: float) -> None:
        """Until the interval passes, a slot changes or the loop is stopped."""
        if seconds <= 0 or self.stopping:
            return
        stopped = asyncio.ensure_future(self._stopping.wait())
        changed = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait({stopped, changed}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (stopped, changed):
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
