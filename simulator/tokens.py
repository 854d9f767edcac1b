"""Deterministic, plausible token counts: about four characters per token, like English text."""

import json
from typing import Any

from simulator.protocol import JsonObject

CHARS_PER_TOKEN = 4


def estimate_tokens(value: Any) -> int:
    """Tokens of a string, or of a JSON value's compact serialisation; never less than 1."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return max(1, -(-len(text) // CHARS_PER_TOKEN))


def input_tokens(system: Any, messages: list[JsonObject], tools: list[JsonObject] | None) -> int:
    """What the prompt costs: system prompt, messages and tool definitions."""
    return estimate_tokens({"system": system, "messages": messages, "tools": tools or []})


def output_tokens(content: list[JsonObject]) -> int:
    """What the answer costs: its text and the JSON of its tool inputs."""
    parts = [block["text"] if block["type"] == "text" else json.dumps(block["input"]) for block in content]
    return estimate_tokens("".join(parts))


def usage(input_count: int, output_count: int) -> JsonObject:
    return {
        "input_tokens": input_count,
        "output_tokens": output_count,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "standard",
    }
