"""An attempt's context pack (seed 002 US-04): loaded from its tenant's database, validated, and materialized into
the task's workspace before the model starts.

The agent, not the orchestrator, writes the pack at the start of each attempt: the pack's files stay in PostgreSQL
(the truth), any agent on any host sharing the workspaces folder finds them, and a pack that vanished after the
task was submitted (deleted, or its rows lost) is noticed by the attempt that needs it: the attempt fails, not
retryable (no other agent would find the pack either), with an error naming the pack.

The files go to `{task}/context/` (shared.models.CONTEXT_DIR) under the workspace's lock, every folder opened
without following a symlink (shared.nofollow), and are made read-only; the model reads them with read_file
(`context/src/app.py`) and can write only to `output/`. An attempt finding them already there checks them byte for
byte and rewrites them only when they differ.
"""

import asyncio
import hashlib
import os
import shutil
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import structlog

from shared import nofollow
from shared.attempt_output import locked_workspace
from shared.context_packs import ContextManifest, InvalidPack, PackFile, check_pack, pack_digest
from shared.database import DatabaseManager
from shared.models import CONTEXT_DIR, TaskExecutionRequest

log = structlog.get_logger(__name__)

READ_ONLY = 0o444


class ContextPackUnavailable(Exception):
    """The attempt's pack cannot be used: the message names it and says why (the attempt fails with it)."""


@dataclass(frozen=True)
class LoadedContextPack:
    context_pack_id: str
    manifest: ContextManifest
    files: list[PackFile]
    path: Path  # where the files are, on this host


async def prepare_context_pack(
    db: DatabaseManager, shared_files_dir: str | Path, request: TaskExecutionRequest
) -> LoadedContextPack | None:
    """The attempt's pack, materialized in its task's workspace; None when the task names none."""
    if request.context_pack is None:
        return None
    pack_id = request.context_pack.context_pack_id
    repos = db.repositories()
    detail = await repos.context_packs.get_pack(pack_id)
    files = await repos.context_packs.get_files(pack_id) if detail is not None else None
    if detail is None or files is None:
        raise ContextPackUnavailable(
            f"context pack {pack_id} of task {request.task_id} no longer exists: it was deleted after the task was "
            "submitted; upload the pack again and submit the task with its new context_pack_id"
        )
    try:
        files = check_pack(files, detail.manifest)
    except InvalidPack as error:
        raise ContextPackUnavailable(f"context pack {pack_id} is invalid: {error}") from None
    if pack_digest(files) != detail.sha256:
        raise ContextPackUnavailable(f"context pack {pack_id} does not match its SHA-256: its stored files changed")
    try:
        path = await asyncio.to_thread(materialize, shared_files_dir, request.task_id, files)
    except OSError as error:
        raise ContextPackUnavailable(
            f"context pack {pack_id} could not be written into the task's workspace: {error}"
        ) from None
    log.info("context_pack_loaded", context_pack_id=pack_id, files=len(files), path=str(path))
    return LoadedContextPack(pack_id, detail.manifest, files, path)


def materialize(shared_files_dir: str | Path, task_id: str, files: list[PackFile]) -> Path:
    """Write the pack's files into the task's `context/` folder unless they are there already; its path."""
    with locked_workspace(shared_files_dir, task_id, create=True) as root_fd:
        if not _already_there(root_fd, files):
            with suppress(FileNotFoundError):
                shutil.rmtree(CONTEXT_DIR, dir_fd=root_fd)
            for file in files:
                _write_read_only(root_fd, PurePosixPath(CONTEXT_DIR, file.path), file.content)
    return Path(shared_files_dir).resolve() / task_id / CONTEXT_DIR


def _already_there(root_fd: int, files: list[PackFile]) -> bool:
    try:
        with nofollow.walk(root_fd, [CONTEXT_DIR]) as context_fd:
            on_disk = {file.path.as_posix(): file.size for file in nofollow.regular_files(context_fd)}
            if on_disk != {file.path: len(file.content) for file in files}:
                return False
            return all(_digest_on_disk(context_fd, PurePosixPath(file.path)) == file.sha256 for file in files)
    except (FileNotFoundError, nofollow.SymlinkRefused, nofollow.HardLinkRefused, nofollow.NotRegularFile):
        return False


def _digest_on_disk(folder_fd: int, relative: PurePosixPath) -> str:
    with (
        nofollow.walk(folder_fd, relative.parts[:-1]) as parent_fd,
        nofollow.opened_file(parent_fd, relative.name) as descriptor,
    ):
        digest = hashlib.sha256()
        while chunk := os.read(descriptor, nofollow.READ_CHUNK_BYTES):
            digest.update(chunk)
        return digest.hexdigest()


def _write_read_only(root_fd: int, relative: PurePosixPath, content: bytes) -> None:
    with nofollow.walk(root_fd, relative.parts[:-1], create=True) as folder_fd:
        nofollow.replace_file(folder_fd, relative.name, content)
        with nofollow.opened_file(folder_fd, relative.name) as descriptor:
            os.fchmod(descriptor, READ_ONLY)
