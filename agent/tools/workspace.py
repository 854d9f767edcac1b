"""A task's workspace, `shared_files/{task_id}/`, and the only paths tools may touch in it.

Reads may reach anything inside the workspace, writes only its `output/` folder. A path is resolved (following
symlinks) before it is checked, so `..`, absolute paths and symlinks pointing outside are all refused.
"""

from pathlib import Path, PurePosixPath

from agent.tools.errors import ToolError

OUTPUT_DIR = "output"


def workspace_name_problem(task_id: str) -> str | None:
    """Why `task_id` cannot name a workspace folder, or None when it can."""
    if task_id in {".", ".."} or "/" in task_id or "\\" in task_id or "\x00" in task_id:
        return f"task id {task_id!r} cannot name a workspace folder"
    return None


class Workspace:
    def __init__(self, shared_files_dir: str | Path, task_id: str) -> None:
        problem = workspace_name_problem(task_id)
        if problem:
            raise ValueError(problem)
        # Resolved once, so `root` is canonical: a path is inside it exactly when its resolved form is.
        self.root = Path(shared_files_dir).resolve() / task_id
        self.output = self.root / OUTPUT_DIR

    def create(self) -> None:
        if self.root.is_symlink() or self.output.is_symlink():
            raise ValueError(f"the workspace {self.root} is a symlink; refusing to use it")
        self.output.mkdir(parents=True, exist_ok=True)

    def readable(self, path: str) -> Path:
        """The file `path` (relative to the workspace root) names, if it stays inside the workspace."""
        resolved = (self.root / _relative(path)).resolve()
        if not resolved.is_relative_to(self.root):
            raise ToolError(f"{path!r} resolves outside the task's workspace")
        if not resolved.is_file():
            raise ToolError(f"no such file in the task's workspace: {path!r}")
        return resolved

    def writable(self, path: str) -> Path:
        """Where a write of `path` goes: inside `output/`; `report.md` and `output/report.md` are the same file."""
        relative = _relative(path)
        if relative.parts[0] == OUTPUT_DIR:
            relative = PurePosixPath(*relative.parts[1:])
        if not relative.parts:
            raise ToolError(f"{path!r} names the output folder, not a file")
        resolved = (self.output / relative).resolve()
        if not resolved.is_relative_to(self.output):
            raise ToolError(f"{path!r} resolves outside the task's output folder")
        if resolved.is_dir():
            raise ToolError(f"{path!r} is a folder")
        return resolved

    def display(self, path: Path) -> str:
        """`path` relative to the workspace root, as the model should refer to it."""
        return path.relative_to(self.root).as_posix()


def _relative(path: str) -> PurePosixPath:
    if not path.strip() or "\x00" in path:
        raise ToolError("the path is empty or contains a NUL character")
    relative = PurePosixPath(path)
    if relative.is_absolute():
        raise ToolError(f"absolute paths are refused ({path!r}); use a path relative to the task's workspace")
    if ".." in relative.parts:
        raise ToolError(f"'..' is refused in paths ({path!r})")
    return relative
