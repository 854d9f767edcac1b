"""All repositories over one executor, so a transaction can span several tables."""

from dataclasses import dataclass, field

from shared.database.audit_repository import AuditRepository
from shared.database.executor import Executor
from shared.database.result_repository import ResultRepository
from shared.database.subtask_repository import SubtaskRepository
from shared.database.task_repository import TaskRepository


@dataclass
class Repositories:
    executor: Executor
    # Whose tasks are created, listed and recovered; a task read or changed by its id is found whoever owns it.
    tenant_id: str
    tasks: TaskRepository = field(init=False)
    subtasks: SubtaskRepository = field(init=False)
    results: ResultRepository = field(init=False)
    audit: AuditRepository = field(init=False)

    def __post_init__(self) -> None:
        self.tasks = TaskRepository(self.executor, self.tenant_id)
        self.subtasks = SubtaskRepository(self.executor, self.tenant_id)
        self.results = ResultRepository(self.executor)
        self.audit = AuditRepository(self.executor)
