"""contracts/events.yaml names every event type with a valid schema, its enums are the models', and events the
lifecycle builds keep it (those published by a live fleet are checked in tests/e2e/test_events.py)."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from orchestrator import task_events
from shared.artifacts import ArtifactRef, ArtifactType
from shared.models import (
    AgentCapability,
    DecompositionInfo,
    ResultStatus,
    StatusReason,
    SubTaskStatus,
    TaskStatus,
    TaskType,
)
from shared.redis import EventType, StreamedEvent, TaskEvent
from tests.events_contract import contract, contract_problems, json_problems
from tests.factories import build_planned_task, build_result, subtask_id

ALL_TYPES = {event_type.value for event_type in EventType}
REPORT = ArtifactRef(artifact_id="artifact_1", name="report.md", type=ArtifactType.REPORT, size=12, sha256="0" * 64)
API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_every_event_type_has_a_message_and_a_schema_in_both_channels() -> None:
    document = contract()
    assert document["asyncapi"].startswith("3.")
    for channel in document["channels"].values():
        assert set(channel["messages"]) == ALL_TYPES
    assert set(document["components"]["messages"]) == ALL_TYPES
    assert set(document["components"]["schemas"]) >= ALL_TYPES
    assert set(document["components"]["schemas"]["Envelope"]["properties"]["event_type"]["enum"]) == ALL_TYPES


@pytest.mark.parametrize(
    ("path", "values"),
    [
        (["Capability"], {capability.value for capability in AgentCapability}),
        (["TaskType"], {task_type.value for task_type in TaskType}),
        (["ArtifactRef", "properties", "type"], {artifact_type.value for artifact_type in ArtifactType}),
    ],
    ids=["capabilities", "task types", "artifact types"],
)
def test_the_contract_s_enums_are_the_models(path: list[str], values: set[str]) -> None:
    schema = contract()["components"]["schemas"]
    for key in path:
        schema = schema[key]
    assert set(schema["enum"]) == values


def test_every_schema_is_valid_json_schema() -> None:
    for schema in contract()["components"]["schemas"].values():
        Draft7Validator.check_schema(schema)


def streamed(event: TaskEvent) -> StreamedEvent:
    return StreamedEvent("1700000000000-0", event)


def lifecycle_events() -> list[TaskEvent]:
    """One of each event the lifecycle builds, from the builders it calls."""
    task = build_planned_task({"a": [], "b": ["a"]}, trace_id="4bf92f3577b34da6a3ce929d0e0e4736", user_id="ana")
    task.decomposition = DecompositionInfo(duration_ms=12.5, model="claude-sonnet-5-5", cost_usd=0.0021)
    first, second = task.subtasks
    running = first.model_copy(update={"status": SubTaskStatus.RUNNING, "attempt_count": 1, "delivery_token": "t"})
    retried = running.model_copy(
        update={"status": SubTaskStatus.QUEUED, "attempt_count": 2, "failed_agent_ids": ["agent1"]}
    )
    failed = build_result(running, status=ResultStatus.FAILED, retryable=True)
    ended = [
        task.model_copy(update={"status": TaskStatus.COMPLETED, "result": {"summary": "ok", "outputs": []}}),
        task.model_copy(update={"status": TaskStatus.FAILED, "error": "subtask a failed"}),
    ]
    cancelled = task.model_copy(update={"status": TaskStatus.CANCELLED, "error": "cancelled by request"})
    over_budget = StatusReason(code="budget_exhausted", message="paused: spent $0.0400 of its $0.0500 budget")
    paused = task.model_copy(update={"status": TaskStatus.PAUSED, "status_reason": over_budget})
    return [
        *task_events.submitted(task),
        *task_events.follow_up_added(second, first.id, 1),
        *task_events.queued([retried]),
        *task_events.result_applied(build_result(running), running, [], [REPORT]),
        *task_events.result_applied(failed, retried, []),
        *task_events.result_applied(failed, running, [subtask_id(task, "b")]),
        *task_events.ended(ended),
        *task_events.cancelled(cancelled, [second.id]),
        *task_events.retried(task, [retried], [second.id], reopened=True),
        *task_events.paused([paused]),
        *task_events.resumed(task.model_copy(update={"status": TaskStatus.IN_PROGRESS}), "operator"),
        TaskEvent(
            EventType.AGENT_STARTED,
            task.id,
            {"agent_id": "agent1", "attempt": 1, "role": "data_analysis", "executor": "sdk", "context_pack_path": None},
            subtask_id=first.id,
        ),
    ]


def test_the_events_the_lifecycle_builds_keep_the_contract() -> None:
    events = lifecycle_events()

    assert {event.event_type.value for event in events} == ALL_TYPES
    for event in events:
        assert contract_problems(streamed(event)) == [], event


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"data": {"attempt": 1}}, "'agent_id' is a required property"),
        ({"subtask_id": None}, "subtask_id: None is not of type 'string'"),
        ({"data": {"agent_id": "agent1", "attempt": 0, "output": "x"}}, "0 is less than the minimum of 1"),
    ],
    ids=["a payload without its fields", "a subtask event without its subtask", "an attempt numbered 0"],
)
def test_an_event_that_breaks_the_contract_is_caught(change: dict[str, Any], problem: str) -> None:
    completed = next(event for event in lifecycle_events() if event.event_type is EventType.AGENT_COMPLETED)
    broken = TaskEvent(**{**completed.__dict__, **change})

    problems = contract_problems(streamed(broken))

    assert any(problem in line for line in problems), problems


def test_the_api_doc_s_example_stream_keeps_the_contract_and_ends_with_its_task() -> None:
    section = API_DOC.read_text().split("\n## Events\n", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```text\n(.*?)```", section, re.DOTALL)
    events = [json.loads(line) for line in block.splitlines()]

    assert [problem for event in events for problem in json_problems(event)] == []
    assert [event["event_type"] for event in events][:2] == ["TASK_SUBMITTED", "TASK_PLANNED"]
    assert EventType(events[-1]["event_type"]).ends_task
