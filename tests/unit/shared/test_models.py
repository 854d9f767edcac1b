"""The domain models accept exactly what seed 003 allows and survive a JSON round trip unchanged."""

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shared.models import (
    CALL_TOKENS_MAX,
    AgentCapability,
    AgentLog,
    AgentState,
    AgentStatus,
    Assignment,
    CallPurpose,
    ContextPackRef,
    CostEstimate,
    DecompositionInfo,
    DomainModel,
    DrainCommand,
    LogLevel,
    ModelCallUsage,
    QueuedSubtask,
    ReportedResult,
    ResultStatus,
    RunningAttempt,
    StopCommand,
    SubTask,
    SubTaskResult,
    SubTaskStatus,
    Task,
    TaskCreatedResponse,
    TaskCreateRequest,
    TaskExecutionRequest,
    TaskStatus,
    TaskSummary,
    TokenUsage,
    ToolCall,
)
from tests.factories import build_result, build_subtask, build_task

TASK_ID = "task_1"
EARLIER = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = EARLIER + timedelta(seconds=1)


def agent_status(**fields: Any) -> dict[str, Any]:
    """The fields of a valid AgentStatus, overridden by `fields`."""
    values = {
        "agent_id": "agent1",
        "url": "http://localhost:8001",
        "port": 8001,
        "is_available": True,
        "capabilities": [AgentCapability.DATA_ANALYSIS],
    }
    return {**values, **fields}


def result_fields(**fields: Any) -> dict[str, Any]:
    """The fields of a valid completed SubTaskResult, overridden by `fields`."""
    values = {
        "subtask_id": "subtask_1",
        "task_id": TASK_ID,
        "agent_id": "agent1",
        "attempt": 1,
        "status": ResultStatus.COMPLETED,
        "output": "the answer",
        "execution_time": 1.5,
    }
    return {**values, **fields}


# The fewest fields each model needs to be valid.
MINIMAL_FIELDS: dict[type[BaseModel], dict[str, Any]] = {
    Task: {"description": "A description long enough"},
    TaskCreateRequest: {"description": "A description long enough"},
    SubTask: {"task_id": TASK_ID, "description": "Step", "required_capabilities": ["DATA_ANALYSIS"]},
    SubTaskResult: result_fields(),
    AgentStatus: agent_status(),
    QueuedSubtask: {
        "task_id": TASK_ID,
        "subtask_id": "subtask_1",
        "attempt": 1,
        "required_capabilities": ["DATA_ANALYSIS"],
    },
    TokenUsage: {},
    ModelCallUsage: {"purpose": "attempt", "model": "claude-haiku-5-5"},
    DecompositionInfo: {},
    Assignment: {"expires_at": 1, "content_digest": "0" * 64, "signature": "0" * 64},
    DrainCommand: {
        "agent_id": "agent1",
        "started_at": None,
        "reason": "failed",
        "expires_at": 1,
        "signature": "0" * 64,
    },
    AgentLog: {"agent_id": "agent1", "message": "hello"},
    ToolCall: {"agent_id": "agent1", "task_id": TASK_ID, "tool_name": "read_file"},
    TaskExecutionRequest: {
        "task_id": TASK_ID,
        "subtask": {"task_id": TASK_ID, "description": "Step", "required_capabilities": ["DATA_ANALYSIS"]},
    },
    TaskCreatedResponse: {"task_id": TASK_ID, "subtasks_count": 2, "initial_subtasks_queued": 1, "trace_id": "t1"},
    ContextPackRef: {"context_pack_id": "ctx_1"},
    RunningAttempt: {
        "task_id": TASK_ID,
        "subtask_id": "subtask_1",
        "attempt": 1,
        "delivery_token": "t",
        "agent_id": "a",
    },
    StopCommand: {
        "agent_id": "agent1",
        "task_id": TASK_ID,
        "subtask_id": "subtask_1",
        "attempt": 1,
        "delivery_token": "t",
        "reason": "deadline exceeded",
        "expires_at": 1_800_000_000,
        "signature": "ab" * 32,
    },
    CostEstimate: {"min_usd": 0.01, "max_usd": 0.5, "basis": "count_tokens"},
    TaskSummary: {
        "id": TASK_ID,
        "user_id": None,
        "description": "A description long enough",
        "status": "pending",
        "created_at": EARLIER,
        "updated_at": LATER,
        "subtasks_total": 2,
        "subtasks_completed": 0,
    },
}


