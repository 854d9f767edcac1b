"""A task's artifacts: what its applied attempts produced, each with a download button that fetches it through
the orchestrator's API when clicked."""

from collections.abc import Callable

import pandas as pd
import streamlit as st

from shared.artifacts import ArtifactView
from ui import formatting, live
from ui.api_client import OrchestratorClient


def render(client: OrchestratorClient, task_id: str) -> None:
    fetched = live.fetch(f"artifacts:{task_id}", lambda: client.list_artifacts(task_id))
    if fetched.value is None:
        live.show_failure("Artifacts", fetched, part=True)
        return
    artifacts = fetched.value
    st.markdown(f"**Artifacts** ({len(artifacts)})")
    if not artifacts:
        st.caption("No artifacts yet: the files of each completed subtask appear here.")
        return
    st.dataframe(pd.DataFrame([_row(item) for item in artifacts]), hide_index=True, key=f"artifacts_{task_id}")
    for artifact in artifacts:
        st.download_button(
            f"Download {formatting.plain(artifact.name)}",
            data=_fetcher(client, artifact),  # fetched only when clicked
            file_name=artifact.name.rsplit("/", 1)[-1],
            mime=artifact.media_type,
            key=f"download_{artifact.artifact_id}",
            on_click="ignore",
            icon=":material/download:",
        )


def _row(artifact: ArtifactView) -> dict[str, object]:
    return {
        "Artifact": artifact.name,
        "Type": artifact.type.value,
        "Size": _size(artifact.size),
        "SHA-256": artifact.sha256[:12],
        "Subtask": formatting.short_id(artifact.subtask_id),
        "Attempt": artifact.attempt,
        "Agent": artifact.agent_id,
    }


def _fetcher(client: OrchestratorClient, artifact: ArtifactView) -> Callable[[], bytes]:
    return lambda: client.download_artifact(artifact)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"
