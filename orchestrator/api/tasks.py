"""Task endpoints: submit, read, search, cancel, retry, re-run, and the tool calls a task's attempts made."""

import re
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, ValidationError

from orchestrator.api.auth import OPERATOR_ACCESS
from orchestrator.api.schemas import (
    TaskCancelledResponse,
    TaskDetailResponse,
    TaskDryRunResponse,
    TaskListResponse,
    TaskResumedResponse,
    TaskResumeRequest,
    TaskRetriedResponse,
    TaskToolCallsResponse,
)
from orchestrator.state import State
from shared import tracing
from shared.database.task_search import TaskSearch
from shared.errors import ErrorResponse, InvalidInputError, describe_validation_errors, error_responses
from shared.models import (
    DEADLINE_SECONDS_MAX,
    MAX_COST_USD_LIMIT,
    TASK_DESCRIPTION_MAX,
    TASK_DESCRIPTION_MIN,
    SubTaskStatus,
    TaskCreatedResponse,
    TaskCreateRequest,
    TaskStatus,
    TaskType,
)
from shared.tracing import request_trace_id

router = APIRouter(prefix="/tasks", tags=["tasks"])
RequestBody = TypeVar("RequestBody", bound=BaseModel)

# PostgreSQL text cannot hold NUL: refuse it here (400) rather than fail at the query (500).
NO_NUL = r"^[^\x00]*$"
TaskId = Annotated[str, Path(min_length=1, max_length=128, pattern=NO_NUL, description="The id POST /tasks returned")]
SubtaskId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=NO_NUL, description="A subtask of the task (GET /tasks/{task_id})")
]
UserId = Annotated[str | None, Query(max_length=128, pattern=NO_NUL)]
RequestTrace = Annotated[str, Depends(request_trace_id)]
IDEMPOTENCY_KEY_MAX = 255
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]+$"
IDEMPOTENCY_KEY_HELP = (
    f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} visible ASCII characters (no spaces or control "
    "characters), e.g. a UUID"
)
REPLAYED_HEADER = "Idempotent-Replayed"
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Makes the submit safe to retry: the same key with the same fields within IDEMPOTENCY_TTL_SECONDS "
        "answers with the first request's task (200, header Idempotent-Replayed: true) instead of creating another; "
        "the same key with other fields is a 409. A key is scoped to the tenant.",
        # Documented here, checked in the route: its message says what a key may hold.
        json_schema_extra={"minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX, "pattern": IDEMPOTENCY_KEY_PATTERN},
    ),
]
SUBMITTED_RESPONSE: dict[str, Any] = {
    "description": "The task was created (TaskCreatedResponse), or, for a repeated Idempotency-Key, the first "
    "request's task; with dry_run=true, the plan and its estimate, nothing stored (TaskDryRunResponse)",
    "headers": {
        REPLAYED_HEADER: {
            "description": "true when the answer is the one given to an earlier request with the same Idempotency-Key",
            "schema": {"type": "string", "enum": ["true"]},
        }
    },
}
MaxCostQuery = Annotated[
    float | None,
    Query(
        gt=0,
        le=MAX_COST_USD_LIMIT,
        description="What the task may spend in USD (decomposition and attempts); once its next attempt would pass it, "
        "the task pauses",
    ),
]
QUEUE_FULL_RESPONSE: dict[str, Any] = {
    "model": ErrorResponse,
    "description": "The queue is full, or the tenant's daily budget is spent; retry after the number of seconds in "
    "Retry-After",
    "headers": {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}},
}


