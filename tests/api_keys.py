"""API keys for tests that call the orchestrator's API: made in the test database, sent as a bearer header."""

from shared.api_keys import ApiKeyScope
from shared.database import DatabaseManager


async def issue_key(db: DatabaseManager, tenant_id: str, scope: ApiKeyScope = ApiKeyScope.OPERATOR) -> str:
    """A new live key of `tenant_id` (operator by default: the test harness drives the whole API)."""
    _, key = await db.repositories().api_keys.create(tenant_id, "tests", scope)
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
