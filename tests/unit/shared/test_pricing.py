"""Pricing Claude's tokens by MODEL_PRICES: each kind of token at its own price, an unlisted model at none."""

import pytest

from shared.config import Settings
from shared.models import TokenUsage
from shared.pricing import ModelPrice, cost_usd

PRICES = {"claude-sonnet-5-5": ModelPrice(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75)}


def test_each_kind_of_token_costs_its_price_per_million() -> None:
    usage = TokenUsage(
        input_tokens=1_000_000, output_tokens=100_000, cache_read_input_tokens=10_000, cache_creation_input_tokens=1_000
    )

    assert cost_usd(PRICES, "claude-sonnet-5-5", usage) == pytest.approx(3.0 + 1.5 + 0.003 + 0.00375)


def test_a_model_without_a_price_has_no_cost() -> None:
    assert cost_usd(PRICES, "claude-unknown-1", TokenUsage(input_tokens=10)) is None


def test_the_default_prices_cover_the_default_models() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert {settings.claude_model, settings.claude_fast_model} <= set(settings.model_prices)


def test_model_prices_are_read_from_json_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_PRICES", '{"my-model": {"input": 1, "output": 2}}')
    assert Settings(_env_file=None).model_prices == {"my-model": ModelPrice(input=1, output=2)}  # type: ignore[call-arg]

    monkeypatch.setenv("MODEL_PRICES", '{"my-model": {"input": -1, "output": 2}}')
    with pytest.raises(ValueError, match="input"):
        Settings(_env_file=None)  # type: ignore[call-arg]
