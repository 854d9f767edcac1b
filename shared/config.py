"""The one settings class of the system: every service reads its configuration from here.

Values come from the environment (or a `.env` file); each field's description is the one-line
explanation that `.env.example` repeats. `load_settings()` turns a validation failure into a
single readable line so a misconfigured service stops at start-up with a message a person can act on.
"""

import json
import re
from functools import cached_property
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.models import AgentCapability, TaskType
from shared.pricing import ModelPrice, default_model_prices

DEFAULT_AGENT_PORT_MIN = 8001
DEFAULT_AGENT_PORT_MAX = 8016

TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
# The data source database_query reads when AGENT_DATA_URL is unset: on POSTGRES_URL's server, never its database.
DEFAULT_DATA_DATABASE = "mats_data"
DEFAULT_DATA_ROLE = "mats_reader"
DEFAULT_DATA_SCHEMA = "sales"

# Fewer characters than this cannot be a generated secret (scripts/start.sh writes 40 or more).
FLEET_SECRET_MIN_LENGTH = 32
# Values people copy from templates without replacing them.
PLACEHOLDER_SECRETS = frozenset({"changeme", "your-api-key", "your_api_key", "sk-ant-xxx", "xxx", "..."})


class ProviderLimit(BaseModel):
    """What the fleet may ask of one model per minute (PROVIDER_LIMITS); an absent figure is not limited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: int | None = Field(None, ge=1, le=1_000_000)
    tokens_per_minute: int | None = Field(None, ge=1, le=1_000_000_000)


class ConfigurationError(SystemExit):
    """Raised at start-up when the environment holds a missing or invalid setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    # Claude
    anthropic_api_key: SecretStr | None = Field(
        None, description="API key for Claude; unset means the offline simulator is used by scripts/start.sh"
    )
    anthropic_base_url: str | None = Field(
        None, description="Claude API base URL; point it at the simulator (http://127.0.0.1:8090) offline"
    )
    claude_model: str = Field("claude-sonnet-5-5", description="Model for decomposition and agent work")
    claude_simulated: bool = Field(
        False, description="true when ANTHROPIC_BASE_URL is the offline simulator: results are labelled simulated"
    )
    claude_fast_model: str = Field("claude-haiku-5-5", description="Model where speed matters more than depth")
    anthropic_max_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Retries of the anthropic client per call, for what the fleet does not retry itself (a dropped "
        "answer); the provider's 429, 529, 5xx and unreachable are never retried inline: the task waits instead",
    )
    anthropic_timeout_seconds: float = Field(60.0, gt=0, description="Timeout of one Claude API call")
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=default_model_prices,
        description="USD per million tokens by model as JSON (input, output, cache_read, cache_write): prices the "
        "decomposition call; a model not listed is shown without a cost",
    )
    decomposition_max_tokens: int = Field(4096, ge=256, description="max_tokens of the decomposition call")
    provider_backoff_base_seconds: float = Field(
        2.0,
        gt=0,
        le=3600,
        description="Work the provider could not serve waits a random time up to this, doubled for each wait in a "
        "row, when the provider gave no retry-after (full jitter)",
    )
    provider_backoff_max_seconds: float = Field(
        120.0, gt=0, le=86_400, description="The longest such wait (the cap of the doubling)"
    )
    provider_limits: dict[str, ProviderLimit] = Field(
        default_factory=dict,
        description='Fleet-wide limits per model as JSON, e.g. {"claude-sonnet-5-5": {"requests_per_minute": 50, '
        '"tokens_per_minute": 400000}}: every attempt start and decomposition call takes its share first; a model '
        "not listed is unlimited (the provider's 429s still make it wait)",
    )
    max_subtasks_per_task: int = Field(10, ge=1, le=50, description="Upper bound on subtasks in one plan")

    # Storage and transport
    postgres_url: str = Field(
        "postgresql://postgres:postgres@localhost:5432/multi_agent_db", description="PostgreSQL DSN"
    )
    redis_url: str = Field("redis://localhost:6379/0", description="Redis URL (Redis >= 6.2 for LMOVE/BLMOVE)")
    tenant_id: str = Field(
        "default",
        pattern=TENANT_PATTERN.pattern,
        description="Whose fleet this is: prefixes its Redis keys and owns its tasks in PostgreSQL",
    )
    fleet_secret: SecretStr | None = Field(
        None,
        description="Shared by the orchestrator and its agents to sign and check assignments (32+ characters); "
        "scripts/start.sh generates it in .data/fleet/fleet-secret",
    )
    db_pool_min_size: int = Field(
        2, ge=1, description="Minimum asyncpg pool connections of an agent (the orchestrator opens DB_POOL_MAX_SIZE)"
    )
    db_pool_max_size: int = Field(
        20, ge=1, description="Maximum asyncpg pool connections; the orchestrator opens them all when it starts"
    )
    db_command_timeout_seconds: float = Field(60.0, gt=0, description="Timeout of one database command")

    # Scheduling
    max_retries: int = Field(3, ge=1, le=10, description="Attempts per subtask before it fails for good")
    max_queue_depth: int = Field(100, ge=1, description="Queued subtasks at which POST /tasks answers 429")
    max_pool_size: int = Field(16, ge=1, le=64, description="Most agents the registry accepts")
    heartbeat_interval_seconds: float = Field(10.0, gt=0, description="How often agents heartbeat")
    heartbeat_ttl_seconds: int = Field(60, ge=2, description="Agent registry entry lifetime without heartbeat")
    subtask_timeout_seconds: float = Field(300.0, gt=0, description="Wall-clock limit of one subtask attempt")
    shared_state_ttl_seconds: int = Field(3600, ge=1, description="Lifetime of task-scoped shared state")

    # Lifecycle events
    events_stream_maxlen: int = Field(
        10_000, ge=100, description="Events the tenant's stream keeps (roughly; older ones are trimmed)"
    )
    task_events_stream_maxlen: int = Field(2_000, ge=100, description="Events each task's own stream keeps")
    ended_task_events_ttl_seconds: int = Field(
        86_400, ge=60, description="How long a task's event stream is kept after the task ends"
    )
    sse_max_clients: int = Field(
        100,
        ge=1,
        le=10_000,
        description="Server-Sent Events clients one orchestrator serves at once (one Redis connection each, "
        "from a pool of their own); the next one gets 503",
    )
    sse_max_clients_per_key: int = Field(
        10,
        ge=1,
        le=10_000,
        description="Server-Sent Events streams one client key may hold at once, so one client cannot take every "
        "stream from the others; the next one gets 503 (operator keys, such as the dashboard's, only have "
        "SSE_MAX_CLIENTS)",
    )

    # Webhooks (POST /webhooks): lifecycle events POSTed to clients' endpoints
    webhook_allow_private: bool = Field(
        False,
        description="true = webhooks may point at loopback, private, link-local and other non-public addresses "
        "(a test receiver on this machine); false refuses them at registration and at each delivery",
    )
    webhook_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=120,
        description="Timeout of one webhook request, whole (connecting, sending, the answer's headers)",
    )
    webhook_max_attempts: int = Field(
        5, ge=1, le=20, description="Requests per event and webhook before a failing endpoint is given up on"
    )
    webhook_retry_backoff_seconds: float = Field(
        1.0, gt=0, le=60, description="Wait before a webhook's second attempt; it doubles for each next one"
    )
    webhook_concurrency: int = Field(
        16, ge=1, le=256, description="Webhook requests an orchestrator makes at once (and events it works on)"
    )
    webhook_claim_idle_seconds: float = Field(
        60.0,
        gt=0,
        description="An event a deliverer took and left untouched this long (it died) is taken over by another",
    )

    # Retention (orchestrator/retention.py)
    retention_days: int = Field(
        30,
        ge=0,
        le=36_500,
        description="Ended tasks older than this many days are removed with everything they left (rows, workspaces, "
        "artifacts, event streams); 0 keeps them forever",
    )
    retention_batch_size: int = Field(
        100, ge=1, le=10_000, description="Tasks the purge removes per transaction, so a backlog holds no long lock"
    )
    retention_interval_seconds: float = Field(
        600.0,
        gt=0,
        description="How often the purge looks for expired tasks and for leftovers of removed ones (folders, keys, "
        "audit rows)",
    )

    # Budgets (orchestrator/budgets.py)
    tenant_daily_budget_usd: float | None = Field(
        None,
        ge=0,
        description="What the tenant may spend per UTC day in USD; once spent, its running tasks pause and POST /tasks "
        "answers 429 until the next UTC midnight; unset or 0: no daily budget",
    )
    budget_resume_interval_seconds: float = Field(
        60.0,
        gt=0,
        description="How often tasks paused on the tenant's daily budget are resumed once it allows (a new UTC day, "
        "or a raised TENANT_DAILY_BUDGET_USD)",
    )

    # Orchestrator
    orchestrator_host: str = Field("0.0.0.0", description="Orchestrator bind address")
    orchestrator_port: int = Field(8000, ge=1, le=65535, description="Orchestrator port")
    orchestrator_url: str = Field(
        "http://localhost:8000", description="Orchestrator URL the dashboard and agents' coordination tools call"
    )
    orchestrator_api_key: SecretStr | None = Field(
        None,
        description="API key the dashboard sends the orchestrator; unset: the one scripts/start.sh keeps in "
        ".data/fleet/api-key",
    )
    orchestrator_instance_id: str = Field(
        "orchestrator", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Names this orchestrator's queue consumers"
    )
    result_concurrency: int = Field(4, ge=1, le=64, description="Results the orchestrator applies at once")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins whose browser pages may call the API (CORS); unset = none may",
    )
    recovery_interval_seconds: float = Field(5.0, gt=0, description="How often lost or stranded work is recovered")
    deadline_check_interval_seconds: float = Field(
        1.0,
        gt=0,
        le=3600,
        description="How often tasks past their deadline (deadline_seconds) are looked for, failed and their running "
        "attempts stopped: a task fails at most this long after its deadline",
    )
    idempotency_ttl_seconds: int = Field(
        86_400, ge=1, description="How long POST /tasks answers a repeated Idempotency-Key with the first answer"
    )
    idempotency_lease_seconds: float = Field(
        30.0,
        gt=0,
        description="An Idempotency-Key's claim while its task is planned, renewed by the orchestrator planning it: "
        "one that died frees the key after at most this long",
    )
    context_pack_max_bytes: int = Field(
        5_242_880, ge=1, le=104_857_600, description="POST /context-packs: most bytes of one pack's files together"
    )
    # At most 1000: the form parser (Starlette's) refuses a request with more file parts than that on its own.
    context_pack_max_files: int = Field(100, ge=1, le=1000, description="POST /context-packs: most files in one pack")
    task_type_dependencies: dict[TaskType, str] = Field(
        default_factory=dict,
        description='What a task type needs, as JSON: a capability or a health URL, e.g. {"DISCOVERY": '
        '"http://discovery:9000/health"}; its subtasks wait while no live agent has it or the URL does not answer 2xx',
    )
    dependency_probe_interval_seconds: float = Field(
        5.0, gt=0, description="How often the health URLs of TASK_TYPE_DEPENDENCIES are probed"
    )

    # The pool: agents the orchestrator starts itself (POST /pool/initialize, POST /agents)
    agent_launcher: Literal["native", "none"] = Field(
        "native",
        description="native = the orchestrator may start agent processes on this machine; none = it cannot "
        "(containers: start agents as services instead)",
    )
    default_pool_size: int = Field(
        4, ge=1, le=16, description="Agents POST /pool/initialize starts when no size is given"
    )
    fleet_pid_dir: str = Field(
        ".data/fleet/pids", description="Where started agents' pidfiles are kept (scripts/stop.sh stops them)"
    )
    fleet_log_dir: str = Field(".data/fleet/logs", description="Where the log files of started agents are written")
    agent_start_timeout_seconds: float = Field(
        60.0, gt=0, description="How long a started agent may take to register and answer its health check"
    )

    # Agent (one process per agent)
    agent_id: str = Field("agent1", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="This agent's identifier")
    agent_host: str = Field("0.0.0.0", description="Agent bind address")
    agent_port: int = Field(8001, ge=1, le=65535, description="Agent port, inside the agent port range")
    agent_public_url: str | None = Field(
        None,
        description="URL the orchestrator uses to reach this agent (default http://localhost:AGENT_PORT)",
    )
    agent_capabilities: Annotated[list[AgentCapability], NoDecode] = Field(
        default_factory=lambda: [AgentCapability.DATA_ANALYSIS],
        description="Comma-separated capabilities, e.g. DATA_ANALYSIS,CODE_GENERATION",
    )
    agent_concurrency: int = Field(1, ge=1, le=32, description="Subtasks one agent runs at once")
    agent_executor: Literal["sdk", "stub"] = Field("sdk", description="sdk = Claude Agent SDK, stub = no LLM")
    agent_port_min: int = Field(DEFAULT_AGENT_PORT_MIN, ge=1, description="Lowest port an agent may use")
    agent_port_max: int = Field(DEFAULT_AGENT_PORT_MAX, le=65535, description="Highest port an agent may use")
    sdk_permission_mode: Literal["default", "dontAsk", "acceptEdits"] = Field(
        "default", description="Claude Agent SDK permission mode (bypassPermissions is never allowed)"
    )
    shared_files_dir: str = Field("shared_files", description="Root of the per-task workspaces")
    artifacts_dir: str = Field(
        ".data/artifacts",
        description="Orchestrator: where it keeps a copy of each artifact's content (outside every agent's reach)",
    )
    agent_shutdown_grace_seconds: float = Field(
        20.0, ge=0, description="On SIGTERM, how long running subtasks may finish before they are reported retryable"
    )
    agent_result_publish_timeout_seconds: float = Field(
        60.0, gt=0, description="How long a finished subtask's result is retried while Redis is unreachable"
    )
    agent_stub_delay_seconds: float = Field(0.0, ge=0, description="Stub executor: seconds each subtask takes")
    agent_stub_fail_pattern: str | None = Field(
        None, description="Stub executor: regex; subtasks whose description matches it fail"
    )
    agent_stub_fail_retryable: bool = Field(False, description="Stub executor: whether those failures are retryable")
    agent_claude_config_root: str = Field(
        ".data/claude", description="Each agent's CLAUDE_CONFIG_DIR and XDG_RUNTIME_DIR live in <root>/<AGENT_ID>"
    )
    agent_cli_env: dict[str, str] = Field(
        default_factory=dict,
        description='Extra Claude Code CLI environment as JSON, e.g. {"API_TIMEOUT_MS": "120000"} (the CLI never '
        "retries on its own: CLAUDE_CODE_MAX_RETRIES is always 0)",
    )
    agent_warm_clis_per_role: int | None = Field(
        None,
        ge=0,
        le=32,
        description="SDK executor: CLIs kept started ahead of need per role the agent serves (default: "
        "AGENT_CONCURRENCY; 0 starts every attempt's CLI cold)",
    )
    agent_warm_cli_attempts: int = Field(
        20,
        ge=1,
        le=1000,
        description="SDK executor: attempts one warm CLI serves, each in a fresh session (/clear between), before it "
        "is replaced (1: every process serves one attempt)",
    )
    agent_warm_cli_wait_seconds: float = Field(
        5.0,
        ge=0,
        description="SDK executor: how long an attempt waits for a warm CLI that is starting before it starts one cold",
    )
    agent_data_url: str | None = Field(
        None,
        description=(
            "database_query's data source (never the orchestrator's database); default: database mats_data on "
            "POSTGRES_URL's server as the login role mats_reader"
        ),
    )
    agent_data_schema: str = Field(
        DEFAULT_DATA_SCHEMA,
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="The schema of the data source that its login role may read (and its search_path)",
    )
    agent_data_password: SecretStr | None = Field(
        None, description="Password of the data source's login role, when its URL carries none"
    )
    tenant_data_urls: dict[str, str] = Field(
        default_factory=dict,
        description='Per-tenant data sources as JSON, e.g. {"acme": "postgresql://acme_reader@db/acme"}; '
        "a tenant not listed uses AGENT_DATA_URL",
    )
    agent_data_connection_limit: int = Field(
        50, ge=1, le=10_000, description="Connection limit of the data source's login role (set by its provisioning)"
    )
    agent_query_row_cap: int = Field(200, ge=1, le=10_000, description="database_query: most rows returned")
    agent_query_max_bytes: int = Field(
        1_048_576, ge=1024, description="database_query: most bytes of JSON rows returned; the rest is cut off"
    )
    agent_query_timeout_ms: int = Field(5000, ge=100, description="database_query: statement_timeout")
    agent_file_max_bytes: int = Field(1_000_000, ge=1, description="read_file/write_file: largest file in bytes")
    agent_workspace_max_bytes: int = Field(
        26_214_400, ge=1, description="write_file: most bytes the files of one task's workspace may hold"
    )
    agent_workspace_max_files: int = Field(
        200, ge=1, description="write_file: most files one task's workspace may hold"
    )
    code_sandbox: Literal["bwrap", "off"] = Field(
        "bwrap",
        description="run_command's sandbox: bwrap (bubblewrap; the tool is not offered when it cannot start) or off",
    )
    code_sandbox_timeout_seconds: float = Field(
        30.0, gt=0, le=600, description="run_command: wall-clock seconds before the command's processes are killed"
    )
    code_sandbox_cpu_seconds: int = Field(
        20, ge=1, le=600, description="run_command: CPU seconds each process of the command may use (RLIMIT_CPU)"
    )
    code_sandbox_memory_bytes: int = Field(
        1_073_741_824,
        ge=67_108_864,
        description="run_command: address space each process of the command may map (RLIMIT_AS)",
    )
    code_sandbox_max_processes: int = Field(
        64, ge=1, le=4096, description="run_command: processes the command may run (RLIMIT_NPROC; see docs/security.md)"
    )
    code_sandbox_tmp_bytes: int = Field(
        67_108_864, ge=1_048_576, description="run_command: size of the command's private /tmp (a tmpfs)"
    )
    code_sandbox_output_bytes: int = Field(
        8000, ge=256, le=1_000_000, description="run_command: last bytes of stdout and of stderr returned to the model"
    )

    # Dashboard and logging
    streamlit_port: int = Field(8501, ge=1, le=65535, description="Dashboard port")
    streamlit_address: str = Field(
        "127.0.0.1",
        description="Address the dashboard listens on (and docker compose publishes it on). It acts with the fleet's "
        "API key for whoever reaches it: keep it local, or put your own sign-in in front before widening it",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level")
    log_json: bool | None = Field(None, description="true = JSON logs, false = console; unset = auto")

    @field_validator("agent_capabilities", mode="before")
    @classmethod
    def split_capabilities(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().upper() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("agent_capabilities")
    @classmethod
    def require_capabilities(cls, value: list[AgentCapability]) -> list[AgentCapability]:
        if not value:
            raise ValueError("at least one capability is required")
        return list(dict.fromkeys(value))

    @field_validator("anthropic_api_key")
    @classmethod
    def refuse_placeholder_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("is a template placeholder; set a real key or leave it unset for the simulator")
        return value

    @field_validator("tenant_data_urls")
    @classmethod
    def check_tenant_data_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for tenant, url in value.items():
            if not TENANT_PATTERN.fullmatch(tenant):
                raise ValueError(f"{tenant!r} is not a tenant id")
            if not url.startswith(("postgresql://", "postgres://")):
                raise ValueError(f"the data source of {tenant!r} is not a postgresql:// URL")
        return value

    @field_validator("task_type_dependencies")
    @classmethod
    def check_task_type_dependencies(cls, value: dict[TaskType, str]) -> dict[TaskType, str]:
        for task_type, needed in value.items():
            if needed not in AgentCapability.__members__ and not needed.startswith(("http://", "https://")):
                raise ValueError(
                    f"{task_type.value} needs {needed!r}, which is neither a capability "
                    f"({', '.join(AgentCapability)}) nor an http(s):// health URL"
                )
        return value

    @field_validator("agent_data_password")
    @classmethod
    def refuse_placeholder_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("is a template placeholder; set a real password or leave it unset")
        return value

    @field_validator("fleet_secret")
    @classmethod
    def refuse_weak_fleet_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value().strip()
        if secret.lower() in PLACEHOLDER_SECRETS:
            raise ValueError("is a template placeholder; scripts/start.sh generates a real one (docs/security.md)")
        if len(secret) < FLEET_SECRET_MIN_LENGTH:
            raise ValueError(
                f"is too short to sign with ({len(secret)} characters, at least {FLEET_SECRET_MIN_LENGTH}); "
                "generate one: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @model_validator(mode="after")
    def check_ranges(self) -> "Settings":
        if self.agent_port_min > self.agent_port_max:
            raise ValueError("AGENT_PORT_MIN must not exceed AGENT_PORT_MAX")
        if not self.agent_port_min <= self.agent_port <= self.agent_port_max:
            raise ValueError(f"AGENT_PORT {self.agent_port} is outside {self.agent_port_min}-{self.agent_port_max}")
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ValueError("DB_POOL_MIN_SIZE must not exceed DB_POOL_MAX_SIZE")
        if self.provider_backoff_base_seconds > self.provider_backoff_max_seconds:
            raise ValueError("PROVIDER_BACKOFF_BASE_SECONDS must not exceed PROVIDER_BACKOFF_MAX_SECONDS")
        if self.heartbeat_interval_seconds >= self.heartbeat_ttl_seconds:
            raise ValueError("HEARTBEAT_INTERVAL_SECONDS must be shorter than HEARTBEAT_TTL_SECONDS")
        return self

    @cached_property
    def agent_url(self) -> str:
        return self.agent_public_url or f"http://localhost:{self.agent_port}"

    def data_url_for(self, tenant_id: str) -> str:
        """The data source `database_query` reads for `tenant_id`: its own, AGENT_DATA_URL, or the default."""
        if tenant_id in self.tenant_data_urls:
            return self.tenant_data_urls[tenant_id]
        if self.agent_data_url:
            return self.agent_data_url
        server = urlsplit(self.postgres_url)
        address = server.hostname or "localhost"
        if ":" in address:  # an IPv6 literal
            address = f"[{address}]"
        port = f":{server.port}" if server.port else ""
        return f"postgresql://{DEFAULT_DATA_ROLE}@{address}{port}/{DEFAULT_DATA_DATABASE}"

    @property
    def agent_port_range(self) -> tuple[int, int]:
        return (self.agent_port_min, self.agent_port_max)

    def as_environment(self) -> dict[str, str]:
        """The environment variables that give another process these very settings (unset ones left out)."""
        environment = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, list):
                text = ",".join(str(item) for item in value)
            elif isinstance(value, dict):
                text = json.dumps(value)
            else:
                text = str(value)
            environment[name.upper()] = text
        return environment


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad setting as its environment variable, e.g. `AGENT_PORT: ...`."""
    problems = []
    for item in error.errors():
        name = "_".join(str(part) for part in item["loc"] if isinstance(part, str)).upper()
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{name}: {message}" if name else message)
    return "invalid configuration: " + "; ".join(problems)


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, or stop the process with one clear line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigurationError(describe_validation_error(error)) from None