# --- Task -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [Task, TaskCreateRequest])
@pytest.mark.parametrize("length", [10, 11, 4999, 5000])
def test_task_description_within_limits_is_accepted(model: type[BaseModel], length: int) -> None:
    description = "x" * length

    assert model(description=description).description == description


@pytest.mark.parametrize("model", [Task, TaskCreateRequest])
@pytest.mark.parametrize(
    "description",
    ["x" * 9, "x" * 5001, "", " " * 20, "\n\t " * 10, "  short   "],
    ids=["9-chars", "5001-chars", "empty", "spaces", "mixed-whitespace", "10-chars-mostly-blank"],
)
def test_task_description_outside_limits_is_refused(model: type[BaseModel], description: str) -> None:
    with pytest.raises(ValidationError, match="description"):
        model(description=description)


@pytest.mark.parametrize("model", [Task, SubTask])
def test_created_at_may_equal_or_precede_updated_at(model: type[BaseModel]) -> None:
    fields = MINIMAL_FIELDS[model]

    assert model(**fields, created_at=EARLIER, updated_at=EARLIER).updated_at == EARLIER
    assert model(**fields, created_at=EARLIER, updated_at=LATER).updated_at == LATER
    with pytest.raises(ValidationError, match="created_at must not be later than updated_at"):
        model(**fields, created_at=LATER, updated_at=EARLIER)


def test_a_later_created_at_is_refused_on_assignment_too() -> None:
    task = build_task(created_at=EARLIER, updated_at=EARLIER)

    with pytest.raises(ValidationError, match="created_at must not be later"):
        task.created_at = LATER


@pytest.mark.parametrize("model", [Task, SubTask])
def test_a_timestamp_without_timezone_is_a_validation_error(model: type[BaseModel]) -> None:
    fields = {**MINIMAL_FIELDS[model], "created_at": "2026-03-01T12:00:00"}

    # Compared with the default (aware) updated_at, a naive value must not escape as a TypeError.
    with pytest.raises(ValidationError, match="timezone"):
        model.model_validate(fields)


def test_status_enums_hold_the_seed_values() -> None:
    # The seed's, and `paused` (a task on a budget, issue #19), which is not an ending.
    assert [status.value for status in TaskStatus] == [
        "pending",
        "in_progress",
        "paused",
        "completed",
        "failed",
        "cancelled",
    ]
    assert not TaskStatus.PAUSED.is_terminal
    assert [status.value for status in SubTaskStatus] == [
        "pending",
        "queued",
        "running",
        "completed",
        "failed",
        "blocked",
        "cancelled",
    ]
    assert {status for status in TaskStatus if status.is_terminal} == {"completed", "failed", "cancelled"}
    assert {status for status in SubTaskStatus if status.is_terminal} == {"completed", "failed", "blocked", "cancelled"}


@pytest.mark.parametrize("status", ["in_progress", "cancelled"])
def test_task_accepts_a_known_status_as_text(status: str) -> None:
    assert Task(description="A description long enough", status=status).status is TaskStatus(status)


@pytest.mark.parametrize("status", ["done", "IN_PROGRESS", "queued"])
def test_task_refuses_an_unknown_status(status: str) -> None:
    with pytest.raises(ValidationError, match="status"):
        Task(description="A description long enough", status=status)


# --- SubTask --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("priority", [0, 5, 10])
def test_subtask_priority_within_0_to_10_is_accepted(priority: int) -> None:
    assert build_subtask(TASK_ID, priority=priority).priority == priority


@pytest.mark.parametrize("priority", [-1, 11])
def test_subtask_priority_outside_0_to_10_is_refused(priority: int) -> None:
    with pytest.raises(ValidationError, match="priority"):
        build_subtask(TASK_ID, priority=priority)


def test_subtask_requires_a_capability() -> None:
    with pytest.raises(ValidationError, match="required_capabilities"):
        build_subtask(TASK_ID, required_capabilities=[])


def test_subtask_refuses_an_unknown_capability() -> None:
    with pytest.raises(ValidationError, match="required_capabilities"):
        build_subtask(TASK_ID, required_capabilities=["DATA_ANALYSIS", "TELEPATHY"])


