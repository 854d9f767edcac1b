"""Taking an offer: an agent runs an attempt only once PostgreSQL has it down as this agent's, under its token.

The dispatcher takes back an offer that was not accepted (the agent refused, or did not answer in time) and may give
the attempt to another agent. A request that arrives late, a request for an offer taken back, or one without a token,
finds nothing to accept here and is refused (409), so no attempt ever runs on two agents at once.
"""

import structlog

from shared.database import DatabaseManager
from shared.errors import ConflictError
from shared.models import TaskExecutionRequest

log = structlog.get_logger(__name__)


class StaleOfferError(ConflictError):
    """The offer is not (or no longer) this agent's to run."""


class OfferBook:
    def __init__(self, db: DatabaseManager, agent_id: str) -> None:
        self._db = db
        self._agent_id = agent_id

    async def accept(self, request: TaskExecutionRequest) -> None:
        """Mark the offer accepted by this agent, or StaleOfferError when it cannot be."""
        subtask = request.subtask
        if subtask.delivery_token is None:
            raise StaleOfferError(f"subtask {subtask.id} comes without a delivery token: only offers run here")
        subtasks = self._db.repositories().subtasks
        if not await subtasks.accept_delivery(subtask.id, subtask.delivery_token, self._agent_id):
            log.warning("offer_refused", task_id=request.task_id, subtask_id=subtask.id, attempt=subtask.attempt_count)
            raise StaleOfferError(
                f"the offer of subtask {subtask.id} (attempt {subtask.attempt_count}) is not this agent's to run: "
                "it was taken back or given to another agent"
            )
