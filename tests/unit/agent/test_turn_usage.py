"""An attempt's model calls for the cost ledger, from the CLI's messages; and the role cap that stopped an attempt."""

from typing import Any

import pytest
from claude_agent_sdk import AssistantMessage, ResultError, TextBlock

from agent.executors.outcomes import RoleCaps, failure_from_error, outcome_from_result
from agent.executors.turn_usage import TurnUsage
from shared.models import CallPurpose, TokenUsage
from tests.unit.agent.test_sdk_executor import result_message

SONNET, HAIKU = "claude-sonnet-5-5", "claude-haiku-5-5"


def assistant(message_id: str | None, model: str = SONNET, **usage: int) -> AssistantMessage:
    return AssistantMessage(content=[TextBlock("…")], model=model, usage=dict(usage), message_id=message_id)


def model_usage(**per_model: dict[str, int]) -> dict[str, Any]:
    return {
        model: {"inputTokens": 0, "outputTokens": 0, "cacheReadInputTokens": 0, "cacheCreationInputTokens": 0, **counts}
        for model, counts in per_model.items()
    }


def test_each_turn_counts_once_though_the_cli_sends_a_message_per_block() -> None:
    turns = TurnUsage()
    for message in (
        assistant("msg_1", input_tokens=900, output_tokens=1),
        assistant("msg_1", input_tokens=900, output_tokens=1),  # the same turn's tool call
        assistant("msg_2", input_tokens=1000, output_tokens=1, cache_read_input_tokens=800),
    ):
        turns.observe(message)

    calls = turns.calls(None)

    assert [call.usage for call in calls] == [
        TokenUsage(input_tokens=900, output_tokens=1),
        TokenUsage(input_tokens=1000, output_tokens=1, cache_read_input_tokens=800),
    ]
    assert {(call.purpose, call.model) for call in calls} == {(CallPurpose.ATTEMPT, SONNET)}


def test_what_only_the_totals_know_goes_on_each_model_s_last_turn() -> None:
    # Each turn's usage is as of its first streamed event: its output tokens reach only the result's totals.
    turns = TurnUsage()
    for message in (
        assistant("msg_1", input_tokens=900, output_tokens=1),
        assistant("msg_2", model=HAIKU, input_tokens=50, output_tokens=1),
        assistant("msg_3", input_tokens=1000, output_tokens=1),
    ):
        turns.observe(message)
    result = result_message(
        model_usage=model_usage(
            **{
                SONNET: {"inputTokens": 1900, "outputTokens": 60},
                HAIKU: {"inputTokens": 50, "outputTokens": 5},
                "claude-opus-5-5": {"inputTokens": 7},  # no turn of it was seen
            }
        )
    )

    calls = turns.calls(result)

    assert [(call.model, call.usage.input_tokens, call.usage.output_tokens) for call in calls] == [
        (SONNET, 900, 1),
        (HAIKU, 50, 5),
        (SONNET, 1000, 59),
        ("claude-opus-5-5", 7, 0),
    ]


def test_no_turn_seen_means_no_calls_and_unnamed_turns_are_left_out() -> None:
    turns = TurnUsage()
    turns.observe(assistant(None, input_tokens=900))  # an older CLI: turns cannot be told apart

    assert turns.calls(result_message(model_usage=model_usage(**{SONNET: {"inputTokens": 900}}))) == []


@pytest.mark.parametrize(
    ("subtype", "text", "limit", "error"),
    [
        (
            "error_max_turns",
            "Reached maximum number of turns (3)",
            "max_turns",
            "the role's max_turns cap (3) stopped the attempt: Reached maximum number of turns (3)",
        ),
        (
            "error_max_budget_usd",
            "Reached maximum budget ($0.5)",
            "max_budget_usd",
            "the role's max_budget_usd cap ($0.5) stopped the attempt: Reached maximum budget ($0.5)",
        ),
        (
            "success",
            "API Error: Claude's response exceeded the 64 output token maximum. To configure this behavior, set the "
            "CLAUDE_CODE_MAX_OUTPUT_TOKENS environment variable.",
            "max_output_tokens",
            "the role's max_output_tokens cap (64) stopped the attempt: API Error: Claude's response exceeded "
            "the 64 output token maximum. To configure this behavior, set the CLAUDE_CODE_MAX_OUTPUT_TOKENS "
            "environment variable.",
        ),
    ],
)
def test_a_capped_attempt_says_which_cap_and_its_value_and_is_not_retried(
    subtype: str, text: str, limit: str, error: str
) -> None:
    caps = RoleCaps(max_turns=3, max_budget_usd=0.5, max_output_tokens=64)
    reported = result_message(is_error=True, subtype=subtype, result=text)
    raised = ResultError(f"Claude Code returned an error result: {text}", data={"subtype": subtype}, exit_code=1)

    for outcome in (
        outcome_from_result(reported, caps),
        failure_from_error(raised, reported, status=None, subtype=subtype, caps=caps),
    ):
        assert (outcome.limit_reached, outcome.error, outcome.retryable) == (limit, error, False)


def test_an_api_error_is_no_cap_even_when_its_text_looks_like_one() -> None:
    text = "API Error: 529 the response exceeded the 64 output token maximum"  # the provider's words, with a status
    outcome = outcome_from_result(result_message(is_error=True, api_error_status=529, result=text), RoleCaps())

    assert outcome.limit_reached is None and outcome.retryable