def test_subtask_refuses_to_depend_on_itself() -> None:
    with pytest.raises(ValidationError, match="cannot depend on itself"):
        build_subtask(TASK_ID, id="subtask_a", dependencies=["subtask_b", "subtask_a"])


def test_subtask_drops_duplicates_keeping_the_first_order() -> None:
    subtask = build_subtask(
        TASK_ID,
        required_capabilities=["CODE_GENERATION", "DATA_ANALYSIS", "CODE_GENERATION"],
        dependencies=["subtask_b", "subtask_a", "subtask_b"],
        failed_agent_ids=["agent2", "agent1", "agent2"],
    )

    assert subtask.required_capabilities == [AgentCapability.CODE_GENERATION, AgentCapability.DATA_ANALYSIS]
    assert subtask.dependencies == ["subtask_b", "subtask_a"]
    assert subtask.failed_agent_ids == ["agent2", "agent1"]


# --- AgentStatus ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["cpu_usage", "memory_usage"])
@pytest.mark.parametrize("value", [0, 55.5, 100])
def test_agent_usage_within_0_to_100_is_accepted(field: str, value: float) -> None:
    assert getattr(AgentStatus(**agent_status(**{field: value})), field) == value


@pytest.mark.parametrize("field", ["cpu_usage", "memory_usage"])
@pytest.mark.parametrize("value", [-0.1, 100.1])
def test_agent_usage_outside_0_to_100_is_refused(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        AgentStatus(**agent_status(**{field: value}))


@pytest.mark.parametrize(("port", "accepted"), [(8000, False), (8001, True), (8016, True), (8017, False)])
def test_agent_port_must_lie_in_the_default_range(port: int, accepted: bool) -> None:
    if accepted:
        assert AgentStatus(**agent_status(port=port)).port == port
    else:
        with pytest.raises(ValidationError, match="outside the agent port range 8001-8016"):
            AgentStatus(**agent_status(port=port))


@pytest.mark.parametrize(
    ("port", "accepted"), [(8001, False), (8999, False), (9000, True), (9010, True), (9011, False)]
)
def test_agent_port_must_lie_in_the_range_given_as_context(port: int, accepted: bool) -> None:
    context = {"agent_port_range": (9000, 9010)}

    if accepted:
        assert AgentStatus.model_validate(agent_status(port=port), context=context).port == port
    else:
        with pytest.raises(ValidationError, match="outside the agent port range 9000-9010"):
            AgentStatus.model_validate(agent_status(port=port), context=context)


def test_agent_needs_a_capability() -> None:
    with pytest.raises(ValidationError, match="capabilities"):
        AgentStatus(**agent_status(capabilities=[]))


# --- SubTaskResult --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"status": ResultStatus.COMPLETED, "output": None}, "a completed result requires output"),
        ({"status": ResultStatus.COMPLETED, "output": ""}, "a completed result requires output"),
        ({"status": ResultStatus.FAILED, "output": None, "error": None}, "a failed result requires an error"),
        ({"status": ResultStatus.FAILED, "output": None, "error": ""}, "a failed result requires an error"),
        ({"execution_time": 0}, "execution_time"),
        ({"execution_time": -1.0}, "execution_time"),
        ({"attempt": 0}, "attempt"),
        ({"status": "cancelled"}, "status"),
    ],
    ids=[
        "completed-without-output",
        "completed-with-empty-output",
        "failed-without-error",
        "failed-with-empty-error",
        "zero-execution-time",
        "negative-execution-time",
        "attempt-0",
        "unknown-status",
    ],
)
def test_invalid_result_is_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SubTaskResult(**result_fields(**fields))


@pytest.mark.parametrize(
    "fields",
    [
        {"status": ResultStatus.COMPLETED, "output": "the answer"},
        {"status": ResultStatus.FAILED, "output": None, "error": "the tool crashed"},
        {"execution_time": 0.001, "attempt": 3},
    ],
    ids=["completed-with-output", "failed-with-error", "short-third-attempt"],
)
def test_valid_result_is_accepted(fields: dict[str, Any]) -> None:
    result = SubTaskResult(**result_fields(**fields))

    assert {name: getattr(result, name) for name in fields} == fields


# --- Requests and strictness ----------------------------------------------------------------------------------------


def test_execution_request_refuses_a_subtask_of_another_task() -> None:
    subtask = build_subtask("task_other")

    with pytest.raises(ValidationError, match=r"subtask.task_id must equal task_id"):
        TaskExecutionRequest(task_id=TASK_ID, subtask=subtask)
    assert TaskExecutionRequest(task_id="task_other", subtask=subtask).subtask == subtask


