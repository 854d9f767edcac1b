"""What a task cost, by the orchestrator's cost ledger (GET /tasks/{id}/cost): its total, its planning and its
attempts apart, against its budget, and every call to Claude it made, with the price version each was charged at.

An orchestrator without the ledger leaves the figures to the task's results and decomposition (ui/api_client.py).
"""

import pandas as pd
import streamlit as st

from shared.models import SubTaskResult, Task
from ui import formatting, live
from ui.api_client import OrchestratorClient, TaskDetail
from ui.api_models import CallTotals, TaskCost

CALL_COLUMNS = {
    "Purpose": st.column_config.TextColumn("Purpose", width=100),
    "Subtask": st.column_config.TextColumn("Subtask", width=120),
    "Attempt": st.column_config.NumberColumn("Attempt", width=65),
    "Model": st.column_config.TextColumn("Model", width=140),
    "Price": st.column_config.TextColumn("Price", width=60, help="The version of MODEL_PRICES it was charged at"),
}


def fetch(client: OrchestratorClient, task_id: str) -> TaskCost | None:
    """The task's ledger, or None when this orchestrator cannot say now (the figures fall back to the results)."""
    fetched = live.fetch(f"cost:{task_id}", lambda: client.task_cost(task_id))
    if fetched.value is None and not fetched.missing_endpoint:
        live.show_failure("The task's cost ledger", fetched, part=True)
    return fetched.value


def total_cost(detail: TaskDetail, cost: TaskCost | None) -> float:
    """The ledger's total, else the orchestrator's own total, else results plus the decomposition summed here."""
    if cost is not None:
        return cost.total_usd
    if detail.cost_usd is not None:
        return detail.cost_usd
    return sum(result.cost_usd for result in detail.results) + (detail.decomposition_cost_usd or 0.0)


def total_tokens(detail: TaskDetail, cost: TaskCost | None) -> int:
    if cost is not None:
        return cost.total.tokens.total_tokens
    planning = detail.task.decomposition.token_usage.total_tokens if detail.task.decomposition else 0
    return sum(result.token_usage.total_tokens for result in detail.results) + planning


def subtask_totals(cost: TaskCost | None, subtask_id: str, attempts: list[SubTaskResult]) -> tuple[int, float]:
    """A subtask's tokens and dollars over all its attempts: the ledger's, else its results'."""
    ledger = cost.subtask(subtask_id) if cost else None
    if ledger is not None:
        return ledger.totals.tokens.total_tokens, ledger.totals.cost_usd
    if cost is not None:  # the ledger has no call of it: it has cost nothing yet
        return 0, 0.0
    return sum(item.token_usage.total_tokens for item in attempts), sum(item.cost_usd for item in attempts)


def attempt_totals(cost: TaskCost | None, result: SubTaskResult) -> tuple[int, float]:
    ledger = cost.attempt(result.subtask_id, result.attempt) if cost else None
    if ledger is not None:
        return ledger.totals.tokens.total_tokens, ledger.totals.cost_usd
    return result.token_usage.total_tokens, result.cost_usd


def breakdown(task: Task, cost: TaskCost | None) -> None:
    """One line: planning and attempts apart, and how much of its budget the task has spent."""
    parts = []
    if cost is not None:
        planning = _calls(cost.decomposition_usd, _planning_calls(cost))
        attempts = _calls(cost.attempts_usd, cost.by_purpose.get("attempt", CallTotals()).calls)
        parts.append(f"Cost: planning {planning} · attempts {attempts}")
        if task.max_cost_usd:
            share = cost.total_usd / task.max_cost_usd
            parts.append(f"{share:.0%} of its {formatting.cost(task.max_cost_usd)} budget")
    elif task.max_cost_usd:
        parts.append(f"Budget {formatting.cost(task.max_cost_usd)}")
    if task.deadline_at is not None:
        parts.append(f"deadline {formatting.as_utc(task.deadline_at):%Y-%m-%d %H:%M:%S} UTC")
    if parts:
        st.caption(" · ".join(parts))


def calls(cost: TaskCost | None, task_id: str) -> None:
    """Every call to Claude the task made, in an expander drawn only while open."""
    if cost is None:
        return
    ledger = st.expander(
        f"Model calls ({cost.total.calls})", icon=":material/receipt_long:", key=calls_key(task_id), on_change="rerun"
    )
    if not ledger.open:
        return
    with ledger:
        if not cost.model_calls:
            st.caption("No call to Claude recorded yet.")
            return
        rows = [
            {
                "Purpose": call.purpose,
                "Subtask": formatting.short_id(call.subtask_id) if call.subtask_id else "—",
                "Attempt": call.attempt,
                "Agent": call.agent_id or "—",
                "Model": call.model,
                "Tokens": formatting.token_count(call.tokens.total_tokens),
                "Cost": formatting.cost(call.cost_usd),
                "Price": f"v{call.price_version}" if call.price_version else "none",
            }
            for call in cost.model_calls
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, column_config=CALL_COLUMNS, key=f"model_calls_{task_id}")
        st.caption("One row per call, oldest first: each planning call and each turn of each attempt.")


def calls_key(task_id: str) -> str:
    return f"model_calls_open_{task_id}"


def _planning_calls(cost: TaskCost) -> int:
    return sum(cost.by_purpose[purpose].calls for purpose in ("decomposition", "repair") if purpose in cost.by_purpose)


def _calls(usd: float, count: int) -> str:
    return f"{formatting.cost(usd)} ({count} call{'' if count == 1 else 's'})"
