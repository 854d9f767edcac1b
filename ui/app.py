"""The dashboard page: header with the orchestrator's health, the submit form in the sidebar, and three tabs."""

from pathlib import Path

import streamlit as st

from shared.config import ConfigurationError, Settings, load_settings
from ui.api_client import ApiError, OrchestratorClient
from ui.sections import agents, logs, submit, tasks

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
    st.set_page_config(page_title=TITLE, page_icon="🛰️", layout="wide")
    try:
        settings = load_settings()
    except ConfigurationError as error:
        st.error(str(error), icon="⚙️")
        st.stop()
    client = orchestrator_client(settings.orchestrator_url, dashboard_api_key(settings))
    _header(client, settings)
    with st.sidebar:
        submit.render(client)
        st.divider()
        st.caption(f"Orchestrator: {client.base_url}")
    tasks_tab, agents_tab, logs_tab = st.tabs(["📋 Tasks", "🤖 Agents", "📜 Logs"])
    with tasks_tab:
        tasks.render(client)
    with agents_tab:
        agents.render(client, LATE_HEARTBEATS * settings.heartbeat_interval_seconds)
    with logs_tab:
        logs.render(client)


def _header(client: OrchestratorClient, settings: Settings) -> None:
    st.title(f"🛰️ {TITLE}")
    if settings.claude_simulated:
        st.warning(
            "**🧪 OFFLINE MODE** — Claude is replaced by the local simulator: every plan and result is simulated.",
        )
    try:
        health = client.health()
    except ApiError as error:
        st.error(f"The orchestrator is unreachable: {error.message}. The page keeps retrying.", icon="🔌")
        return
    if health.healthy:
        st.caption(f"🟢 Orchestrator {client.base_url} is healthy · PostgreSQL up · Redis up")
    else:
        st.warning(
            f"The orchestrator at {client.base_url} is unhealthy: PostgreSQL {health.postgres}, Redis {health.redis}.",
            icon="⚠️",
        )
