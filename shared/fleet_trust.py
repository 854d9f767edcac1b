"""Trust inside the fleet: the orchestrator signs every assignment it offers; agents and the result path check it.

An assignment is an HMAC-SHA256, keyed with FLEET_SECRET, over tenant, task, subtask, attempt, delivery token, agent,
expiry and a digest of what the agent is asked to do (so an overheard offer cannot be raced with another prompt).
An agent runs an offer only when the signature holds, the agent is its own and it has not expired; the orchestrator
applies a result only when it carries the signature of the offer it answers. So nobody without the secret can have
an agent run a prompt of theirs, or have the orchestrator take a result it never asked for. Replaying a genuine
offer gets nothing either: once expired it is refused here, and before that PostgreSQL accepts an offer only under
its current delivery token (agent/offers.py), so a superseded attempt is refused there.

The orchestrator's order to drain (an agent declared failed) is signed the same way, for one agent process (its
start time from the registry), so it cannot be forged, and a captured one cannot drain the agent once restarted.
Its order to stop one attempt (a cancel, a deadline) is signed for one offer, named by its delivery token: a captured
one stops nothing but that offer, which has ended anyway.

Agents' GET /status takes a bearer token derived from the secret rather than the secret itself, so a request that
is overheard never reveals the key that signs assignments.
"""

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import SecretStr

from shared.config import ConfigurationError, Settings
from shared.errors import AppError
from shared.models import (
    AgentStatus,
    Assignment,
    DrainCommand,
    ReportedResult,
    RunningAttempt,
    StopCommand,
    SubTask,
    SubTaskResult,
    TaskExecutionRequest,
)

# How long an agent may take up an offer. An offer waits in the agent's Redis queue only while the agent's slots are
# all busy (the dispatcher offers free slots); one that expired there is refused back to the orchestrator and offered
# afresh. The rest is margin for the clocks of the orchestrator's and the agent's hosts disagreeing. A captured offer
# is worthless once it has passed.
ASSIGNMENT_LIFETIME_SECONDS = 30
STATUS_TOKEN_PURPOSE = b"mats agent status v1"
# The content digest of the results the orchestrator makes itself (a stranded attempt's failure): there is no offer.
ORCHESTRATOR_MADE = hashlib.sha256(b"made by the orchestrator").hexdigest()

UNSET_SECRET_MESSAGE = (
    "FLEET_SECRET is not set: the orchestrator and its agents need the same secret to sign and check assignments. "
    "scripts/start.sh generates one in .data/fleet/fleet-secret; elsewhere set it to the output of "
    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'` for every service of the fleet"
)


class UntrustedCallerError(AppError):
    """The caller did not prove it holds the fleet secret: an unsigned, forged or expired assignment, or no token."""

    status_code = 401


class ExpiredAssignmentError(UntrustedCallerError):
    """A signed assignment that was the fleet's, but whose time to be taken up has passed."""


@dataclass(frozen=True)
class AssignmentTerms:
    """What a signature binds: one attempt of one subtask, under one offer, on one agent."""

    task_id: str
    subtask_id: str
    attempt: int
    delivery_token: str | None
    agent_id: str

    @classmethod
    def of_offer(cls, subtask: SubTask) -> "AssignmentTerms":
        agent_id = subtask.assigned_agent or ""
        return cls(subtask.task_id, subtask.id, subtask.attempt_count, subtask.delivery_token, agent_id)

    @classmethod
    def of_result(cls, result: SubTaskResult) -> "AssignmentTerms":
        return cls(result.task_id, result.subtask_id, result.attempt, result.delivery_token, result.agent_id)


