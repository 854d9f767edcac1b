"""The orchestrator's copy of each artifact's content, addressed by its SHA-256: `{ARTIFACTS_DIR}/{task}/{sha256}`.

Promotion moves an attempt's files into the task's shared `output/`, where a later subtask writing the same name
replaces them; a download must still return the bytes whose hash was recorded. So while promoting, the lifecycle
copies each file here, hashing the very bytes it copies. A stored file is never written again: it is made under a
temporary name, made read-only and renamed to its hash, and content already there under that hash is kept.

Why a folder of the orchestrator's rather than the workspace or PostgreSQL: no tool, agent or sandboxed command
reaches ARTIFACTS_DIR (agents mount only the workspaces), so nothing a model does can change a stored artifact,
and the copies do not count against the agents' workspace quotas; bytea would put up to a whole workspace
(AGENT_WORKSPACE_MAX_BYTES) per attempt into the memory of the transaction that applies a batch of 64 results,
where a copy streams. What it holds is bounded by those quotas: each applied completion promotes at most a
workspace's worth, a task has at most MAX_SUBTASKS_PER_TASK planned subtasks (and its follow-ups), and equal
contents are stored once per task.
"""

import hashlib
import os
import stat
import uuid
from pathlib import Path, PurePosixPath

import structlog

from shared import nofollow
from shared.artifacts import StoredFile, artifact_type, media_type

log = structlog.get_logger(__name__)

CHUNK_BYTES = 1 << 20
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP


class ArtifactStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_of(self, task_id: str, sha256: str) -> Path:
        return self.root / task_id / sha256

    def keep(self, task_id: str, folder_fd: int, name: str, shown_name: PurePosixPath) -> StoredFile | None:
        """Copy the staged file `name` of `folder_fd` (`shown_name` in the output) into the store; None, logged,
        when it cannot be kept: a file with other hard links may be a host file linked in, and is never copied."""
        try:
            with nofollow.opened_file(folder_fd, name) as descriptor:
                sha256, size = self._copy(task_id, descriptor)
            with self.path_of(task_id, sha256).open("rb") as content:
                kind = artifact_type(shown_name.as_posix(), content, size)
        except OSError as error:
            log.error("artifact_not_kept", task_id=task_id, name=shown_name.as_posix(), error=str(error))
            return None
        return StoredFile(
            name=_text(shown_name), type=kind, media_type=media_type(shown_name.name), size=size, sha256=sha256
        )

    def _copy(self, task_id: str, descriptor: int) -> tuple[str, int]:
        folder = self.root / task_id
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".partial-{uuid.uuid4().hex}"
        digest, size = hashlib.sha256(), 0
        try:
            with partial.open("xb") as copy:
                while chunk := os.read(descriptor, CHUNK_BYTES):
                    digest.update(chunk)
                    copy.write(chunk)
                    size += len(chunk)
                copy.flush()
                os.fsync(copy.fileno())  # the row that names it commits next: the bytes must outlive a crash
            partial.chmod(READ_ONLY)
            sha256 = digest.hexdigest()
            stored = self.path_of(task_id, sha256)
            if stored.exists():
                partial.unlink()  # the same bytes are there already, and stay as they are
            else:
                partial.rename(stored)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return sha256, size


def _text(name: PurePosixPath) -> str:
    """The name as text PostgreSQL takes: a name that is not UTF-8 (a sandboxed command can make one) keeps its
    undecodable bytes as \\x escapes."""
    return os.fsencode(name.as_posix()).decode("utf-8", errors="backslashreplace")
