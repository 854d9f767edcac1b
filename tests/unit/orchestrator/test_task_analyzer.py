"""Decomposition through the real `anthropic` client, over HTTP, against the Claude simulator."""

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from orchestrator.metrics import OrchestratorMetrics
from orchestrator.plan import plan_tool, validate_plan
from orchestrator.task_analyzer import (
    SYSTEM_PROMPT,
    Decomposition,
    TaskAnalyzer,
    _plan_input,
    build_prompt,
    fallback_subtask,
)
from shared.config import Settings, load_settings
from shared.ledger import CallPurpose
from shared.models import AgentCapability, AgentStatus, SubTask, TaskType
from simulator.testing import SimulatorHandle, running_simulator
from tests.unit.orchestrator.conftest import (
    API,
    DATA,
    DB,
    FILES,
    SEED_FLEET,
    WEB,
    live_agent,
)

TASK_ID = "task_0123"
FORCED_PLAN_TOOL = {"type": "tool", "name": "submit_plan"}


def step(plan_id: str, description: str, *capabilities: str, dependencies: tuple[str, ...] = (), **fields: Any) -> Any:
    return {
        "id": plan_id,
        "description": description,
        "required_capabilities": list(capabilities),
        "dependencies": list(dependencies),
        **fields,
    }


FACTORIAL_PLAN = {
    "subtasks": [step("s1", "Compute the factorial of 10 with the database", "DATABASE_OPERATIONS", priority=5)]
}
SALES_PLAN = {
    "subtasks": [
        step("s1", "Fetch the quarterly sales figures", "DATABASE_OPERATIONS", priority=8, task_type="INGEST"),
        step("s2", "Scrape the competitors' price lists", "WEB_SCRAPING", priority=7),
        step("s3", "Compare sales with competitor prices", "DATA_ANALYSIS", dependencies=("s1", "s2"), priority=3),
    ]
}
CYCLIC_PLAN = {
    "subtasks": [
        step("s1", "Gather the inputs", "DATA_ANALYSIS", dependencies=("s2",)),
        step("s2", "Use the gathered inputs", "CODE_GENERATION", dependencies=("s1",)),
    ]
}
SELF_DEPENDENT_PLAN = {"subtasks": [step("s1", "Wait for myself", "DATA_ANALYSIS", dependencies=("s1",))]}
UNCOVERED_PLAN = {"subtasks": [step("s1", "Scrape prices into the database", "WEB_SCRAPING", "DATABASE_OPERATIONS")]}
MISTYPED_PLAN = {"subtasks": [step("s1", "Scrape and store the prices", "WEB_SCRAPING", task_type="SHOPPING")]}
SPLIT_PLAN = {
    "subtasks": [
        step("s1", "Scrape the prices", "WEB_SCRAPING"),
        step("s2", "Store the scraped prices", "DATABASE_OPERATIONS", dependencies=("s1",)),
    ]
}

SIMPLE_TASK = "Calculate factorial of 10"
COMPLEX_TASK = "Build the quarterly sales report against competitor prices"
CYCLIC_TASK = "Plan in a circle first, then do it properly"
UNCOVERED_TASK = "Scrape the prices straight into the store"
MISTYPED_TASK = "Go shopping for the prices, then store them"
HOPELESS_TASK = "A hopeless planning request"
FLAKY_TASK = "Ask the flaky planner for a plan"

