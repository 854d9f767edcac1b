"""The isolation report's body (GET /isolation-report, the `isolation_report` tool): per agent, what isolates its
subtasks and what the audit shows of it."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.models import AgentCapability

ViolationKind = Literal[
    "workspace_escape",  # a file tool reached outside its task's workspace
    "shared_state_escape",  # a shared-state key that is not confined to its task's namespace
    "foreign_subtask",  # a tool call filed under one task for a subtask of another
    "tool_not_allowed",  # a tool its attempt's role does not allow
    "shared_session",  # two attempts reported the same Claude session: one conversation carried another's
    "shared_config_dir",  # two agents reported the same CLI config folder (transcripts, credentials)
]

WORKSPACE_SCOPE = (
    "file tools are bound to one attempt's task: paths resolve under shared_files/{task_id}/, writes are staged "
    "under .attempts/{delivery token}/ until the result applies; '..', absolute paths and symlinks are refused"
)
SHARED_STATE_SCOPE = "shared-state tools are bound to one attempt's task: keys live under state:{task_id}:{key}"
CONVERSATION_SCOPE = (
    "every attempt is one fresh query() of the Claude Agent SDK (a new CLI process, no resume), so no attempt "
    "starts with another's messages; each result records its session id"
)


class Violation(BaseModel):
    """One piece of evidence that an attempt was not isolated."""

    kind: ViolationKind
    task_id: str | None = None
    subtask_id: str | None = None
    attempt: int | None = None
    tool_call_id: int | None = Field(None, description="The tool_calls row, when a tool call is the evidence")
    detail: str = Field(description="What the audit shows, in words")


class RoleFacts(BaseModel):
    role_config_hash: str | None = Field(description="SHA-256 of the role file; null in results without one")
    allowed_tools: list[str] | None = Field(description="The role's tool allowlist; null where not recorded")
    attempts: int = Field(ge=0)


class IsolationFacts(BaseModel):
    """What isolates the agent's subtasks, as its attempts reported it."""

    config_dirs: list[str] = Field(description="Its private CLI config folders (CLAUDE_CONFIG_DIR), as recorded")
    roles: list[RoleFacts] = Field(description="The roles (file hash and tool allowlist) its attempts ran under")
    workspace: str = WORKSPACE_SCOPE
    shared_state: str = SHARED_STATE_SCOPE
    conversation: str = CONVERSATION_SCOPE


class IsolationEvidence(BaseModel):
    """What the audit tables (subtask_results, tool_calls, agent_logs) show of the agent's attempts."""

    attempts: int = Field(ge=0, description="Results it reported (each attempt's own)")
    tasks: int = Field(ge=0, description="Tasks those attempts belonged to")
    sessions_recorded: int = Field(ge=0, description="Attempts whose Claude session id is recorded")
    tool_calls: int = Field(ge=0, description="Its audited tool calls")
    tool_calls_checked: int = Field(ge=0, description="Tool calls whose arguments were checked against their task")
    escapes_refused: int = Field(
        ge=0, description="Calls that tried to leave their task's scope and were refused by the tool"
    )
    violations: list[Violation]
    missing: list[str] = Field(description="Where the evidence is missing or says nothing, in plain words")


class AgentIsolation(BaseModel):
    agent_id: str
    live: bool = Field(description="In the registry now (else seen only in the audit)")
    capabilities: list[AgentCapability] = Field(description="Its capabilities while live; empty otherwise")
    isolation: IsolationFacts
    evidence: IsolationEvidence


class IsolationReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "generated_at": "2026-11-30T18:00:00Z",
                "violations": 0,
                "attempts_examined": 2,
                "tool_calls_examined": 2,
                "truncated": False,
                "agents": [
                    {
                        "agent_id": "agent1",
                        "live": True,
                        "capabilities": ["DATA_ANALYSIS", "CODE_GENERATION"],
                        "isolation": {
                            "config_dirs": ["/app/.data/claude/agent1"],
                            "roles": [
                                {
                                    "role_config_hash": "9f2c…",
                                    "allowed_tools": ["database_query", "read_file", "write_file"],
                                    "attempts": 2,
                                }
                            ],
                            "workspace": WORKSPACE_SCOPE,
                            "shared_state": SHARED_STATE_SCOPE,
                            "conversation": CONVERSATION_SCOPE,
                        },
                        "evidence": {
                            "attempts": 2,
                            "tasks": 2,
                            "sessions_recorded": 2,
                            "tool_calls": 2,
                            "tool_calls_checked": 1,
                            "escapes_refused": 0,
                            "violations": [],
                            "missing": [
                                "1 database_query call(s): it reaches the tenant's data source, which is not "
                                "task-scoped: its arguments say nothing checkable"
                            ],
                        },
                    }
                ],
            }
        }
    )

    generated_at: datetime
    violations: int = Field(ge=0, description="Violations found across all agents")
    attempts_examined: int = Field(ge=0)
    tool_calls_examined: int = Field(ge=0)
    truncated: bool = Field(description="True when only the latest results or tool calls were examined")
    agents: list[AgentIsolation]
