"""The orchestrator's health under the title, fetched afresh every 5 s in its own fragment: never a cached answer,
so a dead orchestrator turns the header red within seconds; and, when there is any, the work that waits on Claude or
is paused on a budget, counted by the task search every 10 s."""

from datetime import datetime

import streamlit as st

from shared.models import TaskStatus
from ui import live
from ui.api_client import ApiError, OrchestratorClient
from ui.api_models import TaskQuery
from ui.why import PROVIDER_UNAVAILABLE

REFRESH_SECONDS = 5.0
HELD_REFRESH_SECONDS = 10.0
DOWN_SINCE = "orchestrator_down_since"
WAITING_ON_PROVIDER = TaskQuery(reason=PROVIDER_UNAVAILABLE)
PAUSED = TaskQuery(status=TaskStatus.PAUSED)


def render(client: OrchestratorClient) -> None:
    st.fragment(run_every=REFRESH_SECONDS)(_health)(client)
    st.fragment(run_every=HELD_REFRESH_SECONDS)(_held_work)(client)


def _health(client: OrchestratorClient) -> None:
    checked = datetime.now().astimezone()
    try:
        health = client.health()
    except ApiError as error:
        since = st.session_state.setdefault(DOWN_SINCE, checked)
        st.error(
            f"The orchestrator is unreachable: {error.message}. Down since {since:%H:%M:%S}; "
            "everything below is the last data received. The page keeps retrying.",
            icon=":material/cloud_off:",
        )
        return
    st.session_state.pop(DOWN_SINCE, None)
    if health.healthy:
        st.caption(
            f":green[:material/check_circle:] Orchestrator {client.base_url} is healthy · PostgreSQL up · "
            f"Redis up · checked {checked:%H:%M:%S}"
        )
    else:
        st.warning(
            f"The orchestrator at {client.base_url} is unhealthy: PostgreSQL {health.postgres}, Redis {health.redis}.",
            icon=":material/warning:",
        )


def _held_work(client: OrchestratorClient) -> None:
    """How many tasks wait on the provider and how many are paused; nothing when none is (or nobody can say)."""
    waiting = live.fetch("count:provider", lambda: client.count_tasks(WAITING_ON_PROVIDER))
    paused = live.fetch("count:paused", lambda: client.count_tasks(PAUSED))
    parts = []
    if waiting.value:
        parts.append(f"**{waiting.value}** task(s) waiting on Claude (rate limited, overloaded or unreachable)")
    if paused.value:
        parts.append(f"**{paused.value}** task(s) paused on a budget")
    if parts:
        st.warning(" · ".join(parts) + " — filter the task list by *Why* to see them.", icon=":material/pause_circle:")
