"""Webhook endpoints (operator keys): register an endpoint for lifecycle events, list them, delete one."""

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from orchestrator.api.webhook_schemas import WebhookCreatedResponse, WebhookCreateRequest, WebhookListResponse
from orchestrator.state import State
from shared.errors import error_responses

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

WebhookId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreatedResponse,
    responses=error_responses(400, 409, 500, 503),
    summary="Register a webhook; the answer holds its signing secret, shown this once",
)
async def create_webhook(state: State, request: WebhookCreateRequest) -> WebhookCreatedResponse:
    webhook, secret = await state.webhooks.register(str(request.url), request.events, request.task_id)
    return WebhookCreatedResponse(**webhook.model_dump(), secret=secret)


@router.get(
    "",
    response_model=WebhookListResponse,
    responses=error_responses(500, 503),
    summary="The tenant's webhooks with their last delivery's outcome (never their secrets)",
)
async def list_webhooks(state: State) -> WebhookListResponse:
    return WebhookListResponse(webhooks=await state.webhooks.list_webhooks())


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(400, 404, 500, 503),
    summary="Delete a webhook: no delivery starts for it from now on",
)
async def delete_webhook(state: State, webhook_id: WebhookId) -> Response:
    await state.webhooks.delete(webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