SCENARIOS: dict[str, Any] = {
    "plans": [
        # The repair round of FLAKY_TASK fails; its first round is answered by the entry further down.
        {"name": "flaky-repair", "match": "(?is)flaky planner.*the plan was invalid", "error": {"status": 500}},
        {"name": "factorial", "match": "(?i)factorial of 10", "plan": FACTORIAL_PLAN},
        {"name": "sales", "match": "(?i)quarterly sales report", "plan": SALES_PLAN},
        {"name": "cyclic", "match": "(?i)plan in a circle", "plans": [CYCLIC_PLAN, SPLIT_PLAN]},
        {"name": "uncovered", "match": "(?i)straight into the store", "plan": UNCOVERED_PLAN},
        {"name": "mistyped", "match": "(?i)go shopping", "plans": [MISTYPED_PLAN, SPLIT_PLAN]},
        {"name": "hopeless", "match": "(?i)hopeless planning", "plans": [CYCLIC_PLAN, SELF_DEPENDENT_PLAN]},
        {"name": "flaky", "match": "(?i)flaky planner", "plan": CYCLIC_PLAN},
        {"name": "broken", "match": "(?i)planner is broken", "error": {"status": 500, "message": "[simulated] down"}},
        {"name": "overloaded", "match": "(?i)planner is overloaded", "error": {"status": 529, "message": "[sim] busy"}},
    ]
}


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with running_simulator(SCENARIOS, request_log=tmp_path / "requests.jsonl") as handle:
        yield handle


@pytest.fixture
def analyzer(client: anthropic.AsyncAnthropic, analyzer_settings: Settings) -> TaskAnalyzer:
    return TaskAnalyzer(client, analyzer_settings)


def by_description(decomposition: Decomposition) -> dict[str, SubTask]:
    return {subtask.description: subtask for subtask in decomposition.subtasks}


