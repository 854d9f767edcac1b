"""run_command runs python, pytest and ruff in a real bubblewrap sandbox: what the attempt wrote runs and its JSON
tells how it went, while the host's files, network and resources stay out of the command's reach."""

import asyncio
import json
import os
import shutil
import site
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest
from structlog.testing import capture_logs

from agent.app import create_app
from agent.tools import ToolContext
from shared.config import Settings
from shared.database import DatabaseManager
from shared.models import AgentCapability
from tests.polling import eventually
from tests.unit.agent.fixtures import ContextFactory, SettingsFactory, call_tool

AGENT_SOURCE = str(Path(__file__).resolve().parents[3] / "agent" / "app.py")  # the agent's code is not in the sandbox

REPO_ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


@pytest.fixture
def context(tool_context_factory: ContextFactory) -> ToolContext:
    return tool_context_factory()


def limited_context(agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory, **limits: Any):
    settings = agent_settings_factory(**limits)
    return tool_context_factory(settings=settings)


async def run(context: ToolContext, program: str, *args: str) -> dict[str, Any]:
    text, is_error = await call_tool(context, "run_command", program=program, args=list(args))
    assert not is_error, text
    answer: dict[str, Any] = json.loads(text)
    return answer


async def run_python(context: ToolContext, source: str) -> dict[str, Any]:
    await call_tool(context, "write_file", path="probe.py", content=source)
    return await run(context, "python", "probe.py")


async def test_a_file_the_attempt_wrote_runs_and_its_output_comes_back_as_json(context: ToolContext) -> None:
    await call_tool(context, "write_file", path="app.py", content="import sys\nprint('hello')\nsys.exit(3)\n")

    answer = await run(context, "python", "app.py")

    assert answer["exit_code"] == 3 and answer["timed_out"] is False
    assert answer["stdout"] == "hello\n" and answer["stdout_bytes"] == 6
    assert answer["duration_seconds"] >= 0


async def test_pytest_runs_the_attempt_s_tests_and_leaves_no_cache_in_its_output(context: ToolContext) -> None:
    await call_tool(context, "write_file", path="calc.py", content="def add(a, b):\n    return a + b\n")
    test = "from calc import add\n\ndef test_add():\n    assert add(2, 2) == 4\n\n"
    test += "def test_wrong():\n    assert add(1, 1) == 3\n"
    await call_tool(context, "write_file", path="test_calc.py", content=test)

    answer = await run(context, "pytest", "-q", "-p", "no:randomly", "test_calc.py")

    assert answer["exit_code"] == 1  # one test fails: a result for the model, not a tool error
    assert "1 failed, 1 passed" in answer["stdout"]
    assert sorted(path.name for path in context.workspace.staged.iterdir()) == ["calc.py", "test_calc.py"]


async def test_ruff_lints_what_the_attempt_wrote(context: ToolContext) -> None:
    await call_tool(context, "write_file", path="lint_me.py", content="import os\n")

    answer = await run(context, "ruff", "check", "--no-cache", "--select", "F401", "lint_me.py")

    assert answer["exit_code"] == 1 and "F401" in answer["stdout"]


async def test_what_the_command_writes_in_its_folder_is_staged_with_the_attempt_s_files(context: ToolContext) -> None:
    answer = await run_python(context, "open('result.txt', 'w').write('made by the command')\n")

    assert answer["exit_code"] == 0, answer
    assert (context.workspace.staged / "result.txt").read_text() == "made by the command"
    assert await call_tool(context, "read_file", path="output/result.txt") == ("made by the command", False)


async def test_the_command_cannot_read_host_files_or_the_agent_s_environment(context: ToolContext) -> None:
    secrets = ["/etc/passwd", "/etc/shadow", "/etc/hostname", AGENT_SOURCE, context.settings.shared_files_dir]
    assert all(map(os.path.exists, secrets))
    source = f"""
import glob, os
for path in {secrets!r}:
    try:
        print('READ', path, len(open(path, 'rb').read()) if os.path.isfile(path) else os.listdir(path))
    except OSError as error:
        print('REFUSED', path, type(error).__name__)
print('ENVIRONMENTS', sorted(set(open(path, 'rb').read().decode() for path in glob.glob('/proc/[0-9]*/environ'))))
"""
    answer = await run_python(context, source)

    *lines, environments = answer["stdout"].splitlines()
    assert len(lines) == 5 and all(line.startswith("REFUSED") for line in lines), answer
    assert "POSTGRES_URL" in os.environ and "POSTGRES_URL" not in environments and "PATH=" in environments


