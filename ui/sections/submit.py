"""Submit a task: the description rule is visible while typing; a budget and a deadline may go with it; "Estimate"
plans it without running it (a dry run) and shows the plan and what it may cost; the API's answer (id, estimate or
refusal) stays shown."""

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from shared.models import DEADLINE_SECONDS_MAX, TASK_DESCRIPTION_MAX, TASK_DESCRIPTION_MIN, CostEstimate, TaskType
from ui import formatting, navigation
from ui.api_client import ApiError, OrchestratorClient
from ui.api_models import DryRun, TaskRequest

DESCRIPTION = "new_task_description"
USER = "new_task_user"
TASK_TYPE = "new_task_type"
MAX_COST = "new_task_max_cost"
DEADLINE = "new_task_deadline"
OUTCOME = "submit_outcome"
CLEAR_FORM = "submit_clear_form"


@dataclass(frozen=True)
class SubmitOutcome:
    task_id: str | None
    message: str
    plan: DryRun | None = None  # an estimate's plan, shown under its message


def render(client: OrchestratorClient) -> None:
    st.subheader("New task")
    if st.session_state.pop(CLEAR_FORM, False):
        # A widget's value can only be reset before it is drawn, hence the flag and the rerun below.
        st.session_state[DESCRIPTION] = ""
    request = _form()
    estimate, submit = st.columns(2)
    if estimate.button("Estimate", key="estimate_task", icon=":material/calculate:", width="stretch"):
        with st.spinner("Claude is planning the task (nothing runs)…"):
            st.session_state[OUTCOME] = _estimate(client, request)
    if submit.button("Submit Task", key="submit_task", type="primary", width="stretch"):
        with st.spinner("Claude is decomposing the task…"):
            outcome = _submit(client, request)
        st.session_state[OUTCOME] = outcome
        if outcome.task_id:
            navigation.select_task(outcome.task_id)
            st.session_state[CLEAR_FORM] = True
            st.rerun()
    _show_outcome(st.session_state.get(OUTCOME))


def _form() -> TaskRequest:
    description = st.text_area(
        "What should the agents do?",
        key=DESCRIPTION,
        max_chars=TASK_DESCRIPTION_MAX,
        height=160,
        placeholder="e.g. Fetch last month's sales from the database, analyse the trend and write a short report.",
    )
    st.caption(_rule_caption(description))
    user_id = st.text_input("User id (optional)", key=USER, max_chars=128)
    task_type = st.selectbox(
        "Kind of work",
        list(TaskType),
        index=list(TaskType).index(TaskType.GENERAL),
        key=TASK_TYPE,
        help="Routing prefers the agents with the best recent record at this kind of work",
    )
    budget, deadline = st.columns(2)
    max_cost = budget.number_input(
        "Budget (USD)",
        min_value=0.0,
        value=None,
        step=0.01,
        format="%.4f",
        key=MAX_COST,
        placeholder="none",
        help="max_cost_usd: the task pauses (not fails) when its next attempt would spend more; resume it with more",
    )
    seconds = deadline.number_input(
        "Deadline (s)",
        min_value=1,
        max_value=DEADLINE_SECONDS_MAX,
        value=None,
        step=60,
        key=DEADLINE,
        placeholder="none",
        help="deadline_seconds: past it, the task fails and its running attempts are stopped",
    )
    return TaskRequest(
        description,
        user_id.strip() or None,
        task_type or TaskType.GENERAL,
        max_cost_usd=max_cost,
        deadline_seconds=int(seconds) if seconds is not None else None,
    )


def _rule_caption(description: str) -> str:
    """The rule, and whether the text follows it; the API stays the judge (it also counts non-blank characters)."""
    rule = f"{len(description)} / {TASK_DESCRIPTION_MAX} characters · at least {TASK_DESCRIPTION_MIN} non-blank"
    if not description:
        return rule
    if len(description.strip()) < TASK_DESCRIPTION_MIN:
        return f":red[{rule} — too short]"
    return f":green[{rule}]"


def _submit(client: OrchestratorClient, request: TaskRequest) -> SubmitOutcome:
    try:
        created = client.submit_task(request)
    except ApiError as error:
        return SubmitOutcome(None, _refusal(error))
    may_cost = f"  \nIt may cost {estimate_text(created.estimate)}." if created.estimate else ""
    return SubmitOutcome(
        created.task_id,
        f"Task created: `{created.task_id}`  \n"
        f"{created.subtasks_count} subtask(s) planned, {created.initial_subtasks_queued} queued now.{may_cost}",
    )


def _estimate(client: OrchestratorClient, request: TaskRequest) -> SubmitOutcome:
    try:
        planned = client.estimate_task(request)
    except ApiError as error:
        return SubmitOutcome(None, _refusal(error))
    cost = estimate_text(planned.estimate) if planned.estimate else "unknown (a model of the plan has no price)"
    planning = planned.decomposition.cost_usd
    spent = f"  \nPlanning it cost {formatting.cost(planning)}." if planning else ""
    fallback = "  \nClaude's plan was replaced by one subtask." if planned.decomposition_fallback else ""
    message = f"**Estimate** (nothing stored or run): {len(planned.subtasks)} subtask(s), {cost}.{spent}{fallback}"
    return SubmitOutcome(None, message, plan=planned)


def estimate_text(estimate: CostEstimate) -> str:
    return f"{formatting.cost(estimate.min_usd)} to {formatting.cost(estimate.max_usd)}"


def _refusal(error: ApiError) -> str:
    if error.status_code is None:
        return f"Not submitted: {error.message}"
    text = f"Refused (HTTP {error.status_code}): {error.message}"
    if error.retry_after:
        text += f"  \n:material/timer: Retry after {error.retry_after} s."
    return text


def _show_outcome(outcome: SubmitOutcome | None) -> None:
    if outcome is None:
        return
    if outcome.plan is not None:
        st.info(outcome.message, icon=":material/calculate:")
        _plan(outcome.plan)
    elif outcome.task_id:
        st.success(outcome.message, icon=":material/check_circle:")
    else:
        st.error(outcome.message, icon=":material/block:")


def _plan(planned: DryRun) -> None:
    numbers = {step.id: number for number, step in enumerate(planned.subtasks, start=1)}
    rows = [
        {
            "#": number,
            "Subtask": step.description,
            "Needs": ", ".join(step.required_capabilities),
            "Waits on": ", ".join(f"#{numbers[item]}" for item in step.dependencies if item in numbers) or "—",
        }
        for number, step in enumerate(planned.subtasks, start=1)
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="estimated_plan")
