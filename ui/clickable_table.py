"""A table whose rows open what they show: a click selects the row's id, once, and reruns the whole page."""

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st


def clickable_table(
    name: str, data: Any, ids: Sequence[str], column_config: Any, open_id: Callable[[str], None]
) -> None:
    """Draw `data` (one row per id, in order); a click on a row calls `open_id` with its id and reruns the app."""
    generation_key = f"{name}_table_generation"  # a new widget key after each click, so a click is taken once
    shown_key = f"{name}_table_ids"  # the ids of the rows on screen, in order: what a clicked row index means
    generation = st.session_state.get(generation_key, 0)
    on_screen: list[str] = st.session_state.get(shown_key, [])
    event = st.dataframe(
        data,
        hide_index=True,
        column_config=column_config,
        key=f"{name}_table_{generation}",
        on_select="rerun",
        selection_mode="single-row",
    )
    st.session_state[shown_key] = list(ids)
    clicked = event.selection.rows if event else []
    if clicked and clicked[0] < len(on_screen):
        st.session_state[generation_key] = generation + 1
        open_id(on_screen[clicked[0]])
        st.rerun(scope="app")  # what the row opens lives outside the table's fragment