def tool_result_of_repair(request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plan the model submitted in round 1 and the tool result answering it, as the repair request holds them."""
    assistant, user = request["messages"][1], request["messages"][2]
    assert assistant["role"] == "assistant" and user["role"] == "user"
    [tool_use] = [block for block in assistant["content"] if block["type"] == "tool_use"]
    [tool_result] = [block for block in user["content"] if block["type"] == "tool_result"]
    assert tool_result["tool_use_id"] == tool_use["id"]
    return tool_use, tool_result


async def replayed_usage(
    client: anthropic.AsyncAnthropic, settings: Settings, requests: list[dict[str, Any]]
) -> tuple[int, int]:
    """The tokens the simulator charges for the logged requests, asked again (its answers are deterministic)."""
    input_tokens = output_tokens = 0
    for logged in requests:
        answer = await client.messages.create(
            model=logged["model"],
            max_tokens=settings.decomposition_max_tokens,
            system=logged["system"],
            messages=logged["messages"],
            tools=[plan_tool(settings.max_subtasks_per_task)],
            tool_choice=logged["tool_choice"],
        )
        input_tokens += answer.usage.input_tokens
        output_tokens += answer.usage.output_tokens
    return input_tokens, output_tokens


def assert_single_fallback(decomposition: Decomposition, description: str) -> SubTask:
    assert decomposition.fallback_used
    assert not decomposition.repaired
    [subtask] = decomposition.subtasks
    assert (subtask.task_id, subtask.description, subtask.dependencies) == (TASK_ID, description, [])
    # One agent of the fleet can run it alone (the fleet's most common capability, the first of a tie).
    assert subtask.required_capabilities == [DATA]
    assert any(set(subtask.required_capabilities) <= set(agent.capabilities) for agent in SEED_FLEET)
    return subtask


async def test_a_simple_task_becomes_the_scripted_single_subtask(
    analyzer: TaskAnalyzer, simulator: SimulatorHandle
) -> None:
    decomposition = await analyzer.decompose_task(TASK_ID, SIMPLE_TASK, SEED_FLEET)

    [subtask] = decomposition.subtasks
    assert subtask.description == "Compute the factorial of 10 with the database"
    assert subtask.required_capabilities == [DB]
    assert (subtask.task_id, subtask.dependencies, subtask.priority) == (TASK_ID, [], 5)
    assert subtask.id.startswith("subtask_")
    assert (decomposition.fallback_reason, decomposition.repaired) == (None, False)
    assert decomposition.duration_ms > 0
    assert [request["source"] for request in simulator.requests()] == ["plans[1] (factorial)"]


async def test_a_complex_task_becomes_the_scripted_subtasks_with_their_dependencies(
    analyzer: TaskAnalyzer,
) -> None:
    decomposition = await analyzer.decompose_task(TASK_ID, COMPLEX_TASK, SEED_FLEET)

    subtasks = by_description(decomposition)
    fetch = subtasks["Fetch the quarterly sales figures"]
    scrape = subtasks["Scrape the competitors' price lists"]
    compare = subtasks["Compare sales with competitor prices"]
    assert len(decomposition.subtasks) == 3
    assert [(s.required_capabilities, s.priority) for s in (fetch, scrape, compare)] == [
        ([DB], 8),
        ([WEB], 7),
        ([DATA], 3),
    ]
    assert fetch.task_type is TaskType.INGEST
    assert scrape.task_type is compare.task_type is TaskType.GENERAL  # the task's, as the plan names none
    assert (fetch.dependencies, scrape.dependencies, compare.dependencies) == ([], [], [fetch.id, scrape.id])
    assert decomposition.subtasks[-1] is compare  # after what it depends on
    assert (decomposition.fallback_reason, decomposition.repaired) == (None, False)


async def test_the_model_is_forced_to_submit_a_plan_and_shown_the_task_capabilities_and_fleet(
    analyzer: TaskAnalyzer, simulator: SimulatorHandle, analyzer_settings: Settings
) -> None:
    await analyzer.decompose_task(TASK_ID, SIMPLE_TASK, SEED_FLEET)

    [request] = simulator.requests()
    [message] = request["messages"]
    prompt = message["content"]
    assert request["tool_choice"] == FORCED_PLAN_TOOL
    assert request["tools"] == ["submit_plan"]
    assert request["model"] == analyzer_settings.claude_model == "claude-haiku-5-5"
    assert request["system"] == SYSTEM_PROMPT
    assert message["role"] == "user"
    assert f"<task>\n{SIMPLE_TASK}\n</task>" in prompt
    for capability in AgentCapability:
        assert f"- {capability.value}: " in prompt
    for line in (
        "- agent1: DATA_ANALYSIS, CODE_GENERATION",
        "- agent2: WEB_SCRAPING, API_INTEGRATION",
        "- agent3: FILE_PROCESSING, DATABASE_OPERATIONS",
        "- agent4: CODE_GENERATION, API_INTEGRATION",
        "- agent5: DATA_ANALYSIS, DATABASE_OPERATIONS",
    ):
        assert line in prompt
    assert "at most 5 subtasks" in prompt


@pytest.mark.parametrize(
    ("task", "submitted", "problem"),
    [
        pytest.param(CYCLIC_TASK, CYCLIC_PLAN, "dependencies form a cycle: s", id="cycle"),
        pytest.param(
            MISTYPED_TASK,
            MISTYPED_PLAN,
            "- subtask 's1' (subtasks.0.task_type): Input should be 'DISCOVERY', 'MIGRATION', 'HEARTBEAT', 'INGEST', "
            "'RESEARCH' or 'GENERAL' (got 'SHOPPING')",
            id="unknown-task-type",
        ),
    ],
)
async def test_an_invalid_plan_is_repaired_once_with_the_validation_errors(
    analyzer: TaskAnalyzer, simulator: SimulatorHandle, task: str, submitted: dict[str, Any], problem: str
) -> None:
    decomposition = await analyzer.decompose_task(TASK_ID, task, SEED_FLEET)

    first, repair = simulator.requests()
    tool_use, tool_result = tool_result_of_repair(repair)
    assert repair["messages"][0] == first["messages"][0]
    assert (tool_use["name"], tool_use["input"]) == ("submit_plan", submitted)
    assert tool_result["is_error"] is True
    assert problem in tool_result["content"]
    assert repair["tool_choice"] == FORCED_PLAN_TOOL
    # The second plan is the one used, split so each part has one agent able to run it.
    assert (decomposition.repaired, decomposition.fallback_reason) == (True, None)
    subtasks = by_description(decomposition)
    scrape, store = subtasks["Scrape the prices"], subtasks["Store the scraped prices"]
    assert (scrape.required_capabilities, store.required_capabilities) == ([WEB], [DB])
    assert store.dependencies == [scrape.id]


async def test_a_plan_invalid_twice_is_replaced_by_one_subtask(
    analyzer: TaskAnalyzer, simulator: SimulatorHandle
) -> None:
    decomposition = await analyzer.decompose_task(TASK_ID, HOPELESS_TASK, SEED_FLEET)

    assert len(simulator.requests()) == 2  # one repair round, no more
    assert_single_fallback(decomposition, HOPELESS_TASK)
    # The reason gives the errors of the last attempt: the self-dependency, no longer the cycle.
    assert decomposition.fallback_reason == "the plan stayed invalid after one repair: subtask 's1' depends on itself"


async def test_a_plan_over_the_subtask_limit_is_refused_and_replaced(
    simulator: SimulatorHandle, client: anthropic.AsyncAnthropic
) -> None:
    analyzer = TaskAnalyzer(client, load_settings(_env_file=None, max_subtasks_per_task=2))

    decomposition = await analyzer.decompose_task(TASK_ID, COMPLEX_TASK, SEED_FLEET)

    assert "at most 2 subtasks" in simulator.requests()[0]["messages"][0]["content"]
    assert_single_fallback(decomposition, COMPLEX_TASK)
    assert decomposition.fallback_reason == (
        "the plan stayed invalid after one repair: the plan has 3 subtasks; at most 2 are allowed"
    )


@pytest.mark.parametrize(
    ("task", "status", "message"),
    [
        pytest.param("The planner is broken today", 500, "[simulated] down", id="500"),
        pytest.param("The planner is overloaded today", 529, "[sim] busy", id="529-overloaded"),
    ],
)
async def test_an_api_error_falls_back_to_one_subtask_with_the_reason(
    analyzer: TaskAnalyzer, simulator: SimulatorHandle, task: str, status: int, message: str
) -> None:
    decomposition = await analyzer.decompose_task(TASK_ID, task, SEED_FLEET)

    assert [request["status"] for request in simulator.requests()] == [status]
    assert_single_fallback(decomposition, task)
    assert decomposition.fallback_reason is not None
    assert decomposition.fallback_reason.startswith(f"Claude API error: Error code: {status}")
    assert message in decomposition.fallback_reason
    assert (decomposition.usage.input_tokens, decomposition.usage.output_tokens) == (0, 0)
    assert decomposition.model is None  # no answer: nothing to price
    assert decomposition.calls == []


@pytest.mark.parametrize(
    ("task", "kind"),
    [
        pytest.param("The planner is broken today", "server_error", id="500"),
        pytest.param("The planner is overloaded today", "overloaded", id="529-overloaded"),
    ],
)
async def test_an_api_error_is_counted_by_kind(
    client: anthropic.AsyncAnthropic, analyzer_settings: Settings, task: str, kind: str
) -> None:
    metrics = OrchestratorMetrics()
    analyzer = TaskAnalyzer(client, analyzer_settings, metrics)

    await analyzer.decompose_task(TASK_ID, task, SEED_FLEET)
    await analyzer.decompose_task(TASK_ID, SIMPLE_TASK, SEED_FLEET)

    [errors] = metrics.provider_errors.collect()
    counted = {sample.labels["kind"]: sample.value for sample in errors.samples if sample.name.endswith("_total")}
    assert counted == {kind: 1.0}


async def test_an_unreachable_api_falls_back_to_one_subtask(analyzer_settings: Settings) -> None:
    with socket.socket() as bound_not_listening:  # held, so no one else takes the port: connections are refused
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        async with anthropic.AsyncAnthropic(base_url=f"http://127.0.0.1:{port}", api_key="sim", max_retries=0) as api:
            decomposition = await TaskAnalyzer(api, analyzer_settings).decompose_task(TASK_ID, SIMPLE_TASK, SEED_FLEET)

    assert_single_fallback(decomposition, SIMPLE_TASK)
    assert decomposition.fallback_reason == "Claude API error: Connection error."


async def test_an_api_error_in_the_repair_round_falls_back_and_keeps_the_first_rounds_usage(
    analyzer: TaskAnalyzer, simulator: SimulatorHandle, client: anthropic.AsyncAnthropic, analyzer_settings: Settings
) -> None:
    decomposition = await analyzer.decompose_task(TASK_ID, FLAKY_TASK, SEED_FLEET)

    first, repair = simulator.requests()
    assert (first["source"], first["status"]) == ("plans[7] (flaky)", 200)
    assert (repair["source"], repair["status"]) == ("plans[0] (flaky-repair)", 500)
    assert_single_fallback(decomposition, FLAKY_TASK)
    assert decomposition.fallback_reason is not None
    assert decomposition.fallback_reason.startswith("Claude API error: Error code: 500")
    usage = (decomposition.usage.input_tokens, decomposition.usage.output_tokens)
    assert usage == await replayed_usage(client, analyzer_settings, [first])
    assert usage[0] > 0 and usage[1] > 0
    # The failed repair call spent nothing: no row for it.
    assert [call.purpose for call in decomposition.calls] == [CallPurpose.DECOMPOSITION]


async def test_usage_is_summed_over_both_rounds(
    analyzer: TaskAnalyzer, simulator: SimulatorHandle, client: anthropic.AsyncAnthropic, analyzer_settings: Settings
) -> None:
    decomposition = await analyzer.decompose_task(TASK_ID, CYCLIC_TASK, SEED_FLEET)
    requests = simulator.requests()

    first_round = await replayed_usage(client, analyzer_settings, requests[:1])
    both_rounds = await replayed_usage(client, analyzer_settings, requests)
    assert decomposition.repaired
    assert (decomposition.usage.input_tokens, decomposition.usage.output_tokens) == both_rounds
    assert both_rounds[0] > first_round[0] > 0
    assert decomposition.duration_ms > 0
    assert decomposition.model == analyzer_settings.claude_model  # the model that answered, which prices it
    # Each call is its own row in the cost ledger: the decomposition, then the repair.
    calls = [(c.purpose, c.model, c.usage.input_tokens, c.usage.output_tokens) for c in decomposition.calls]
    second_round = (both_rounds[0] - first_round[0], both_rounds[1] - first_round[1])
    model = analyzer_settings.claude_model
    assert calls == [(CallPurpose.DECOMPOSITION, model, *first_round), (CallPurpose.REPAIR, model, *second_round)]


@pytest.mark.parametrize("fleet", [pytest.param(SEED_FLEET, id="seed-fleet"), pytest.param([], id="no-agent")])
async def test_a_plan_needing_capabilities_no_live_agent_has_together_is_kept_as_written(
    analyzer: TaskAnalyzer, simulator: SimulatorHandle, fleet: list[AgentStatus]
) -> None:
    # No repair, no fallback: the subtask waits for such an agent (graceful degradation), the rest of the work flows.
    decomposition = await analyzer.decompose_task(TASK_ID, UNCOVERED_TASK, fleet)

    [request] = simulator.requests()
    assert ("- (none registered yet)" in request["messages"][0]["content"]) is (not fleet)
    assert (decomposition.repaired, decomposition.fallback_reason) == (False, None)
    [subtask] = decomposition.subtasks
    assert subtask.required_capabilities == [WEB, DB]


async def test_the_subtasks_have_the_tasks_type_unless_the_plan_names_another(analyzer: TaskAnalyzer) -> None:
    planned = await analyzer.decompose_task(TASK_ID, COMPLEX_TASK, SEED_FLEET, TaskType.RESEARCH)
    fallback = await analyzer.decompose_task(TASK_ID, HOPELESS_TASK, SEED_FLEET, TaskType.MIGRATION)

    subtasks = by_description(planned)
    assert subtasks["Fetch the quarterly sales figures"].task_type is TaskType.INGEST
    assert subtasks["Compare sales with competitor prices"].task_type is TaskType.RESEARCH
    [only] = fallback.subtasks
    assert only.task_type is TaskType.MIGRATION


async def test_an_answer_without_a_plan_tool_call_is_an_invalid_plan(
    client: anthropic.AsyncAnthropic, analyzer_settings: Settings
) -> None:
    # A real answer with no tool_use: the simulator answers a request without a forced tool in text.
    answer = await client.messages.create(
        model=analyzer_settings.claude_model,
        max_tokens=256,
        messages=[{"role": "user", "content": "Describe a plan in prose instead"}],
    )
    [text_block] = answer.content
    assert text_block.type == "text"

    tool_use_id, raw_plan = _plan_input(answer)
    plan, errors = validate_plan(raw_plan, analyzer_settings.max_subtasks_per_task)
    assistant, user = TaskAnalyzer._repair_messages(answer, tool_use_id, errors)

    assert (tool_use_id, raw_plan, plan) == (None, None, None)
    assert errors == ["the plan: Input should be a valid dictionary or instance of Plan"]
    # With no tool call to answer, the errors go back in the repair request's text.
    assert assistant == {"role": "assistant", "content": [{"type": "text", "text": text_block.text}]}
    assert user == {
        "role": "user",
        "content": [
            {
                "type": "text",
                "text": "The plan was invalid. Call submit_plan again with a corrected plan.\n"
                "- the plan: Input should be a valid dictionary or instance of Plan",
            }
        ],
    }


async def test_a_call_of_another_tool_is_not_taken_for_a_plan(
    client: anthropic.AsyncAnthropic, analyzer_settings: Settings
) -> None:
    other_tool: Any = {
        "name": "submit_summary",
        "description": "Not a plan.",
        "input_schema": {"type": "object", "properties": {"subtasks": {"type": "string"}}, "required": ["subtasks"]},
    }
    answer = await client.messages.create(
        model=analyzer_settings.claude_model,
        max_tokens=256,
        messages=[{"role": "user", "content": SIMPLE_TASK}],
        tools=[other_tool],
        tool_choice={"type": "tool", "name": "submit_summary"},
    )
    assert [(block.type, getattr(block, "name", None)) for block in answer.content] == [("tool_use", "submit_summary")]

    assert _plan_input(answer) == (None, None)


def test_build_prompt_says_when_no_agent_is_live_and_gives_the_limit() -> None:
    prompt = build_prompt("Summarise the logs of last week", [], max_subtasks=3)

    assert "<task>\nSummarise the logs of last week\n</task>" in prompt
    assert "Live agents and the capabilities each one has:\n- (none registered yet)" in prompt
    assert "at most 3 subtasks" in prompt
    assert all(f"- {capability.value}: " in prompt for capability in AgentCapability)


@pytest.mark.parametrize(
    ("fleet", "expected"),
    [
        pytest.param(
            [live_agent("a1", 8001, WEB), live_agent("a2", 8002, API, WEB), live_agent("a3", 8003, FILES)],
            WEB,
            id="most-common",
        ),
        pytest.param([live_agent("a1", 8001, FILES, DB)], FILES, id="single-agent"),
        pytest.param([], DATA, id="no-agent"),
    ],
)
def test_the_fallback_subtask_needs_the_capability_most_live_agents_have(
    fleet: list[Any], expected: AgentCapability
) -> None:
    subtask = fallback_subtask(TASK_ID, "Summarise the logs of last week", fleet)

    assert (subtask.task_id, subtask.description, subtask.dependencies) == (
        TASK_ID,
        "Summarise the logs of last week",
        [],
    )
    assert subtask.required_capabilities == [expected]
    assert subtask.id.startswith("subtask_")
