"""The coordinator's tools (seed 004's coordination tools): the pool's status and the isolation report.

Both read only the tenant of the agent's fleet, and neither takes input that reaches a query: the model chooses
nothing but which tool to call. The pool's status leaves out what would let the model reach an agent (its address)
or impersonate one (its registration signature).
"""

import json
from typing import Any

from agent.tools.audit import ToolSpec, object_schema
from agent.tools.context import ToolContext
from shared.isolation import build_isolation_report
from shared.models import AgentStatus


def agent_summary(agent: AgentStatus) -> dict[str, Any]:
    """What the coordinator may know of an agent: who it is, what it can run, how busy it is."""
    running = len(agent.current_tasks)
    state = "idle" if running == 0 else "full" if agent.free_slots == 0 else "busy"
    return {
        "agent_id": agent.agent_id,
        "capabilities": [capability.value for capability in agent.capabilities],
        "slots": agent.slots,
        "running": running,
        "state": state if agent.is_available or running else "not accepting",
        "tasks_completed": agent.tasks_completed,
        "tasks_failed": agent.tasks_failed,
    }


async def pool_status(context: ToolContext, arguments: dict[str, Any]) -> str:
    agents = await context.redis.get_agents()
    return json.dumps({"live_agents": len(agents), "agents": [agent_summary(agent) for agent in agents]})


async def isolation_report(context: ToolContext, arguments: dict[str, Any]) -> str:
    repositories = context.db.repositories()  # the agent's tenant: another tenant's agents and audit are not in it
    live_agents = await context.redis.get_agents()
    report = await build_isolation_report(repositories, live_agents, context.settings.shared_files_dir)
    return report.model_dump_json()


POOL_STATUS = ToolSpec(
    name="pool_status",
    description=(
        "The live agents of the pool: id, capabilities, slots, subtasks running, state (idle, busy, full, "
        "not accepting) and results so far. Answers JSON."
    ),
    input_schema=object_schema({}, []),
    function=pool_status,
)

ISOLATION_REPORT = ToolSpec(
    name="isolation_report",
    description=(
        "For each agent of the pool: what isolates its subtasks (CLI config folder, role and tool allowlist, "
        "task-scoped workspace and state, one conversation per attempt), the violations the audit shows and "
        "where evidence is missing. Answers JSON."
    ),
    input_schema=object_schema({}, []),
    function=isolation_report,
)
