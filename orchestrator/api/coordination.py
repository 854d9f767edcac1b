"""POST /coordination/follow-up-subtasks: a coordinator's attempt adds a subtask to its own task's plan.

Not for API keys: the caller is an agent of the fleet, which signs the body with FLEET_SECRET and names the attempt
it runs with that attempt's signed assignment (shared/follow_up.py). Whether the attempt is still the current one
is decided in PostgreSQL by the lifecycle, under the task's row lock.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Request, Security
from fastapi.security import APIKeyHeader

from orchestrator.state import State
from shared.errors import error_responses
from shared.fleet_trust import AssignmentTerms
from shared.follow_up import FLEET_SIGNATURE_HEADER, FollowUpRequest, FollowUpResponse

router = APIRouter(tags=["coordination"])

# auto_error=False: a missing signature is refused by the check, in the project's error shape (401).
fleet_signature = APIKeyHeader(
    name=FLEET_SIGNATURE_HEADER,
    scheme_name="FleetSignature",
    description="HMAC-SHA256 of the request body with FLEET_SECRET (shared.fleet_trust.FleetTrust.sign_request)",
    auto_error=False,
)
RESPONSES: dict[int | str, dict[str, Any]] = {
    **error_responses(500, 503),
    400: {**error_responses(400)[400], "description": "Malformed, or a dependency that is not a subtask of the task"},
    401: {**error_responses(401)[401], "description": "Not signed by a member of the fleet, or a forged assignment"},
    409: {
        **error_responses(409)[409],
        "description": "The attempt is not the current one of its task, the task is at MAX_SUBTASKS_PER_TASK, or "
        "the subtask id is another task's",
    },
    429: {**error_responses(429)[429], "description": "The queue is at MAX_QUEUE_DEPTH; Retry-After says when"},
}


@router.post("/coordination/follow-up-subtasks", response_model=FollowUpResponse, responses=RESPONSES)
async def add_follow_up_subtask(
    body: FollowUpRequest,
    request: Request,
    state: State,
    signature: Annotated[str | None, Security(fleet_signature)],
) -> FollowUpResponse:
    """Add a subtask to the running task of the attempt that asks; it is queued once its dependencies are done."""
    trust = state.lifecycle.trust
    trust.check_request(await request.body(), signature)
    attempt = body.attempt
    terms = AssignmentTerms(
        attempt.task_id, attempt.subtask_id, attempt.attempt, attempt.delivery_token, attempt.agent_id
    )
    trust.check_attempt(terms, attempt.assignment)
    stored, count = await state.lifecycle.add_follow_up(attempt, body.subtask)
    return FollowUpResponse(task_id=stored.task_id, subtask_id=stored.id, status=stored.status, subtasks_in_task=count)
