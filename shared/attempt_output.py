"""What an attempt writes is staged apart, and becomes the task's output only when its result is applied.

An agent's writes go to `{task}/.attempts/{delivery token}/` in the task's workspace; the lifecycle promotes that
folder into `{task}/output/` in the transaction that applies the attempt's completion, and removes it when the
attempt failed. The writes of an attempt that lost its offer (an agent that hung, woke up after its attempt ran
elsewhere, and went on writing) therefore never reach the output; what is left of them goes when the task ends.

Every folder below the shared workspaces folder is opened without following a symlink (`shared.nofollow`), and
promotion takes the same lock of the workspace folder as the agents' writes. While it moves them, promotion hands
each file to a keeper (the artifact store copies and hashes it), so what is recorded is what was promoted.
"""

import fcntl
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import structlog

from shared import nofollow
from shared.artifact_store import ArtifactStore
from shared.artifacts import StoredFile

log = structlog.get_logger(__name__)

OUTPUT_DIR = "output"
ATTEMPTS_DIR = ".attempts"
# Called with each staged file just before it moves: its folder's descriptor, its name, its path in output/.
Keeper = Callable[[int, str, PurePosixPath], None]


def workspace_name_problem(name: str) -> str | None:
    """Why `name` (a task id or a delivery token) cannot name a folder of the workspaces, or None when it can."""
    if name in {"", ".", ".."} or "/" in name or "\\" in name or "\x00" in name:
        return f"{name!r} cannot name a workspace folder"
    return None


@contextmanager
def locked_workspace(shared_files_dir: str | Path, task_id: str, *, create: bool = False) -> Iterator[int]:
    """A descriptor of the task's workspace folder, under the exclusive lock its writers take in turn.

    FileNotFoundError when it does not exist (and `create` is not set); SymlinkRefused when it is a symlink.
    """
    problem = workspace_name_problem(task_id)
    if problem:
        raise ValueError(problem)
    # The shared workspaces folder is the operator's and trusted; everything below it is opened without following.
    shared = Path(shared_files_dir).resolve()
    if create:
        shared.mkdir(parents=True, exist_ok=True)
    shared_fd = os.open(shared, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        root_fd = nofollow.open_directory(shared_fd, task_id, create=create)
    finally:
        os.close(shared_fd)
    try:
        fcntl.flock(root_fd, fcntl.LOCK_EX)  # released with the descriptor
        yield root_fd
    finally:
        os.close(root_fd)


def may_hold_staged(shared_files_dir: str | Path, task_id: str, token: str | None = None) -> bool:
    """Whether the attempt `token` (any attempt, without one) of the task may have staged something: a look by path
    that costs a stat, so the lifecycle goes to a thread only when there is work. Promoting and discarding open
    every folder without following, whatever this said."""
    folder = Path(shared_files_dir) / task_id / ATTEMPTS_DIR
    return os.path.lexists(folder / token if token else folder)


def promote(shared_files_dir: str | Path, task_id: str, token: str, keep: Keeper | None = None) -> int:
    """Move the files the attempt `token` staged into the task's output (replacing files of the same name), each
    handed to `keep` first, and remove its staging folder; answers how many files moved (0 when it staged none)."""
    _check_token(token)
    with (
        _missing_is_nothing(),
        locked_workspace(shared_files_dir, task_id) as root_fd,
        nofollow.walk(root_fd, [ATTEMPTS_DIR]) as attempts_fd,
    ):
        moved = _move_into_output(root_fd, attempts_fd, token, keep)
        shutil.rmtree(token, dir_fd=attempts_fd)
        return moved
    return 0


def _move_into_output(root_fd: int, attempts_fd: int, token: str, keep: Keeper | None) -> int:
    with nofollow.walk(attempts_fd, [token]) as staged_fd:
        files = [file.path for file in nofollow.regular_files(staged_fd)]
        for path in files:
            # regular_files' folder descriptors close as it moves on: each source folder is opened again.
            with (
                nofollow.walk(staged_fd, path.parent.parts) as source_fd,
                nofollow.walk(root_fd, [OUTPUT_DIR, *path.parent.parts], create=True) as target_fd,
            ):
                if keep is not None:
                    keep(source_fd, path.name, path)
                os.replace(path.name, path.name, src_dir_fd=source_fd, dst_dir_fd=target_fd)
    return len(files)


def discard(shared_files_dir: str | Path, task_id: str, token: str) -> None:
    """Remove what the attempt `token` staged, if anything."""
    _check_token(token)
    with (
        _missing_is_nothing(),
        locked_workspace(shared_files_dir, task_id) as root_fd,
        nofollow.walk(root_fd, [ATTEMPTS_DIR]) as attempts_fd,
    ):
        shutil.rmtree(token, dir_fd=attempts_fd)


def discard_all(shared_files_dir: str | Path, task_id: str) -> None:
    """Remove every attempt's staging folder of an ended task: what is left there was never applied."""
    with _missing_is_nothing(), locked_workspace(shared_files_dir, task_id) as root_fd:
        shutil.rmtree(ATTEMPTS_DIR, dir_fd=root_fd)


def _check_token(token: str) -> None:
    problem = workspace_name_problem(token)
    if problem:
        raise ValueError(problem)


@contextmanager
def _missing_is_nothing() -> Iterator[None]:
    """A workspace or staging folder that is not there holds nothing to move or remove."""
    with suppress(FileNotFoundError):
        yield


@dataclass(frozen=True)
class SettledAttempt:
    """An attempt whose result was applied: its staged output is promoted when it completed, else discarded."""

    task_id: str
    token: str
    completed: bool


def settle(
    shared_files_dir: str | Path, attempts: Sequence[SettledAttempt], store: ArtifactStore | None = None
) -> dict[str, list[StoredFile]]:
    """Promote or discard each attempt's staged output; answers, by token, the promoted files `store` kept. A
    folder the file system refuses to move is logged, since the attempt's result stands whatever becomes of its
    files."""
    kept: dict[str, list[StoredFile]] = {}
    for attempt in attempts:
        try:
            if attempt.completed:
                keep = _keeper(store, attempt.task_id, kept.setdefault(attempt.token, [])) if store else None
                promote(shared_files_dir, attempt.task_id, attempt.token, keep)
            else:
                discard(shared_files_dir, attempt.task_id, attempt.token)
        except OSError as error:
            log.error(
                "attempt_output_not_settled", task_id=attempt.task_id, completed=attempt.completed, error=str(error)
            )
    return kept


def _keeper(store: ArtifactStore, task_id: str, kept: list[StoredFile]) -> Keeper:
    def keep(folder_fd: int, name: str, path: PurePosixPath) -> None:
        stored = store.keep(task_id, folder_fd, name, path)
        if stored is not None:
            kept.append(stored)

    return keep


def discard_ended(shared_files_dir: str | Path, task_ids: Iterable[str]) -> None:
    """Remove the staging folders of tasks that ended: whatever is left there was never applied."""
    for task_id in task_ids:
        try:
            discard_all(shared_files_dir, task_id)
        except OSError as error:
            log.warning("attempt_output_not_removed", task_id=task_id, error=str(error))
