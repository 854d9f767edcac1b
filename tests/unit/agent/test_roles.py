"""Role files: the packaged ones are valid and complete, a bad one stops the agent with a message naming it."""

import hashlib
import shutil
from pathlib import Path
from typing import get_args

import pytest

from agent.app import create_app
from agent.tools import TOOLS
from shared.config import ConfigurationError, Settings
from shared.models import AgentCapability, SubTask
from shared.roles import ROLES_DIR, ToolName, load_roles, role_path

VALID_ROLE = """
name: tester
system_prompt: You test things.
allowed_tools: [read_file]
max_turns: 3
"""


@pytest.fixture
def roles_dir(tmp_path: Path) -> Path:
    """A copy of the packaged roles that a test may break."""
    return Path(shutil.copytree(ROLES_DIR, tmp_path / "roles"))


def test_every_capability_has_a_valid_role_file() -> None:
    roles = load_roles()
    for capability in AgentCapability:
        loaded = roles[capability]
        assert loaded.path == role_path(ROLES_DIR, capability)
        assert loaded.role.system_prompt.strip()
        assert loaded.role.allowed_tools, f"{capability} has no tools"
        assert loaded.role.max_budget_usd is not None
        assert loaded.role.max_output_tokens is not None


def test_role_tool_names_are_exactly_the_agent_tools() -> None:
    assert set(get_args(ToolName)) == set(TOOLS)


def test_config_hash_is_the_sha256_of_the_file_content(roles_dir: Path) -> None:
    path = role_path(roles_dir, AgentCapability.FILE_PROCESSING)
    before = load_roles(roles_dir)[AgentCapability.FILE_PROCESSING].config_hash
    assert before == hashlib.sha256(path.read_bytes()).hexdigest()

    path.write_text(path.read_text() + "\n# a comment changes the audited hash\n")
    after = load_roles(roles_dir)[AgentCapability.FILE_PROCESSING].config_hash
    assert after != before
    assert after == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (VALID_ROLE.replace("[read_file]", "[read_file, rm_rf]"), "allowed_tools"),
        (VALID_ROLE.replace("system_prompt: You test things.", ""), "system_prompt"),
        (VALID_ROLE + "temperature: 0.2\n", "temperature"),
        (VALID_ROLE.replace("max_turns: 3", "max_turns: 0"), "max_turns"),
        (VALID_ROLE + "max_budget_usd: -1\n", "max_budget_usd"),
        ("name: [unclosed\n", "not valid YAML"),
        ("just a string\n", "invalid"),
    ],
)
def test_an_invalid_role_file_is_refused_with_its_name_and_problem(roles_dir: Path, content: str, problem: str) -> None:
    path = role_path(roles_dir, AgentCapability.WEB_SCRAPING)
    path.write_text(content)
    with pytest.raises(ConfigurationError) as caught:
        load_roles(roles_dir)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_a_missing_role_file_is_refused(roles_dir: Path) -> None:
    path = role_path(roles_dir, AgentCapability.API_INTEGRATION)
    path.unlink()
    with pytest.raises(ConfigurationError, match="API_INTEGRATION"):
        load_roles(roles_dir)


def test_a_bad_role_file_stops_the_app_before_it_serves(roles_dir: Path, settings: Settings) -> None:
    role_path(roles_dir, AgentCapability.DATA_ANALYSIS).write_text("name: broken\n")
    with pytest.raises(ConfigurationError, match=r"data_analysis\.yaml"):
        create_app(settings, roles_dir=roles_dir)


def test_a_subtask_runs_under_its_first_required_capability_the_agent_has() -> None:
    roles = load_roles()
    subtask = SubTask(
        task_id="task_roles",
        description="Fetch and store",
        required_capabilities=[AgentCapability.WEB_SCRAPING, AgentCapability.DATABASE_OPERATIONS],
    )
    agent2 = [AgentCapability.WEB_SCRAPING, AgentCapability.API_INTEGRATION]
    agent3 = [AgentCapability.FILE_PROCESSING, AgentCapability.DATABASE_OPERATIONS]
    both = [AgentCapability.DATABASE_OPERATIONS, AgentCapability.WEB_SCRAPING]

    assert roles.role_for(subtask, agent2) == roles[AgentCapability.WEB_SCRAPING]
    assert roles.role_for(subtask, agent3) == roles[AgentCapability.DATABASE_OPERATIONS]
    assert roles.role_for(subtask, both) == roles[AgentCapability.WEB_SCRAPING]
    assert roles.role_for(subtask, [AgentCapability.CODE_GENERATION]) is None
