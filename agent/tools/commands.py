"""run_command: the code role runs python, pytest or ruff on what it wrote, inside the sandbox (agent/tools/sandbox.py).

The command sees the task's workspace read-only at /workspace and works in /output, which is this attempt's staged
output: what write_file wrote is there, and what the command writes there becomes the task's output with the
attempt's result, like write_file's files. The sandbox, not this module, is what keeps the command in; this module
only picks the interpreter, hands the folders over as descriptors, stops a command whose output passes the
workspace's quota while it runs (so it cannot fill the disk until its timeout), and afterwards holds the command's
writes to the quota, removes its symlinks and takes set-user-ID bits off its files (they are the agent user's on
the host).
"""

import asyncio
import importlib.util
import os
import stat
import sys
from collections.abc import Generator, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any

import structlog

from agent.tools.audit import ToolSpec, object_schema
from agent.tools.context import ToolContext
from agent.tools.errors import ToolError
from agent.tools.sandbox import OUTPUT_MOUNT, WORKSPACE_MOUNT, BwrapSandbox, SandboxStartFailed, SandboxUnavailable
from agent.tools.workspace import Workspace, WorkspaceQuota
from shared import nofollow
from shared.config import Settings

log = structlog.get_logger(__name__)

# Each program and the interpreter arguments that start it; a module runs only when this agent has it installed.
PROGRAM_MODULES: dict[str, str | None] = {"python": None, "pytest": "pytest", "ruff": "ruff"}
MAX_ARGUMENTS = 64
MAX_ARGUMENT_CHARS = 4096
PRIVILEGE_BITS = stat.S_ISUID | stat.S_ISGID

FileState = tuple[int, int, int]  # inode, size, modification time: a file the command left as it was keeps all three


@dataclass(frozen=True)
class OutputSnapshot:
    files: dict[PurePosixPath, FileState]
    folders: frozenset[PurePosixPath]


async def run_command(context: ToolContext, arguments: dict[str, Any]) -> str:
    command = sandboxed_command(str(arguments["program"]), arguments.get("args", []))
    if context.settings.code_sandbox == "off":  # the tool is not offered then; a role built by hand gets this
        raise ToolError("run_command is off on this agent (CODE_SANDBOX=off)")
    try:
        sandbox = BwrapSandbox.from_settings(context.settings)
    except SandboxUnavailable as error:
        raise ToolError(f"the sandbox is unavailable on this agent: {error}") from None
    workspace = context.workspace
    settings = context.settings
    quota = WorkspaceQuota(settings.agent_workspace_max_bytes, settings.agent_workspace_max_files)
    with _command_folders(workspace) as (workspace_fd, output_fd, before):
        try:
            run = await sandbox.run(
                command,
                workspace_fd=workspace_fd,
                output_fd=output_fd,
                stop_when=lambda: _output_past_quota(output_fd, quota),
            )
        except SandboxStartFailed as error:
            raise ToolError(f"the sandbox did not start: {error}") from None
        finally:
            over_quota = await asyncio.to_thread(_settle_writes, workspace, before, quota)
    return replace(run, writes_discarded=over_quota).as_json()


def sandboxed_command(program: str, args: object) -> list[str]:
    """The command line of `program` with `args`, or a ToolError the model can act on."""
    if program not in PROGRAM_MODULES:
        raise ToolError(f"{program!r} is not a program run_command runs; it runs {', '.join(PROGRAM_MODULES)}")
    module = PROGRAM_MODULES[program]
    if module is not None and importlib.util.find_spec(module) is None:
        raise ToolError(f"{program} is not installed on this agent")
    if not isinstance(args, list) or not all(isinstance(item, str) for item in args):
        raise ToolError("args must be a list of strings")
    if len(args) > MAX_ARGUMENTS:
        raise ToolError(f"{len(args)} arguments; the limit is {MAX_ARGUMENTS}")
    for item in args:
        if len(item) > MAX_ARGUMENT_CHARS or "\x00" in item:
            raise ToolError(f"an argument is longer than {MAX_ARGUMENT_CHARS} characters or holds a NUL character")
    return [sys.executable, *(("-m", module) if module else ()), *args]


