"""Scenario files are validated on load, with messages that name the file, entry and field."""

import json
from pathlib import Path
from typing import Any

import pytest

from simulator.conversation import Conversation
from simulator.protocol import MessagesRequest
from simulator.responder import Responder, TextOut, ToolUseOut
from simulator.scenarios import ScenarioError, load_scenarios, parse_scenarios

DEMO = Path(__file__).parents[3] / "simulator" / "scenarios" / "demo.yaml"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"plans": [{"match": "x", "plan": {}}, {"match": "(", "plan": {}}]},
            "scenarios.yaml: plans[1].match: invalid regex '(' (missing ), unterminated subpattern at position 0)",
        ),
        (
            {"subtasks": [{"match": "x", "turns": [{"final": "hi"}], "matchh": "y"}]},
            "scenarios.yaml: subtasks[0].matchh: unknown field",
        ),
        (
            {"subtasks": [{"match": "x"}]},
            "scenarios.yaml: subtasks[0]: a subtask entry needs 'turns' (its script) or an 'error', "
            "not both and not neither",
        ),
        (
            {"subtasks": [{"match": "x", "turns": []}]},
            "scenarios.yaml: subtasks[0].turns: List should have at least 1 item after validation, not 0",
        ),
        ({"subtasks": [{"turns": [{"final": "x"}]}]}, "scenarios.yaml: subtasks[0].match: field required"),
        (
            {"subtasks": [{"match": "x", "turns": [{"final": "{{ tool_results"}]}]},
            "scenarios.yaml: subtasks[0].turns[0].final: invalid template '{{ tool_results': "
            "unexpected end of template, expected 'end of print statement'. (line 1)",
        ),
        (
            {"subtasks": [{"match": "x", "turns": [{"final": "a", "tool_calls": [{"tool": "t"}]}]}]},
            "scenarios.yaml: subtasks[0].turns[0]: a turn needs exactly one of tool_calls, final, error "
            "(found ['tool_calls', 'final'])",
        ),
        (
            {"plans": [{"match": "x"}]},
            "scenarios.yaml: plans[0]: a plan entry needs exactly one of plan, plans, error (found none)",
        ),
        (
            {"plans": [{"match": "x", "error": {"status": 200}}]},
            "scenarios.yaml: plans[0].error.status: Input should be greater than or equal to 400",
        ),
        (
            ["not", "a", "mapping"],
            "scenarios.yaml: the top level must be a mapping with 'plans', 'subtasks' and/or 'bursts'",
        ),
    ],
)
def test_invalid_scenarios_are_explained(data: Any, expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenarios(data, "scenarios.yaml")
    assert str(caught.value) == expected


def test_every_problem_is_reported_at_once() -> None:
    data = {"plans": [{"match": "(", "plan": {}}], "subtasks": [{"match": "[", "turns": [{"final": "ok"}]}]}
    with pytest.raises(ScenarioError) as caught:
        parse_scenarios(data, "many.yaml")
    lines = str(caught.value).splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["plans[0].match", "subtasks[0].match"]


def test_yaml_and_json_files_load(tmp_path: Path) -> None:
    data = {"subtasks": [{"match": "hello", "turns": [{"final": "hi"}]}]}
    (tmp_path / "s.json").write_text(json.dumps(data))
    (tmp_path / "s.yaml").write_text("subtasks:\n  - match: hello\n    turns:\n      - final: hi\n")
    assert load_scenarios(tmp_path / "s.json") == load_scenarios(tmp_path / "s.yaml")


def test_unparsable_and_missing_files_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("plans: [\n")
    with pytest.raises(ScenarioError, match=r"^broken.yaml: not valid YAML"):
        load_scenarios(broken)
    with pytest.raises(ScenarioError, match=r"absent.yaml: cannot read"):
        load_scenarios(tmp_path / "absent.yaml")


def test_an_empty_file_means_fallback_only(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing scripted yet\n")
    scenarios = load_scenarios(empty)
    assert scenarios.plans == []
    assert scenarios.subtasks == []


def _conversation(messages: list[dict[str, Any]], tools: list[str]) -> Conversation:
    tool_defs = [{"name": name, "input_schema": {"type": "object"}} for name in tools]
    return Conversation(MessagesRequest(model="m", max_tokens=10, messages=messages, tools=tool_defs))


def _after_tool(prompt: str, result: dict[str, Any], tool: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": tool, "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": json.dumps(result)}]},
    ]


def test_demo_factorial_script_renders_from_the_database_row() -> None:
    responder = Responder(load_scenarios(DEMO))
    prompt = "Subtask: Compute the factorial of 10 with the database"
    tools = ["DeferredToolPlaceholder", "mcp__agent__database_query"]
    first = responder.decide(_conversation([{"role": "user", "content": prompt}], tools))
    assert first.content == (
        ToolUseOut("mcp__agent__database_query", {"query": "SELECT factorial(10) AS factorial_10"}),
    )
    rows = {"columns": ["factorial_10"], "rows": [{"factorial_10": 3628800}], "row_count": 1, "truncated": False}
    second = responder.decide(_conversation(_after_tool(prompt, rows, "mcp__agent__database_query"), tools))
    assert second.content == (TextOut("factorial_10 = 3628800"),)


def test_demo_sales_figures_are_listed_from_the_rows() -> None:
    responder = Responder(load_scenarios(DEMO))
    prompt = "Fetch the quarterly sales figures from the database"
    rows = [{"quarter": f"Q{n}", "revenue": n * 100} for n in range(1, 5)]
    result = {"columns": ["quarter", "revenue"], "rows": rows, "row_count": 4, "truncated": False}
    tools = ["mcp__agent__database_query"]
    answer = responder.decide(_conversation(_after_tool(prompt, result, "mcp__agent__database_query"), tools))
    assert answer.content == (TextOut("Quarterly sales figures: Q1=100 Q2=200 Q3=300 Q4=400 (4 rows)."),)


def test_demo_failing_supplier_is_a_permanent_error() -> None:
    responder = Responder(load_scenarios(DEMO))
    prompt = "Fetch supplier B's price feed from its pricing API"
    answer = responder.decide(_conversation([{"role": "user", "content": prompt}], []))
    assert answer.error is not None
    assert answer.error.status == 400


def test_assistant_turns_count_runs_of_assistant_messages() -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "system", "content": "context"},
        {"role": "assistant", "content": "thinking"},
        {"role": "assistant", "content": "tool call"},
        {"role": "user", "content": "result"},
        {"role": "assistant", "content": "answer"},
    ]
    assert _conversation(messages, []).assistant_turns == 2
