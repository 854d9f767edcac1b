"""Deep links: what the page shows lives in its URL, so a link opens the same view and a reload keeps it.

`?task=<id>` opens a task, `?agent=<id>` an agent, `?logs_task=<id>` (or `logs_subtask`, `logs_trace`, `logs_agent`)
the logs filtered to it; `?view=<tab>` is the open tab, kept by st.tabs itself (`?view=Spend`: the spend per day and
tenant).
"""

import streamlit as st

TASK = "task"
AGENT = "agent"
VIEW = "view"
LOG_FILTERS = {"task_id": "logs_task", "subtask_id": "logs_subtask", "trace_id": "logs_trace", "agent_id": "logs_agent"}
TASKS_TAB, AGENTS_TAB, METRICS_TAB, SPEND_TAB, LOGS_TAB = "Tasks", "Agents", "Metrics", "Spend", "Logs"
TABS = [TASKS_TAB, AGENTS_TAB, METRICS_TAB, SPEND_TAB, LOGS_TAB]


def selected_task() -> str | None:
    return st.query_params.get(TASK) or None


def select_task(task_id: str | None) -> None:
    _set(TASK, task_id)


def selected_agent() -> str | None:
    return st.query_params.get(AGENT) or None


def select_agent(agent_id: str | None) -> None:
    _set(AGENT, agent_id)


def log_filters() -> dict[str, str]:
    """The log filters the URL names, by LogQuery field."""
    return {field: st.query_params[param] for field, param in LOG_FILTERS.items() if st.query_params.get(param)}


def default_tab() -> str:
    """The tab a link opens when it names no tab: the logs or the agent it points to, else the tasks."""
    if log_filters():
        return LOGS_TAB
    if selected_agent():
        return AGENTS_TAB
    return TASKS_TAB


def task_link(task_id: str) -> str:
    return f"?{TASK}={task_id}"


def agent_link(agent_id: str) -> str:
    return f"?{AGENT}={agent_id}"


def logs_link(**filters: str) -> str:
    """A link to the logs filtered by LogQuery fields (task_id=..., subtask_id=...)."""
    return "?" + "&".join(f"{LOG_FILTERS[field]}={value}" for field, value in filters.items())


def _set(param: str, value: str | None) -> None:
    if value:
        st.query_params[param] = value
    elif param in st.query_params:
        del st.query_params[param]
