"""An operator's declaration that an agent failed (POST /agents/{agent_id}/fail), kept in the registry's Redis.

The mark is in Redis under the tenant's prefix, beside the registry, so every orchestrator instance, and one that
restarts, honours it. It holds for the agent *process* that was declared failed, named by its start time as the
registry showed it, and ends when that agent id starts afresh (a new process heartbeats a new `started_at`): a
restart is what an operator does to a failed agent, and the restarted one gets work again without another call.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from shared.models import AgentState, AgentStatus


@dataclass(frozen=True)
class FailedMark:
    started_at: datetime | None  # the declared process's start; None: the agent had no registry entry then
    failed_at: datetime

    def holds_for(self, status: AgentStatus) -> bool:
        """Whether `status` is of the agent process the mark was set for."""
        if status.started_at is None:
            return True  # an agent that does not say when it started cannot show it restarted
        if self.started_at is not None:
            return status.started_at == self.started_at
        # Declared while it had no entry: any process of that id that had started by then is the one declared failed.
        return status.started_at <= self.failed_at

    def apply(self, status: AgentStatus) -> AgentStatus:
        """The status as routing and the API see it: failed and unavailable while the mark holds."""
        if not self.holds_for(status):
            return status
        return status.model_copy(update={"state": AgentState.FAILED, "is_available": False})

    def encode(self) -> str:
        started = self.started_at.isoformat() if self.started_at is not None else None
        return json.dumps({"started_at": started, "failed_at": self.failed_at.isoformat()})

    @classmethod
    def decode(cls, text: str) -> "FailedMark":
        """The mark from its hash field; ValueError (or KeyError) when it is not one."""
        values = json.loads(text)
        started = values["started_at"]
        return cls(
            datetime.fromisoformat(started) if started is not None else None,
            datetime.fromisoformat(values["failed_at"]),
        )
