"""The loop that resumes tasks paused on the tenant's daily budget once it allows again: when the UTC day turns, or
when the orchestrator runs with a raised TENANT_DAILY_BUDGET_USD. The lifecycle decides and makes each resume
(`TaskLifecycle.resume_within_daily_budget`); this is the clock around it, every BUDGET_RESUME_INTERVAL_SECONDS."""

import structlog

from orchestrator.lifecycle import TaskLifecycle
from shared.loop_service import LoopService

log = structlog.get_logger(__name__)


class BudgetResumer(LoopService):
    def __init__(self, lifecycle: TaskLifecycle) -> None:
        super().__init__("budget_resumer", lifecycle.settings.budget_resume_interval_seconds)
        self._lifecycle = lifecycle

    async def run_once(self) -> None:
        resumed = await self._lifecycle.resume_within_daily_budget()
        if resumed:
            log.info("tasks_resumed_within_daily_budget", count=resumed)
