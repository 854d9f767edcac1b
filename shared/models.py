"""The domain's enums and models, shared by the orchestrator, the agents and the dashboard.

Validation here is the contract of seed 003 (T012/T016); the API and the database repeat the
same limits so invalid data is refused at the edge and can never be stored.
"""

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

TASK_DESCRIPTION_MIN = 10
TASK_DESCRIPTION_MAX = 5000
PRIORITY_MIN = 0
PRIORITY_MAX = 10
# Agents may be added beyond the first five; the range is configurable (see Settings.agent_port_range).
DEFAULT_AGENT_PORT_RANGE = (8001, 8016)

# The characters Redis key segments allow, so every identifier can name a key.
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]
# A trace id (shared/tracing.py): a W3C trace-id (32 hex digits) or a caller's X-Request-ID, printable ASCII.
TRACE_ID_MAX_LENGTH = 128
TraceId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=TRACE_ID_MAX_LENGTH,
        pattern=r"^[!-~]+$",
        description="The trace this work belongs to: every log line about it carries this trace_id",
    ),
]


# An attempt's turns are capped by its role's max_turns (at most 100), and a turn's tool calls by the model: this
# bounds what one report may carry.
MODEL_CALLS_MAX = 1000
# What one model call may use of each kind of token: no model reads or writes more than its context window (at most
# 1M tokens) in a call. The bound keeps a report's calls, and every sum of them in the cost ledger, within bigint.
CALL_TOKENS_MAX = 10_000_000
# The per-attempt caps of a role (shared/roles.py) that can stop an attempt before it answers.
RoleLimit = Literal["max_turns", "max_budget_usd", "max_output_tokens"]


def _require_non_blank_description(value: str) -> str:
    if len(value.strip()) < TASK_DESCRIPTION_MIN:
        raise ValueError(f"description needs at least {TASK_DESCRIPTION_MIN} non-blank characters")
    return value


# One type for the API request and the stored task, so both refuse the same descriptions.
TaskDescription = Annotated[
    str,
    Field(min_length=TASK_DESCRIPTION_MIN, max_length=TASK_DESCRIPTION_MAX),
    AfterValidator(_require_non_blank_description),
]


# A task's budget in USD (`max_cost_usd`): what it may spend on its decomposition and every attempt.
MAX_COST_USD_LIMIT = 1_000_000
MaxCostUsd = Annotated[
    float,
    Field(
        gt=0,
        le=MAX_COST_USD_LIMIT,
        description="What the task may spend in USD (decomposition and attempts); once the next attempt would pass it "
        "the task pauses (POST /tasks/{task_id}/resume continues it)",
    ),
]


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_task_id() -> str:
    return f"task_{uuid.uuid4().hex}"


def new_subtask_id() -> str:
    return f"subtask_{uuid.uuid4().hex}"


class TaskStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"  # over its budget or its tenant's daily budget: running attempts finish, nothing new starts
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_TASK_STATUSES


TERMINAL_TASK_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


class SubTaskStatus(StrEnum):
    PENDING = "pending"  # waiting on dependencies
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    BLOCKED = "blocked"  # a dependency failed for good
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_SUBTASK_STATUSES


TERMINAL_SUBTASK_STATUSES = frozenset(
    {SubTaskStatus.COMPLETED, SubTaskStatus.FAILED, SubTaskStatus.BLOCKED, SubTaskStatus.CANCELLED}
)


class AgentCapability(StrEnum):
    DATA_ANALYSIS = "DATA_ANALYSIS"
    WEB_SCRAPING = "WEB_SCRAPING"
    CODE_GENERATION = "CODE_GENERATION"
    FILE_PROCESSING = "FILE_PROCESSING"
    DATABASE_OPERATIONS = "DATABASE_OPERATIONS"
    API_INTEGRATION = "API_INTEGRATION"
    COORDINATION = "COORDINATION"  # the pool's own state: coordination tools (shared/roles/coordination.yaml)


