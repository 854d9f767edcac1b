"""Artifact endpoints: what a task's applied attempts produced, and each one's content as it was recorded."""

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from orchestrator import artifact_service
from orchestrator.api.tasks import NO_NUL, TaskId
from orchestrator.state import State
from shared.artifacts import ArtifactListResponse, ArtifactView
from shared.errors import error_responses

router = APIRouter(prefix="/tasks", tags=["artifacts"])
ArtifactId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=NO_NUL, description="An artifact_id the task's listing gave")
]


@router.get(
    "/{task_id}/artifacts",
    response_model=ArtifactListResponse,
    responses=error_responses(400, 404, 500, 503),
    summary="The files the task's applied attempts produced (reports, patches, data, code)",
)
async def list_artifacts(state: State, task_id: TaskId) -> ArtifactListResponse:
    artifacts = await artifact_service.list_artifacts(state.db, task_id)
    views = [
        ArtifactView(**artifact.model_dump(), download_url=artifact_service.download_path(artifact))
        for artifact in artifacts
    ]
    return ArtifactListResponse(task_id=task_id, artifacts=views)


@router.get(
    "/{task_id}/artifacts/{artifact_id}",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The artifact's content, exactly the bytes whose SHA-256 the listing gives (also its ETag)",
        },
        **error_responses(400, 404, 500, 503),
    },
    summary="Download one artifact, as an attachment of its media type",
)
async def download_artifact(state: State, task_id: TaskId, artifact_id: ArtifactId) -> FileResponse:
    store = state.lifecycle.artifact_store
    artifact, path = await artifact_service.stored_artifact(state.db, store, task_id, artifact_id)
    return FileResponse(
        path,
        media_type=artifact.media_type,
        headers={
            "ETag": f'"{artifact.sha256}"',
            "Content-Disposition": artifact_service.content_disposition(artifact.name),
            # The browser must not guess another type: an HTML report is a download, never a page of this origin.
            "X-Content-Type-Options": "nosniff",
        },
    )