async def test_the_command_reaches_no_network_not_even_the_host_s_databases(
    context: ToolContext, settings: Settings
) -> None:
    redis_port = int(settings.redis_url.rsplit(":", 1)[1].split("/")[0])
    source = f"""
import socket
targets = [('127.0.0.1', 5432), ('127.0.0.1', {redis_port}), ('1.1.1.1', 53)]
for address in targets:
    try:
        socket.create_connection(address, timeout=3).close()
        print('CONNECTED', address)
    except OSError as error:
        print('REFUSED', address, type(error).__name__)
for path in ['/var/run/postgresql/.s.PGSQL.5432', '/run/postgresql/.s.PGSQL.5432']:
    try:
        client = socket.socket(socket.AF_UNIX)
        client.connect(path)
        print('CONNECTED', path)
    except OSError as error:
        print('REFUSED', path, type(error).__name__)
"""
    answer = await run_python(context, source)

    lines = answer["stdout"].splitlines()
    assert len(lines) == 5 and all(line.startswith("REFUSED") for line in lines), answer


async def test_the_command_writes_nowhere_but_its_own_output_folder(
    context: ToolContext, tool_context_factory: ContextFactory, agent_settings: Settings
) -> None:
    workspace = context.workspace
    (workspace.root / "data").mkdir()
    (workspace.root / "data" / "input.csv").write_text("a,b\n")
    (workspace.output / "published.md").write_text("an earlier subtask's output")
    sibling = tool_context_factory(subtask_id="subtask_sibling")
    await call_tool(sibling, "write_file", path="draft.md", content="the sibling's draft")
    other_task = tool_context_factory(task_id="task_other")
    marker = f"sandbox-escape-{uuid.uuid4().hex}"
    shared_root = workspace.root.parent
    targets = {
        f"/tmp/{marker}": Path("/tmp") / marker,
        f"/workspace/{marker}": workspace.root / marker,
        "/workspace/data/input.csv": workspace.root / "data" / "input.csv",
        "/workspace/output/published.md": workspace.output / "published.md",
        f"/workspace/.attempts/{sibling.workspace.staged.name}/draft.md": sibling.workspace.staged / "draft.md",
        f"{shared_root}/{marker}": shared_root / marker,
        f"{other_task.workspace.root}/{marker}": other_task.workspace.root / marker,
    }
    source = f"for path in {list(targets)!r}:\n" + (
        "    try:\n        open(path, 'w').write('overwritten')\n    except OSError:\n        pass\n"
    )

    answer = await run_python(context, source)

    assert answer["exit_code"] == 0, answer
    try:
        assert not (Path("/tmp") / marker).exists()
        assert not (workspace.root / marker).exists() and not (shared_root / marker).exists()
        assert not (other_task.workspace.root / marker).exists()
        assert (workspace.root / "data" / "input.csv").read_text() == "a,b\n"
        assert (workspace.output / "published.md").read_text() == "an earlier subtask's output"
        assert (sibling.workspace.staged / "draft.md").read_text() == "the sibling's draft"
    finally:
        (Path("/tmp") / marker).unlink(missing_ok=True)


async def test_the_command_reads_the_task_s_inputs_but_not_other_attempts_drafts(
    context: ToolContext, tool_context_factory: ContextFactory
) -> None:
    (context.workspace.root / "input.txt").write_text("the task's input")
    sibling = tool_context_factory(subtask_id="subtask_sibling")
    await call_tool(sibling, "write_file", path="draft.md", content="the sibling's draft")

    answer = await run_python(
        context, "import os\nprint(open('/workspace/input.txt').read())\nprint(os.listdir('/workspace/.attempts'))\n"
    )

    assert answer["stdout"] == "the task's input\n[]\n", answer