class TaskType(StrEnum):
    """The kind of work a task or subtask is: routing learns which agents do each kind well (affinity), and a kind
    may depend on a service (TASK_TYPE_DEPENDENCIES)."""

    DISCOVERY = "DISCOVERY"
    MIGRATION = "MIGRATION"
    HEARTBEAT = "HEARTBEAT"
    INGEST = "INGEST"
    RESEARCH = "RESEARCH"
    GENERAL = "GENERAL"

    @classmethod
    def _missing_(cls, value: object) -> "TaskType | None":
        # "discovery" means DISCOVERY: clients and the model spell it either way; anything else stays an error.
        if isinstance(value, str):
            return cls.__members__.get(value.strip().upper())
        return None


class StatusReason(BaseModel):
    """Why a task or subtask is where it is, for a person: a stable code to act on and a sentence to read.

    General on purpose: waiting for an agent or a dependency today, other codes later.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$", examples=["no_live_agent"])
    message: str = Field(min_length=1, max_length=500, examples=["waiting: no live agent with WEB_SCRAPING"])


# The provider's troubles that make work wait instead of failing (shared/failure_reasons.py names the kinds).
ProviderWaitKind = Literal["rate_limited", "overloaded", "server_error", "connection", "timeout"]
PROVIDER_UNAVAILABLE = "provider_unavailable"  # the status_reason code of work waiting on the provider


class ProviderWait(BaseModel):
    """Why an attempt or a plan waits on the model's provider instead of failing: what it answered (or that it did
    not), and how long it asked to be left alone, when it said."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ProviderWaitKind
    retry_after_seconds: float | None = Field(
        None, ge=0, le=86_400, description="The provider's retry-after, when it gave one; else the fleet backs off"
    )


# Why a task ended as it did or waits where it is (StatusReason.code), for the codes more than one module names.
DEADLINE_EXCEEDED = "deadline_exceeded"
# The longest deadline a task may carry: a week.
DEADLINE_SECONDS_MAX = 604_800


class ResultStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"


