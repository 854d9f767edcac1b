"""The coordinator's tools (seed 004's coordination tools): the pool's status, the isolation report, and a follow-up
subtask for the running task.

The first two read only the tenant of the agent's fleet and take no input that reaches a query. The follow-up goes
to the orchestrator with this attempt's signed assignment, and the orchestrator adds it only to this attempt's task
while the attempt is current (shared/follow_up.py): the model chooses the subtask, never its task. The pool's
status leaves out what would let the model reach an agent (its address) or impersonate one (its registration
signature).
"""

import json
from typing import Any

import httpx
from pydantic import ValidationError

from agent.tools.audit import ToolSpec, object_schema
from agent.tools.context import ToolContext
from agent.tools.errors import ToolError
from shared.errors import describe_validation_errors
from shared.fleet_trust import FleetTrust
from shared.follow_up import FLEET_SIGNATURE_HEADER, AttemptCredential, FollowUpRequest, FollowUpSubtask
from shared.isolation import build_isolation_report
from shared.models import AgentCapability, AgentStatus, TaskType


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


async def submit_follow_up_subtask(context: ToolContext, arguments: dict[str, Any]) -> str:
    """Ask the orchestrator to add a subtask to this attempt's task: it checks the attempt is the current one."""
    if context.assignment is None or context.delivery_token is None:
        raise ToolError("this attempt carries no signed assignment, so the orchestrator cannot know its task")
    try:
        follow_up = FollowUpSubtask.model_validate(
            {name: arguments[name] for name in FOLLOW_UP_FIELDS if arguments.get(name) is not None}
        )
    except ValidationError as error:
        raise ToolError(
            f"the follow-up subtask is invalid: {describe_validation_errors(list(error.errors()))}"
        ) from None
    credential = AttemptCredential(
        task_id=context.task_id,
        subtask_id=context.subtask_id,
        attempt=context.attempt,
        delivery_token=context.delivery_token,
        agent_id=context.agent_id,
        assignment=context.assignment,
    )
    body = FollowUpRequest(attempt=credential, subtask=follow_up).model_dump_json().encode()
    headers = {
        "Content-Type": "application/json",
        FLEET_SIGNATURE_HEADER: FleetTrust.from_settings(context.settings).sign_request(body),
    }
    url = f"{context.settings.orchestrator_url.rstrip('/')}/coordination/follow-up-subtasks"
    try:
        async with httpx.AsyncClient(timeout=FOLLOW_UP_TIMEOUT_SECONDS) as client:
            answer = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as error:
        where = context.settings.orchestrator_url
        raise ToolError(f"the orchestrator could not be reached at {where}: {error!r}") from None
    if answer.status_code != 200:
        raise ToolError(f"the orchestrator refused the follow-up subtask ({answer.status_code}): {_error_of(answer)}")
    return answer.text


def _error_of(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("error") or answer.text)
    except ValueError:
        return answer.text[:500]


FOLLOW_UP_FIELDS = ("description", "required_capabilities", "dependencies", "task_type")
FOLLOW_UP_TIMEOUT_SECONDS = 10.0

SUBMIT_FOLLOW_UP_SUBTASK = ToolSpec(
    name="submit_follow_up_subtask",
    description=(
        "Add a subtask to this task's plan. It runs once the subtasks it depends on have completed (list your own "
        "subtask's id to run after you). Answers JSON with the new subtask's id and status."
    ),
    input_schema=object_schema(
        {
            "description": {"type": "string", "description": "What the agent must do"},
            "required_capabilities": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "enum": [capability.value for capability in AgentCapability]},
            },
            "dependencies": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Ids of subtasks of this task whose output it needs",
            },
            "task_type": {
                "type": "string",
                "enum": [task_type.value for task_type in TaskType],
                "description": "The kind of work (unset: the task's own)",
            },
        },
        ["description", "required_capabilities"],
    ),
    function=submit_follow_up_subtask,
)
