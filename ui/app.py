"""The dashboard page: the orchestrator's health, the submit form in the sidebar, and five tabs (tasks, agents,
metrics, spend, logs), each part refreshing on its own; the URL says what is shown (ui/navigation.py)."""

from pathlib import Path

import streamlit as st

from shared.config import ConfigurationError, Settings, load_settings
from ui import navigation
from ui.api_client import OrchestratorClient
from ui.formatting import SIMULATED_ICON
from ui.sections import agents, header, logs, metrics, spend, submit, task_detail, tasks

TITLE = "Multi-Agent Task Execution System"
# An agent is "late" after missing about two heartbeats; the registry drops it entirely at its TTL.
LATE_HEARTBEATS = 2.5
# Where scripts/start.sh keeps the operator key it creates on the first start.
KEPT_API_KEY = Path(__file__).resolve().parent.parent / ".data" / "fleet" / "api-key"


def dashboard_api_key(settings: Settings, kept: Path = KEPT_API_KEY) -> str | None:
    """ORCHESTRATOR_API_KEY, else the key scripts/start.sh keeps; None when there is neither."""
    if settings.orchestrator_api_key is not None:
        return settings.orchestrator_api_key.get_secret_value()
    try:
        return kept.read_text().strip() or None
    except OSError:
        return None


@st.cache_resource(show_spinner=False)
def orchestrator_client(base_url: str, api_key: str | None) -> OrchestratorClient:
    """One client (and connection pool) per orchestrator URL and key, shared by every session of this server."""
    return OrchestratorClient(base_url, api_key)


def main() -> None:
    st.set_page_config(page_title=TITLE, page_icon=":material/hub:", layout="wide")
    try:
        settings = load_settings()
    except ConfigurationError as error:
        st.error(str(error), icon=":material/settings:")
        st.stop()
    client = orchestrator_client(settings.orchestrator_url, dashboard_api_key(settings))
    st.title(f":material/hub: {TITLE}")
    if settings.claude_simulated:
        st.warning(
            "**OFFLINE MODE** — Claude is replaced by the local simulator: every plan and result is simulated.",
            icon=SIMULATED_ICON,
        )
    header.render(client)
    with st.sidebar:
        submit.render(client)
        st.divider()
        st.caption(f"Orchestrator: {client.base_url}")
    tabs = st.tabs(navigation.TABS, key=navigation.VIEW, bind="query-params", default=navigation.default_tab())
    tasks_tab, agents_tab, metrics_tab, spend_tab, logs_tab = tabs
    # Only the open tab runs: a hidden tab's fragments would keep fetching for nobody.
    if tasks_tab.open:
        with tasks_tab:
            tasks.render(client)
            task_detail.render(client)
    if agents_tab.open:
        with agents_tab:
            agents.render(client, LATE_HEARTBEATS * settings.heartbeat_interval_seconds)
    if metrics_tab.open:
        with metrics_tab:
            metrics.render(client)
    if spend_tab.open:
        with spend_tab:
            spend.render(client)
    if logs_tab.open:
        with logs_tab:
            logs.render(client)