class AgentState(StrEnum):
    """Whether an agent takes work: it reports `active` or `draining` itself; the registry shows `failed` while
    an operator's declaration holds (POST /agents/{agent_id}/fail), whatever the agent reports."""

    ACTIVE = "active"
    DRAINING = "draining"  # shutting down, or told to drain: it refuses offers and stops what it runs
    FAILED = "failed"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class DomainModel(BaseModel):
    """Base of every model: unknown fields are refused and values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=False)


def _require_ordered_timestamps(created_at: datetime, updated_at: datetime) -> None:
    if created_at > updated_at:
        raise ValueError("created_at must not be later than updated_at")


class SubTask(DomainModel):
    id: Identifier = Field(default_factory=new_subtask_id)
    task_id: Identifier
    description: str = Field(min_length=1, max_length=TASK_DESCRIPTION_MAX)
    required_capabilities: list[AgentCapability] = Field(min_length=1)
    dependencies: list[Identifier] = Field(default_factory=list)
    priority: int = Field(5, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    estimated_duration: int | None = Field(None, ge=0, description="Estimated seconds of work")
    task_type: TaskType = Field(TaskType.GENERAL, description="The kind of work; routing prefers agents good at it")
    status: SubTaskStatus = SubTaskStatus.PENDING
    status_reason: StatusReason | None = Field(None, description="Why the subtask is where it is, e.g. waiting")
    attempt_count: int = Field(0, ge=0, description="Attempts started so far; the current attempt's number")
    attempt_base: int = Field(
        0, ge=0, description="Attempts it had when an operator last retried it: MAX_RETRIES counts those after it"
    )
    last_error: str | None = Field(
        None, description="The error of its latest failed attempt: why it failed, or why its current attempt is a retry"
    )
    blocked_by: list[Identifier] = Field(
        default_factory=list, description="For a blocked subtask: the failed subtasks upstream of it that block it"
    )
    failed_agent_ids: list[Identifier] = Field(default_factory=list)
    not_before: AwareDatetime | None = Field(
        None, description="When its queued attempt may be offered again, after waiting on the provider"
    )
    provider_waits: int = Field(
        0, ge=0, description="Times in a row its attempts waited on the provider: the back-off grows with them"
    )
    assigned_agent: Identifier | None = Field(None, description="The agent running its current attempt, if one does")
    assigned_at: datetime | None = None
    assignment_latency_ms: float | None = Field(None, ge=0)
    delivery_token: str | None = Field(
        None, max_length=64, description="The current offer of the running attempt; its result must carry it"
    )
    trace_id: TraceId | None = None  # its task's, stored with it so every offer and result carries it
    created_at: AwareDatetime = Field(default_factory=utc_now)
    updated_at: AwareDatetime = Field(default_factory=utc_now)

    @field_validator("required_capabilities", "dependencies", "failed_agent_ids")
    @classmethod
    def drop_duplicates(cls, values: list[Any]) -> list[Any]:
        return list(dict.fromkeys(values))

    @model_validator(mode="after")
    def check_consistency(self) -> Self:
        if self.id in self.dependencies:
            raise ValueError(f"subtask {self.id} cannot depend on itself")
        _require_ordered_timestamps(self.created_at, self.updated_at)
        return self


class TokenUsage(DomainModel):
    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    cache_read_input_tokens: int = Field(0, ge=0)
    cache_creation_input_tokens: int = Field(0, ge=0)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens

    def __add__(self, other: "TokenUsage") -> "TokenUsage":
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens + other.cache_creation_input_tokens,
        )


class CallPurpose(StrEnum):
    """Why a model call was made: what its row in the cost ledger (shared/ledger.py) is filed under."""

    DECOMPOSITION = "decomposition"  # the planner's first call for a task
    REPAIR = "repair"  # the planner's second call, for a plan that was invalid
    ATTEMPT = "attempt"  # one turn of an agent's attempt at a subtask
    ESTIMATE = "estimate"  # a call made to estimate a task's cost


class ModelCallUsage(DomainModel):
    """One call to Claude: why, which model answered and what it used (before it is priced)."""

    purpose: CallPurpose
    model: str = Field(min_length=1, max_length=128)
    usage: TokenUsage = Field(default_factory=TokenUsage)

    @field_validator("usage")
    @classmethod
    def check_one_call_s_usage(cls, usage: TokenUsage) -> TokenUsage:
        too_many = {kind: count for kind, count in usage.model_dump().items() if count > CALL_TOKENS_MAX}
        if too_many:
            raise ValueError(f"one model call uses at most {CALL_TOKENS_MAX} tokens of each kind, not {too_many}")
        return usage


class SubTaskResult(DomainModel):
    result_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=64)
    subtask_id: Identifier
    task_id: Identifier
    agent_id: Identifier
    attempt: int = Field(ge=1, description="The subtask attempt this result belongs to")
    delivery_token: str | None = Field(
        None, max_length=64, description="The offer the attempt ran under; only the current offer's result applies"
    )
    status: ResultStatus
    output: str | None = None
    error: str | None = None
    retryable: bool = False
    execution_time: float = Field(gt=0, description="Seconds the attempt ran")
    token_usage: TokenUsage = Field(default_factory=TokenUsage)
    cost_usd: float = Field(0.0, ge=0)
    num_turns: int = Field(0, ge=0)
    role_config_hash: str | None = None
    # What isolated the attempt (GET /isolation-report); None in results from before they were recorded.
    claude_session_id: str | None = Field(
        None, max_length=128, description="The Claude session the attempt ran in: one fresh session per attempt"
    )
    claude_config_dir: str | None = Field(
        None, max_length=4096, description="The CLI's config folder (CLAUDE_CONFIG_DIR): one per agent"
    )
    allowed_tools: list[str] | None = Field(None, description="The tools the attempt's role allowed")
    simulated: bool = Field(False, description="True when the answer came from the offline simulator")
    provider_wait: ProviderWait | None = Field(
        None,
        description="Set when the attempt stopped because the provider could not serve it: it does not count as an "
        "attempt, and the subtask waits on the queue for its next try",
    )
    created_at: datetime = Field(default_factory=utc_now)

    @model_validator(mode="after")
    def check_outcome(self) -> Self:
        if self.status is ResultStatus.COMPLETED and not self.output:
            raise ValueError("a completed result requires output")
        if self.status is ResultStatus.FAILED and not self.error:
            raise ValueError("a failed result requires an error")
        if self.provider_wait is not None and self.status is not ResultStatus.FAILED:
            raise ValueError("only a failed result waits on the provider")
        return self


class Assignment(DomainModel):
    """The orchestrator's signature of one offer (shared/fleet_trust.py); the attempt's result carries it back."""

    expires_at: int = Field(ge=0, description="Unix time after which an agent refuses the offer")
    content_digest: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of what the agent is asked to do: description, capabilities, context, trace id",
    )
    signature: str = Field(pattern=r"^[0-9a-f]{64}$", description="HMAC-SHA256 with FLEET_SECRET, hex")


class DrainCommand(DomainModel):
    """The orchestrator's order to one agent process to drain (the agent's POST /drain), signed like an offer."""

    agent_id: Identifier
    started_at: datetime | None = Field(
        description="The start of the agent process it is for (from the registry): a restarted agent refuses it"
    )
    reason: str = Field(min_length=1, max_length=500)
    expires_at: int = Field(ge=0, description="Unix time after which the agent refuses the command")
    signature: str = Field(pattern=r"^[0-9a-f]{64}$", description="HMAC-SHA256 with FLEET_SECRET, hex")


class RunningAttempt(DomainModel):
    """One offer of an attempt an agent runs: what it takes to tell that agent to stop it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_id: Identifier
    subtask_id: Identifier
    attempt: int = Field(ge=1)
    delivery_token: str = Field(min_length=1, max_length=64)
    agent_id: Identifier


