"""Scenario text that quotes the conversation (`{{ tool_results[0].json.rows[0].x }}`), rendered safely."""

from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from simulator.conversation import Conversation

# A sandbox because scenario files are data, not code; strict so a wrong reference is reported, not blank.
_ENVIRONMENT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


class TemplateRenderError(Exception):
    """A scenario template failed against this conversation (bad reference, wrong type, ...)."""


def check_template(source: str) -> str:
    """Return `source` if it compiles; raise `ValueError` naming the problem otherwise (for validation)."""
    try:
        _ENVIRONMENT.parse(source)
    except TemplateSyntaxError as exc:
        raise ValueError(f"invalid template {source!r}: {exc.message} (line {exc.lineno})") from exc
    return source


def template_context(conversation: Conversation) -> dict[str, Any]:
    """The names a scenario template can use."""
    return {
        "tool_results": conversation.tool_results,
        "prompt": conversation.first_user_text,
        "last_user_text": conversation.last_user_text,
        "system": conversation.system_text,
    }


def render_text(source: str, context: Mapping[str, Any]) -> str:
    """Render one template; any failure becomes a `TemplateRenderError` with the reason."""
    if "{{" not in source and "{%" not in source:
        return source
    try:
        return _ENVIRONMENT.from_string(source).render(context)
    # A scenario template is user-written code: whatever it raises must become a visible simulated
    # answer for the test author, never a 500 that looks like a simulator bug.
    except Exception as exc:
        raise TemplateRenderError(f"{type(exc).__name__}: {exc}") from exc


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string inside a JSON value (tool call inputs may quote earlier tool results)."""
    if isinstance(value, str):
        return render_text(value, context)
    if isinstance(value, list):
        return [render_value(item, context) for item in value]
    if isinstance(value, dict):
        return {key: render_value(item, context) for key, item in value.items()}
    return value


def check_value(value: Any) -> Any:
    """`check_template` for every string inside a JSON value."""
    if isinstance(value, str):
        check_template(value)
    elif isinstance(value, list):
        for item in value:
            check_value(item)
    elif isinstance(value, dict):
        for item in value.values():
            check_value(item)
    return value
