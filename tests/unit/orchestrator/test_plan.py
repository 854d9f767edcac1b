"""The plan Claude submits: its validation, its conversion to subtasks and the forced tool's schema."""

from typing import Any

import pytest

from orchestrator.plan import PLAN_TOOL_NAME, Plan, plan_tool, validate_plan
from shared.models import AgentCapability, TaskType
from tests.unit.orchestrator.conftest import API, DATA, DB, WEB

MAX_SUBTASKS = 5


def planned(plan_id: str, *capabilities: str, dependencies: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "id": plan_id,
        "description": f"Step {plan_id} of the work",
        "required_capabilities": list(capabilities) or ["DATA_ANALYSIS"],
        "dependencies": dependencies or [],
        **fields,
    }


def validate(*subtasks: dict[str, Any], max_subtasks: int = MAX_SUBTASKS) -> Any:
    return validate_plan({"subtasks": list(subtasks)}, max_subtasks)


def test_a_valid_plan_is_accepted_as_written() -> None:
    plan, errors = validate(
        planned("s1", "DATABASE_OPERATIONS", priority=8, task_type="INGEST", estimated_duration=30),
        planned("s2", "WEB_SCRAPING", "API_INTEGRATION"),
        planned("s3", "DATA_ANALYSIS", dependencies=["s1", "s2"], priority=0),
    )

    assert errors == []
    assert plan is not None
    assert [(p.id, p.required_capabilities, p.dependencies, p.priority) for p in plan.subtasks] == [
        ("s1", [DB], [], 8),
        ("s2", [WEB, API], [], 5),
        ("s3", [DATA], ["s1", "s2"], 0),
    ]
    assert (plan.subtasks[0].task_type, plan.subtasks[0].estimated_duration) == (TaskType.INGEST, 30)


@pytest.mark.parametrize(
    ("subtasks", "expected"),
    [
        pytest.param(
            [planned("s1"), planned("s2", "TIME_TRAVEL")],
            "subtask 's2' (subtasks.1.required_capabilities.0): Input should be 'DATA_ANALYSIS', 'WEB_SCRAPING', "
            "'CODE_GENERATION', 'FILE_PROCESSING', 'DATABASE_OPERATIONS', 'API_INTEGRATION' or 'COORDINATION' "
            "(got 'TIME_TRAVEL')",
            id="unknown-capability",
        ),
        pytest.param(
            [{**planned("s1"), "required_capabilities": []}],
            "subtask 's1' (subtasks.0.required_capabilities): List should have at least 1 item after validation, not 0",
            id="no-capabilities",
        ),
        pytest.param(
            [planned("s1", priority=-1)],
            "subtask 's1' (subtasks.0.priority): Input should be greater than or equal to 0 (got -1)",
            id="priority-below-0",
        ),
        pytest.param(
            [planned("s1"), planned("s2", priority=11)],
            "subtask 's2' (subtasks.1.priority): Input should be less than or equal to 10 (got 11)",
            id="priority-above-10",
        ),
        pytest.param(
            [planned("s1"), planned("s1", "DATABASE_OPERATIONS")],
            "subtask id 's1' is used more than once",
            id="duplicate-id",
        ),
        pytest.param(
            [planned("s1"), planned("s2", dependencies=["s2"])],
            "subtask 's2' depends on itself",
            id="self-dependency",
        ),
        pytest.param(
            [planned("s1"), planned("s2", dependencies=["s1", "s9"])],
            "subtask 's2' depends on unknown subtask 's9'",
            id="unknown-dependency",
        ),
        pytest.param(
            [planned("s1", task_type="SHOPPING")],
            "subtask 's1' (subtasks.0.task_type): Input should be 'DISCOVERY', 'MIGRATION', 'HEARTBEAT', 'INGEST', "
            "'RESEARCH' or 'GENERAL' (got 'SHOPPING')",
            id="unknown-task-type",
        ),
    ],
)
def test_an_invalid_plan_is_refused_with_a_message_naming_the_subtask(
    subtasks: list[dict[str, Any]], expected: str
) -> None:
    plan, errors = validate(*subtasks)

    assert plan is None
    assert errors == [expected]


def test_a_dependency_cycle_is_refused_naming_its_subtasks() -> None:
    plan, errors = validate(planned("a", dependencies=["b"]), planned("b", dependencies=["a"]), planned("c"))

    assert plan is None
    assert len(errors) == 1
    assert errors[0].startswith("dependencies form a cycle: ")
    path = errors[0].removeprefix("dependencies form a cycle: ").split(" -> ")
    assert path in (["a", "b", "a"], ["b", "a", "b"])


def test_every_problem_of_a_plan_is_reported_at_once() -> None:
    plan, errors = validate(
        planned("s1", dependencies=["s1"]),
        planned("s2", "WEB_SCRAPING", "FILE_PROCESSING", dependencies=["s7"]),
    )

    assert plan is None
    assert errors == ["subtask 's1' depends on itself", "subtask 's2' depends on unknown subtask 's7'"]


def test_a_plan_may_name_capabilities_no_single_agent_has_together() -> None:
    # No agent of any fleet is consulted: such a subtask waits for an agent that has them all (status_reason).
    plan, errors = validate(planned("s1", "WEB_SCRAPING", "DATABASE_OPERATIONS"))

    assert errors == []
    assert plan is not None
    assert plan.subtasks[0].required_capabilities == [WEB, DB]


