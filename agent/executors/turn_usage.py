"""Each model call of an attempt, for the cost ledger: one per turn, from the CLI's AssistantMessages.

The CLI sends an AssistantMessage per content block, so the messages of one turn share its `message_id`: each turn
counts once. Their `usage` is the turn's as of its first streamed event, before the model wrote its answer, so
a turn's output tokens arrive only in the attempt's totals (the ResultMessage's `model_usage`, per model): what the
totals hold beyond the turns is added to each model's last turn, so the calls always add up to the attempt.
Messages without a `message_id` (older CLIs) cannot be told apart and are left out; with no turn seen the
orchestrator records one call for the attempt's total.
"""

from typing import Any

from claude_agent_sdk import AssistantMessage, ResultMessage

from agent.executors.outcomes import token_usage
from shared.models import CallPurpose, ModelCallUsage, TokenUsage

# ModelUsage keys (camelCase, as the CLI writes them) by TokenUsage field.
MODEL_USAGE_KEYS = {
    "input_tokens": "inputTokens",
    "output_tokens": "outputTokens",
    "cache_read_input_tokens": "cacheReadInputTokens",
    "cache_creation_input_tokens": "cacheCreationInputTokens",
}


class TurnUsage:
    """Collects the turns of one query as its messages go by."""

    def __init__(self) -> None:
        self._turns: dict[str, tuple[str, TokenUsage]] = {}  # by message id, in the order the turns began

    def observe(self, message: object) -> None:
        if isinstance(message, AssistantMessage) and message.message_id and message.usage is not None:
            # The last message of a turn knows at least as much as its first.
            self._turns[message.message_id] = (message.model, token_usage(message.usage))

    def calls(self, result: ResultMessage | None) -> list[ModelCallUsage]:
        """The attempt's calls, each model's last one topped up to the totals the result reports for it."""
        calls = [ModelCallUsage(purpose=CallPurpose.ATTEMPT, model=m, usage=u) for m, u in self._turns.values()]
        if not calls:
            return []
        for model, total in model_totals(result).items():
            mine = [call for call in calls if call.model == model]
            if not mine:
                calls.append(ModelCallUsage(purpose=CallPurpose.ATTEMPT, model=model, usage=total))
                continue
            counted = sum((call.usage for call in mine), TokenUsage())
            mine[-1].usage = mine[-1].usage + shortfall(total, counted)
        return calls


def model_totals(result: ResultMessage | None) -> dict[str, TokenUsage]:
    """The usage the result reports per model (none without a result or on CLIs that do not report it)."""
    if result is None or not result.model_usage:
        return {}
    totals = {}
    for model, reported in result.model_usage.items():
        counts: dict[str, Any] = dict(reported)
        totals[model] = TokenUsage(
            **{field: max(int(counts.get(key) or 0), 0) for field, key in MODEL_USAGE_KEYS.items()}
        )
    return totals


def shortfall(total: TokenUsage, counted: TokenUsage) -> TokenUsage:
    """What `total` holds beyond `counted`, kind by kind (never below zero)."""
    return TokenUsage(
        **{field: max(getattr(total, field) - getattr(counted, field), 0) for field in TokenUsage.model_fields}
    )
