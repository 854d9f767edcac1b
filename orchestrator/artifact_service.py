"""What the artifact endpoints do: list a task's artifacts and find one's stored content, within the tenant."""

import re
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from shared.artifact_store import ArtifactStore
from shared.artifacts import Artifact
from shared.database import DatabaseManager
from shared.errors import NotFoundError

UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._ -]")
MAX_FILENAME_CHARS = 120


def download_path(artifact: Artifact) -> str:
    """Where the API serves the artifact's content, relative to its base URL."""
    return f"/tasks/{quote(artifact.task_id, safe='')}/artifacts/{quote(artifact.artifact_id, safe='')}"


async def list_artifacts(db: DatabaseManager, task_id: str) -> list[Artifact]:
    """The task's artifacts, newest last; 404 for a task that is not this tenant's."""
    repos = db.repositories()
    if not await repos.tasks.task_exists(task_id):
        raise NotFoundError(f"no task with id {task_id!r}")
    return await repos.artifacts.list_for_task(task_id)


async def stored_artifact(
    db: DatabaseManager, store: ArtifactStore, task_id: str, artifact_id: str
) -> tuple[Artifact, Path]:
    """The artifact and the file holding its content; 404 for an unknown id, another tenant's task or a task
    that did not make it."""
    artifact = await db.repositories().artifacts.get(task_id, artifact_id)
    if artifact is None:
        raise NotFoundError(f"task {task_id!r} has no artifact {artifact_id!r}")
    path = store.path_of(artifact.task_id, artifact.sha256)
    if not path.is_file():
        raise NotFoundError(f"the content of artifact {artifact_id!r} is no longer stored (ARTIFACTS_DIR was emptied)")
    return artifact, path


def content_disposition(name: str) -> str:
    """An attachment header naming the file by its last path part: a plain ASCII `filename` any client takes
    (quotes, controls and separators cannot reach the header) and the exact name as RFC 6266 `filename*`."""
    last = PurePosixPath(name).name
    if not last.strip(". "):
        last = "artifact"
    plain = UNSAFE_FILENAME_CHARS.sub("_", last).lstrip(". ")[:MAX_FILENAME_CHARS] or "artifact"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(last, safe='')}"
