"""Who is calling: every route but /health and the OpenAPI documents needs an API key of this orchestrator's tenant.

Keys are looked up in PostgreSQL (one indexed probe, see ApiKeyRepository.authenticate) and kept until PostgreSQL
announces a change of a key (orchestrator/api_key_cache.py), so a revoked key is refused from its very next request.
"""

from typing import Annotated, Any

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchestrator.state import State
from shared.api_keys import KEY_PREFIX, ApiKey, ApiKeyScope
from shared.errors import ErrorResponse, ForbiddenError, UnauthenticatedError, error_responses

HOW_TO_GET_A_KEY = (
    "send Authorization: Bearer <key>; an operator creates a key with "
    "`python -m orchestrator api-keys create --tenant <TENANT_ID>`"
)
# auto_error=False: without a key FastAPI would answer its own 403 without a challenge; ours is a 401 that says what
# to do, rendered like every other error.
bearer = HTTPBearer(
    scheme_name="ApiKey",
    description="An API key of this orchestrator's tenant (`mats_...`), from `python -m orchestrator api-keys create`",
    auto_error=False,
)
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    **error_responses(401, 403),
    401: {
        "model": ErrorResponse,
        "description": "No API key, or an unknown or revoked one",
        "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    },
    403: {"model": ErrorResponse, "description": "Another tenant's key, or a client key on an operator endpoint"},
}
# OpenAPI 3.1 lets a bearer requirement name the roles it needs: operator endpoints say `ApiKey: [operator]`.
OPERATOR_ROLE = ApiKeyScope.OPERATOR.value


async def authenticated_key(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
) -> ApiKey:
    """The caller's live key of this tenant: 401 without one or with an unknown or revoked one, 403 for another
    tenant's."""
    if credentials is None:
        raise UnauthenticatedError(f"an API key is required: {HOW_TO_GET_A_KEY}")
    key = credentials.credentials
    found = await state.api_keys.authenticate(key) if key.startswith(KEY_PREFIX) else None
    if found is None:
        raise UnauthenticatedError(f"the API key is unknown or revoked: {HOW_TO_GET_A_KEY}")
    if found.tenant_id != state.settings.tenant_id:
        raise ForbiddenError("this API key belongs to another tenant; this orchestrator serves only its own")
    return found


ClientKey = Annotated[ApiKey, Security(authenticated_key)]


async def operator_key(key: ClientKey) -> ApiKey:
    """An operator's key: a client key is refused (403) on the endpoints that concern the fleet."""
    if key.scope is not ApiKeyScope.OPERATOR:
        raise ForbiddenError("this endpoint needs an operator key; this is a client key")
    return key


# For `dependencies=[...]` of a router or route that needs the check but not the key.
CLIENT_ACCESS = Security(authenticated_key)
OPERATOR_ACCESS = Security(operator_key, scopes=[OPERATOR_ROLE])