@router.post(
    "",
    response_model=TaskCreatedResponse | TaskDryRunResponse,
    responses={
        200: SUBMITTED_RESPONSE,
        **error_responses(400, 409, 413, 415, 429, 500, 503),
        429: QUEUE_FULL_RESPONSE,
    },
    summary="Submit a task; Claude decomposes it and the ready subtasks are queued (or, as a dry run, only planned)",
)
async def submit_task(
    state: State,
    trace_id: RequestTrace,
    response: Response,
    description: Annotated[
        str | None, Query(min_length=TASK_DESCRIPTION_MIN, max_length=TASK_DESCRIPTION_MAX, pattern=NO_NUL)
    ] = None,
    user_id: UserId = None,
    task_type: Annotated[TaskType, Query(description="The kind of work; its subtasks inherit it")] = TaskType.GENERAL,
    context_pack_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=128,
            pattern=r"^[A-Za-z0-9_.-]+$",
            description="A context pack of this tenant's (POST /context-packs) for every subtask's agent",
        ),
    ] = None,
    max_cost_usd: MaxCostQuery = None,
    deadline_seconds: Annotated[
        int | None,
        Query(
            ge=1,
            le=DEADLINE_SECONDS_MAX,
            description="Seconds from now after which the task fails (deadline_exceeded) and its running attempts "
            "are stopped, whatever it waits on",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        Query(
            description="Plan the task and estimate its cost, and stop there: no task is stored, nothing is queued, "
            "run or published (an Idempotency-Key is not used)"
        ),
    ] = False,
    body: Annotated[TaskCreateRequest | None, Body(description="Alternative to the query parameters")] = None,
    idempotency_key: IdempotencyKey = None,
) -> TaskCreatedResponse | TaskDryRunResponse:
    if body is None:
        if description is None:
            raise InvalidInputError("description is required, as a query parameter or in a JSON body")
        try:
            body = TaskCreateRequest(
                description=description,
                user_id=user_id,
                task_type=task_type,
                context_pack_id=context_pack_id,
                max_cost_usd=max_cost_usd,
                deadline_seconds=deadline_seconds,
            )
        except ValidationError as error:
            raise InvalidInputError(describe_validation_errors(list(error.errors()))) from None
    else:
        body = with_query_fields(
            body,
            description=description,
            user_id=user_id,
            context_pack_id=context_pack_id,
            max_cost_usd=max_cost_usd,
            deadline_seconds=deadline_seconds,
        )
    _refuse_nul(body)
    if dry_run:  # stores nothing, so there is nothing a repeated request could duplicate
        return await state.tasks.dry_run(body, trace_id)
    if idempotency_key is None:
        return await state.tasks.submit_task(body, trace_id)
    if len(idempotency_key) > IDEMPOTENCY_KEY_MAX or not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, idempotency_key):
        raise InvalidInputError(IDEMPOTENCY_KEY_HELP)
    created, replayed = await state.tasks.submit_task_once(body, trace_id, idempotency_key)
    if replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return created


def with_query_fields(body: RequestBody, **query: object) -> RequestBody:
    """The JSON body with the query parameters sent beside it: one the body lacks is taken (a budget or a deadline
    is never silently dropped), one it gives otherwise is an InvalidInputError."""
    taken = {}
    for name, value in query.items():
        given = getattr(body, name)
        if value is None or value == given:
            continue
        if given is not None:
            raise InvalidInputError(f"{name}: the query parameter and the JSON body disagree; send one of them")
        taken[name] = value
    return body.model_copy(update=taken) if taken else body


def in_utc(name: str, moment: datetime | None) -> datetime | None:
    """The database compares in UTC; at the calendar's edges (0001-01-01T00:00+01:00) there is no UTC equivalent."""
    if moment is None or moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInputError(f"{name}: {moment.isoformat()} has no UTC equivalent") from None


def _refuse_nul(request: TaskCreateRequest) -> None:
    for name, value in (("description", request.description), ("user_id", request.user_id)):
        if value is not None and "\x00" in value:
            raise InvalidInputError(f"{name}: must not contain NUL characters")


@router.get(
    "",
    response_model=TaskListResponse,
    responses=error_responses(400, 500, 503),
    summary="List or search tasks, newest first; total counts every match",
)
async def list_tasks(
    state: State,
    status: TaskStatus | None = None,
    user_id: UserId = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            pattern=NO_NUL,
            description="Text the description contains (any case, taken literally), or the start of a task id",
        ),
    ] = None,
    created_after: Annotated[
        AwareDatetime | None, Query(description="Only tasks created at or after this ISO 8601 time (with offset)")
    ] = None,
    created_before: Annotated[
        AwareDatetime | None, Query(description="Only tasks created before this ISO 8601 time (with offset)")
    ] = None,
    reason: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=r"^[a-z][a-z0-9_]*$",
            description="Only tasks whose status_reason, or a subtask's, has this code (budget_exhausted, "
            "tenant_daily_budget, provider_unavailable, deadline_exceeded, no_live_agent, ...)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TaskListResponse:
    created_after, created_before = in_utc("created_after", created_after), in_utc("created_before", created_before)
    if created_after is not None and created_before is not None and created_after >= created_before:
        raise InvalidInputError("created_after must be earlier than created_before")
    search = TaskSearch(status, user_id, q, created_after, created_before, reason)
    tasks, total = await state.tasks.list_tasks(search, limit, offset)
    retention_days = state.settings.retention_days or None  # 0 keeps tasks forever
    return TaskListResponse(tasks=tasks, total=total, limit=limit, offset=offset, retention_days=retention_days)


