"""Taking offers: an agent runs an attempt only once PostgreSQL has it down as this agent's, under its token.

One owner for both ways an offer arrives (the agent's Redis offer queue, agent/offer_intake.py, and POST /execute):
each offer's signature is checked, a slot is reserved for it, the offers of a batch are accepted in one PostgreSQL
statement (which also writes each one's "started" agent_logs row), and those accepted start.

The orchestrator takes back an offer that was not accepted (the agent refused it) and may give the attempt to
another agent; an offer taken back, superseded by a later one, or without a token finds nothing to accept here and
is refused (409), so no attempt ever runs on two agents at once, nor twice on one.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from agent.reporting import ResultReporter
from agent.runner import Reservation, SubtaskRunner, bound_to_request
from shared.database import DatabaseManager
from shared.errors import AppError, ConflictError
from shared.fleet_trust import FleetTrust
from shared.models import TaskExecutionRequest

log = structlog.get_logger(__name__)


class StaleOfferError(ConflictError):
    """The offer is not (or no longer) this agent's to run."""


@dataclass(frozen=True)
class OfferOutcome:
    """What became of one offer: started here, refused (why), or neither (this very attempt already runs here)."""

    started: bool = False
    refusal: AppError | None = None


ALREADY_HERE = OfferOutcome()


class OfferBook:
    def __init__(
        self, db: DatabaseManager, runner: SubtaskRunner, trust: FleetTrust, reporter: ResultReporter, agent_id: str
    ) -> None:
        self._db = db
        self._runner = runner
        self._trust = trust
        self._reporter = reporter
        self._agent_id = agent_id

    async def take(self, requests: Sequence[TaskExecutionRequest]) -> list[OfferOutcome]:
        """Check, reserve, accept (one statement for all) and start each offer; what became of each, in order."""
        outcomes = [ALREADY_HERE] * len(requests)
        reserved: list[tuple[int, Reservation]] = []
        for position, request in enumerate(requests):
            try:
                reservation = self._reserve(request)
            except AppError as refusal:
                outcomes[position] = OfferOutcome(refusal=refusal)
                continue
            if reservation is not None:  # None: this very attempt already runs here, a repeated delivery
                reserved.append((position, reservation))
        try:
            accepted = await self._accept([reservation for _, reservation in reserved])
        except BaseException:
            for _, reservation in reserved:
                self._runner.release(reservation)
            raise
        for position, reservation in reserved:
            outcomes[position] = self._start_or_release(reservation, accepted)
        return outcomes

    def _reserve(self, request: TaskExecutionRequest) -> Reservation | None:
        self._trust.check_offer(request, self._agent_id)  # before anything is held, written or run
        subtask = request.subtask
        # The trace comes with the signed offer, not from anything a caller could set.
        with bound_to_request(request, self._agent_id):
            if subtask.delivery_token is None:
                raise StaleOfferError(f"subtask {subtask.id} comes without a delivery token: only offers run here")
            return self._runner.reserve(request)

    async def _accept(self, reserved: Sequence[Reservation]) -> set[tuple[str, str]]:
        if not reserved:
            return set()
        offers = [
            (
                reservation.request.subtask.id,
                reservation.request.subtask.delivery_token or "",
                self._reporter.started_record(reservation.request, reservation.role),
            )
            for reservation in reserved
        ]
        return await self._db.repositories().subtasks.accept_deliveries(offers, self._agent_id)

    def _start_or_release(self, reservation: Reservation, accepted: set[tuple[str, str]]) -> OfferOutcome:
        request = reservation.request
        subtask = request.subtask
        if (subtask.id, subtask.delivery_token) in accepted:
            self._runner.start(reservation)
            return OfferOutcome(started=True)
        self._runner.release(reservation)
        with bound_to_request(request, self._agent_id):
            log.warning("offer_refused", task_id=request.task_id, subtask_id=subtask.id, attempt=subtask.attempt_count)
        return OfferOutcome(
            refusal=StaleOfferError(
                f"the offer of subtask {subtask.id} (attempt {subtask.attempt_count}) is not this agent's to run: "
                "it was taken back or given to another agent"
            )
        )
