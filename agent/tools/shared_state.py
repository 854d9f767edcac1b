"""get_shared_state / set_shared_state: small values agents of one task hand each other, expiring on their own.

Keys are scoped to the task (`state:{task_id}:{key}` in the tenant's Redis keys), so one task never sees another's.
"""

import json
from typing import Any

from agent.tools.audit import ToolSpec, object_schema
from agent.tools.context import ToolContext
from agent.tools.errors import ToolError

MAX_VALUE_CHARS = 100_000
MAX_TTL_SECONDS = 7 * 24 * 3600
KEY_PROPERTY = {
    "type": "string",
    "description": "1-128 letters, digits, '_', '.' or '-'",
    "pattern": "^[A-Za-z0-9_.-]{1,128}$",
}


async def get_shared_state(context: ToolContext, arguments: dict[str, Any]) -> str:
    key = arguments["key"]
    try:
        value = await context.redis.state.get_shared_state(context.task_id, key)
    except ValueError as error:
        raise ToolError(str(error)) from None
    return json.dumps({"key": key, "found": value is not None, "value": value})


async def set_shared_state(context: ToolContext, arguments: dict[str, Any]) -> str:
    key, value = arguments["key"], str(arguments["value"])
    ttl = int(arguments.get("ttl_seconds") or context.settings.shared_state_ttl_seconds)
    if len(value) > MAX_VALUE_CHARS:
        raise ToolError(f"the value has {len(value)} characters; the limit is {MAX_VALUE_CHARS}")
    if not 1 <= ttl <= MAX_TTL_SECONDS:
        raise ToolError(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}")
    try:
        await context.redis.state.set_shared_state(context.task_id, key, value, ttl)
    except ValueError as error:
        raise ToolError(str(error)) from None
    return json.dumps({"key": key, "stored": True, "ttl_seconds": ttl})


GET_SHARED_STATE = ToolSpec(
    name="get_shared_state",
    description="Read a value other subtasks of this task stored with set_shared_state. Answers JSON with 'found'.",
    input_schema=object_schema({"key": KEY_PROPERTY}, ["key"]),
    function=get_shared_state,
)

SET_SHARED_STATE = ToolSpec(
    name="set_shared_state",
    description=(
        "Store a text value for later subtasks of this task; it expires after ttl_seconds "
        "(default: the system's shared-state lifetime)."
    ),
    input_schema=object_schema(
        {
            "key": KEY_PROPERTY,
            "value": {"type": "string", "description": f"At most {MAX_VALUE_CHARS} characters"},
            "ttl_seconds": {"type": "integer", "minimum": 1, "maximum": MAX_TTL_SECONDS},
        },
        ["key", "value"],
    ),
    function=set_shared_state,
)
