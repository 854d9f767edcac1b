"""The agent's MCP tools, served in-process to the Claude Code CLI as the `agent` server.

A server serves one subtask attempt at a time: its tools read that attempt's task, subtask and workspace from the
ToolContext it was built with, or from the ToolBinding a warm CLI's server was built with (bound when the attempt
begins).
"""

from collections.abc import Sequence
from typing import Any

from claude_agent_sdk import McpSdkServerConfig, create_sdk_mcp_server

from agent.tools.audit import ToolSpec, audited_tool
from agent.tools.commands import RUN_COMMAND
from agent.tools.context import ToolBinding, ToolContext
from agent.tools.coordination import ISOLATION_REPORT, POOL_STATUS, SUBMIT_FOLLOW_UP_SUBTASK
from agent.tools.database import DATABASE_QUERY
from agent.tools.errors import ToolError
from agent.tools.files import READ_FILE, WRITE_FILE, WRITE_PATCH
from agent.tools.search import EMBEDDING_SEARCH
from agent.tools.shared_state import GET_SHARED_STATE, SET_SHARED_STATE
from agent.tools.workspace import Workspace

MCP_SERVER_NAME = "agent"

TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        DATABASE_QUERY,
        READ_FILE,
        WRITE_FILE,
        WRITE_PATCH,
        GET_SHARED_STATE,
        SET_SHARED_STATE,
        EMBEDDING_SEARCH,
        POOL_STATUS,
        ISOLATION_REPORT,
        SUBMIT_FOLLOW_UP_SUBTASK,
        RUN_COMMAND,
    )
}


def qualified_tool_name(name: str) -> str:
    """How the CLI names an in-process MCP tool, e.g. `mcp__agent__database_query`."""
    return f"mcp__{MCP_SERVER_NAME}__{name}"


def build_tools(binding: ToolContext | ToolBinding, names: Sequence[str]) -> list[Any]:
    return [audited_tool(TOOLS[name], binding) for name in names]


def build_tool_server(binding: ToolContext | ToolBinding, names: Sequence[str]) -> McpSdkServerConfig:
    """The `agent` MCP server offering exactly the tools `names`, serving one subtask attempt: the one given, or
    the one a warm CLI's `ToolBinding` holds when a tool is called."""
    return create_sdk_mcp_server(MCP_SERVER_NAME, tools=build_tools(binding, names))


__all__ = [
    "MCP_SERVER_NAME",
    "TOOLS",
    "ToolBinding",
    "ToolContext",
    "ToolError",
    "ToolSpec",
    "Workspace",
    "build_tool_server",
    "build_tools",
    "qualified_tool_name",
]
