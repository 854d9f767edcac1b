"""Roles: one declarative YAML file per capability (`shared/roles/<capability>.yaml`), validated at start-up.

A role gives a subtask its system prompt, its tool allowlist and its limits. Agents run attempts under them; the
orchestrator reads them to estimate what a plan may cost (orchestrator/estimates.py). The SHA-256 of the file's bytes is
recorded with every result, so what an agent ran under stays auditable after the file changes.
"""

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.config import ConfigurationError
from shared.errors import describe_validation_errors
from shared.models import AgentCapability, SubTask

ROLES_DIR = Path(__file__).with_name("roles")

ToolName = Literal[
    "database_query",
    "read_file",
    "write_file",
    "write_patch",
    "get_shared_state",
    "set_shared_state",
    "embedding_search",
    "pool_status",
    "isolation_report",
    "submit_follow_up_subtask",
    "run_command",
]


class Role(BaseModel):
    """The content of a role file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    system_prompt: str = Field(min_length=1)
    allowed_tools: list[ToolName] = Field(default_factory=list)
    model: str | None = Field(None, min_length=1, description="Default: settings.claude_model")
    max_turns: int = Field(10, ge=1, le=100)
    max_output_tokens: int | None = Field(None, ge=1, le=128_000, description="Per model response")
    max_budget_usd: float | None = Field(None, gt=0, description="Per subtask attempt")


@dataclass(frozen=True)
class LoadedRole:
    capability: AgentCapability
    role: Role
    config_hash: str
    path: Path


class RoleBook:
    """The roles of every capability, and which one a subtask runs under."""

    def __init__(self, roles: dict[AgentCapability, LoadedRole]) -> None:
        self._roles = roles

    def __getitem__(self, capability: AgentCapability) -> LoadedRole:
        return self._roles[capability]

    def without_tools(self, names: set[str]) -> "RoleBook":
        """These roles with the tools `names` taken off their allowlists (tools this agent cannot offer)."""
        return RoleBook(
            {
                capability: replace(
                    loaded,
                    role=loaded.role.model_copy(
                        update={"allowed_tools": [name for name in loaded.role.allowed_tools if name not in names]}
                    ),
                )
                for capability, loaded in self._roles.items()
            }
        )

    def role_for(self, subtask: SubTask, capabilities: list[AgentCapability]) -> LoadedRole | None:
        """The role of the subtask's first required capability that the agent has; None if it has none."""
        for capability in subtask.required_capabilities:
            if capability in capabilities:
                return self._roles[capability]
        return None


def role_path(directory: Path, capability: AgentCapability) -> Path:
    return directory / f"{capability.value.lower()}.yaml"


def load_role(path: Path, capability: AgentCapability) -> LoadedRole:
    """One role file, or ConfigurationError naming the file and what is wrong with it."""
    try:
        content = path.read_bytes()
    except OSError as error:
        raise ConfigurationError(f"role file {path} for {capability.value} cannot be read: {error}") from None
    try:
        role = Role.model_validate(yaml.safe_load(content))
    except yaml.YAMLError as error:
        raise ConfigurationError(f"role file {path} is not valid YAML: {error}") from None
    except ValidationError as error:
        problems = describe_validation_errors(list(error.errors()))
        raise ConfigurationError(f"role file {path} is invalid: {problems}") from None
    return LoadedRole(capability, role, hashlib.sha256(content).hexdigest(), path)


def load_roles(directory: Path = ROLES_DIR) -> RoleBook:
    """Every capability's role; a missing or invalid file stops the agent with a clear message."""
    return RoleBook(
        {capability: load_role(role_path(directory, capability), capability) for capability in AgentCapability}
    )
