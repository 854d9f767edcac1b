"""The orchestrator's health under the title, fetched afresh every 5 s in its own fragment: never a cached answer,
so a dead orchestrator turns the header red within seconds."""

from datetime import datetime

import streamlit as st

from ui.api_client import ApiError, OrchestratorClient

REFRESH_SECONDS = 5.0
DOWN_SINCE = "orchestrator_down_since"


def render(client: OrchestratorClient) -> None:
    st.fragment(run_every=REFRESH_SECONDS)(_health)(client)


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