class StopCommand(DomainModel):
    """The orchestrator's order to one agent to stop one attempt it runs (the agent's POST /stop), signed like an
    offer: the attempt is named by its delivery token, so the order cannot stop another offer of the subtask."""

    agent_id: Identifier
    task_id: Identifier
    subtask_id: Identifier
    attempt: int = Field(ge=1)
    delivery_token: str = Field(min_length=1, max_length=64, description="The offer the attempt runs under")
    reason: str = Field(min_length=1, max_length=500, description="Why it stops: the attempt's result names it")
    expires_at: int = Field(ge=0, description="Unix time after which the agent refuses the command")
    signature: str = Field(pattern=r"^[0-9a-f]{64}$", description="HMAC-SHA256 with FLEET_SECRET, hex")


class ReportedResult(SubTaskResult):
    """A result as it travels from an agent to the orchestrator: with the assignment the attempt ran under.

    Only the result queue carries it; what PostgreSQL stores and the API shows is the plain SubTaskResult.
    """

    assignment: Assignment | None = None
    report_signature: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="HMAC-SHA256 with FLEET_SECRET over the whole report: only a member of the fleet can make one",
    )
    trace_id: TraceId | None = None  # the offer's, so the orchestrator's lines about the result carry it too
    model: str | None = Field(None, max_length=128, description="The model the attempt's role ran (for metrics)")
    model_calls: list[ModelCallUsage] = Field(
        default_factory=list,
        max_length=MODEL_CALLS_MAX,
        description="Each model call of the attempt (one per turn), for the cost ledger; empty when none was seen",
    )
    limit_reached: RoleLimit | None = Field(None, description="The role's cap that stopped the attempt, if one did")


class DecompositionInfo(DomainModel):
    """How a task's plan came about: how long Claude took, whether it was repaired or replaced."""

    duration_ms: float = Field(0.0, ge=0)
    repaired: bool = False
    fallback_reason: str | None = None
    token_usage: TokenUsage = Field(default_factory=TokenUsage)
    model: str | None = Field(None, max_length=128, description="The model that decomposed the task")
    cost_usd: float | None = Field(
        None, ge=0, description="What the decomposition cost, priced by MODEL_PRICES; null when its model has no price"
    )


