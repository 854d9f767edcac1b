"""Submit a task: the description rule is visible while typing; the API's answer (id or refusal) stays shown."""

from dataclasses import dataclass

import streamlit as st

from shared.models import TASK_DESCRIPTION_MAX, TASK_DESCRIPTION_MIN, TaskType
from ui import navigation
from ui.api_client import ApiError, OrchestratorClient

DESCRIPTION = "new_task_description"
USER = "new_task_user"
TASK_TYPE = "new_task_type"
OUTCOME = "submit_outcome"
CLEAR_FORM = "submit_clear_form"


@dataclass(frozen=True)
class SubmitOutcome:
    task_id: str | None
    message: str


def render(client: OrchestratorClient) -> None:
    st.subheader("New task")
    if st.session_state.pop(CLEAR_FORM, False):
        # A widget's value can only be reset before it is drawn, hence the flag and the rerun below.
        st.session_state[DESCRIPTION] = ""
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
    if st.button("Submit Task", key="submit_task", type="primary", width="stretch"):
        with st.spinner("Claude is decomposing the task…"):
            outcome = _submit(client, description, user_id, task_type or TaskType.GENERAL)
        st.session_state[OUTCOME] = outcome
        if outcome.task_id:
            navigation.select_task(outcome.task_id)
            st.session_state[CLEAR_FORM] = True
            st.rerun()
    _show_outcome(st.session_state.get(OUTCOME))


def _rule_caption(description: str) -> str:
    """The rule, and whether the text follows it; the API stays the judge (it also counts non-blank characters)."""
    rule = f"{len(description)} / {TASK_DESCRIPTION_MAX} characters · at least {TASK_DESCRIPTION_MIN} non-blank"
    if not description:
        return rule
    if len(description.strip()) < TASK_DESCRIPTION_MIN:
        return f":red[{rule} — too short]"
    return f":green[{rule}]"


def _submit(client: OrchestratorClient, description: str, user_id: str, task_type: TaskType) -> SubmitOutcome:
    try:
        created = client.submit_task(description, user_id.strip() or None, task_type)
    except ApiError as error:
        return SubmitOutcome(None, _refusal(error))
    return SubmitOutcome(
        created.task_id,
        f"Task created: `{created.task_id}`  \n"
        f"{created.subtasks_count} subtask(s) planned, {created.initial_subtasks_queued} queued now.",
    )


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
    if outcome.task_id:
        st.success(outcome.message, icon=":material/check_circle:")
    else:
        st.error(outcome.message, icon=":material/block:")
