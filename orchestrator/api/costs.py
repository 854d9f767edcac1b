"""The cost ledger's endpoints: what a task cost (each model call of it), and spend per UTC day or per tenant."""

from typing import Annotated

from fastapi import APIRouter, Query

from orchestrator import cost_reports
from orchestrator.api.auth import ClientKey
from orchestrator.api.cost_schemas import SpendGrouping, SpendResponse, TaskCostResponse
from orchestrator.api.tasks import TaskId
from orchestrator.state import State
from shared.api_keys import ApiKeyScope
from shared.errors import ForbiddenError, error_responses

router = APIRouter()


@router.get(
    "/tasks/{task_id}/cost",
    response_model=TaskCostResponse,
    responses=error_responses(400, 404, 500, 503),
    tags=["tasks"],
    summary="What the task cost: planning, attempts, per subtask and attempt, and each model call",
)
async def task_cost(state: State, task_id: TaskId) -> TaskCostResponse:
    return await cost_reports.task_cost(state.db, task_id)


@router.get(
    "/spend",
    response_model=SpendResponse,
    responses=error_responses(400, 500, 503),
    tags=["metrics"],
    summary="Spend per UTC day by model (the tenant's), or per tenant (every tenant's, operator keys only)",
)
async def spend(
    state: State,
    key: ClientKey,
    days: Annotated[int, Query(ge=1, le=90, description="How many UTC days back, today included")] = 1,
    by: Annotated[SpendGrouping, Query(description="day: the tenant's days; tenant: every tenant (operator)")] = "day",
) -> SpendResponse:
    if by == "tenant" and key.scope is not ApiKeyScope.OPERATOR:
        raise ForbiddenError("by=tenant shows every tenant's spend: it needs an operator key; this is a client key")
    return await cost_reports.spend(state.db, days, by, state.settings.tenant_daily_budget_usd or None)