class Task(DomainModel):
    id: Identifier = Field(default_factory=new_task_id)
    user_id: str | None = Field(None, max_length=128)
    description: TaskDescription
    task_type: TaskType = TaskType.GENERAL
    status: TaskStatus = TaskStatus.PENDING
    status_reason: StatusReason | None = Field(None, description="Why the task is where it is, e.g. a subtask waits")
    created_at: AwareDatetime = Field(default_factory=utc_now)
    updated_at: AwareDatetime = Field(default_factory=utc_now)
    subtasks: list[SubTask] = Field(default_factory=list)
    result: dict[str, Any] | None = None
    error: str | None = None
    decomposition_fallback: bool = Field(False, description="True when Claude's plan was replaced by one subtask")
    decomposition: DecompositionInfo | None = None
    trace_id: TraceId | None = None  # from the request that submitted it (None for tasks stored before 0008)
    context_pack_id: Identifier | None = Field(
        None, description="The context pack its agents get (POST /context-packs)"
    )
    max_cost_usd: MaxCostUsd | None = None
    deadline_at: AwareDatetime | None = Field(
        None, description="When the task fails unless it has ended (submitted with deadline_seconds); null: never"
    )

    @model_validator(mode="after")
    def check_timestamps(self) -> Self:
        _require_ordered_timestamps(self.created_at, self.updated_at)
        return self


class AgentStatus(DomainModel):
    agent_id: Identifier
    url: str = Field(min_length=1, max_length=512)
    port: int
    is_available: bool
    current_task: str | None = None
    current_tasks: list[str] = Field(default_factory=list)
    capabilities: list[AgentCapability] = Field(min_length=1)
    slots: int = Field(1, ge=1)
    cpu_usage: float = Field(0.0, ge=0, le=100)
    memory_usage: float = Field(0.0, ge=0, le=100)
    tasks_completed: int = Field(0, ge=0)
    tasks_failed: int = Field(0, ge=0)
    executor: str = "sdk"
    state: AgentState = AgentState.ACTIVE
    started_at: datetime | None = Field(
        None, description="When this agent process started: tells a restarted agent from the one declared failed"
    )
    last_heartbeat: datetime = Field(default_factory=utc_now)
    registration: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="HMAC-SHA256 with FLEET_SECRET of the agent's identity (id, address, capabilities, slots): the "
        "orchestrator ignores a registry entry without a valid one",
    )

    @field_validator("port")
    @classmethod
    def port_in_agent_range(cls, port: int, info: ValidationInfo) -> int:
        """Validate against the configured range, passed as validation context `agent_port_range`."""
        low, high = (info.context or {}).get("agent_port_range", DEFAULT_AGENT_PORT_RANGE)
        if not low <= port <= high:
            raise ValueError(f"port {port} is outside the agent port range {low}-{high}")
        return port

    @property
    def free_slots(self) -> int:
        return max(self.slots - len(self.current_tasks), 0)


# Where a task's context pack is materialized, relative to its workspace (`{SHARED_FILES_DIR}/{task_id}/context/`).
CONTEXT_DIR: Literal["context"] = "context"


class ContextPackRef(DomainModel):
    """The context pack of an attempt's task, as its offer names it (shared/context_packs.py)."""

    context_pack_id: Identifier
    path: Literal["context"] = Field(
        CONTEXT_DIR, description="Where the agent materializes the pack's files, relative to the task's workspace"
    )


class TaskExecutionRequest(DomainModel):
    """What the orchestrator sends to an agent's POST /execute."""

    task_id: Identifier
    subtask: SubTask
    task_context: dict[str, Any] = Field(default_factory=dict)
    context_pack: ContextPackRef | None = Field(
        None,
        description="The task's context pack: its files are in the workspace's `context/`, its manifest in the prompt",
    )
    assignment: Assignment | None = Field(None, description="The orchestrator's signature; agents refuse without")

    @model_validator(mode="after")
    def subtask_belongs_to_task(self) -> Self:
        if self.subtask.task_id != self.task_id:
            raise ValueError("subtask.task_id must equal task_id")
        return self


class AgentLog(DomainModel):
    id: int | None = None
    agent_id: Identifier
    task_id: str | None = None
    subtask_id: str | None = None
    trace_id: str | None = Field(None, description="The trace of the task the entry is about (null when none)")
    level: LogLevel = LogLevel.INFO
    message: str = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utc_now)


