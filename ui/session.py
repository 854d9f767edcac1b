"""Session-state keys that more than one section uses, and the per-session objects behind them."""

from typing import cast

import streamlit as st

from ui.fleet_tracker import FleetTracker

SELECTED_TASK = "selected_task"  # the task the Tasks tab shows in detail; the submit form selects a new task
FLEET_TRACKER = "fleet_tracker"


def fleet_tracker() -> FleetTracker:
    """This session's memory of the fleet, created on first use."""
    if FLEET_TRACKER not in st.session_state:
        st.session_state[FLEET_TRACKER] = FleetTracker()
    return cast(FleetTracker, st.session_state[FLEET_TRACKER])
