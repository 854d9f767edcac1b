"""A task's workspace, `shared_files/{task_id}/`, and what tools may do in it.

Reads may reach any regular file inside the workspace, writes only its `output/` folder and only within the
workspace's quotas. Paths are opened component by component from the workspace folder's descriptor, never following
a symlink (`agent.tools.nofollow`): `..`, absolute paths and symlinks anywhere in a path are refused, and a symlink
swapped in after a check cannot redirect an open.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent.tools import nofollow
from agent.tools.errors import ToolError

OUTPUT_DIR = "output"
MAX_NAME_BYTES = 255  # NAME_MAX of Linux file systems
MAX_PATH_BYTES = 1024
MAX_PATH_DEPTH = 32
SHOWN_PATH_CHARS = 80


def workspace_name_problem(task_id: str) -> str | None:
    """Why `task_id` cannot name a workspace folder, or None when it can."""
    if task_id in {".", ".."} or "/" in task_id or "\\" in task_id or "\x00" in task_id:
        return f"task id {task_id!r} cannot name a workspace folder"
    return None


@dataclass(frozen=True)
class WorkspaceQuota:
    """Most bytes, and most files and folders, the whole workspace (inputs and output) may hold after a write."""

    max_bytes: int
    max_files: int

    def check(self, usage: dict[PurePosixPath, int], folders: int, target: PurePosixPath, size: int) -> None:
        """Refuse writing `size` bytes to `target` when the workspace, whose files are `usage` beside `folders`
        folders, would pass a limit. Folders count as entries: empty ones would otherwise fill the disk for free."""
        held_bytes, held_entries = sum(usage.values()), len(usage) + folders
        replaced = usage.get(target)
        if held_entries + (replaced is None) > self.max_files:
            raise ToolError(
                f"the task's workspace holds {len(usage)} files and {folders} folders; writing {target} would pass "
                f"its limit of {self.max_files} (the setting AGENT_WORKSPACE_MAX_FILES raises it)"
            )
        if held_bytes - (replaced or 0) + size > self.max_bytes:
            raise ToolError(
                f"the task's workspace holds {held_bytes} bytes; writing {size} bytes to {target} would pass its "
                f"limit of {self.max_bytes} bytes (the setting AGENT_WORKSPACE_MAX_BYTES raises it)"
            )


class Workspace:
    def __init__(self, shared_files_dir: str | Path, task_id: str) -> None:
        problem = workspace_name_problem(task_id)
        if problem:
            raise ValueError(problem)
        # The shared_files folder is the operator's and trusted; everything below it is opened without following.
        self.root = Path(shared_files_dir).resolve() / task_id
        self.output = self.root / OUTPUT_DIR

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
        """A descriptor of the workspace folder; SymlinkRefused when it is a symlink."""
        if create:
            self.root.parent.mkdir(parents=True, exist_ok=True)
        shared_fd = os.open(self.root.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            root_fd = nofollow.open_directory(shared_fd, self.root.name, create=create)
        finally:
            os.close(shared_fd)
        try:
            yield root_fd
        finally:
            os.close(root_fd)

    def read(self, path: str, max_bytes: int) -> bytes:
        """The content of the regular file `path` (relative to the workspace root), at most `max_bytes` of it."""
        relative = _relative(path)
        with (
            _as_tool_errors(path, "read"),
            self.opened_root() as root_fd,
            nofollow.walk(root_fd, relative.parts[:-1]) as folder_fd,
            nofollow.opened_file(folder_fd, relative.name) as descriptor,
        ):
            size = os.fstat(descriptor).st_size
            data = b"" if size > max_bytes else nofollow.read_at_most(descriptor, max_bytes + 1)
        size = max(size, len(data))  # the file may have grown since fstat
        if size > max_bytes:
            raise ToolError(f"{_shown(path)} is {size} bytes; the limit is {max_bytes}")
        return data

    def write(self, path: str, data: bytes, quota: WorkspaceQuota) -> str:
        """Replace `path` inside `output/` with `data`, within `quota`; answers the path relative to the root.

        `report.md` and `output/report.md` are the same file. Writers of one workspace, in any process of this
        host, take turns on an exclusive flock of the workspace folder, so the quota holds when they race.
        """
        target = _output_path(path)
        with _as_tool_errors(path, "write"), self.opened_root(create=True) as root_fd:
            fcntl.flock(root_fd, fcntl.LOCK_EX)  # released when opened_root closes the descriptor
            usage = {file.path: file.size for file in nofollow.regular_files(root_fd)}
            folders = nofollow.count_folders(root_fd) - 1  # output/ itself is always there
            quota.check(usage, folders, target, len(data))
            with nofollow.walk(root_fd, target.parts[:-1], create=True) as folder_fd:
                nofollow.replace_file(folder_fd, target.name, data)
        return target.as_posix()


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
    if not path.strip():
        raise ToolError("the path is empty")
    if "\x00" in path:
        raise ToolError("the path contains a NUL character")
    length = len(_utf8(path))
    if length > MAX_PATH_BYTES:
        raise ToolError(f"the path is {length} bytes long in UTF-8; the limit is {MAX_PATH_BYTES} bytes")
    relative = PurePosixPath(path)
    if relative.is_absolute():
        raise ToolError(f"absolute paths are refused ({_shown(path)}); use a path relative to the task's workspace")
    if ".." in relative.parts:
        raise ToolError(f"'..' is refused in paths ({_shown(path)})")
    if not relative.parts:
        raise ToolError(f"{_shown(path)} names the workspace folder, not a file")
    if len(relative.parts) > MAX_PATH_DEPTH:
        raise ToolError(f"{_shown(path)} has {len(relative.parts)} parts; the limit is {MAX_PATH_DEPTH}")
    for name in relative.parts:
        if len(_utf8(name)) > MAX_NAME_BYTES:
            raise ToolError(
                f"the name {_shown(name)} is {len(_utf8(name))} bytes long in UTF-8; the limit of a file or "
                f"folder name is {MAX_NAME_BYTES} bytes"
            )
    return relative


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON can carry
        raise ToolError(f"{_shown(text)} is not valid Unicode text") from None


def _shown(path: str) -> str:
    """`path` quoted for a message, shortened when long."""
    if len(path) <= SHOWN_PATH_CHARS:
        return repr(path)
    return f"{path[:SHOWN_PATH_CHARS]!r}... ({len(path)} characters)"
