"""Why a queued subtask cannot run yet: no live agent has its capabilities, or its task type's dependency is down.

Such a subtask waits in the dispatcher's backlog, with the reason on it (`status_reason`), while everything else
flows; it runs by itself once the agent joins or the dependency answers again. TASK_TYPE_DEPENDENCIES names what a
task type needs: a capability (some live agent must have it) or a health URL (it must answer 2xx). URLs are probed
by a loop every few seconds, never per subtask.
"""

import asyncio
from collections.abc import Mapping, Sequence

import httpx
import structlog

from orchestrator.scheduling import AgentLoadTracker, Routable, capable_agents
from shared.loop_service import LoopService
from shared.models import AgentCapability, AgentStatus, StatusReason, TaskType

log = structlog.get_logger(__name__)

NO_LIVE_AGENT = "no_live_agent"
DEPENDENCY_UNAVAILABLE = "dependency_unavailable"
# A health URL that has not answered within this long is down.
PROBE_TIMEOUT_SECONDS = 2.0


def no_live_agent(capabilities: Sequence[AgentCapability]) -> StatusReason:
    return StatusReason(code=NO_LIVE_AGENT, message=f"waiting: no live agent with {', '.join(capabilities)}")


class TaskTypeDependencies:
    """What each task type needs (TASK_TYPE_DEPENDENCIES) and, for health URLs, whether each answered last time."""

    def __init__(self, needs: Mapping[TaskType, str]) -> None:
        self.needs = dict(needs)
        # A URL counts as down until its first probe answers: nothing is sent to a service not known to be up.
        self.up: dict[str, bool] = dict.fromkeys(self.urls, False)

    @property
    def urls(self) -> list[str]:
        return sorted({needed for needed in self.needs.values() if needed not in AgentCapability.__members__})

    def unavailable(self, task_type: TaskType, agents: Sequence[AgentStatus]) -> StatusReason | None:
        """Why subtasks of this type must wait for their dependency, or None when it is there."""
        needed = self.needs.get(task_type)
        if needed is None:
            return None
        if needed in AgentCapability.__members__:
            if any(needed in agent.capabilities for agent in agents):
                return None
            problem = f"a live agent with {needed}, and there is none"
        elif self.up.get(needed, False):
            return None
        else:
            problem = f"{needed}, which does not answer"
        return StatusReason(code=DEPENDENCY_UNAVAILABLE, message=f"waiting: {task_type.value} needs {problem}")


def waiting_reason(
    item: Routable, agents: Sequence[AgentStatus], dependencies: TaskTypeDependencies
) -> StatusReason | None:
    """Why the queued item cannot run now whoever is free, or None when some live agent could run it."""
    if not capable_agents(agents, item):
        return no_live_agent(item.required_capabilities)
    return dependencies.unavailable(item.task_type, agents)


class DependencyProbe(LoopService):
    """Probes the health URLs of TASK_TYPE_DEPENDENCIES and wakes the matcher when one comes up or goes down."""

    def __init__(self, dependencies: TaskTypeDependencies, load: AgentLoadTracker, interval: float) -> None:
        super().__init__("dependency_probe", interval)
        self._dependencies = dependencies
        self._load = load
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        if not self._dependencies.urls:
            return  # nothing to probe
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_SECONDS) as client:
            self._client = client
            await super().start()

    async def run_once(self) -> None:
        urls = self._dependencies.urls
        answers = await asyncio.gather(*(self._answers(url) for url in urls))
        for url, up in zip(urls, answers, strict=True):
            if up != self._dependencies.up.get(url):
                self._dependencies.up[url] = up
                log.info("dependency_up" if up else "dependency_down", url=url)
                self._load.notify()

    async def _answers(self, url: str) -> bool:
        assert self._client is not None
        try:
            response = await self._client.get(url)
        except httpx.HTTPError:
            return False
        return response.is_success
