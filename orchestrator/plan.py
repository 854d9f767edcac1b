"""The plan Claude returns, its JSON schema (the forced tool's input), and its validation."""

from collections import Counter
from graphlib import CycleError, TopologicalSorter

from anthropic.types import ToolParam
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from shared.models import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    TASK_DESCRIPTION_MAX,
    AgentCapability,
    SubTask,
    TaskType,
    new_subtask_id,
)

PLAN_TOOL_NAME = "submit_plan"


class PlannedSubtask(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=64)
    description: str = Field(min_length=1, max_length=TASK_DESCRIPTION_MAX)
    required_capabilities: list[AgentCapability] = Field(min_length=1)
    dependencies: list[str] = Field(default_factory=list)
    priority: int = Field(5, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    estimated_duration: int | None = Field(None, ge=0)
    task_type: TaskType | None = None  # None: the task's own type


class Plan(BaseModel):
    model_config = ConfigDict(extra="ignore")

    subtasks: list[PlannedSubtask] = Field(min_length=1)

    def to_subtasks(self, task_id: str, task_type: TaskType = TaskType.GENERAL) -> list[SubTask]:
        """Subtasks with fresh ids, in an order where each comes after its dependencies; a subtask the plan gives
        no type has the task's."""
        created = {planned.id: new_subtask_id() for planned in self.subtasks}
        by_id = {planned.id: planned for planned in self.subtasks}
        order = TopologicalSorter({planned.id: planned.dependencies for planned in self.subtasks}).static_order()
        return [
            SubTask(
                id=created[plan_id],
                task_id=task_id,
                description=by_id[plan_id].description,
                required_capabilities=by_id[plan_id].required_capabilities,
                dependencies=[created[dependency] for dependency in by_id[plan_id].dependencies],
                priority=by_id[plan_id].priority,
                estimated_duration=by_id[plan_id].estimated_duration,
                task_type=by_id[plan_id].task_type or task_type,
            )
            for plan_id in order
        ]


def plan_tool(max_subtasks: int) -> ToolParam:
    """The tool Claude is forced to call: its input schema is the plan, so the answer is JSON by construction."""
    return {
        "name": PLAN_TOOL_NAME,
        "description": "Submit the decomposition of the task into subtasks.",
        "input_schema": {
            "type": "object",
            "properties": {
                "subtasks": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": max_subtasks,
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string", "description": "Short id such as s1, unique in the plan"},
                            "description": {"type": "string", "description": "What the agent must do"},
                            "required_capabilities": {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "string", "enum": [c.value for c in AgentCapability]},
                            },
                            "dependencies": {
                                "type": "array",
                                "items": {"type": "string"},
                                "description": "Ids of subtasks whose output this one needs",
                            },
                            "priority": {"type": "integer", "minimum": PRIORITY_MIN, "maximum": PRIORITY_MAX},
                            "estimated_duration": {"type": "integer", "description": "Estimated seconds"},
                            "task_type": {
                                "type": "string",
                                "enum": [task_type.value for task_type in TaskType],
                                "description": "The kind of work, when it differs from the task's",
                            },
                        },
                        "required": ["id", "description", "required_capabilities", "dependencies"],
                    },
                }
            },
            "required": ["subtasks"],
        },
    }


def _planned_id(raw_plan: object, index: int) -> str | None:
    subtasks = raw_plan.get("subtasks") if isinstance(raw_plan, dict) else None
    raw_subtask = subtasks[index] if isinstance(subtasks, list) and index < len(subtasks) else None
    planned_id = raw_subtask.get("id") if isinstance(raw_subtask, dict) else None
    return planned_id if isinstance(planned_id, str) else None


def _schema_error(raw_plan: object, item: ErrorDetails) -> str:
    """One schema problem, naming the subtask by its id when it has one (the model knows its subtasks by id)."""
    loc = item["loc"]
    where = ".".join(str(part) for part in loc) or "the plan"
    planned_id = _planned_id(raw_plan, loc[1]) if len(loc) > 1 and isinstance(loc[1], int) else None
    if planned_id is not None:
        where = f"subtask {planned_id!r} ({where})"
    got = item["input"]
    return f"{where}: {item['msg']}" + (f" (got {got!r})" if isinstance(got, str | int | float) else "")


def _schema_errors(raw_plan: object, error: ValidationError) -> list[str]:
    return [_schema_error(raw_plan, item) for item in error.errors(include_url=False)]


def _graph_errors(plan: Plan) -> list[str]:
    errors = []
    ids = [planned.id for planned in plan.subtasks]
    errors += [f"subtask id {plan_id!r} is used more than once" for plan_id, n in Counter(ids).items() if n > 1]
    for planned in plan.subtasks:
        if planned.id in planned.dependencies:
            errors.append(f"subtask {planned.id!r} depends on itself")
        errors += [
            f"subtask {planned.id!r} depends on unknown subtask {dependency!r}"
            for dependency in planned.dependencies
            if dependency not in ids
        ]
    if not errors:
        try:
            TopologicalSorter({planned.id: planned.dependencies for planned in plan.subtasks}).prepare()
        except CycleError as cycle:
            errors.append(f"dependencies form a cycle: {' -> '.join(cycle.args[1])}")
    return errors


def validate_plan(raw_plan: object, max_subtasks: int) -> tuple[Plan | None, list[str]]:
    """The plan and no errors, or None and every problem found, worded for the repair prompt.

    A subtask may need capabilities no live agent has (together): it waits, with the reason on it, until an agent
    that has them joins, while the rest of the work flows (the dispatcher's matcher tells)."""
    try:
        plan = Plan.model_validate(raw_plan)
    except ValidationError as error:
        return None, _schema_errors(raw_plan, error)
    errors = _graph_errors(plan)
    if len(plan.subtasks) > max_subtasks:
        errors.append(f"the plan has {len(plan.subtasks)} subtasks; at most {max_subtasks} are allowed")
    return (None, errors) if errors else (plan, [])
