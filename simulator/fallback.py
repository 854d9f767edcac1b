"""Answers for requests no scenario matches: plausible, schema-valid and visibly simulated."""

import re
from typing import Any

from simulator.conversation import Conversation
from simulator.protocol import JsonObject

SIMULATED = "[simulated]"
DEFAULT_CAPABILITY = "DATA_ANALYSIS"
_MAX_DESCRIPTION = 1000
# The orchestrator may wrap the user's words in <task>…</task>; otherwise the whole user text is the task.
_TASK_TAG = re.compile(r"<task>(.*?)</task>", re.DOTALL)


def task_text(conversation: Conversation) -> str:
    """The task a plan request is about: the last `<task>` found in the user messages, else the last user text."""
    for text in reversed(conversation.user_texts):
        tagged = _TASK_TAG.findall(text)
        if tagged:
            return " ".join(tagged[-1].split())
    return " ".join(conversation.last_user_text.split())


def _first_capability(schema: JsonObject) -> str:
    subtask = schema.get("properties", {}).get("subtasks", {}).get("items", {})
    capability = subtask.get("properties", {}).get("required_capabilities", {}).get("items", {})
    values = capability.get("enum") or [DEFAULT_CAPABILITY]
    return str(values[0])


def is_plan_schema(schema: JsonObject) -> bool:
    subtasks = schema.get("properties", {}).get("subtasks", {})
    return isinstance(subtasks, dict) and subtasks.get("type") == "array"


def fallback_plan(conversation: Conversation, schema: JsonObject) -> JsonObject:
    """A one-subtask plan that any agent with the schema's first capability can run."""
    description = f"{SIMULATED} {task_text(conversation)}"[:_MAX_DESCRIPTION].strip()
    subtask = {
        "id": "s1",
        "description": description,
        "required_capabilities": [_first_capability(schema)],
        "dependencies": [],
        "priority": 5,
    }
    return {"subtasks": [subtask]}


def _minimal_string(schema: JsonObject) -> str:
    text = SIMULATED
    min_length = int(schema.get("minLength", 0))
    return text.ljust(min_length, "-") if len(text) < min_length else text


def minimal_instance(schema: Any) -> Any:
    """The smallest value valid for a (simple) JSON schema: required properties only, lower bounds, first enum."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if schema.get(combinator):
            return minimal_instance(schema[combinator][0])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((item for item in kind if item != "null"), "null")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: minimal_instance(properties.get(name, {})) for name in schema.get("required", [])}
    if kind == "array":
        return [minimal_instance(schema.get("items", {})) for _ in range(int(schema.get("minItems", 0)))]
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "string":
        return _minimal_string(schema)
    return {"boolean": False}.get(kind)


def fallback_tool_input(conversation: Conversation, tool_name: str) -> JsonObject:
    """The input of a forced tool nobody scripted: a plan for a plan schema, else a minimal instance."""
    schema = conversation.tool_schema(tool_name)
    if is_plan_schema(schema):
        return fallback_plan(conversation, schema)
    instance = minimal_instance(schema)
    return instance if isinstance(instance, dict) else {}


def fallback_text(conversation: Conversation) -> str:
    """A final answer that says it is simulated and what it was asked."""
    lines = [line.strip() for line in conversation.last_user_text.splitlines() if line.strip()]
    asked = lines[0] if lines else "(no user text)"
    return f"{SIMULATED} No scenario matches this request, so the simulator answers generically. Asked: {asked}"
