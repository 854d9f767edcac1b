"""The cost ledger's rows: each model call, priced by the version of its model's price in force when it is recorded.

A call's dollars come from the price table (MODEL_PRICES, versioned in `model_prices`), never from what a client
says it cost, with one exception: an attempt whose models have no price at all keeps the cost the Claude Agent SDK
reported for it, on its last row, and its rows name no price. A planner call of an unpriced model costs nothing
here (a warning says so). A result's stored `cost_usd` is the sum of its rows, so every roll-up over the ledger
equals the sum of the results' costs plus the planning calls.
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import structlog

from shared.models import CallPurpose, ModelCallUsage, ReportedResult, SubTaskResult, TokenUsage
from shared.pricing import ModelPrice

__all__ = ["CallPurpose", "LedgerEntry", "ModelCallUsage", "PriceBook", "PriceVersion", "total_cost"]

log = structlog.get_logger(__name__)

# The model of a call whose model nobody named (a result from an agent of before results named it).
UNKNOWN_MODEL = "unknown"


@dataclass(frozen=True)
class PriceVersion:
    """One row of `model_prices`: a model's price from one change of MODEL_PRICES to the next."""

    price_id: int
    model: str
    version: int
    price: ModelPrice


@dataclass(frozen=True)
class LedgerEntry:
    """One row of `model_calls`, priced (the tenant is the repository's)."""

    purpose: CallPurpose
    model: str
    usage: TokenUsage
    cost_usd: float
    price_id: int | None = None
    task_id: str | None = None
    subtask_id: str | None = None
    attempt: int | None = None
    agent_id: str | None = None


def total_cost(entries: Iterable[LedgerEntry]) -> float:
    return round(sum(entry.cost_usd for entry in entries), 10)


class PriceBook:
    """The price versions in force, by model: what new rows are priced with."""

    def __init__(self, versions: Mapping[str, PriceVersion]) -> None:
        self.versions = dict(versions)

    def planning_entries(self, task_id: str | None, calls: Sequence[ModelCallUsage]) -> list[LedgerEntry]:
        """The rows of the orchestrator's own calls (decomposition, repair, estimate), each at its model's price."""
        entries = [self._entry(call, task_id) for call in calls]
        unpriced = sorted({entry.model for entry in entries if entry.price_id is None})
        if unpriced:
            log.warning("model_price_unknown", models=unpriced, setting="MODEL_PRICES")
        return entries

    def attempt_entries(self, result: SubTaskResult) -> list[LedgerEntry]:
        """The rows of an attempt's result: one per turn the agent reported, or one for the attempt's total when it
        reported none (an agent of before, an error before the first turn); none for an attempt that called no
        model. Unpriced models keep the SDK's reported cost when no model of the attempt has a price."""
        entries = [
            self._entry(call, result.task_id, result.subtask_id, result.attempt, result.agent_id)
            for call in self._attempt_calls(result)
        ]
        unpriced = sorted({entry.model for entry in entries if entry.price_id is None})
        if entries and len(unpriced) == len({entry.model for entry in entries}):
            entries[-1] = replace(entries[-1], cost_usd=round(result.cost_usd, 10))
        elif unpriced:
            log.warning("model_price_unknown", models=unpriced, setting="MODEL_PRICES")
        return entries

    def _entry(
        self,
        call: ModelCallUsage,
        task_id: str | None,
        subtask_id: str | None = None,
        attempt: int | None = None,
        agent_id: str | None = None,
    ) -> LedgerEntry:
        """The call's row at its model's price in force (none: no cost, no price)."""
        version = self.versions.get(call.model)
        cost = version.price.cost_usd(call.usage) if version else 0.0
        price_id = version.price_id if version else None
        return LedgerEntry(call.purpose, call.model, call.usage, cost, price_id, task_id, subtask_id, attempt, agent_id)

    @staticmethod
    def _attempt_calls(result: SubTaskResult) -> list[ModelCallUsage]:
        reported = result.model_calls if isinstance(result, ReportedResult) else []
        if reported:
            return list(reported)
        if result.token_usage.total_tokens == 0 and result.cost_usd == 0:
            return []  # no model was called (a stub, an attempt that failed before its first turn, a lost attempt)
        model = (result.model if isinstance(result, ReportedResult) else None) or UNKNOWN_MODEL
        return [ModelCallUsage(purpose=CallPurpose.ATTEMPT, model=model, usage=result.token_usage)]

    def has_calls(self, result: SubTaskResult) -> bool:
        """Whether the result has rows to record (it called a model): only such a result can be recorded twice."""
        return bool(self._attempt_calls(result))

    def priced_results(
        self, results: Sequence[SubTaskResult], recorded: Collection[str] = ()
    ) -> tuple[list[SubTaskResult], list[LedgerEntry]]:
        """Each result with its cost set to the sum of its rows, and the rows to record, in order: those of each
        result id once, and none of the ids in `recorded` (a result delivered again spent nothing more)."""
        priced, entries = [], []
        seen = set(recorded)
        for result in results:
            rows = self.attempt_entries(result)
            if result.result_id not in seen:
                entries += rows
                seen.add(result.result_id)
            priced.append(result.model_copy(update={"cost_usd": total_cost(rows)}) if rows else result)
        return priced, entries
