"""What a plan may cost before it runs: the `estimate` of POST /tasks and of a dry run.

Each subtask's input is the prompt its agent would send (shared/attempt_prompt.py) under its role's system prompt
(shared/roles.py: the role of its first required capability, as an agent picks it). The API's count-tokens endpoint
counts them: one call per model of the plan, each subtask's prompt one message of it; the endpoint counts a whole
request, so its total is shared out among the subtasks by their length in characters. When the endpoint cannot
answer, a prompt's tokens are its characters divided by CHARS_PER_TOKEN, and the estimate says so (`basis`).

- `min_usd`: every subtask done in one turn with a short answer (MIN_ANSWER_TOKENS).
- `max_usd`: every subtask using its role's limits, `max_turns` turns of its prompt plus `max_output_tokens` (the
  CLI's own CLI_MAX_OUTPUT_TOKENS for a role without one), capped at the role's `max_budget_usd`.

Both are priced by MODEL_PRICES. They count what the plan asks, not what the CLI adds to each turn (its own
instructions and tool definitions) nor what a dependency's output adds to a later prompt, so a real attempt's first
turn costs somewhat more than the minimum counts; the maximum holds as long as the role's budget does.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anthropic
import structlog

from shared.attempt_prompt import build_prompt
from shared.config import Settings
from shared.models import CostEstimate, SubTask, Task, TaskExecutionRequest, TokenUsage
from shared.pricing import ModelPrice
from shared.roles import Role, RoleBook

log = structlog.get_logger(__name__)

CHARS_PER_TOKEN = 4  # English prose and code average about four characters to a token
MIN_ANSWER_TOKENS = 200  # a short final answer
CLI_MAX_OUTPUT_TOKENS = 32_000  # the max_tokens the Claude Code CLI asks for when the role sets none


@dataclass(frozen=True)
class SubtaskPrompt:
    """What one subtask's agent would send: the prompt under its role, on the role's model."""

    role: Role
    model: str
    text: str


class CostEstimator:
    def __init__(self, claude: anthropic.AsyncAnthropic, settings: Settings, roles: RoleBook) -> None:
        self._claude = claude
        self._settings = settings
        self._roles = roles

    async def estimate(self, task: Task) -> CostEstimate | None:
        """The plan's estimate; None (and a warning) when a model it would run on has no price."""
        prompts = [self._prompt(task, subtask) for subtask in task.subtasks]
        prices = {prompt.model: self._settings.model_prices.get(prompt.model) for prompt in prompts}
        unpriced = sorted(model for model, price in prices.items() if price is None)
        if unpriced:
            log.warning("model_price_unknown", models=unpriced, setting="MODEL_PRICES", purpose="estimate")
            return None
        tokens, basis = await self._count(prompts)
        least = most = 0.0
        for prompt, prompt_tokens in zip(prompts, tokens, strict=True):
            price = prices[prompt.model]
            assert price is not None
            least += price.cost_usd(TokenUsage(input_tokens=prompt_tokens, output_tokens=MIN_ANSWER_TOKENS))
            most += _at_the_role_s_limits(prompt.role, prompt_tokens, price)
        return CostEstimate(min_usd=round(least, 6), max_usd=round(max(least, most), 6), basis=basis)

    def _prompt(self, task: Task, subtask: SubTask) -> SubtaskPrompt:
        role = self._roles.role_for(subtask, subtask.required_capabilities)
        assert role is not None  # a subtask requires at least one capability, and each has a role
        first_attempt = subtask.model_copy(update={"attempt_count": 1})
        request = TaskExecutionRequest(
            task_id=task.id, subtask=first_attempt, task_context={"task_description": task.description}
        )
        prompt = build_prompt(request, Path(self._settings.shared_files_dir) / task.id)
        model = role.role.model or self._settings.claude_model
        return SubtaskPrompt(role.role, model, f"{role.role.system_prompt}\n\n{prompt}")

    async def _count(self, prompts: Sequence[SubtaskPrompt]) -> tuple[list[int], str]:
        """Each prompt's input tokens, and how they were counted."""
        models = sorted({prompt.model for prompt in prompts})
        try:
            counted = await asyncio.gather(*(self._count_for(prompts, model) for model in models))
            totals = dict(zip(models, counted, strict=True))
        except anthropic.APIError as error:
            log.warning("count_tokens_unavailable", error=repr(error), fallback="characters")
            return [max(1, round(len(prompt.text) / CHARS_PER_TOKEN)) for prompt in prompts], "characters"
        characters = {model: sum(len(p.text) for p in prompts if p.model == model) for model in models}
        shares = [max(1, round(totals[p.model] * len(p.text) / characters[p.model])) for p in prompts]
        return shares, "count_tokens"

    async def _count_for(self, prompts: Sequence[SubtaskPrompt], model: str) -> int:
        """The input tokens of every prompt on `model`, in one count-tokens call."""
        counted = await self._claude.messages.count_tokens(
            model=model, messages=[{"role": "user", "content": p.text} for p in prompts if p.model == model]
        )
        return counted.input_tokens


def _at_the_role_s_limits(role: Role, prompt_tokens: int, price: ModelPrice) -> float:
    """Every turn the role allows, each the prompt and a full answer, capped at the role's budget."""
    answer_tokens = role.max_output_tokens or CLI_MAX_OUTPUT_TOKENS
    turns = role.max_turns * price.cost_usd(TokenUsage(input_tokens=prompt_tokens, output_tokens=answer_tokens))
    return turns if role.max_budget_usd is None else min(turns, role.max_budget_usd)
