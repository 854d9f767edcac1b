"""Scenario files: what the simulated model answers to which request, validated when loaded.

A file has two lists. `plans` answer forced-tool calls (the orchestrator's decomposition): the first entry whose
`match` regex is found in the user messages' text gives the forced tool's input. `subtasks` script agent
conversations: the first entry whose `match` is found in the first user message (and `match_system`, if set, in
the system prompt) answers turn N (N = assistant turns already in the request) with `turns[N]`. `bursts` answer
requests by their place in the order of arrival instead (simulator/bursts.py): the one part of an answer that
depends on more than the request, as a provider's rate limit does.
See `simulator/scenarios/demo.yaml` for a commented example.
"""

import json
import re
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from simulator.templating import check_template, check_value


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file, entry and field."""


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regex {pattern!r} ({exc})") from exc
    return pattern


Regex = Annotated[str, AfterValidator(_check_regex)]
Template = Annotated[str, AfterValidator(check_template)]
TemplatedJson = Annotated[dict[str, Any], AfterValidator(check_value)]


class _Strict(BaseModel):
    # Unknown fields are refused so a typo (`matchh:`) fails loudly instead of silently never matching.
    model_config = ConfigDict(extra="forbid", frozen=True)


class InjectedError(_Strict):
    """An error answer in Anthropic's shape instead of a message."""

    status: int = Field(ge=400, le=599)
    message: str = "[simulated] injected error"
    type: str | None = None  # Anthropic error type; derived from the status when absent
    retry_after: int | None = Field(default=None, ge=0)  # seconds, sent as the `retry-after` header


class ToolCall(_Strict):
    tool: str = Field(min_length=1)  # short name: `database_query` matches `mcp__agent__database_query`
    input: TemplatedJson = Field(default_factory=dict)


class Turn(_Strict):
    """One answer of a scripted conversation: tool calls, a final text, or an error."""

    text: Template | None = None  # said before the tool calls
    tool_calls: list[ToolCall] | None = Field(default=None, min_length=1)
    final: Template | None = None
    error: InjectedError | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        kinds = [kind for kind in ("tool_calls", "final", "error") if getattr(self, kind) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a turn needs exactly one of tool_calls, final, error (found {kinds or 'none'})")
        if self.text is not None and self.tool_calls is None:
            raise ValueError("'text' goes with 'tool_calls' (a final answer is 'final')")
        return self


class _Entry(_Strict):
    name: str | None = None  # shown in the request log next to the entry's position
    match: Regex
    match_system: Regex | None = None
    delay_ms: int = Field(default=0, ge=0)
    error: InjectedError | None = None
    cut_stream_after_events: int | None = Field(default=None, ge=0)


class PlanEntry(_Entry):
    plan: dict[str, Any] | None = None  # the forced tool's input, verbatim
    plans: list[dict[str, Any]] | None = Field(default=None, min_length=1)  # by turn: plans[1] answers a repair

    @model_validator(mode="after")
    def _one_answer(self) -> Self:
        answers = [kind for kind in ("plan", "plans", "error") if getattr(self, kind) is not None]
        if len(answers) != 1:
            raise ValueError(f"a plan entry needs exactly one of plan, plans, error (found {answers or 'none'})")
        return self

    def plan_for_turn(self, turn: int) -> dict[str, Any]:
        """The plan answering a request with `turn` earlier answers; the last one repeats."""
        plans = self.plans or [self.plan or {}]
        return plans[min(turn, len(plans) - 1)]


class SubtaskEntry(_Entry):
    turns: list[Turn] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _turns_or_error(self) -> Self:
        if (self.turns is None) == (self.error is None):
            raise ValueError("a subtask entry needs 'turns' (its script) or an 'error', not both and not neither")
        return self


class Burst(_Strict):
    """A stretch of the provider's trouble, by request count: the message requests numbered `after` to
    `after + requests - 1` (from 0, in arrival order, every model and kind) are answered with this error, whatever
    they ask, e.g. a fleet-wide storm of 429s with retry-after."""

    name: str | None = None
    after: int = Field(default=0, ge=0)
    requests: int = Field(ge=1)
    error: InjectedError = Field(default_factory=lambda: InjectedError(status=429, message="[simulated] rate limited"))


class ScenarioSet(_Strict):
    plans: list[PlanEntry] = Field(default_factory=list)
    subtasks: list[SubtaskEntry] = Field(default_factory=list)
    bursts: list[Burst] = Field(default_factory=list)


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problem(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "field required"
    if error["type"] == "value_error" and "error" in error.get("ctx", {}):
        return str(error["ctx"]["error"])
    return error["msg"]


def _describe(exc: ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors():
        location = _location(error["loc"])
        lines.append(f"{source}: {location}: {_problem(error)}" if location else f"{source}: {_problem(error)}")
    return "\n".join(lines)


def parse_scenarios(data: object, source: str = "scenarios") -> ScenarioSet:
    """Validate already-decoded scenario data; `source` names it in error messages."""
    if data is None:
        return ScenarioSet()
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: the top level must be a mapping with 'plans', 'subtasks' and/or 'bursts'")
    try:
        return ScenarioSet.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_describe(exc, source)) from exc


def load_scenarios(path: Path) -> ScenarioSet:
    """Read and validate a YAML or JSON scenario file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path.name}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    return parse_scenarios(data, path.name)