@pytest.mark.parametrize(("written", "expected"), [("research", TaskType.RESEARCH), (" Ingest", TaskType.INGEST)])
def test_a_task_type_is_read_in_any_case(written: str, expected: TaskType) -> None:
    plan, errors = validate(planned("s1", task_type=written))

    assert errors == []
    assert plan is not None
    assert plan.subtasks[0].task_type is expected


def test_more_subtasks_than_allowed_are_refused() -> None:
    at_most_two = [planned("s1"), planned("s2")]

    assert validate(*at_most_two, max_subtasks=2)[1] == []
    plan, errors = validate(*at_most_two, planned("s3"), max_subtasks=2)

    assert plan is None
    assert errors == ["the plan has 3 subtasks; at most 2 are allowed"]


@pytest.mark.parametrize(
    ("raw_plan", "expected"),
    [
        pytest.param(None, "the plan: Input should be a valid dictionary or instance of Plan", id="no-plan"),
        pytest.param({}, "subtasks: Field required", id="no-subtasks-field"),
        pytest.param(
            {"subtasks": []}, "subtasks: List should have at least 1 item after validation, not 0", id="no-subtask"
        ),
        pytest.param(
            {"subtasks": [{"description": "no id", "required_capabilities": ["DATA_ANALYSIS"]}]},
            "subtasks.0.id: Field required",
            id="subtask-without-id",
        ),
    ],
)
def test_a_malformed_plan_is_refused(raw_plan: object, expected: str) -> None:
    plan, errors = validate_plan(raw_plan, MAX_SUBTASKS)

    assert plan is None
    assert errors == [expected]


def test_to_subtasks_gives_fresh_ids_and_maps_the_dependencies_to_them() -> None:
    plan = Plan.model_validate(
        {
            "subtasks": [
                planned("s1", "DATABASE_OPERATIONS", priority=8, task_type="INGEST", estimated_duration=30),
                planned("s2", "WEB_SCRAPING"),
                planned("s3", "DATA_ANALYSIS", dependencies=["s1", "s2"], priority=2),
            ]
        }
    )

    subtasks = plan.to_subtasks("task_abc", TaskType.DISCOVERY)
    by_description = {subtask.description: subtask for subtask in subtasks}
    first, second, third = (by_description[f"Step {name} of the work"] for name in ("s1", "s2", "s3"))

    assert all(subtask.id.startswith("subtask_") for subtask in subtasks)
    assert len({subtask.id for subtask in subtasks}) == 3
    assert {subtask.task_id for subtask in subtasks} == {"task_abc"}
    assert third.dependencies == [first.id, second.id]
    assert first.dependencies == second.dependencies == []
    assert (first.required_capabilities, first.priority, first.task_type, first.estimated_duration) == (
        [DB],
        8,
        TaskType.INGEST,
        30,
    )
    # A subtask the plan gives no type has the task's.
    assert (third.required_capabilities, third.priority, third.task_type) == ([DATA], 2, TaskType.DISCOVERY)


def test_to_subtasks_gives_new_ids_on_every_call() -> None:
    plan = Plan.model_validate({"subtasks": [planned("s1"), planned("s2", dependencies=["s1"])]})

    first_ids = {subtask.id for subtask in plan.to_subtasks("task_abc")}
    second_ids = {subtask.id for subtask in plan.to_subtasks("task_abc")}

    assert first_ids.isdisjoint(second_ids)


def test_to_subtasks_puts_each_subtask_after_its_dependencies() -> None:
    # Listed with every dependent before what it depends on: report <- analysis <- {fetch, scrape}.
    plan = Plan.model_validate(
        {
            "subtasks": [
                planned("report", "FILE_PROCESSING", dependencies=["analysis"]),
                planned("analysis", "DATA_ANALYSIS", dependencies=["fetch", "scrape"]),
                planned("scrape", "WEB_SCRAPING"),
                planned("fetch", "DATABASE_OPERATIONS"),
            ]
        }
    )

    subtasks = plan.to_subtasks("task_abc")
    position = {subtask.id: index for index, subtask in enumerate(subtasks)}
    names = [subtask.description.split()[1] for subtask in subtasks]

    assert sorted(names) == ["analysis", "fetch", "report", "scrape"]
    assert names[-2:] == ["analysis", "report"]
    for subtask in subtasks:
        assert all(position[dependency] < position[subtask.id] for dependency in subtask.dependencies)


def test_plan_tool_is_the_forced_tool_with_the_plan_as_its_schema() -> None:
    tool = plan_tool(max_subtasks=7)
    input_schema: Any = tool["input_schema"]
    subtasks_schema = input_schema["properties"]["subtasks"]
    subtask_schema = subtasks_schema["items"]

    assert tool["name"] == PLAN_TOOL_NAME == "submit_plan"
    assert input_schema["required"] == ["subtasks"]
    assert (subtasks_schema["minItems"], subtasks_schema["maxItems"]) == (1, 7)
    capability_enum = subtask_schema["properties"]["required_capabilities"]["items"]["enum"]
    assert sorted(capability_enum) == sorted(capability.value for capability in AgentCapability)
    assert len(capability_enum) == 7
    assert set(subtask_schema["required"]) == {"id", "description", "required_capabilities", "dependencies"}
    priority = subtask_schema["properties"]["priority"]
    assert (priority["minimum"], priority["maximum"]) == (0, 10)
    task_type_enum = subtask_schema["properties"]["task_type"]["enum"]
    assert task_type_enum == ["DISCOVERY", "MIGRATION", "HEARTBEAT", "INGEST", "RESEARCH", "GENERAL"]
