"""read_file / write_file stay inside the task's workspace (writes inside output/) and every call is audited."""

import json
import os

import pytest

from agent.tools import ToolContext
from shared.database import DatabaseManager
from tests.unit.agent.fixtures import ContextFactory, call_tool


@pytest.fixture
def context(tool_context_factory: ContextFactory) -> ToolContext:
    return tool_context_factory()


async def test_a_written_file_lands_in_output_and_reads_back(context: ToolContext) -> None:
    text, is_error = await call_tool(context, "write_file", path="report.md", content="# Report\nAll good.\n")

    assert not is_error, text
    assert (context.workspace.output / "report.md").read_text() == "# Report\nAll good.\n"
    assert await call_tool(context, "read_file", path="output/report.md") == ("# Report\nAll good.\n", False)


async def test_output_prefix_and_subfolders_stay_in_output(context: ToolContext) -> None:
    await call_tool(context, "write_file", path="output/tables/q1.csv", content="a,b\n1,2\n")
    assert (context.workspace.output / "tables" / "q1.csv").read_text() == "a,b\n1,2\n"
    assert not (context.workspace.output / "output").exists()


async def test_input_files_of_the_workspace_are_readable(context: ToolContext) -> None:
    (context.workspace.root / "data").mkdir()
    (context.workspace.root / "data" / "input.txt").write_text("inputs")
    assert await call_tool(context, "read_file", path="data/input.txt") == ("inputs", False)


@pytest.mark.parametrize(
    ("tool_name", "path"),
    [
        ("read_file", "../secret.txt"),
        ("read_file", "data/../../secret.txt"),
        ("read_file", "{outside}/secret.txt"),
        ("write_file", "../escape.md"),
        ("write_file", "{outside}/escape.md"),
        ("write_file", "output/../../escape.md"),
    ],
)
async def test_traversal_and_absolute_paths_are_refused(context: ToolContext, tool_name: str, path: str) -> None:
    outside = context.workspace.root.parent
    (outside / "secret.txt").write_text("another task's data")
    path = path.format(outside=outside)
    arguments = {"path": path} if tool_name == "read_file" else {"path": path, "content": "x"}

    text, is_error = await call_tool(context, tool_name, **arguments)

    assert is_error
    assert "refused" in text
    assert "another task's data" not in text
    assert not (outside / "escape.md").exists()


async def test_a_symlink_pointing_outside_the_workspace_is_not_read(context: ToolContext) -> None:
    outside = context.workspace.root.parent / "outside.txt"
    outside.write_text("not yours")
    os.symlink(outside, context.workspace.root / "link.txt")

    text, is_error = await call_tool(context, "read_file", path="link.txt")

    assert is_error
    assert "outside" in text
    assert "not yours" not in text


async def test_a_symlinked_folder_in_output_cannot_carry_a_write_outside(context: ToolContext) -> None:
    outside = context.workspace.root.parent / "elsewhere"
    outside.mkdir()
    os.symlink(outside, context.workspace.output / "sneaky")

    text, is_error = await call_tool(context, "write_file", path="sneaky/payload.sh", content="echo hi")

    assert is_error
    assert "outside" in text
    assert list(outside.iterdir()) == []


async def test_writes_outside_output_but_inside_the_workspace_are_refused(context: ToolContext) -> None:
    os.symlink(context.workspace.root, context.workspace.output / "up")
    _text, is_error = await call_tool(context, "write_file", path="up/inputs.csv", content="overwritten")
    assert is_error
    assert not (context.workspace.root / "inputs.csv").exists()


async def test_size_limits_apply_to_reads_and_writes(tool_context_factory: ContextFactory) -> None:
    context = tool_context_factory()
    limit = context.settings.agent_file_max_bytes
    (context.workspace.root / "big.txt").write_bytes(b"x" * (limit + 1))

    read_text, read_error = await call_tool(context, "read_file", path="big.txt")
    write_text, write_error = await call_tool(context, "write_file", path="big.md", content="y" * (limit + 1))

    assert read_error and "limit" in read_text
    assert write_error and "limit" in write_text
    assert not (context.workspace.output / "big.md").exists()


async def test_a_binary_file_is_an_error_not_a_crash(context: ToolContext) -> None:
    (context.workspace.root / "image.bin").write_bytes(b"\xff\xfe\x00\x01")
    text, is_error = await call_tool(context, "read_file", path="image.bin")
    assert is_error
    assert "UTF-8" in text


async def test_every_call_is_recorded_with_its_outcome(context: ToolContext, db: DatabaseManager) -> None:
    await call_tool(context, "write_file", path="notes.md", content="n" * 5000)
    await call_tool(context, "read_file", path="missing.md")

    calls = await db.repositories().audit.list_tool_calls(context.task_id)

    assert [(c.tool_name, c.is_error) for c in calls] == [("write_file", False), ("read_file", True)]
    write, read = calls
    assert write.subtask_id == context.subtask_id
    assert write.attempt == context.attempt
    assert write.arguments["path"] == "notes.md"
    assert len(write.arguments["content"]) < 5000  # whole file contents are not copied into the audit
    assert write.outcome == "wrote 5000 bytes to output/notes.md"
    assert "no such file" in read.outcome
    assert all(c.duration_ms >= 0 for c in calls)
    assert json.dumps(read.arguments) == '{"path": "missing.md"}'
