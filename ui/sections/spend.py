"""Where the money goes, from the cost ledger (GET /spend): the tenant's spend per UTC day (by model), today's
against its daily budget, and, for an operator's key, every tenant's spend side by side."""

import altair as alt
import pandas as pd
import streamlit as st

from ui import formatting, live
from ui.api_client import OrchestratorClient
from ui.api_models import SpendReport

REFRESH_SECONDS = 30.0
WINDOWS = {"Today": 1, "Last 7 days": 7, "Last 30 days": 30, "Last 90 days": 90}
WINDOW = "spend_window"
CHART_HEIGHT = 220
OPERATORS_ONLY = (
    "Spend per tenant is an operator's view: the dashboard's API key is a client key of one tenant. "
    "Give the dashboard an operator key (ORCHESTRATOR_API_KEY) to compare tenants."
)
TENANT_COLUMNS = {
    "Tenant": st.column_config.TextColumn("Tenant", width=200),
    "Today (UTC)": st.column_config.TextColumn("Today (UTC)", width=100),
    "In the window": st.column_config.TextColumn("In the window", width=110),
    "Calls": st.column_config.NumberColumn("Calls", width=70),
    "Tokens": st.column_config.TextColumn("Tokens", width=80),
}


def render(client: OrchestratorClient) -> None:
    st.fragment(run_every=REFRESH_SECONDS)(_spend)(client)


def _spend(client: OrchestratorClient) -> None:
    label = st.selectbox("Window", list(WINDOWS), index=1, key=WINDOW)
    days = WINDOWS[label or "Last 7 days"]
    fetched = live.fetch(f"spend:{days}", lambda: client.spend(days))
    live.stale_marker(fetched)
    if fetched.value is None:
        live.show_failure("Spend", fetched)
        return
    _today(fetched.value)
    _per_day(fetched.value)
    _per_tenant(client, days)
    st.caption(
        f"From the cost ledger: every call to Claude (planning, each attempt's turns, dry runs), by UTC day · "
        f"refreshes every {REFRESH_SECONDS:g} s."
    )


def _today(report: SpendReport) -> None:
    columns = st.columns(4)
    columns[0].metric("Spent today (UTC)", formatting.cost(report.today_usd))
    if report.daily_budget_usd is None:
        columns[1].metric("Daily budget", "none", help="TENANT_DAILY_BUDGET_USD is not set")
        columns[2].metric("Left today", "—", help="No daily budget: nothing pauses on the day's spend")
    else:
        columns[1].metric("Daily budget", formatting.cost(report.daily_budget_usd))
        columns[2].metric("Left today", formatting.cost(report.left_today_usd or 0.0))
    columns[3].metric(f"Spent in {report.days} day(s)", formatting.cost(report.total.cost_usd))
    if report.daily_budget_usd is not None and not report.left_today_usd:
        st.error(
            "Today's budget is spent: the tenant's running tasks are paused and new tasks are refused until "
            "midnight UTC, or until TENANT_DAILY_BUDGET_USD is raised.",
            icon=":material/event_busy:",
        )


def _per_day(report: SpendReport) -> None:
    rows = [
        {"day": day.day.isoformat(), "model": model.model, "cost_usd": model.totals.cost_usd}
        for day in report.daily
        for model in day.models
    ]
    st.markdown("**Spend per UTC day — USD, by model**")
    if not rows:
        st.caption("Nothing spent in this window.")
        return
    days = [day.day.isoformat() for day in report.daily]
    chart = (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar()
        .encode(
            x=alt.X("day:O", title=None, sort=days, scale=alt.Scale(domain=days), axis=alt.Axis(labelAngle=0)),
            y=alt.Y("cost_usd:Q", title=None, stack=True, axis=alt.Axis(format="$.4f")),
            color=alt.Color("model:N", legend=alt.Legend(orient="bottom", title=None)),
            tooltip=["day:O", "model:N", alt.Tooltip("cost_usd:Q", format="$.6f")],
        )
    )
    st.altair_chart(chart.properties(height=CHART_HEIGHT))


def _per_tenant(client: OrchestratorClient, days: int) -> None:
    st.markdown("**Spend per tenant**")
    fetched = live.fetch(f"spend_by_tenant:{days}", lambda: client.spend(days, by="tenant"))
    if fetched.error is not None and fetched.error.status_code == 403:
        st.info(OPERATORS_ONLY, icon=":material/admin_panel_settings:")
        return
    if fetched.value is None:
        live.show_failure("Spend per tenant", fetched, part=True)
        return
    if not fetched.value.tenants:
        st.caption("No tenant spent anything in this window.")
        return
    rows = [
        {
            "Tenant": tenant.tenant_id,
            "Today (UTC)": formatting.cost(tenant.today_usd),
            "In the window": formatting.cost(tenant.totals.cost_usd),
            "Calls": tenant.totals.calls,
            "Tokens": formatting.token_count(tenant.totals.tokens.total_tokens),
        }
        for tenant in fetched.value.tenants
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config=TENANT_COLUMNS, key="spend_by_tenant")