@contextmanager
def _command_folders(workspace: Workspace) -> Iterator[tuple[int, int, OutputSnapshot]]:
    """Descriptors of the workspace and of this attempt's staged output (made when missing), and what the output
    held before the command. The workspace lock is held only while they open: a command runs for seconds."""
    try:
        with workspace.opened_root(create=True) as root_fd, workspace.opened_staged(root_fd) as staged_fd:
            # Opened afresh, not dup()ed: a duplicate of the root's descriptor would hold its lock for the run.
            workspace_fd, output_fd = _reopened(root_fd), _reopened(staged_fd)
            before = _snapshot(staged_fd)
    except (OSError, ValueError) as error:
        raise ToolError(f"the task's workspace cannot be opened: {error}") from None
    try:
        yield workspace_fd, output_fd, before
    finally:
        os.close(workspace_fd)
        os.close(output_fd)


def _reopened(folder_fd: int) -> int:
    return os.open(".", nofollow.DIRECTORY_FLAGS, dir_fd=folder_fd)


def _snapshot(staged_fd: int) -> OutputSnapshot:
    files = {}
    for file in nofollow.regular_files(staged_fd):
        found = os.stat(file.path.name, dir_fd=file.folder_fd, follow_symlinks=False)
        files[file.path] = (found.st_ino, found.st_size, found.st_mtime_ns)
    return OutputSnapshot(files, frozenset(nofollow.folder_paths(staged_fd)))


def _output_past_quota(output_fd: int, quota: WorkspaceQuota) -> str | None:
    """Why the running command must stop: its output folder alone holds more than the whole workspace may. The
    exact check comes after the command (_settle_writes); this one keeps a command writing without end from filling
    the disk, or its inodes (every entry counts, symlinks too), until its timeout. It stops counting at the limit."""
    held_bytes, held_entries = 0, 0
    entries = _entries(output_fd)
    try:
        for _folder_fd, entry in entries:
            with suppress(OSError):  # the command may remove it meanwhile
                held_bytes += 0 if entry.is_dir(follow_symlinks=False) else entry.stat(follow_symlinks=False).st_size
            held_entries += 1
            if held_bytes > quota.max_bytes or held_entries > quota.max_files:
                return (
                    f"its output folder passed the workspace's limits of {quota.max_bytes} bytes and "
                    f"{quota.max_files} files and folders while it ran"
                )
    finally:
        entries.close()  # closes the folders it holds open
    return None


def _remove_irregular(staged_fd: int) -> None:
    """Remove what the command made that is neither a file nor a folder (symlinks, FIFOs, sockets): nothing else
    makes them, no tool reads them, promotion leaves them out, and they would count against no quota."""
    for folder_fd, entry in _entries(staged_fd):
        with suppress(OSError):
            if not entry.is_dir(follow_symlinks=False) and not entry.is_file(follow_symlinks=False):
                os.unlink(entry.name, dir_fd=folder_fd)


def _entries(root_fd: int) -> Generator[tuple[int, os.DirEntry[str]], None, None]:
    """Every entry under `root_fd` with its folder's descriptor, symlinks not followed; one descriptor open per
    level of the folder it is in, however many folders there are, and no recursion however deep they go."""
    opened: list[tuple[int, os._ScandirIterator[str]]] = []  # a local annotation: never evaluated
    try:
        root = _reopened(root_fd)
        opened.append((root, os.scandir(root)))
        while opened:
            folder_fd, entries = opened[-1]
            entry = next(entries, None)
            if entry is None:
                opened.pop()
                os.close(folder_fd)
                continue
            yield folder_fd, entry
            with suppress(OSError):  # the command may remove or replace it meanwhile
                if entry.is_dir(follow_symlinks=False):
                    subfolder = os.open(entry.name, nofollow.DIRECTORY_FLAGS, dir_fd=folder_fd)
                    opened.append((subfolder, os.scandir(subfolder)))
    finally:
        for folder_fd, entries in opened:
            entries.close()
            os.close(folder_fd)


