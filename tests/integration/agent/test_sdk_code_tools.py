"""The code role checks what it writes: through the real agent, the Claude Agent SDK's CLI and the simulator, the
model writes a module and its test with write_file and runs pytest on them with run_command, in the real sandbox."""

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.database import DatabaseManager, Repositories
from shared.models import AgentCapability, ResultStatus
from shared.redis_manager import RedisManager
from simulator.testing import SimulatorHandle, running_simulator
from tests.integration.agent.test_sdk_execution import run_subtask
from tests.unit.agent.fixtures import OfferFactory, SettingsFactory, serving

pytestmark = [pytest.mark.sdk, pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is missing")]

SUBTASK = "Write a slugify function with a test and check it"
MODULE = "def slugify(text):\n    return '-'.join(text.lower().split())\n"
TEST = "from slugify import slugify\n\n\ndef test_slugify():\n    assert slugify('Big World') == 'big-world'\n"
SCENARIOS: dict[str, Any] = {
    "subtasks": [
        {
            "name": "write-and-test",
            "match": "(?i)write a slugify function",
            "turns": [
                {
                    "tool_calls": [
                        {"tool": "write_file", "input": {"path": "slugify.py", "content": MODULE}},
                        {"tool": "write_file", "input": {"path": "test_slugify.py", "content": TEST}},
                    ]
                },
                {"tool_calls": [{"tool": "run_command", "input": {"program": "pytest", "args": ["-q"]}}]},
                {"final": "pytest exit code {{ tool_results[2].json.exit_code }}"},
            ],
        }
    ]
}


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with running_simulator(SCENARIOS, request_log=tmp_path / "requests.jsonl") as handle:
        yield handle


async def test_the_code_role_writes_a_module_and_runs_its_tests_in_the_sandbox(
    agent_settings_factory: SettingsFactory,
    simulator: SimulatorHandle,
    agent_redis: RedisManager,
    db: DatabaseManager,
    agent_tenant: str,
    offered_request: OfferFactory,
    tmp_path: Path,
) -> None:
    settings = agent_settings_factory(
        agent_executor="sdk",
        anthropic_base_url=simulator.base_url,
        claude_simulated=True,
        agent_cli_env={"CLAUDE_CODE_MAX_RETRIES": "0"},
    )
    request = await offered_request(SUBTASK, required_capabilities=[AgentCapability.CODE_GENERATION])

    async with serving(settings) as (_, client):
        result = await run_subtask(client, agent_redis, request)

    assert result.status is ResultStatus.COMPLETED, result.error
    assert result.output == "pytest exit code 0"
    assert "run_command" in (result.allowed_tools or [])
    staged = tmp_path / "shared_files" / request.task_id / ".attempts" / str(request.subtask.delivery_token)
    assert sorted(path.name for path in staged.iterdir()) == ["slugify.py", "test_slugify.py"]

    calls = await Repositories(db.pool, agent_tenant).audit.list_tool_calls(request.task_id)
    assert [(call.tool_name, call.is_error) for call in calls] == [
        ("write_file", False),
        ("write_file", False),
        ("run_command", False),
    ]
    assert '"exit_code": 0' in calls[2].outcome and "1 passed" in calls[2].outcome  # the audit keeps its start
    (first_request, *_) = simulator.requests()
    assert "mcp__agent__run_command" in first_request["tools"]