@pytest.mark.parametrize(("model", "fields"), MINIMAL_FIELDS.items(), ids=[model.__name__ for model in MINIMAL_FIELDS])
def test_unknown_fields_are_refused(model: type[BaseModel], fields: dict[str, Any]) -> None:
    model.model_validate(fields)  # the fields alone are valid

    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        model.model_validate({**fields, "surprise": 1})


def test_nested_unknown_fields_are_refused() -> None:
    request = {"task_id": TASK_ID, "subtask": {**build_subtask(TASK_ID).model_dump(mode="json"), "surprise": 1}}

    with pytest.raises(ValidationError, match=r"subtask\.surprise"):
        TaskExecutionRequest.model_validate(request)


# --- JSON round trips -----------------------------------------------------------------------------------------------

PLUS_TWO = timezone(timedelta(hours=2))
MINUS_FIVE_THIRTY = timezone(-timedelta(hours=5, minutes=30))


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
ASSIGNMENT = Assignment(expires_at=1_780_000_000, content_digest="ab" * 32, signature="cd" * 32)


def every_model() -> list[BaseModel]:
    """One instance of each model, with nested values and timestamps in several time zones."""
    subtask = build_subtask(
        TASK_ID,
        required_capabilities=["CODE_GENERATION", "WEB_SCRAPING"],
        dependencies=["subtask_0"],
        priority=9,
        estimated_duration=120,
        status=SubTaskStatus.RUNNING,
        attempt_count=2,
        failed_agent_ids=["agent3"],
        assigned_agent="agent2",
        assigned_at=datetime(2026, 3, 1, 14, 0, 0, 123456, tzinfo=PLUS_TWO),
        assignment_latency_ms=12.5,
        created_at=datetime(2026, 3, 1, 6, 0, tzinfo=MINUS_FIVE_THIRTY),
        updated_at=datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC),
        trace_id=TRACE_ID,
    )
    return [
        subtask,
        Task(
            id=TASK_ID,
            user_id="alice",
            description="Analyse the quarterly sales — ünïcödé included",
            status=TaskStatus.COMPLETED,
            created_at=datetime(2026, 3, 1, 13, 0, tzinfo=PLUS_TWO),
            updated_at=datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
            subtasks=[subtask, build_subtask(TASK_ID)],
            result={"summary": "up 3%", "figures": [1, 2.5, None], "nested": {"ok": True}},
            decomposition_fallback=True,
            decomposition=DecompositionInfo(duration_ms=850.5, repaired=True, fallback_reason="invalid plan"),
            trace_id="client-request-42",
        ),
        build_result(subtask, attempt=2, token_usage=TokenUsage(input_tokens=10, output_tokens=20), cost_usd=0.01),
        build_result(subtask, status=ResultStatus.FAILED, retryable=True, created_at=datetime.now(PLUS_TWO)),
        TokenUsage(input_tokens=1, output_tokens=2, cache_read_input_tokens=3, cache_creation_input_tokens=4),
        DecompositionInfo(token_usage=TokenUsage(input_tokens=900, output_tokens=300)),
        AgentStatus(**agent_status(current_tasks=["subtask_1"], cpu_usage=12.75, last_heartbeat=datetime.now(UTC))),
        AgentStatus(
            **agent_status(state=AgentState.DRAINING, started_at=datetime(2026, 3, 1, 9, 0, 0, 7, tzinfo=PLUS_TWO))
        ),
        DrainCommand(
            agent_id="agent2",
            started_at=datetime(2026, 3, 1, 9, 0, 0, 7, tzinfo=PLUS_TWO),
            reason="agent agent2 was declared failed by an operator",
            expires_at=1_800_000_000,
            signature="ab" * 32,
        ),
        TaskExecutionRequest(task_id=TASK_ID, subtask=subtask, task_context={"previous": {"subtask_0": "rows"}}),
        TaskExecutionRequest(task_id=TASK_ID, subtask=subtask, assignment=ASSIGNMENT),
        TaskExecutionRequest(task_id=TASK_ID, subtask=subtask, context_pack=ContextPackRef(context_pack_id="ctx_1")),
        ContextPackRef(context_pack_id="ctx_1"),
        ASSIGNMENT,
        ReportedResult(**build_result(subtask).model_dump(), assignment=ASSIGNMENT, trace_id=TRACE_ID),
        ReportedResult(
            **build_result(subtask, status=ResultStatus.FAILED, error="capped").model_dump(),
            model_calls=[ModelCallUsage(purpose=CallPurpose.ATTEMPT, model="claude-haiku-5-5", usage=TokenUsage())],
            limit_reached="max_turns",
        ),
        ModelCallUsage(purpose=CallPurpose.REPAIR, model="claude-sonnet-5-5", usage=TokenUsage(output_tokens=3)),
        AgentLog(id=7, agent_id="agent1", task_id=TASK_ID, level=LogLevel.WARNING, message="slow", metadata={"s": 3}),
        ToolCall(id=3, agent_id="agent1", task_id=TASK_ID, attempt=2, tool_name="read_file", arguments={"path": "a"}),
        QueuedSubtask.for_subtask(subtask),
        QueuedSubtask(task_id=TASK_ID, subtask_id=subtask.id, attempt=2, required_capabilities=["DATA_ANALYSIS"]),
        TaskCreateRequest(description="A description long enough", user_id="bob"),
        TaskCreateRequest(description="A description long enough", context_pack_id="ctx_1"),
        TaskCreatedResponse(task_id=TASK_ID, subtasks_count=3, initial_subtasks_queued=2, trace_id=TRACE_ID),
        TaskCreatedResponse(
            task_id=TASK_ID,
            subtasks_count=3,
            initial_subtasks_queued=2,
            trace_id=TRACE_ID,
            estimate=CostEstimate(min_usd=0.0021, max_usd=1.5, basis="characters"),
        ),
        CostEstimate(min_usd=0.0, max_usd=0.25, basis="count_tokens"),
        RunningAttempt(task_id=TASK_ID, subtask_id=subtask.id, attempt=2, delivery_token="t", agent_id="agent1"),
        StopCommand(
            agent_id="agent1",
            task_id=TASK_ID,
            subtask_id=subtask.id,
            attempt=2,
            delivery_token="t",
            reason="deadline exceeded",
            expires_at=1_800_000_000,
            signature="ab" * 32,
        ),
        TaskSummary(
            id=TASK_ID,
            user_id=None,
            description="A description long enough",
            status=TaskStatus.IN_PROGRESS,
            created_at=datetime(2026, 3, 1, tzinfo=MINUS_FIVE_THIRTY),
            updated_at=datetime(2026, 3, 1, tzinfo=MINUS_FIVE_THIRTY),
            subtasks_total=3,
            subtasks_completed=1,
        ),
    ]