class FleetTrust:
    """Signs and checks assignments for one tenant's fleet with its FLEET_SECRET."""

    def __init__(self, secret: SecretStr, tenant_id: str) -> None:
        self._key = hmac.new(secret.get_secret_value().encode(), digestmod=hashlib.sha256)  # copied per message
        self._tenant_id = tenant_id
        self.status_token = fleet_status_token(secret)

    @classmethod
    def from_settings(cls, settings: Settings) -> "FleetTrust":
        """The fleet's trust, or ConfigurationError (the service does not start) when FLEET_SECRET is unset."""
        return cls(require_fleet_secret(settings), settings.tenant_id)

    def sign_offer(self, request: TaskExecutionRequest, *, now: float | None = None) -> Assignment:
        """The assignment of the request's offer to the agent its subtask was claimed for."""
        return self._sign(AssignmentTerms.of_offer(request.subtask), content_digest(request), now)

    def sign_result(self, result: SubTaskResult, trace_id: str | None = None) -> ReportedResult:
        """A result the orchestrator makes itself (a stranded attempt's failure), signed like an agent's."""
        assignment = self._sign(AssignmentTerms.of_result(result), ORCHESTRATOR_MADE, None)
        return self.seal(ReportedResult(**result.model_dump(), assignment=assignment, trace_id=trace_id))

    def seal(self, report: ReportedResult) -> ReportedResult:
        """The report with a signature over all of it: whoever overheard the offer it answers still cannot make one,
        or change a word of it, without FLEET_SECRET."""
        return report.model_copy(update={"report_signature": self._report_signature(report)})

    def check_offer(self, request: TaskExecutionRequest, agent_id: str) -> None:
        """UntrustedCallerError unless the request is an unexpired assignment to `agent_id` signed by the fleet."""
        terms = AssignmentTerms.of_offer(request.subtask)
        if terms.agent_id != agent_id:
            raise UntrustedCallerError(f"the assignment is for agent {terms.agent_id!r}, not {agent_id!r}")
        assignment = request.assignment
        problem = self._problem(terms, assignment)
        if problem is None and assignment is not None:
            if not hmac.compare_digest(assignment.content_digest, content_digest(request)):
                problem = (
                    "the request is not what was assigned: its description, capabilities, context or trace id differ"
                )
            elif assignment.expires_at < time.time():
                raise ExpiredAssignmentError("the assignment has expired")
        if problem:
            raise UntrustedCallerError(problem)

    def result_problem(self, result: SubTaskResult) -> str | None:
        """Why the orchestrator never assigned what this result reports, or None. Expiry does not apply: the offer
        was taken up in time, and the attempt may run long after."""
        if not isinstance(result, ReportedResult):
            return "it carries no assignment signed by the orchestrator"
        problem = self._problem(AssignmentTerms.of_result(result), result.assignment)
        if problem is None and not hmac.compare_digest(result.report_signature or "", self._report_signature(result)):
            problem = "the report is not signed by a member of the fleet (or was changed after it was)"
        return problem

    def register(self, status: AgentStatus) -> AgentStatus:
        """The status with the signature of its identity: what only a member of the fleet can put in the registry."""
        return status.model_copy(update={"registration": self._registration_signature(status)})

    def registration_holds(self, status: AgentStatus) -> bool:
        """Whether a member of the fleet registered this identity (anyone who reaches Redis can write an entry)."""
        return hmac.compare_digest(status.registration or "", self._registration_signature(status))

    def sign_drain(
        self, agent_id: str, started_at: datetime | None, reason: str, *, now: float | None = None
    ) -> DrainCommand:
        """The order to drain the agent process `agent_id` that started at `started_at`."""
        expires_at = int((time.time() if now is None else now) + ASSIGNMENT_LIFETIME_SECONDS)
        signature = self._drain_signature(agent_id, started_at, reason, expires_at)
        return DrainCommand(
            agent_id=agent_id, started_at=started_at, reason=reason, expires_at=expires_at, signature=signature
        )

    def check_drain(self, command: DrainCommand, agent_id: str, started_at: datetime | None) -> None:
        """UntrustedCallerError unless the command is an unexpired order of the fleet's to this very agent process."""
        expected = self._drain_signature(command.agent_id, command.started_at, command.reason, command.expires_at)
        if not hmac.compare_digest(command.signature, expected):
            raise UntrustedCallerError("the drain command is not signed with this fleet's FLEET_SECRET")
        if command.agent_id != agent_id:
            raise UntrustedCallerError(f"the drain command is for agent {command.agent_id!r}, not {agent_id!r}")
        if command.started_at != started_at:
            raise UntrustedCallerError("the drain command is for an earlier process of this agent (it restarted)")
        if command.expires_at < time.time():
            raise UntrustedCallerError("the drain command has expired")

    def sign_stop(self, attempt: RunningAttempt, reason: str, *, now: float | None = None) -> StopCommand:
        """The order to the agent running `attempt` to stop it, saying why."""
        expires_at = int((time.time() if now is None else now) + ASSIGNMENT_LIFETIME_SECONDS)
        command = StopCommand(
            agent_id=attempt.agent_id,
            task_id=attempt.task_id,
            subtask_id=attempt.subtask_id,
            attempt=attempt.attempt,
            delivery_token=attempt.delivery_token,
            reason=reason,
            expires_at=expires_at,
            signature="0" * 64,
        )
        return command.model_copy(update={"signature": self._stop_signature(command)})

    def check_stop(self, command: StopCommand, agent_id: str) -> None:
        """UntrustedCallerError unless the command is an unexpired order of the fleet's to this agent."""
        if not hmac.compare_digest(command.signature, self._stop_signature(command)):
            raise UntrustedCallerError("the stop command is not signed with this fleet's FLEET_SECRET")
        if command.agent_id != agent_id:
            raise UntrustedCallerError(f"the stop command is for agent {command.agent_id!r}, not {agent_id!r}")
        if command.expires_at < time.time():
            raise UntrustedCallerError("the stop command has expired")

    def check_status_token(self, token: str | None) -> None:
        """UntrustedCallerError unless `token` (a request's bearer token) is the fleet's status token."""
        if token is None or not hmac.compare_digest(token.encode(), self.status_token.encode()):
            raise UntrustedCallerError("GET /status needs Authorization: Bearer <the fleet's status token>")

    def check_attempt(self, terms: AssignmentTerms, assignment: Assignment | None) -> None:
        """UntrustedCallerError unless `assignment` is the fleet's signature of these terms. Expiry does not apply:
        the attempt calls back while it runs; whether it is still the current one is PostgreSQL's to say."""
        problem = self._problem(terms, assignment)
        if problem:
            raise UntrustedCallerError(problem)

    def sign_request(self, body: bytes) -> str:
        """The signature of a request body a member of the fleet sends the orchestrator (a follow-up subtask)."""
        return self._digest(b"fleet request\0" + body)

    def check_request(self, body: bytes, signature: str | None) -> None:
        """UntrustedCallerError unless `signature` is a member of the fleet's signature of exactly `body`."""
        if not hmac.compare_digest((signature or "").encode(), self.sign_request(body).encode()):
            raise UntrustedCallerError("the request is not signed by a member of the fleet (or was changed after)")

    def sign_pool_member(self, record: str) -> str:
        """The signature of a pool member's record (orchestrator/pool.py): the pool signals the process it names."""
        return self._digest(b"pool member\0" + json.dumps([self._tenant_id, record]).encode())

    def pool_member_holds(self, record: str, signature: str) -> bool:
        """Whether the pool of this fleet wrote this record (anyone who reaches Redis can write one)."""
        return hmac.compare_digest(signature.encode(), self.sign_pool_member(record).encode())

    def _problem(self, terms: AssignmentTerms, assignment: Assignment | None) -> str | None:
        if assignment is None:
            return "it carries no assignment signed by the orchestrator"
        expected = self._signature(terms, assignment.expires_at, assignment.content_digest)
        if not hmac.compare_digest(assignment.signature, expected):
            return "its assignment's signature does not match (not signed with this fleet's FLEET_SECRET)"
        return None

    def _sign(self, terms: AssignmentTerms, digest: str, now: float | None) -> Assignment:
        expires_at = int((time.time() if now is None else now) + ASSIGNMENT_LIFETIME_SECONDS)
        signature = self._signature(terms, expires_at, digest)
        return Assignment(expires_at=expires_at, content_digest=digest, signature=signature)

    def _signature(self, terms: AssignmentTerms, expires_at: int, digest: str) -> str:
        # JSON keeps the fields apart unambiguously, whatever characters a token or an id holds.
        fields = [self._tenant_id, terms.task_id, terms.subtask_id, terms.attempt, terms.delivery_token]
        return self._digest(json.dumps([*fields, terms.agent_id, expires_at, digest]).encode())

    def _registration_signature(self, status: AgentStatus) -> str:
        # What routing trusts: who the agent is, where offers go, what it can run and how much at once.
        capabilities = sorted(capability.value for capability in status.capabilities)
        identity = ["registration", self._tenant_id, status.agent_id, status.url, status.port, capabilities]
        return self._digest(json.dumps([*identity, status.slots]).encode())

    def _drain_signature(self, agent_id: str, started_at: datetime | None, reason: str, expires_at: int) -> str:
        started = started_at.astimezone(UTC).isoformat() if started_at is not None else None
        return self._digest(json.dumps(["drain", self._tenant_id, agent_id, started, reason, expires_at]).encode())

    def _stop_signature(self, command: StopCommand) -> str:
        fields = [command.task_id, command.subtask_id, command.attempt, command.delivery_token, command.agent_id]
        signed = ["stop", self._tenant_id, *fields, command.reason, command.expires_at]
        return self._digest(json.dumps(signed).encode())

    def _report_signature(self, report: ReportedResult) -> str:
        # The JSON it travels as: parsed and dumped again on the orchestrator's side, it is the same text.
        return self._digest(b"report\0" + report.model_dump_json(exclude={"report_signature"}).encode())

    def _digest(self, message: bytes) -> str:
        mac = self._key.copy()
        mac.update(message)
        return mac.hexdigest()