async def test_a_cpu_loop_is_killed_by_the_cpu_limit(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    context = limited_context(
        agent_settings_factory, tool_context_factory, code_sandbox_cpu_seconds=1, code_sandbox_timeout_seconds=120
    )

    answer = await run_python(context, "while True:\n    pass\n")

    assert answer["timed_out"] is False
    assert answer["exit_code"] in {128 + 9, 128 + 24}, answer  # SIGKILL or SIGXCPU


def processes_named(marker: str) -> list[psutil.Process]:
    """The host's processes whose command line holds `marker`: a command's, seen from outside its sandbox."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def sleeper_with_a_child(marker: str) -> str:
    """A command that starts a child, says so, and sleeps; both carry `marker` in their command line."""
    child = f"import time; time.sleep(600)  # {marker}"
    return (
        f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {child!r}])\n"
        "print('started', flush=True)\ntime.sleep(600)\n"
    )


async def test_a_command_past_its_timeout_is_killed_with_its_children(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    context = limited_context(agent_settings_factory, tool_context_factory, code_sandbox_timeout_seconds=1)
    marker = f"sandboxed-sleeper-{uuid.uuid4().hex}"

    answer = await run_python(context, sleeper_with_a_child(marker))

    assert answer["timed_out"] is True and answer["exit_code"] is None
    assert answer["stdout"] == "started\n"  # what it wrote before the kill still comes back
    await eventually(lambda: asyncio.to_thread(processes_named, marker), lambda found: not found)


async def test_a_cancelled_attempt_takes_its_command_down(context: ToolContext) -> None:
    marker = f"sandboxed-sleeper-{uuid.uuid4().hex}"
    await call_tool(context, "write_file", path="probe.py", content=sleeper_with_a_child(marker))
    call = asyncio.create_task(call_tool(context, "run_command", program="python", args=["probe.py"]))
    await eventually(lambda: asyncio.to_thread(processes_named, marker), lambda found: len(found) == 1)

    call.cancel()  # what an attempt's timeout or the agent's shutdown does to its tool calls
    with pytest.raises(asyncio.CancelledError):
        await call

    await eventually(lambda: asyncio.to_thread(processes_named, marker), lambda found: not found)


async def test_a_memory_hog_is_refused_its_memory(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    context = limited_context(agent_settings_factory, tool_context_factory, code_sandbox_memory_bytes=256 * 2**20)

    answer = await run_python(context, "block = bytearray(1024 * 2**20)\nprint('allocated')\n")

    assert answer["exit_code"] == 1 and "MemoryError" in answer["stderr"], answer
    assert "allocated" not in answer["stdout"]


async def test_a_huge_file_is_cut_at_the_file_size_limit(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    context = limited_context(agent_settings_factory, tool_context_factory, agent_file_max_bytes=10_000)

    answer = await run_python(context, "open('big.bin', 'wb').write(b'x' * 50_000)\n")

    assert answer["exit_code"] == 1 and "File too large" in answer["stderr"], answer  # Python ignores SIGXFSZ
    assert (context.workspace.staged / "big.bin").stat().st_size <= 10_000


async def test_writes_past_the_workspace_quota_are_removed_and_earlier_files_stay(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    context = limited_context(agent_settings_factory, tool_context_factory, agent_workspace_max_bytes=100_000)
    await call_tool(context, "write_file", path="keep.md", content="written with write_file")

    source = "import os\nos.mkdir('many')\nfor n in range(30):\n    open(f'many/{n}.bin', 'wb').write(b'x' * 9000)\n"

    answer = await run_python(context, source)

    assert answer["exit_code"] == 0 and "removed" in answer["writes_discarded"], answer
    assert sorted(path.name for path in context.workspace.staged.iterdir()) == ["keep.md", "probe.py"]


async def test_set_user_id_bits_the_command_sets_are_taken_off(context: ToolContext) -> None:
    answer = await run_python(context, "import os\nopen('tool', 'w').write('#!/bin/sh\\n')\nos.chmod('tool', 0o6755)\n")

    assert answer["exit_code"] == 0, answer
    mode = (context.workspace.staged / "tool").stat().st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID) and stat.S_IMODE(mode) == 0o755


async def test_long_output_comes_back_as_its_last_bytes(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    context = limited_context(agent_settings_factory, tool_context_factory, code_sandbox_output_bytes=1000)

    answer = await run_python(context, "import sys\nsys.stdout.write('a' * 100_000 + 'THE END')\n")

    assert answer["stdout_bytes"] == 100_007
    assert len(answer["stdout"]) == 1000 and answer["stdout"].endswith("THE END")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"program": "bash", "args": ["-c", "id"]}, "'bash' is not a program run_command runs; it runs python"),
        ({"program": "/usr/bin/python3"}, "is not a program run_command runs"),
        ({"program": "python", "args": "-c print(1)"}, "args must be a list of strings"),
        ({"program": "python", "args": ["x"] * 65}, "65 arguments; the limit is 64"),
    ],
)
async def test_a_refused_call_is_a_clear_tool_error(
    context: ToolContext, arguments: dict[str, Any], message: str
) -> None:
    text, is_error = await call_tool(context, "run_command", **arguments)

    assert is_error and message in text


async def test_every_call_is_audited(context: ToolContext, db: DatabaseManager) -> None:
    await call_tool(context, "run_command", program="python", args=["-c", "print(6 * 7)"])
    await call_tool(context, "run_command", program="bash", args=["-c", "id"])

    calls = await db.repositories().audit.list_tool_calls(context.task_id)

    assert [(call.tool_name, call.is_error) for call in calls] == [("run_command", False), ("run_command", True)]
    assert calls[0].arguments == {"program": "python", "args": ["-c", "print(6 * 7)"]}
    assert '"stdout": "42\\n"' in calls[0].outcome and '"exit_code": 0' in calls[0].outcome
    assert all(call.subtask_id == context.subtask_id for call in calls)


def code_role_tools(settings: Settings) -> list[str]:
    app = create_app(settings)
    return list(app.state.roles[AgentCapability.CODE_GENERATION].role.allowed_tools)


def test_an_agent_whose_sandbox_starts_offers_run_command(agent_settings: Settings) -> None:
    assert "run_command" in code_role_tools(agent_settings)


def test_an_agent_without_bubblewrap_says_so_and_does_not_offer_run_command(
    agent_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a host where bwrap is not installed

    with capture_logs() as logs:
        tools = code_role_tools(agent_settings)

    assert "run_command" not in tools and "write_file" in tools
    (line,) = [entry for entry in logs if entry["event"] == "code_sandbox_unavailable"]
    assert line["log_level"] == "error" and "apt-get install bubblewrap" in line["problem"]


def test_an_agent_whose_sandbox_fails_to_start_says_why(
    agent_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A bwrap that cannot create namespaces, like one in a container that forbids them, fails the same way.
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")

    with capture_logs() as logs:
        tools = code_role_tools(agent_settings)

    assert "run_command" not in tools
    (line,) = [entry for entry in logs if entry["event"] == "code_sandbox_unavailable"]
    assert "No permissions to create new namespace" in line["problem"] and "CODE_SANDBOX=off" in line["fix"]


def test_code_sandbox_off_takes_run_command_away(agent_settings_factory: SettingsFactory) -> None:
    with capture_logs() as logs:
        tools = code_role_tools(agent_settings_factory(code_sandbox="off"))

    assert "run_command" not in tools and "write_file" in tools
    assert [entry["event"] for entry in logs if entry["event"].startswith("code_sandbox")] == ["code_sandbox_off"]


async def test_a_tool_built_for_an_agent_with_code_sandbox_off_refuses_to_run(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    context = limited_context(agent_settings_factory, tool_context_factory, code_sandbox="off")

    text, is_error = await call_tool(context, "run_command", program="python", args=["-c", "print(1)"])

    assert is_error and "CODE_SANDBOX=off" in text


@pytest.mark.parametrize(
    "writes",
    [
        "open(f'{n}.bin', 'wb').write(b'x' * 10_000)",  # bytes past the quota, a file at a time
        "os.symlink('nowhere', f'{n}.link')",  # entries that are no regular file
        "os.mkdir(f'{n}')",  # empty folders
    ],
    ids=["bytes", "symlinks", "folders"],
)
async def test_a_command_writing_past_the_workspace_quota_is_stopped_before_its_timeout(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory, writes: str
) -> None:
    # The quota is checked again after the command, but a command that writes without end must not fill the disk
    # (or its inodes) until its timeout first: it is stopped once its output folder holds more than the quota.
    context = limited_context(
        agent_settings_factory,
        tool_context_factory,
        agent_file_max_bytes=10_000,
        agent_workspace_max_bytes=100_000,
        agent_workspace_max_files=50,
        code_sandbox_timeout_seconds=30,
    )

    answer = await run_python(context, f"import os\nn = 0\nwhile True:\n    {writes}\n    n += 1\n")

    assert answer["timed_out"] is False and answer["exit_code"] != 0, answer
    assert "workspace" in answer["stopped"], answer
    assert sorted(path.name for path in context.workspace.staged.iterdir()) == ["probe.py"]


def test_the_sandbox_starts_for_an_agent_whose_python_lives_under_tmp(tmp_path: Path) -> None:
    """A checkout under /tmp has its virtualenv there, where the sandbox mounts its own /tmp."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site_packages] = venv.glob("lib/python*/site-packages")
    (site_packages / "fleet.pth").write_text("\n".join([*site.getsitepackages(), str(REPO_ROOT)]) + "\n")
    probe = (
        "import sys\n"
        "from agent.tools.sandbox import BwrapSandbox, SandboxLimits\n"
        "limits = SandboxLimits(timeout_seconds=30, cpu_seconds=10, memory_bytes=2**30, max_processes=64,\n"
        "                       max_file_bytes=2**20, tmp_bytes=2**20, output_bytes=4096)\n"
        "BwrapSandbox('bwrap', limits).probe([sys.executable, '-c', 'pass'])\n"
    )

    run = subprocess.run([venv / "bin" / "python", "-c", probe], capture_output=True, text=True, check=False)

    assert str(venv).startswith("/tmp/")
    assert run.returncode == 0, run.stderr
