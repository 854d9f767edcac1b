"""Response bodies of the cost ledger's endpoints (orchestrator/api/costs.py)."""

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from shared.database.ledger_repository import (
    AttemptSpend,
    CallTotals,
    DaySpend,
    ModelCallRecord,
    TenantSpend,
)
from shared.models import CallPurpose

SpendGrouping = Literal["day", "tenant"]


class SubtaskSpend(BaseModel):
    subtask_id: str
    totals: CallTotals
    attempts: list[AttemptSpend] = Field(description="Each attempt's turns, in attempt order")


class TaskCostResponse(BaseModel):
    """What a task cost, by the cost ledger: in all, its planning, its attempts, and each model call."""

    task_id: str
    total_usd: float = Field(ge=0, description="Every call of the task: planning and attempts, late results included")
    decomposition_usd: float = Field(ge=0, description="The planner's calls: decomposition and repair")
    attempts_usd: float = Field(ge=0, description="The agents' turns")
    total: CallTotals
    by_purpose: dict[CallPurpose, CallTotals]
    subtasks: list[SubtaskSpend] = Field(description="Subtasks that called a model, by id")
    model_calls: list[ModelCallRecord] = Field(description="Every call, oldest first")


class SpendResponse(BaseModel):
    """Spend per UTC day (the tenant's), or per tenant (every tenant's: operator keys only), over the last `days`."""

    by: SpendGrouping
    days: int = Field(ge=1, le=90)
    since: date = Field(description="The first UTC day counted; the last is today")
    today_usd: float = Field(ge=0, description="Spent on the current UTC day (by=tenant: by every tenant)")
    daily_budget_usd: float | None = Field(
        None, gt=0, description="by=day: the tenant's daily budget (TENANT_DAILY_BUDGET_USD); null when it has none"
    )
    left_today_usd: float | None = Field(
        None, ge=0, description="by=day: what the daily budget leaves for the rest of the UTC day (0 once spent)"
    )
    total: CallTotals = Field(description="Everything in the window")
    daily: list[DaySpend] = Field(description="by=day: each UTC day of the window, oldest first, idle days as zero")
    tenants: list[TenantSpend] = Field(description="by=tenant: every tenant that spent in the window, by id")
