"""A read-only view of a message request: the texts, tool results and turn count a scenario looks at."""

import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from simulator.protocol import JsonObject, MessagesRequest

# The CLI appends context (cwd, date, tool hints) in these tags; scenarios match and quote what a person wrote.
_SYSTEM_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)


def strip_system_reminders(text: str) -> str:
    return _SYSTEM_REMINDER.sub("", text).strip()


def blocks_text(content: str | list[Any] | None) -> str:
    """The text of a message's (or tool result's) content, without tool results or reminders."""
    if content is None:
        return ""
    if isinstance(content, str):
        return strip_system_reminders(content)
    parts = [
        strip_system_reminders(str(block.get("text", "")))
        for block in content
        if isinstance(block, dict) and block.get("type") == "text"
    ]
    return "\n".join(part for part in parts if part)


@dataclass(frozen=True)
class ToolResultView:
    """One `tool_result` block as a scenario template sees it (`tool_results[0].json.rows[0]`)."""

    tool_use_id: str
    tool: str | None
    text: str
    json: Any
    is_error: bool


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


class Conversation:
    """Everything the responder derives from a request; computed from the request alone (determinism)."""

    def __init__(self, request: MessagesRequest) -> None:
        self.request = request

    def _messages(self, role: str) -> list[JsonObject]:
        return [message for message in self.request.messages if message.get("role") == role]

    @cached_property
    def system_text(self) -> str:
        """The `system` parameter plus any inline `system`-role messages (the CLI sends both)."""
        system = self.request.system
        parts = [blocks_text(system)] if system else []
        parts += [blocks_text(message.get("content")) for message in self._messages("system")]
        return "\n".join(part for part in parts if part)

    @cached_property
    def user_texts(self) -> list[str]:
        """The text of each user message that has any (messages holding only tool results are skipped)."""
        texts = [blocks_text(message.get("content")) for message in self._messages("user")]
        return [text for text in texts if text]

    @property
    def first_user_text(self) -> str:
        return self.user_texts[0] if self.user_texts else ""

    @property
    def last_user_text(self) -> str:
        return self.user_texts[-1] if self.user_texts else ""

    @cached_property
    def assistant_turns(self) -> int:
        """How many times the model has answered so far: runs of consecutive assistant messages count once."""
        turns = 0
        previous_role = None
        for message in self.request.messages:
            role = message.get("role")
            if role == "assistant" and previous_role != "assistant":
                turns += 1
            if role != "system":
                previous_role = role
        return turns

    @cached_property
    def tool_names(self) -> list[str]:
        return [str(tool.get("name", "")) for tool in self.request.tools or []]

    @cached_property
    def forced_tool(self) -> str | None:
        """The tool named by a `{"type": "tool", "name": X}` tool choice, if any."""
        choice = self.request.tool_choice or {}
        return str(choice["name"]) if choice.get("type") == "tool" and "name" in choice else None

    def tool_schema(self, name: str) -> JsonObject:
        for tool in self.request.tools or []:
            if tool.get("name") == name:
                schema = tool.get("input_schema")
                return schema if isinstance(schema, dict) else {}
        return {}

    def resolve_tool(self, short_name: str) -> str | None:
        """The request's tool for a scenario's short name: equal, or an MCP name ending `__<short_name>`."""
        for name in self.tool_names:
            if name == short_name or name.endswith(f"__{short_name}"):
                return name
        return None

    @cached_property
    def tool_results(self) -> list[ToolResultView]:
        """Every `tool_result` block of the conversation, in order, with the tool that produced it."""
        tool_by_id = self._tool_use_names()
        results = []
        for message in self._messages("user"):
            content = message.get("content")
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    results.append(self._tool_result_view(block, tool_by_id))
        return results

    def _tool_use_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for message in self._messages("assistant"):
            content = message.get("content")
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    names[str(block.get("id"))] = str(block.get("name"))
        return names

    @staticmethod
    def _tool_result_view(block: JsonObject, tool_by_id: dict[str, str]) -> ToolResultView:
        tool_use_id = str(block.get("tool_use_id", ""))
        text = blocks_text(block.get("content"))
        return ToolResultView(
            tool_use_id=tool_use_id,
            tool=tool_by_id.get(tool_use_id),
            text=text,
            json=_parse_json(text),
            is_error=bool(block.get("is_error", False)),
        )
