"""Turns a tool's plain async function into an SDK MCP tool that is audited and can never crash the agent."""

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from claude_agent_sdk import SdkMcpTool, tool

from agent.tools.context import ToolBinding, ToolContext
from agent.tools.errors import ToolError
from shared import tracing

log = structlog.get_logger(__name__)

ToolFunction = Callable[[ToolContext, dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it (name, description, JSON schema) and the function that answers it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    function: ToolFunction


def object_schema(properties: dict[str, dict[str, Any]], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def audited_tool(spec: ToolSpec, binding: ToolContext | ToolBinding) -> SdkMcpTool[Any]:
    """The SDK tool for `spec`, serving the subtask attempt `binding` holds at each call; each call is timed and
    recorded in `tool_calls`."""
    if isinstance(binding, ToolContext):
        binding = ToolBinding(binding)
    tool_binding = binding

    async def handler(arguments: dict[str, Any]) -> dict[str, Any]:
        context = tool_binding.context
        if context is None:
            return {
                "content": [{"type": "text", "text": f"{spec.name}: no subtask attempt is running"}],
                "is_error": True,
            }
        # Bound here, not only by the attempt around the SDK's query: the SDK may call tools from a task of its own.
        with tracing.bound(
            context.trace_id,
            task_id=context.task_id,
            subtask_id=context.subtask_id,
            attempt=context.attempt,
            agent_id=context.agent_id,
        ):
            return await call(context, arguments)

    async def call(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
        started = time.monotonic()
        try:
            text, is_error = await spec.function(context, arguments), False
        except ToolError as error:
            text, is_error = str(error), True
        except Exception as error:  # a tool bug reaches the model as an error, never the agent
            log.exception("tool_crashed", tool=spec.name, task_id=context.task_id, subtask_id=context.subtask_id)
            text, is_error = f"{spec.name} failed unexpectedly: {error!r}", True
        duration_ms = (time.monotonic() - started) * 1000
        log.info(
            "tool_called",
            tool=spec.name,
            task_id=context.task_id,
            subtask_id=context.subtask_id,
            is_error=is_error,
            duration_ms=round(duration_ms, 1),
        )
        await context.record_call(spec.name, arguments, is_error=is_error, outcome=text, duration_ms=duration_ms)
        return {"content": [{"type": "text", "text": text}], "is_error": is_error}

    return tool(spec.name, spec.description, spec.input_schema)(handler)
