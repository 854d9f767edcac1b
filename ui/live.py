"""Live data that stays honest: each fetch keeps the last good answer, and when the orchestrator cannot be reached
the section shows that answer marked "stale since HH:MM:SS" instead of passing it off as fresh.

Every section refreshes in its own fragment; `fetch` is what each of them calls. An error the orchestrator answered
with (a 4xx, a 503 naming a dependency) is not staleness: the section shows the error itself.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import streamlit as st

from ui.api_client import ApiError

T = TypeVar("T")
KEPT = "live_data"  # session state: fetch key -> the last good answer and when it stopped coming
NOT_AVAILABLE = "not available on this orchestrator"
UNREACHABLE_ICON = ":material/cloud_off:"
MOST_KEPT = 64  # answers kept per session (one per search, task, agent...); the oldest go first


@dataclass(frozen=True)
class Kept(Generic[T]):
    value: T
    fetched_at: datetime
    stale_since: datetime | None = None


@dataclass(frozen=True)
class Live(Generic[T]):
    """What a section draws: the value (fresh or kept), since when it is stale, or the error when there is none."""

    value: T | None
    stale_since: datetime | None = None
    error: ApiError | None = None

    @property
    def missing_endpoint(self) -> bool:
        return self.error is not None and self.error.missing_endpoint


def fetch(key: str, load: Callable[[], T]) -> Live[T]:
    """`load()` now; on an unreachable orchestrator, the last good answer under `key`, marked stale."""
    kept: dict[str, Kept[T]] = st.session_state.setdefault(KEPT, {})
    now = datetime.now().astimezone()
    try:
        value = load()
    except ApiError as error:
        previous = kept.get(key)
        if previous is None or not error.unreachable:
            return Live(None, error=error)
        stale = Kept(previous.value, previous.fetched_at, previous.stale_since or now)
        kept[key] = stale
        return Live(stale.value, stale.stale_since, error)
    kept.pop(key, None)  # re-inserted last: the dict's order is the order of use
    kept[key] = Kept(value, now)
    while len(kept) > MOST_KEPT:
        kept.pop(next(iter(kept)))
    return Live(value)


def stale_marker(live: Live[T]) -> None:
    """The line that says the data below is old, when it is."""
    if live.stale_since is not None and live.error is not None:
        st.warning(
            f"**Stale since {live.stale_since:%H:%M:%S}** — orchestrator unreachable ({live.error.message}). "
            "Showing the last data received; the page keeps retrying.",
            icon=UNREACHABLE_ICON,
        )


def show_failure(what: str, live: Live[T], *, part: bool = False) -> None:
    """Why there is nothing to show (`what` is a noun: "Tasks"): an endpoint this orchestrator lacks is a caption,
    anything else an error. A `part` of a view already marked stale only notes that it waits for the orchestrator."""
    if live.error is None:
        return
    if live.missing_endpoint:
        st.caption(f"{what}: {NOT_AVAILABLE}.")
    elif part and live.error.unreachable:
        st.caption(f"{what}: waiting for the orchestrator.")
    else:
        st.error(f"{what} unavailable: {live.error.message}", icon=UNREACHABLE_ICON)