class ToolCall(DomainModel):
    id: int | None = None
    agent_id: Identifier
    task_id: str
    subtask_id: str | None = None
    attempt: int | None = None
    tool_name: str = Field(min_length=1, max_length=128)
    arguments: dict[str, Any] = Field(default_factory=dict)
    is_error: bool = False
    outcome: str = ""
    duration_ms: float = Field(0.0, ge=0)
    created_at: datetime = Field(default_factory=utc_now)


class QueuedSubtask(DomainModel):
    """The item on the `agent_tasks` queue: one attempt of one subtask, with what routing it needs.

    The routing fields are a copy for the dispatcher's matching; PostgreSQL stays the truth, and the
    claim of the attempt there decides whether the item is still current.
    """

    task_id: Identifier
    subtask_id: Identifier
    attempt: int = Field(ge=1)
    required_capabilities: list[AgentCapability] = Field(min_length=1)
    failed_agent_ids: list[Identifier] = Field(default_factory=list)
    priority: int = Field(5, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    task_type: TaskType = TaskType.GENERAL
    trace_id: TraceId | None = None
    not_before: datetime | None = None  # the dispatcher holds the item until then (it waited on the provider)

    @classmethod
    def for_subtask(cls, subtask: "SubTask") -> "QueuedSubtask":
        return cls(
            task_id=subtask.task_id,
            subtask_id=subtask.id,
            attempt=subtask.attempt_count,
            required_capabilities=subtask.required_capabilities,
            failed_agent_ids=subtask.failed_agent_ids,
            priority=subtask.priority,
            task_type=subtask.task_type,
            trace_id=subtask.trace_id,
            not_before=subtask.not_before,
        )


class TaskCreateRequest(DomainModel):
    description: TaskDescription
    user_id: str | None = Field(None, max_length=128)
    task_type: TaskType = Field(
        TaskType.GENERAL, description="The kind of work; its subtasks inherit it unless the plan says otherwise"
    )
    context_pack_id: Identifier | None = Field(
        None, description="A context pack of this tenant's (POST /context-packs) for every subtask's agent"
    )
    max_cost_usd: MaxCostUsd | None = None
    deadline_seconds: int | None = Field(
        None,
        ge=1,
        le=DEADLINE_SECONDS_MAX,
        description="Seconds from submission after which the task fails (deadline_exceeded) and its running "
        "attempts are stopped, whatever it waits on",
    )


class CostEstimate(DomainModel):
    """What running a plan may cost, in USD, before it runs (orchestrator/estimates.py says how it is made)."""

    min_usd: float = Field(ge=0, description="Every subtask done in one turn with a short answer")
    max_usd: float = Field(
        ge=0, description="Every subtask using its role's limits: max_turns full turns, capped by max_budget_usd"
    )
    basis: Literal["count_tokens", "characters"] = Field(
        description="How the prompts' tokens were counted: by the API's count-tokens endpoint, or, when it could not "
        "be reached, from their characters (about 4 to a token)"
    )


class TaskCreatedResponse(DomainModel):
    task_id: str
    status: Literal["created"] = "created"
    subtasks_count: int = Field(ge=0)
    initial_subtasks_queued: int = Field(ge=0)
    trace_id: str = Field(description="The trace of the request, stored with the task; also its X-Request-ID")
    estimate: CostEstimate | None = Field(
        None, description="What the plan may cost; null when a model it would run on has no price in MODEL_PRICES"
    )


class TaskSummary(DomainModel):
    """A task as the task list shows it: no subtasks, but how far they have come."""

    id: str
    user_id: str | None
    description: str
    task_type: TaskType = TaskType.GENERAL
    status: TaskStatus
    status_reason: StatusReason | None = None
    error: str | None = None
    decomposition_fallback: bool = False
    created_at: datetime
    updated_at: datetime
    subtasks_total: int = Field(ge=0)
    subtasks_completed: int = Field(ge=0)
    subtasks_failed: int = Field(0, ge=0)
    total_tokens: int = Field(0, ge=0, description="Tokens of every attempt's result and of the decomposition")
    cost_usd: float = Field(0.0, ge=0, description="Cost of every attempt's result and of the decomposition, in USD")
    max_cost_usd: float | None = Field(None, description="The task's budget in USD, if it has one")
