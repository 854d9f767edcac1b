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
    tasks: TaskRepository = field(init=False)
    subtasks: SubtaskRepository = field(init=False)
    results: ResultRepository = field(init=False)
    audit: AuditRepository = field(init=False)

    def __post_init__(self) -> None:
        self.tasks = TaskRepository(self.executor)
        self.subtasks = SubtaskRepository(self.executor)
        self.results = ResultRepository(self.executor)
        self.audit = AuditRepository(self.executor)
