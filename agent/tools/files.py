"""read_file / write_file / write_patch: text files of the task's workspace, writes confined to its `output/`."""

import asyncio
from pathlib import PurePosixPath
from typing import Any

from agent.tools.audit import ToolSpec, object_schema
from agent.tools.context import ToolContext
from agent.tools.errors import ToolError
from agent.tools.workspace import WorkspaceQuota
from shared.artifacts import PATCH_SUFFIXES, unified_diff_problem

PATH_PROPERTY = {"type": "string", "description": "Path relative to the task's workspace, e.g. data/input.csv"}


async def read_file(context: ToolContext, arguments: dict[str, Any]) -> str:
    path = str(arguments["path"])
    data = await asyncio.to_thread(context.workspace.read, path, context.settings.agent_file_max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{path!r} is not UTF-8 text") from None


async def write_file(context: ToolContext, arguments: dict[str, Any]) -> str:
    return await _write_text(context, str(arguments["path"]), str(arguments["content"]))


async def write_patch(context: ToolContext, arguments: dict[str, Any]) -> str:
    """write_file for a patch: refused unless it is a unified diff, so what the task lists as a patch applies."""
    path, content = str(arguments["path"]), str(arguments["content"])
    if PurePosixPath(path).suffix.lower() not in PATCH_SUFFIXES:
        raise ToolError(f"a patch's path ends in .patch or .diff (e.g. fixes/ledger.patch), not {path!r}")
    problem = unified_diff_problem(content)
    if problem:
        raise ToolError(f"the content is not a unified diff ({problem}); write it as `diff -u` or `git diff` would")
    return await _write_text(context, path, content)


async def _write_text(context: ToolContext, path: str, content: str) -> str:
    try:
        data = content.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON can carry
        raise ToolError("the content is not valid Unicode text") from None
    settings = context.settings
    if len(data) > settings.agent_file_max_bytes:
        raise ToolError(f"content is {len(data)} bytes; the limit is {settings.agent_file_max_bytes}")
    quota = WorkspaceQuota(settings.agent_workspace_max_bytes, settings.agent_workspace_max_files)
    written = await asyncio.to_thread(context.workspace.write, path, data, quota)
    return f"wrote {len(data)} bytes to {written}"


READ_FILE = ToolSpec(
    name="read_file",
    description="Read a UTF-8 text file from the task's workspace (inputs, and output/ written by agents).",
    input_schema=object_schema({"path": PATH_PROPERTY}, ["path"]),
    function=read_file,
)

WRITE_FILE = ToolSpec(
    name="write_file",
    description=(
        "Write a UTF-8 text file into the task's output folder; 'report.md' and 'output/report.md' are the same "
        "file. Replaces an existing file."
    ),
    input_schema=object_schema(
        {
            "path": {"type": "string", "description": "File path inside the output folder, e.g. report.md"},
            "content": {"type": "string", "description": "The whole content of the file"},
        },
        ["path", "content"],
    ),
    function=write_file,
)

WRITE_PATCH = ToolSpec(
    name="write_patch",
    description=(
        "Write a patch into the task's output folder: a unified diff (as `diff -u` or `git diff` print it) of one "
        "or more files, saved under a path ending in .patch or .diff. Refused unless it parses as a unified diff, "
        "so the task lists it as a patch artifact that applies."
    ),
    input_schema=object_schema(
        {
            "path": {"type": "string", "description": "File path inside the output folder, e.g. fixes/ledger.patch"},
            "content": {"type": "string", "description": "The unified diff"},
        },
        ["path", "content"],
    ),
    function=write_patch,
)
