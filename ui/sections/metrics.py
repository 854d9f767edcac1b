"""The fleet over time, from the orchestrator's own per-minute history (GET /metrics/history), so every browser
shows the same charts and a restart forgets nothing: throughput, failure rate, latency, queue depth and cost."""

import altair as alt
import pandas as pd
import streamlit as st

from ui import live
from ui.api_client import OrchestratorClient
from ui.api_models import HistoryBucket

REFRESH_SECONDS = 30.0
WINDOWS = {"Last 15 minutes": 15, "Last hour": 60, "Last 4 hours": 240, "Last 24 hours": 1440}
WINDOW = "metrics_window"
CHART_HEIGHT = 170


def render(client: OrchestratorClient) -> None:
    st.fragment(run_every=REFRESH_SECONDS)(_metrics)(client)


def _metrics(client: OrchestratorClient) -> None:
    label = st.selectbox("Window", list(WINDOWS), index=1, key=WINDOW)
    minutes = WINDOWS[label or "Last hour"]
    fetched = live.fetch(f"metrics:{minutes}", lambda: client.metrics_history(minutes))
    live.stale_marker(fetched)
    if fetched.value is None:
        live.show_failure("Metrics history", fetched)
        return
    buckets = fetched.value
    if not buckets:
        st.caption("No history yet.")
        return
    frame = pd.DataFrame([bucket.model_dump() for bucket in buckets])
    x = time_axis(buckets)
    _totals(buckets)
    left, right = st.columns(2)
    with left:
        _chart("Throughput — subtasks per minute", _throughput(frame, x))
        _chart("Latency — queued to result, ms", _latency(frame, x))
        _chart("Cost per minute — results and decompositions, USD", _line(frame, x, "cost_usd", "#0891b2", ".4f"))
    with right:
        _chart("Failure rate — failed share of results", _line(frame, x, "failure_rate", "#dc2626", ".0%"))
        _chart(
            "Queue depth — attempts waiting at the end of the minute", _line(frame, x, "queue_depth", "#7c3aed", "d")
        )
    st.caption(f"One point per minute from the orchestrator's history · refreshes every {REFRESH_SECONDS:g} s.")


def time_axis(buckets: list[HistoryBucket]) -> alt.X:
    """The whole window on every chart, so they line up even where a measure has a single minute."""
    window = [buckets[0].minute.isoformat(), buckets[-1].minute.isoformat()]
    return alt.X("minute:T", title=None, scale=alt.Scale(domain=window), axis=alt.Axis(format="%H:%M", labelAngle=0))


def _totals(buckets: list[HistoryBucket]) -> None:
    columns = st.columns(4)
    columns[0].metric("Subtasks completed", sum(bucket.subtasks_completed for bucket in buckets))
    columns[1].metric("Subtasks failed", sum(bucket.subtasks_failed for bucket in buckets))
    columns[2].metric("Tasks completed", sum(bucket.tasks_completed for bucket in buckets))
    columns[3].metric("Cost", f"${sum(bucket.cost_usd for bucket in buckets):.4f}")


def _chart(title: str, chart: alt.Chart) -> None:
    st.markdown(f"**{title}**")
    st.altair_chart(chart.properties(height=CHART_HEIGHT))


def _throughput(frame: pd.DataFrame, x: alt.X) -> alt.Chart:
    long = frame.melt(id_vars=["minute"], value_vars=["subtasks_completed", "subtasks_failed"], var_name="outcome")
    long["outcome"] = long["outcome"].map({"subtasks_completed": "completed", "subtasks_failed": "failed"})
    colours = alt.Scale(domain=["completed", "failed"], range=["#16a34a", "#dc2626"])
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y("value:Q", title=None, stack=True, axis=alt.Axis(tickMinStep=1)),
            color=alt.Color("outcome:N", scale=colours, legend=alt.Legend(orient="bottom", title=None)),
        )
    )


def _latency(frame: pd.DataFrame, x: alt.X) -> alt.Chart:
    long = frame.melt(id_vars=["minute"], value_vars=["latency_p50_ms", "latency_p95_ms"], var_name="percentile")
    long["percentile"] = long["percentile"].map({"latency_p50_ms": "p50", "latency_p95_ms": "p95"})
    return (
        alt.Chart(long.dropna())
        .mark_line(point=True)
        .encode(
            x=x,
            y=alt.Y("value:Q", title=None),
            color=alt.Color("percentile:N", legend=alt.Legend(orient="bottom", title=None)),
        )
    )


def _line(frame: pd.DataFrame, x: alt.X, column: str, colour: str, number_format: str) -> alt.Chart:
    return (
        alt.Chart(frame[["minute", column]].dropna())
        .mark_line(point=alt.OverlayMarkDef(color=colour), color=colour)
        .encode(x=x, y=alt.Y(f"{column}:Q", title=None, axis=alt.Axis(format=number_format)))
    )