def require_fleet_secret(settings: Settings) -> SecretStr:
    """FLEET_SECRET, or ConfigurationError: one line saying how to set it."""
    if settings.fleet_secret is None:
        raise ConfigurationError(f"invalid configuration: {UNSET_SECRET_MESSAGE}")
    return settings.fleet_secret


def content_digest(request: TaskExecutionRequest) -> str:
    """SHA-256 of what decides what the agent does: the subtask's description and capabilities (its role and tools),
    the task context (the prompt's background and dependency outputs) and its context pack; and of the trace id its
    log lines and its result will carry, so nobody can file an attempt under another task's trace."""
    subtask = request.subtask
    content = [subtask.description, [capability.value for capability in subtask.required_capabilities]]
    signed = [*content, request.task_context, subtask.trace_id]
    if request.context_pack is not None:  # which files the agent loads into the workspace and prompt
        signed.append(request.context_pack.model_dump(mode="json"))
    return hashlib.sha256(json.dumps(signed, sort_keys=True).encode()).hexdigest()


def fleet_status_token(secret: SecretStr) -> str:
    """The bearer token of agents' GET /status: derived from FLEET_SECRET, useless for signing assignments."""
    return hmac.new(secret.get_secret_value().encode(), STATUS_TOKEN_PURPOSE, hashlib.sha256).hexdigest()
