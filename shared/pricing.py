"""What Claude's tokens cost: per-model prices (the MODEL_PRICES setting) and the price of one call's usage.

The agents' results carry the cost the Claude Agent SDK reports; the orchestrator's own call (the decomposition)
reports tokens only, so it is priced here.
"""

from pydantic import BaseModel, ConfigDict, Field

from shared.models import TokenUsage

PER_MILLION = 1_000_000


class ModelPrice(BaseModel):
    """USD per million tokens of one model, by kind of token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float = Field(0.0, ge=0)
    cache_write: float = Field(0.0, ge=0)

    def cost_usd(self, usage: TokenUsage) -> float:
        spent = (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_input_tokens * self.cache_read
            + usage.cache_creation_input_tokens * self.cache_write
        )
        return round(spent / PER_MILLION, 8)


def default_model_prices() -> dict[str, ModelPrice]:
    """List prices of the models the settings name by default (and their predecessors), per million tokens."""
    sonnet = ModelPrice(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75)
    haiku = ModelPrice(input=1.0, output=5.0, cache_read=0.1, cache_write=1.25)
    opus = ModelPrice(input=5.0, output=25.0, cache_read=0.5, cache_write=6.25)
    return {
        "claude-sonnet-5-5": sonnet,
        "claude-haiku-5-5": haiku,
        "claude-opus-5-5": opus,
        "claude-sonnet-4-5": sonnet,
        "claude-haiku-4-5": haiku,
        "claude-opus-4-5": opus,
    }


def cost_usd(prices: dict[str, ModelPrice], model: str, usage: TokenUsage) -> float | None:
    """What `usage` of `model` cost, or None when MODEL_PRICES has no price for the model."""
    price = prices.get(model)
    return None if price is None else price.cost_usd(usage)
