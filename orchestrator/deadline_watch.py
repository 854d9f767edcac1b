"""The deadline loop: every DEADLINE_CHECK_INTERVAL_SECONDS, the tasks past their deadline that have not ended fail
through the lifecycle (orchestrator/task_endings.py says how), whatever they wait on: an agent, a dependency, a budget
or the provider. Nothing waits forever once it was given a deadline.

A partial index (migration 0020) holds only the unended tasks with a deadline, so a look costs a few rows however
many tasks there are; the tasks found are failed a batch per transaction, so a backlog holds no long lock.
"""

from orchestrator.lifecycle import TaskLifecycle
from shared.loop_service import LoopService

# Tasks failed per transaction.
DEADLINE_BATCH = 100


class DeadlineWatch(LoopService):
    def __init__(self, lifecycle: TaskLifecycle) -> None:
        super().__init__("deadlines", lifecycle.settings.deadline_check_interval_seconds)
        self._lifecycle = lifecycle

    async def run_once(self) -> None:
        while not self.stopping and len(await self._lifecycle.fail_past_deadline(DEADLINE_BATCH)) == DEADLINE_BATCH:
            pass  # a full batch: there may be more
