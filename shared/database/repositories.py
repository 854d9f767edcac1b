"""All repositories over one executor, so a transaction can span several tables."""

from dataclasses import dataclass, field

from shared.database.agent_record_repository import AgentRecordRepository
from shared.database.api_key_repository import ApiKeyRepository
from shared.database.artifact_repository import ArtifactRepository
from shared.database.attempt_repository import AttemptRepository
from shared.database.audit_repository import AuditRepository
from shared.database.budget_repository import BudgetRepository
from shared.database.context_pack_repository import ContextPackRepository
from shared.database.executor import Executor
from shared.database.follow_up_repository import FollowUpRepository
from shared.database.history_repository import HistoryRepository
from shared.database.isolation_repository import IsolationRepository
from shared.database.ledger_repository import LedgerRepository
from shared.database.metrics_repository import MetricsRepository
from shared.database.provider_wait_repository import ProviderWaitRepository
from shared.database.result_repository import ResultRepository
from shared.database.retention_repository import RetentionRepository
from shared.database.subtask_repository import SubtaskRepository
from shared.database.task_repository import TaskRepository
from shared.database.webhook_repository import WebhookRepository


@dataclass
class Repositories:
    executor: Executor
    # Whose tasks are created, listed, read and changed: a task, its results, logs and tool calls are found by id only
    # when they are this tenant's, so another tenant's id is indistinguishable from an unknown one.
    tenant_id: str
    tasks: TaskRepository = field(init=False)
    subtasks: SubtaskRepository = field(init=False)
    results: ResultRepository = field(init=False)
    audit: AuditRepository = field(init=False)
    metrics: MetricsRepository = field(init=False)
    isolation: IsolationRepository = field(init=False)
    follow_ups: FollowUpRepository = field(init=False)
    artifacts: ArtifactRepository = field(init=False)
    context_packs: ContextPackRepository = field(init=False)
    webhooks: WebhookRepository = field(init=False)
    history: HistoryRepository = field(init=False)
    attempts: AttemptRepository = field(init=False)
    # The fleet's agents, with each one's record in this tenant's work.
    agent_records: AgentRecordRepository = field(init=False)
    retention: RetentionRepository = field(init=False)
    # Work waiting on the model's provider: attempts handed back, plans deferred.
    provider_waits: ProviderWaitRepository = field(init=False)
    # The cost ledger: the tenant's model calls and what they cost (the price table is every tenant's).
    ledger: LedgerRepository = field(init=False)
    budgets: BudgetRepository = field(init=False)  # task budgets and the paused state
    # Every tenant's: the key of a request says which tenant it is.
    api_keys: ApiKeyRepository = field(init=False)

    def __post_init__(self) -> None:
        self.tasks = TaskRepository(self.executor, self.tenant_id)
        self.subtasks = SubtaskRepository(self.executor, self.tenant_id)
        self.results = ResultRepository(self.executor, self.tenant_id)
        self.audit = AuditRepository(self.executor, self.tenant_id)
        self.metrics = MetricsRepository(self.executor, self.tenant_id)
        self.isolation = IsolationRepository(self.executor, self.tenant_id)
        self.follow_ups = FollowUpRepository(self.executor, self.tenant_id)
        self.artifacts = ArtifactRepository(self.executor, self.tenant_id)
        self.context_packs = ContextPackRepository(self.executor, self.tenant_id)
        self.webhooks = WebhookRepository(self.executor, self.tenant_id)
        self.history = HistoryRepository(self.executor, self.tenant_id)
        self.attempts = AttemptRepository(self.executor, self.tenant_id)
        self.agent_records = AgentRecordRepository(self.executor, self.tenant_id)
        self.retention = RetentionRepository(self.executor, self.tenant_id)
        self.provider_waits = ProviderWaitRepository(self.executor, self.tenant_id)
        self.ledger = LedgerRepository(self.executor, self.tenant_id)
        self.budgets = BudgetRepository(self.executor, self.tenant_id)
        self.api_keys = ApiKeyRepository(self.executor)