def _settle_writes(workspace: Workspace, before: OutputSnapshot, quota: WorkspaceQuota) -> str | None:
    """Remove the symlinks and other irregular entries the command made, take set-user-ID and set-group-ID bits
    off the staged files, and when the workspace now passes its quota, remove what the command wrote; answers why it
    was removed, or None."""
    with workspace.opened_root() as root_fd, workspace.opened_staged(root_fd) as staged_fd:
        _remove_irregular(staged_fd)
        usage = {file.path: file.size for file in nofollow.regular_files(root_fd)}
        entries = len(usage) + sum(1 for _ in nofollow.folder_paths(root_fd))
        written = _strip_privileges_and_list_writes(staged_fd, before)
        held = sum(usage.values())
        if held <= quota.max_bytes and entries <= quota.max_files:
            return None
        _remove(staged_fd, written, before)
    return (
        f"the workspace held {held} bytes in {entries} files and folders after the command, past its limits of "
        f"{quota.max_bytes} bytes and {quota.max_files} entries: the {len(written)} files the command wrote were "
        "removed"
    )


def _strip_privileges_and_list_writes(staged_fd: int, before: OutputSnapshot) -> list[PurePosixPath]:
    written = []
    for file in nofollow.regular_files(staged_fd):
        name = file.path.name
        found = os.stat(name, dir_fd=file.folder_fd, follow_symlinks=False)
        if found.st_mode & PRIVILEGE_BITS:
            descriptor = os.open(name, nofollow.FILE_FLAGS, dir_fd=file.folder_fd)
            try:
                os.fchmod(descriptor, stat.S_IMODE(found.st_mode) & ~PRIVILEGE_BITS)
            finally:
                os.close(descriptor)
        if before.files.get(file.path) != (found.st_ino, found.st_size, found.st_mtime_ns):
            written.append(file.path)
    return written


def _remove(staged_fd: int, written: list[PurePosixPath], before: OutputSnapshot) -> None:
    for path in written:
        with nofollow.walk(staged_fd, path.parent.parts) as folder_fd:
            os.unlink(path.name, dir_fd=folder_fd)
    new_folders = sorted(set(nofollow.folder_paths(staged_fd)) - before.folders, key=lambda p: -len(p.parts))
    for folder in new_folders:
        # Not empty: something else than a regular file is in it, and it stays.
        with nofollow.walk(staged_fd, folder.parent.parts) as parent_fd, suppress(OSError):
            os.rmdir(folder.name, dir_fd=parent_fd)


RUN_COMMAND = ToolSpec(
    name="run_command",
    description=(
        "Run python, pytest or ruff in a sandbox without network, e.g. {'program': 'pytest', 'args': ['-q']}. "
        f"It works in {OUTPUT_MOUNT}, your output folder (the files you wrote with write_file are there; what "
        f"it writes there is saved with them); the task's workspace is read-only at {WORKSPACE_MOUNT}. Time, CPU, "
        "memory and file sizes are limited. Answers JSON: exit_code, timed_out, duration_seconds, and the ends of "
        "stdout and stderr."
    ),
    input_schema=object_schema(
        {
            "program": {"type": "string", "enum": list(PROGRAM_MODULES), "description": "The program to run"},
            "args": {
                "type": "array",
                "items": {"type": "string"},
                "maxItems": MAX_ARGUMENTS,
                "description": "Its arguments, e.g. ['-q', 'test_app.py'] or ['check', '.']",
            },
        },
        ["program"],
    ),
    function=run_command,
)


def sandbox_problem(settings: Settings) -> str | None:
    """Why run_command cannot be offered on this host (CODE_SANDBOX=off, or a sandbox that does not start), or
    None when a trivial command runs in the sandbox."""
    if settings.code_sandbox == "off":
        return "CODE_SANDBOX=off"
    try:
        sandbox = BwrapSandbox.from_settings(settings)
        sandbox.probe([sys.executable, "-c", "pass"])
    except SandboxUnavailable as error:
        return str(error)
    if not sandbox.has_proc:
        log.info(
            "code_sandbox_without_proc",
            agent_id=settings.agent_id,
            reason="this container's /proc has masked paths (the engine's default), and the kernel then refuses "
            "the sandbox a /proc of its own: commands run without /proc",
        )
    return None
