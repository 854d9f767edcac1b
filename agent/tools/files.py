"""read_file / write_file: text files of the task's workspace, writes confined to its `output/` folder."""

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from agent.tools.audit import ToolSpec, object_schema
from agent.tools.context import ToolContext
from agent.tools.errors import ToolError

PATH_PROPERTY = {"type": "string", "description": "Path relative to the task's workspace, e.g. data/input.csv"}


async def read_file(context: ToolContext, arguments: dict[str, Any]) -> str:
    path = context.workspace.readable(arguments["path"])
    return await asyncio.to_thread(_read_text, path, context.settings.agent_file_max_bytes)


async def write_file(context: ToolContext, arguments: dict[str, Any]) -> str:
    target = context.workspace.writable(arguments["path"])
    data = str(arguments["content"]).encode("utf-8")
    limit = context.settings.agent_file_max_bytes
    if len(data) > limit:
        raise ToolError(f"content is {len(data)} bytes; the limit is {limit}")
    await asyncio.to_thread(_write_atomically, target, data)
    return f"wrote {len(data)} bytes to {context.workspace.display(target)}"


def _read_text(path: Path, limit: int) -> str:
    size = path.stat().st_size
    if size > limit:
        raise ToolError(f"{path.name} is {size} bytes; the limit is {limit}")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{path.name} is not UTF-8 text") from None


def _write_atomically(target: Path, data: bytes) -> None:
    # A temporary file renamed into place: readers never see half a file, and a symlink at the target is
    # replaced rather than followed.
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
