"""Choosing the answer to a request: a scenario entry, an injected error, or the generic fallback."""

import re
from dataclasses import dataclass
from typing import Any

from simulator.conversation import Conversation
from simulator.fallback import SIMULATED, fallback_text, fallback_tool_input
from simulator.protocol import ApiError, JsonObject
from simulator.scenarios import InjectedError, PlanEntry, ScenarioSet, SubtaskEntry, ToolCall, Turn
from simulator.templating import TemplateRenderError, render_text, render_value, template_context


@dataclass(frozen=True)
class TextOut:
    text: str


@dataclass(frozen=True)
class ToolUseOut:
    name: str
    input: JsonObject


ContentOut = TextOut | ToolUseOut


@dataclass(frozen=True)
class Decision:
    """What to answer, and which scenario entry (or fallback) decided it: `source` goes to the request log."""

    source: str
    content: tuple[ContentOut, ...] = ()
    error: InjectedError | None = None
    delay_ms: int = 0
    cut_after_events: int | None = None

    @property
    def stop_reason(self) -> str:
        return "tool_use" if any(isinstance(block, ToolUseOut) for block in self.content) else "end_turn"


def _label(kind: str, index: int, entry: PlanEntry | SubtaskEntry) -> str:
    return f"{kind}[{index}]" + (f" ({entry.name})" if entry.name else "")


def _matches(entry: PlanEntry | SubtaskEntry, text: str, conversation: Conversation) -> bool:
    if not re.search(entry.match, text):
        return False
    return entry.match_system is None or re.search(entry.match_system, conversation.system_text) is not None


def _text_decision(source: str, text: str, entry: PlanEntry | SubtaskEntry | None = None) -> Decision:
    return Decision(
        source=source,
        content=(TextOut(text),),
        delay_ms=entry.delay_ms if entry else 0,
        cut_after_events=entry.cut_stream_after_events if entry else None,
    )


class Responder:
    """Answers a request from the scenario set alone, so the same request always gets the same answer."""

    def __init__(self, scenarios: ScenarioSet) -> None:
        self.scenarios = scenarios

    def decide(self, conversation: Conversation) -> Decision:
        forced = conversation.forced_tool
        if forced is None:
            return self._converse(conversation)
        if forced not in conversation.tool_names:
            raise ApiError(400, f"tool_choice: tool {forced!r} is not one of the request's tools")
        return self._plan(conversation, forced)

    def _plan(self, conversation: Conversation, tool_name: str) -> Decision:
        user_text = "\n".join(conversation.user_texts)
        for index, entry in enumerate(self.scenarios.plans):
            if not _matches(entry, user_text, conversation):
                continue
            plan = entry.plan_for_turn(conversation.assistant_turns) if entry.error is None else {}
            return self._entry_decision(_label("plans", index, entry), entry, (ToolUseOut(tool_name, plan),))
        return Decision(
            source="fallback:plan", content=(ToolUseOut(tool_name, fallback_tool_input(conversation, tool_name)),)
        )

    def _converse(self, conversation: Conversation) -> Decision:
        for index, entry in enumerate(self.scenarios.subtasks):
            if _matches(entry, conversation.first_user_text, conversation):
                return self._scripted(conversation, _label("subtasks", index, entry), entry)
        return _text_decision("fallback:text", fallback_text(conversation))

    def _scripted(self, conversation: Conversation, label: str, entry: SubtaskEntry) -> Decision:
        if entry.error is not None or entry.turns is None:
            return self._entry_decision(label, entry, ())
        turn_index = conversation.assistant_turns
        source = f"{label}.turns[{turn_index}]"
        if turn_index >= len(entry.turns):
            text = f"{SIMULATED} The script {label} has {len(entry.turns)} turn(s); this request is turn {turn_index}."
            return _text_decision(source, text, entry)
        try:
            content = self._turn_content(conversation, entry.turns[turn_index])
        except TemplateRenderError as exc:
            return _text_decision(source, f"{SIMULATED} {source} could not be rendered: {exc}", entry)
        except _MissingTool as exc:
            return _text_decision(source, f"{SIMULATED} {source} calls {exc}", entry)
        return self._entry_decision(source, entry, content, entry.turns[turn_index].error)

    @staticmethod
    def _entry_decision(
        source: str,
        entry: PlanEntry | SubtaskEntry,
        content: tuple[ContentOut, ...],
        turn_error: InjectedError | None = None,
    ) -> Decision:
        error = entry.error or turn_error
        return Decision(
            source=source,
            content=() if error else content,
            error=error,
            delay_ms=entry.delay_ms,
            cut_after_events=entry.cut_stream_after_events,
        )

    def _turn_content(self, conversation: Conversation, turn: Turn) -> tuple[ContentOut, ...]:
        context = template_context(conversation)
        if turn.final is not None:
            return (TextOut(render_text(turn.final, context)),)
        content: list[ContentOut] = [TextOut(render_text(turn.text, context))] if turn.text else []
        content += [self._tool_use(conversation, call, context) for call in turn.tool_calls or []]
        return tuple(content)

    @staticmethod
    def _tool_use(conversation: Conversation, call: ToolCall, context: dict[str, Any]) -> ToolUseOut:
        name = conversation.resolve_tool(call.tool)
        if name is None:
            raise _MissingTool(f"tool {call.tool!r}, which the request does not offer ({conversation.tool_names})")
        return ToolUseOut(name, render_value(call.input, context))


class _MissingTool(Exception):
    """A script calls a tool the request does not offer; the model must not invent tool names."""
