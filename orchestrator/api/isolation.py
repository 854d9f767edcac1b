"""GET /isolation-report (operator): what isolates each agent's subtasks, and what the audit shows of it."""

from fastapi import APIRouter

from orchestrator.state import State
from shared.errors import error_responses
from shared.isolation.models import IsolationReport
from shared.isolation.report import build_isolation_report

router = APIRouter(tags=["agents"])


@router.get("/isolation-report", response_model=IsolationReport, responses=error_responses(400, 500, 503))
async def isolation_report(state: State) -> IsolationReport:
    """Per agent (live, or seen in the audit): its CLI config folder, roles and allowlists, the task-scoped
    workspace and state, one conversation per attempt, and the violations and gaps in the audit's evidence."""
    repositories = state.db.repositories()
    live_agents = await state.redis.get_agents()
    return await build_isolation_report(repositories, live_agents, state.settings.shared_files_dir)