@router.get(
    "/{task_id}",
    response_model=TaskDetailResponse,
    responses=error_responses(400, 404, 500, 503),
    summary="A task with its subtasks and every result reported for them",
)
async def get_task(state: State, task_id: TaskId) -> Response:
    return Response(await state.tasks.get_task_json(task_id), media_type="application/json")


@router.post(
    "/{task_id}/cancel",
    response_model=TaskCancelledResponse,
    responses=error_responses(400, 404, 409, 413, 415, 500, 503),
    summary="Cancel the subtasks that have not finished; the task ends cancelled",
)
async def cancel_task(state: State, task_id: TaskId) -> TaskCancelledResponse:
    task = await state.tasks.cancel_task(task_id)
    cancelled = sum(1 for subtask in task.subtasks if subtask.status is SubTaskStatus.CANCELLED)
    return TaskCancelledResponse(task_id=task.id, status=task.status, subtasks_cancelled=cancelled)


@router.post(
    "/{task_id}/retry",
    response_model=TaskRetriedResponse,
    responses=error_responses(400, 404, 409, 413, 415, 500, 503),
    summary="Retry a failed task: each failed subtask gets a fresh attempt, the subtasks they blocked wait again",
)
async def retry_task(state: State, task_id: TaskId) -> TaskRetriedResponse:
    return await state.tasks.retry_task(task_id)


@router.post(
    "/{task_id}/subtasks/{subtask_id}/retry",
    response_model=TaskRetriedResponse,
    responses=error_responses(400, 404, 409, 413, 415, 500, 503),
    summary="Retry one failed subtask of a failed or running task, and the subtasks it blocked",
)
async def retry_subtask(state: State, task_id: TaskId, subtask_id: SubtaskId) -> TaskRetriedResponse:
    return await state.tasks.retry_task(task_id, subtask_id)


@router.post(
    "/{task_id}/resume",
    response_model=TaskResumedResponse,
    responses=error_responses(400, 404, 409, 413, 415, 500, 503),
    summary="Resume a paused task, optionally with a new max_cost_usd: its queued subtasks are offered again",
)
async def resume_task(
    state: State,
    task_id: TaskId,
    max_cost_usd: MaxCostQuery = None,
    body: Annotated[TaskResumeRequest | None, Body(description="Alternative to the query parameter")] = None,
) -> TaskResumedResponse:
    if body is not None:
        max_cost_usd = with_query_fields(body, max_cost_usd=max_cost_usd).max_cost_usd
    return await state.tasks.resume_task(task_id, max_cost_usd)


@router.post(
    "/{task_id}/rerun",
    response_model=TaskCreatedResponse,
    responses={**error_responses(400, 404, 413, 415, 429, 500, 503), 429: QUEUE_FULL_RESPONSE},
    summary="Submit a new task with the same description, user, type, context pack and budget",
)
async def rerun_task(state: State, trace_id: RequestTrace, task_id: TaskId) -> TaskCreatedResponse:
    return await state.tasks.rerun_task(task_id, trace_id)


@router.delete(
    "/{task_id}",
    status_code=204,
    response_class=Response,
    dependencies=[OPERATOR_ACCESS],
    responses={
        204: {"description": "The task and everything it left are gone"},
        **error_responses(400, 404, 409, 500, 503),
        409: {**error_responses(409)[409], "description": "The task has not ended; cancel it first"},
    },
    summary="Remove an ended task now, with its subtasks, results, logs, tool calls, artifacts, workspace and events",
)
async def delete_task(state: State, task_id: TaskId) -> Response:
    """What the retention loop does to a task once RETENTION_DAYS have passed, at once. Operator key only; the
    task must be this orchestrator's tenant's, like every task it serves."""
    with tracing.bound(task_id=task_id):
        await state.removal.remove_task(task_id)
    return Response(status_code=204)


@router.get(
    "/{task_id}/tool-calls",
    response_model=TaskToolCallsResponse,
    responses=error_responses(400, 404, 500, 503),
    summary="The audited tool calls of each attempt of the task's subtasks",
)
async def task_tool_calls(state: State, task_id: TaskId) -> TaskToolCallsResponse:
    return await state.tasks.tool_calls(task_id)