@pytest.mark.parametrize("model", every_model(), ids=lambda model: type(model).__name__)
def test_json_round_trip_is_exact(model: BaseModel) -> None:
    restored = type(model).model_validate_json(model.model_dump_json())

    assert restored == model
    assert restored.model_dump_json() == model.model_dump_json()  # offsets and microseconds survive too


def test_every_model_takes_part_in_the_round_trip() -> None:
    defined = {model for model in DomainModel.__subclasses__() if model.__module__ == "shared.models"}

    assert defined <= {type(model) for model in every_model()}
    assert defined <= set(MINIMAL_FIELDS)  # so the unknown-field test covers each of them


@pytest.mark.parametrize("kind", ["input_tokens", "output_tokens", "cache_read_input_tokens"])
def test_a_report_claiming_more_tokens_than_one_call_can_use_is_refused(kind: str) -> None:
    """Two calls of 5e18 tokens each fit bigint rows but not their sum: the ledger's totals (a task's cost, the
    tenant's spend, the budget checks) would fail for good. Such a report is refused as it is read."""
    subtask = build_subtask(TASK_ID)
    call = {"purpose": "attempt", "model": "claude-haiku-5-5", "usage": {kind: 5 * 10**18}}
    report = {**build_result(subtask).model_dump(mode="json"), "model_calls": [call, call]}

    with pytest.raises(ValidationError, match="one model call uses at most 10000000 tokens of each kind"):
        ReportedResult.model_validate_json(json.dumps(report))
    at_most = ModelCallUsage(purpose=CallPurpose.ATTEMPT, model="m", usage=TokenUsage(**{kind: CALL_TOKENS_MAX}))
    assert at_most.usage.total_tokens == CALL_TOKENS_MAX
