"""Cost estimates through the real `anthropic` client, over HTTP, against the Claude simulator's count-tokens
endpoint: one count per model of a plan, priced by MODEL_PRICES with the roles' limits; from characters when the
endpoint cannot answer."""

import socket
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from orchestrator.estimates import CHARS_PER_TOKEN, CLI_MAX_OUTPUT_TOKENS, MIN_ANSWER_TOKENS, CostEstimator
from shared.attempt_prompt import build_prompt
from shared.config import Settings, load_settings
from shared.models import AgentCapability, CostEstimate, Task, TaskExecutionRequest
from shared.pricing import ModelPrice
from shared.roles import RoleBook, load_roles
from simulator.testing import SimulatorHandle, running_simulator
from tests.factories import build_subtask, build_task

DATA, WEB = AgentCapability.DATA_ANALYSIS, AgentCapability.WEB_SCRAPING
SONNET = ModelPrice(input=3.0, output=15.0)
CHEAP = ModelPrice(input=0.1, output=0.5)


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with running_simulator(request_log=tmp_path / "requests.jsonl") as handle:
        yield handle


@pytest.fixture
def estimate_settings(tmp_path: Path) -> Settings:
    return load_settings(
        _env_file=None, shared_files_dir=str(tmp_path / "shared_files"), model_prices={"claude-sonnet-5-5": SONNET}
    )


@pytest.fixture
def roles() -> RoleBook:
    return load_roles()


def plan(*capabilities: AgentCapability) -> Task:
    task = build_task(subtasks=0, description="Compare the quarterly sales with the competitors' prices")
    task.subtasks = [
        build_subtask(task.id, description=f"Step {n} of the comparison", required_capabilities=[capability])
        for n, capability in enumerate(capabilities, 1)
    ]
    return task


def prompt_text(task: Task, settings: Settings, roles: RoleBook, index: int) -> str:
    """What the estimate counts for one subtask: its role's system prompt and the prompt its agent would get."""
    subtask = task.subtasks[index].model_copy(update={"attempt_count": 1})
    request = TaskExecutionRequest(
        task_id=task.id, subtask=subtask, task_context={"task_description": task.description}
    )
    prompt = build_prompt(request, Path(settings.shared_files_dir) / task.id)
    return f"{roles[subtask.required_capabilities[0]].role.system_prompt}\n\n{prompt}"


def usd(price: ModelPrice, input_tokens: float, output_tokens: float) -> float:
    return (input_tokens * price.input + output_tokens * price.output) / 1_000_000


async def test_the_plan_is_counted_in_one_call_and_priced_from_one_turn_to_the_roles_limits(
    client: anthropic.AsyncAnthropic, simulator: SimulatorHandle, estimate_settings: Settings, roles: RoleBook
) -> None:
    task = plan(DATA, WEB, DATA)
    cheap = estimate_settings.model_copy(update={"model_prices": {"claude-sonnet-5-5": CHEAP}})

    estimate = await CostEstimator(client, cheap, roles).estimate(task)

    [count] = simulator.requests()  # one count for the whole plan (every role runs on the default model)
    assert count["source"] == "count_tokens" and count["model"] == "claude-sonnet-5-5"
    texts = [prompt_text(task, estimate_settings, roles, n) for n in range(3)]
    assert [message["content"] for message in count["messages"]] == texts
    counted = count["input_tokens"]
    assert estimate is not None and estimate.basis == "count_tokens"
    assert estimate.min_usd == pytest.approx(usd(CHEAP, counted, 3 * MIN_ANSWER_TOKENS), abs=1e-5)
    # At this price every role's turns stay under its budget: each turn is the prompt's share and a full answer.
    shares = [counted * len(text) / sum(map(len, texts)) for text in texts]
    most = 0.0
    for subtask, share in zip(task.subtasks, shares, strict=True):
        role = roles[subtask.required_capabilities[0]].role
        turns = role.max_turns * usd(CHEAP, share, role.max_output_tokens or CLI_MAX_OUTPUT_TOKENS)
        assert role.max_budget_usd is not None and turns < role.max_budget_usd
        most += turns
    assert estimate.max_usd == pytest.approx(most, abs=1e-5)


async def test_each_subtask_s_most_is_capped_at_its_role_s_budget(
    client: anthropic.AsyncAnthropic, estimate_settings: Settings, roles: RoleBook
) -> None:
    estimate = await CostEstimator(client, estimate_settings, roles).estimate(plan(DATA, WEB, DATA))

    # At Sonnet's price twelve turns of 8192 output tokens pass a data analyst's $1, and ten a web researcher's $0.50.
    budgets = [roles[capability].role.max_budget_usd for capability in (DATA, WEB, DATA)]
    assert budgets == [1.0, 0.5, 1.0]
    assert estimate is not None and estimate.max_usd == pytest.approx(2.5)


async def test_when_count_tokens_cannot_answer_the_prompts_are_counted_by_their_characters(
    estimate_settings: Settings, roles: RoleBook
) -> None:
    task = plan(WEB)
    with socket.socket() as bound_not_listening:  # held, so no one else takes the port: connections are refused
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        async with anthropic.AsyncAnthropic(base_url=f"http://127.0.0.1:{port}", api_key="sim", max_retries=0) as api:
            estimate = await CostEstimator(api, estimate_settings, roles).estimate(task)

    characters = len(prompt_text(task, estimate_settings, roles, 0))
    assert estimate is not None and estimate.basis == "characters"
    assert estimate.min_usd == pytest.approx(usd(SONNET, characters / CHARS_PER_TOKEN, MIN_ANSWER_TOKENS), abs=1e-5)


async def test_a_plan_on_a_model_without_a_price_has_no_estimate(
    client: anthropic.AsyncAnthropic, simulator: SimulatorHandle, estimate_settings: Settings, roles: RoleBook
) -> None:
    unpriced = estimate_settings.model_copy(update={"model_prices": {}})

    assert await CostEstimator(client, unpriced, roles).estimate(plan(DATA)) is None
    assert simulator.requests() == []  # nothing to price, so nothing counted


async def test_an_empty_plan_costs_nothing_and_asks_nothing(
    client: anthropic.AsyncAnthropic, simulator: SimulatorHandle, estimate_settings: Settings, roles: RoleBook
) -> None:
    estimate = await CostEstimator(client, estimate_settings, roles).estimate(plan())

    assert estimate == CostEstimate(min_usd=0.0, max_usd=0.0, basis="count_tokens")
    assert simulator.requests() == []
