"""A task's workspace, `shared_files/{task_id}/`, and what one attempt's tools may do in it.

Reads may reach any regular file inside the workspace, writes only the task's `output/` folder and only within the
workspace's quotas. An attempt's writes are staged in a folder of its own until its result is applied
(`shared.attempt_output`); it reads its own staged files in place of the output's. Paths are opened component by
component from the workspace folder's descriptor, never following a symlink (`shared.nofollow`): `..`, absolute
paths and symlinks anywhere in a path are refused, and a symlink swapped in after a check cannot redirect an open.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent.tools.errors import ToolError
from shared import nofollow, workspace_paths
from shared.attempt_output import ATTEMPTS_DIR, OUTPUT_DIR, locked_workspace, workspace_name_problem

STRUCTURAL_FOLDERS = {PurePosixPath("."), PurePosixPath(OUTPUT_DIR), PurePosixPath(ATTEMPTS_DIR)}


@dataclass(frozen=True)
class WorkspaceQuota:
    """Most bytes, and most files and folders, the whole workspace (inputs and output) may hold after a write."""

    max_bytes: int
    max_files: int

    def check(
        self, usage: dict[PurePosixPath, int], folders: int, target: PurePosixPath, size: int, shown: PurePosixPath
    ) -> None:
        """Refuse writing `size` bytes to `target` (`shown` to the model) when the workspace, whose files are `usage`
        beside `folders` folders, would pass a limit. Folders count as entries: empty ones would otherwise fill the
        disk for free."""
        held_bytes, held_entries = sum(usage.values()), len(usage) + folders
        replaced = usage.get(target)
        if held_entries + (replaced is None) > self.max_files:
            raise ToolError(
                f"the task's workspace holds {len(usage)} files and {folders} folders; writing {shown} would pass "
                f"its limit of {self.max_files} (the setting AGENT_WORKSPACE_MAX_FILES raises it)"
            )
        if held_bytes - (replaced or 0) + size > self.max_bytes:
            raise ToolError(
                f"the task's workspace holds {held_bytes} bytes; writing {size} bytes to {shown} would pass its "
                f"limit of {self.max_bytes} bytes (the setting AGENT_WORKSPACE_MAX_BYTES raises it)"
            )


class Workspace:
    """The workspace as one attempt (`attempt_token`: its offer's delivery token) sees it."""

    def __init__(self, shared_files_dir: str | Path, task_id: str, attempt_token: str) -> None:
        problem = workspace_name_problem(task_id) or workspace_name_problem(attempt_token)
        if problem:
            raise ValueError(problem)
        self._shared_files_dir = shared_files_dir
        self._task_id = task_id
        self.root = Path(shared_files_dir).resolve() / task_id
        self.output = self.root / OUTPUT_DIR
        self.staged = self.root / ATTEMPTS_DIR / attempt_token  # this attempt's writes, until its result applies
        self._staged_parts = (ATTEMPTS_DIR, attempt_token)

    def create(self) -> None:
        try:
            with self.opened_root(create=True) as root_fd:
                os.close(nofollow.open_directory(root_fd, OUTPUT_DIR, create=True))
        except nofollow.SymlinkRefused as error:
            raise ValueError(
                f"{error.filename!r} of the workspace {self.root} is a symlink; refusing to use it"
            ) from None

    @contextmanager
    def opened_root(self, *, create: bool = False) -> Iterator[int]:
        """A descriptor of the workspace folder, locked against other writers; SymlinkRefused when it is a
        symlink."""
        with locked_workspace(self._shared_files_dir, self._task_id, create=create) as root_fd:
            yield root_fd

    @contextmanager
    def opened_staged(self, root_fd: int) -> Iterator[int]:
        """A descriptor of this attempt's staged output folder, made when missing, in the opened workspace."""
        with nofollow.walk(root_fd, self._staged_parts, create=True) as staged_fd:
            yield staged_fd

    def read(self, path: str, max_bytes: int) -> bytes:
        """The content of the regular file `path` (relative to the workspace root), at most `max_bytes` of it: this
        attempt's staged file where it wrote one, else the workspace's."""
        relative = _relative(path)
        if relative.parts[0] == ATTEMPTS_DIR:
            raise ToolError(f"{_shown(path)} is refused: {ATTEMPTS_DIR}/ holds other attempts' unfinished output")
        with _as_tool_errors(path, "read"), self.opened_root() as root_fd:
            staged = self._staged_path(relative)
            if staged is not None:
                with suppress(FileNotFoundError):
                    return _read_file(root_fd, staged, path, max_bytes)
            return _read_file(root_fd, relative, path, max_bytes)

    def write(self, path: str, data: bytes, quota: WorkspaceQuota) -> str:
        """Replace `path` of `output/` with `data` in this attempt's staged output, within `quota`; answers the path
        it will have in the workspace once the attempt's result is applied.

        `report.md` and `output/report.md` are the same file. Writers of one workspace, in any process of this
        host, take turns on an exclusive flock of the workspace folder, so the quota holds when they race.
        """
        target = _output_path(path)
        staged = PurePosixPath(*self._staged_parts, *target.parts[1:])
        with _as_tool_errors(path, "write"), self.opened_root(create=True) as root_fd:
            usage = {file.path: file.size for file in nofollow.regular_files(root_fd)}
            folders = sum(1 for folder in nofollow.folder_paths(root_fd) if not _is_structural(folder))
            quota.check(usage, folders, staged, len(data), shown=target)
            with nofollow.walk(root_fd, staged.parts[:-1], create=True) as folder_fd:
                nofollow.replace_file(folder_fd, staged.name, data)
        return target.as_posix()

    def _staged_path(self, relative: PurePosixPath) -> PurePosixPath | None:
        """Where this attempt stages `relative` when it names a file of the output, else None."""
        if relative.parts[0] != OUTPUT_DIR or len(relative.parts) < 2:
            return None
        return PurePosixPath(*self._staged_parts, *relative.parts[1:])


def _is_structural(folder: PurePosixPath) -> bool:
    """Whether every workspace has this folder, which then counts toward no quota: the workspace itself, output/,
    and the attempts' staging folders (their contents count)."""
    return folder in STRUCTURAL_FOLDERS or folder.parent == PurePosixPath(ATTEMPTS_DIR)


def _read_file(root_fd: int, relative: PurePosixPath, path: str, max_bytes: int) -> bytes:
    with (
        nofollow.walk(root_fd, relative.parts[:-1]) as folder_fd,
        nofollow.opened_file(folder_fd, relative.name) as descriptor,
    ):
        size = os.fstat(descriptor).st_size
        data = b"" if size > max_bytes else nofollow.read_at_most(descriptor, max_bytes + 1)
    size = max(size, len(data))  # the file may have grown since fstat
    if size > max_bytes:
        raise ToolError(f"{_shown(path)} is {size} bytes; the limit is {max_bytes}")
    return data


@contextmanager
def _as_tool_errors(path: str, action: str) -> Iterator[None]:
    """The OS's refusals of `action` on `path` as ToolErrors the model can act on."""
    try:
        yield
    except nofollow.SymlinkRefused as error:
        raise ToolError(
            f"{_shown(path)} is refused: {error.filename!r} is a symlink, and the task's workspace allows none"
        ) from None
    except nofollow.HardLinkRefused:
        raise ToolError(f"{_shown(path)} is refused: it has other hard links, and may be a file from outside") from None
    except FileNotFoundError:
        raise ToolError(f"no such file in the task's workspace: {_shown(path)}") from None
    except IsADirectoryError:
        raise ToolError(f"{_shown(path)} is a folder, not a file") from None
    except OSError as error:
        raise ToolError(f"cannot {action} {_shown(path)}: {error.strerror or error}") from None


def _output_path(path: str) -> PurePosixPath:
    relative = _relative(path)
    if relative.parts[0] == OUTPUT_DIR:
        relative = PurePosixPath(*relative.parts[1:])
    if not relative.parts:
        raise ToolError(f"{_shown(path)} names the output folder, not a file")
    return OUTPUT_DIR / relative


def _relative(path: str) -> PurePosixPath:
    try:
        return workspace_paths.relative_path(path)
    except workspace_paths.UnsafePath as error:
        raise ToolError(str(error)) from None


_shown = workspace_paths.shown
