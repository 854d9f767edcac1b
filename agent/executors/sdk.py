"""The Claude Agent SDK executor: each attempt runs in a CLI of the role (the role's prompt, tools and model) with
no built-in tools, no settings files and only an in-process MCP server serving this attempt's workspace.

The CLI is a warm one from the pool (agent/executors/warm_pool.py: started ahead of need, each attempt in a fresh
session) when one is ready, else one started cold for the attempt with a fresh `query()`. Nothing of an earlier
attempt is in any request of a later one either way.
"""

import time
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path

import structlog
from claude_agent_sdk import (
    ClaudeAgentOptions,
    ClaudeSDKError,
    Message,
    ResultError,
    ResultMessage,
    SystemMessage,
    query,
)

from agent.context_pack_loader import ContextPackUnavailable, prepare_context_pack
from agent.executors.base import ExecutionOutcome
from agent.executors.outcomes import RoleCaps, failure_from_error, outcome_from_result
from agent.executors.prompt import context_pack_section
from agent.executors.provider_signals import HEADER_LOG_ARGS, HEADER_LOG_ENV, RetryAfterWatch
from agent.executors.turn_usage import TurnUsage
from agent.executors.warm_pool import WarmCli, WarmCliPool
from agent.tools import MCP_SERVER_NAME, ToolBinding, ToolContext, Workspace, build_tool_server, qualified_tool_name
from agent.tools.data_source import DataSourcePool
from shared.attempt_prompt import build_prompt
from shared.config import ConfigurationError, Settings
from shared.database import DatabaseManager
from shared.models import ProviderWait, TaskExecutionRequest, TokenUsage
from shared.provider_limits import CHARACTERS_PER_TOKEN, ProviderLimiter
from shared.redis_manager import RedisManager
from shared.roles import LoadedRole

log = structlog.get_logger(__name__)

# The simulator and other Claude-compatible servers accept any key; the CLI refuses to start without one.
PLACEHOLDER_API_KEY = "offline-simulator"
# What an attempt is charged against the fleet's limiter when its role sets no output cap.
DEFAULT_OUTPUT_TOKENS_ESTIMATE = 4096


def cli_environment(settings: Settings, config_dir: Path, role: LoadedRole) -> dict[str, str]:
    """The CLI's environment: where Claude is, a private config dir, no traffic beyond the API, the role's limits,
    and no retries of its own: the fleet decides when a call the provider could not serve is tried again."""
    api_key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else PLACEHOLDER_API_KEY
    env = {
        "ANTHROPIC_API_KEY": api_key,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        **HEADER_LOG_ENV,
        "CLAUDE_CONFIG_DIR": str(config_dir),
        "XDG_RUNTIME_DIR": str(config_dir / "run"),
    }
    if settings.anthropic_base_url:
        env["ANTHROPIC_BASE_URL"] = settings.anthropic_base_url
    if role.role.max_output_tokens:
        env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(role.role.max_output_tokens)
    return env | settings.agent_cli_env | {"CLAUDE_CODE_MAX_RETRIES": "0"}  # not for AGENT_CLI_ENV to change


def require_claude_access(settings: Settings) -> None:
    """Stop the agent at start-up when the SDK executor has no way to reach Claude."""
    if settings.anthropic_api_key is None and settings.anthropic_base_url is None:
        raise ConfigurationError(
            "invalid configuration: AGENT_EXECUTOR=sdk needs ANTHROPIC_API_KEY, or ANTHROPIC_BASE_URL (the simulator)"
        )


class SdkExecutor:
    name = "sdk"

    def __init__(
        self, settings: Settings, db: DatabaseManager, redis: RedisManager, data_source: DataSourcePool
    ) -> None:
        require_claude_access(settings)
        self._settings = settings
        self._db = db
        self._redis = redis
        self._data_source = data_source
        self._limiter = ProviderLimiter(redis.client, redis.keys, settings.provider_limits)
        # The CLI writes its state (.claude.json, transcripts) here and makes its socket in `run/`: one per agent.
        self.config_dir = Path(settings.agent_claude_config_root).resolve() / settings.agent_id
        (self.config_dir / "run").mkdir(parents=True, exist_ok=True, mode=0o700)
        # Where warm CLIs run: an empty folder of the agent's. The CLI has no built-in tools, so its cwd is only
        # text in its reminders; the MCP tools resolve every path in the bound attempt's workspace themselves.
        self.neutral_cwd = self.config_dir / "cwd"
        self.neutral_cwd.mkdir(exist_ok=True, mode=0o700)
        per_role = settings.agent_warm_clis_per_role
        per_role = settings.agent_concurrency if per_role is None else per_role
        self.warm_pool = (
            WarmCliPool(
                self.warm_options,
                per_role=per_role,
                attempts_per_cli=settings.agent_warm_cli_attempts,
                wait_seconds=settings.agent_warm_cli_wait_seconds,
            )
            if per_role > 0
            else None
        )

    async def start(self, roles: Iterable[LoadedRole]) -> None:
        """Start warming a CLI per role and slot (in the background)."""
        if self.warm_pool is not None:
            self.warm_pool.start(roles)

    async def close(self) -> None:
        """Stop every warm CLI; no CLI of this executor runs after it returns."""
        if self.warm_pool is not None:
            await self.warm_pool.close()

    async def execute(self, request: TaskExecutionRequest, role: LoadedRole) -> ExecutionOutcome:
        token = request.subtask.delivery_token
        assert token is not None  # only accepted offers run, and every offer has its token (agent/offers.py)
        workspace = Workspace(self._settings.shared_files_dir, request.task_id, token)
        workspace.create()
        try:
            pack = await prepare_context_pack(self._db, self._settings.shared_files_dir, request)
        except ContextPackUnavailable as error:
            # No other agent would find the pack either: failed for good, with what became of it.
            log.warning("context_pack_unavailable", error=str(error))
            return ExecutionOutcome.failure(str(error), retryable=False)
        prompt = build_prompt(request, workspace.root, context_pack_section(pack) if pack else None)
        outcome = await self._run_admitted(prompt, self.tool_context(request, workspace), role)
        return replace(outcome, claude_config_dir=str(self.config_dir))

    async def _run_admitted(self, prompt: str, context: ToolContext, role: LoadedRole) -> ExecutionOutcome:
        """The query, once the fleet's limiter lets it start (a longer wait hands the attempt back to wait on the
        queue instead of holding the slot); what it used and what the provider said feed the limiter."""
        model = role.role.model or self._settings.claude_model
        estimate = (role.role.max_output_tokens or DEFAULT_OUTPUT_TOKENS_ESTIMATE) + len(prompt) // CHARACTERS_PER_TOKEN
        held = await self._limiter.admit(model, estimate)
        if held:
            log.info("attempt_held_by_provider_limit", model=model, wait_s=round(held, 2))
            wait = ProviderWait(kind="rate_limited", retry_after_seconds=held)
            return ExecutionOutcome.waiting(f"the fleet's limit for {model} is reached for {held:.1f} s", wait)
        caps = RoleCaps(role.role.max_turns, role.role.max_budget_usd, role.role.max_output_tokens)
        outcome = await self._run(prompt, context, role, caps)
        usage = outcome.token_usage
        await self._limiter.charge(model, usage.input_tokens + usage.output_tokens - estimate)
        if outcome.provider_wait is not None:
            await self._limiter.refused(model, outcome.provider_wait, self._settings.provider_backoff_base_seconds)
        return outcome

    async def _run(self, prompt: str, context: ToolContext, role: LoadedRole, caps: RoleCaps) -> ExecutionOutcome:
        """On a warm CLI of the role when the pool has one (waiting a little for one starting), else cold."""
        pool = self.warm_pool
        waited = time.monotonic()
        cli = await pool.take(role) if pool is not None else None
        if pool is None or cli is None:
            if pool is not None:
                log.info("warm_cli_unavailable", role=role.role.name, waited_s=round(time.monotonic() - waited, 3))
            return await run_query(prompt, self.role_options(role, context, context.workspace.root), caps)
        waited = time.monotonic() - waited
        cli.binding.bind(context)
        result = None
        try:
            outcome, result = await run_on_warm_cli(cli, prompt, caps)
            if outcome is not None:
                cli.served(outcome.claude_session_id)
        finally:
            # Reused only when the attempt ended in a result (the CLI is back at its prompt); a cancelled or
            # broken run takes its CLI with it.
            pool.give_back(cli, reusable=result is not None)
        if outcome is None:
            log.warning("warm_cli_lost_at_start", pid=cli.pid)
            return await run_query(prompt, self.role_options(role, context, context.workspace.root), caps)
        log.info("warm_cli_served", pid=cli.pid, attempts=cli.attempts, session_id=outcome.claude_session_id)
        return replace(outcome, timings={**outcome.timings, "warm_cli_wait_seconds": round(waited, 4)})

    def tool_context(self, request: TaskExecutionRequest, workspace: Workspace) -> ToolContext:
        settings = self._settings
        return ToolContext(
            settings=settings,
            db=self._db,
            redis=self._redis,
            data_source=self._data_source,
            workspace=workspace,
            agent_id=settings.agent_id,
            task_id=request.task_id,
            subtask_id=request.subtask.id,
            attempt=request.subtask.attempt_count,
            delivery_token=request.subtask.delivery_token,
            assignment=request.assignment,
            trace_id=request.subtask.trace_id,
        )

    def options(self, request: TaskExecutionRequest, role: LoadedRole, workspace: Workspace) -> ClaudeAgentOptions:
        """A cold CLI's options: the role's, serving this attempt, in its workspace."""
        return self.role_options(role, self.tool_context(request, workspace), workspace.root)

    def warm_options(self, role: LoadedRole, binding: ToolBinding, watch: RetryAfterWatch) -> ClaudeAgentOptions:
        """A warm CLI's options: the role's, serving whichever attempt `binding` holds, in the neutral folder."""
        return replace(self.role_options(role, binding, self.neutral_cwd), stderr=watch)

    def role_options(self, role: LoadedRole, tools: ToolContext | ToolBinding, cwd: Path) -> ClaudeAgentOptions:
        settings = self._settings
        tool_names = list(role.role.allowed_tools)
        return ClaudeAgentOptions(
            model=role.role.model or settings.claude_model,
            system_prompt=f"{role.role.system_prompt.strip()}\n\nYou are agent {settings.agent_id}.",
            tools=[],
            allowed_tools=[qualified_tool_name(name) for name in tool_names],
            mcp_servers={MCP_SERVER_NAME: build_tool_server(tools, tool_names)} if tool_names else {},
            strict_mcp_config=True,
            permission_mode=settings.sdk_permission_mode,
            max_turns=role.role.max_turns,
            max_budget_usd=role.role.max_budget_usd,
            cwd=cwd,
            setting_sources=[],
            env=cli_environment(settings, self.config_dir, role),
            extra_args=dict(HEADER_LOG_ARGS),
        )


async def run_query(prompt: str, options: ClaudeAgentOptions, caps: RoleCaps | None = None) -> ExecutionOutcome:
    """Run one `query()` on a CLI started for it, to its end; see `collect_outcome`."""
    watch = RetryAfterWatch()
    started = time.monotonic()
    # aclosing: a cancelled attempt (timeout, shutdown) closes the query, which stops the CLI process.
    async with aclosing(query(prompt=prompt, options=replace(options, stderr=watch))) as messages:  # type: ignore[type-var]
        outcome, _ = await collect_outcome(messages, watch, caps, started)
    return outcome


async def run_on_warm_cli(
    cli: WarmCli, prompt: str, caps: RoleCaps | None = None
) -> tuple[ExecutionOutcome | None, ResultMessage | None]:
    """Send the attempt's prompt to a warm CLI and collect its answer, with the result when the run ended in one;
    (None, None) when the CLI was gone before it said anything (it died waiting, and the pool's check came before
    its exit was seen): it never called the model, so the attempt may start afresh."""
    cli.watch.reset()
    started = time.monotonic()
    try:
        await cli.client.query(prompt)
    except ClaudeSDKError:
        return None, None
    async with aclosing(cli.client.receive_response()) as messages:  # type: ignore[type-var]
        outcome, result = await collect_outcome(messages, cli.watch, caps, started)
    # Every run's first message is the session's init: without a session the CLI ended before it.
    if result is None and outcome.claude_session_id is None:
        return None, None
    return outcome, result


async def collect_outcome(
    messages: AsyncIterator[Message], watch: RetryAfterWatch, caps: RoleCaps | None, started: float
) -> tuple[ExecutionOutcome, ResultMessage | None]:
    """Read a query's messages to its result; API and CLI failures become a failed outcome with a retryable flag
    (none when one of the role's `caps` stopped it), or one waiting on the provider, and each model call it made is
    in the outcome. The result message comes back too, when there was one."""
    result: ResultMessage | None = None
    session_id: str | None = None
    turns = TurnUsage()
    first_message_at: float | None = None
    try:
        async for message in messages:
            first_message_at = first_message_at or time.monotonic()
            session_id = session_id or message_session_id(message)
            turns.observe(message)
            if isinstance(message, ResultMessage):
                result = message
    except ResultError as error:
        outcome = failure_from_error(
            error,
            result,
            status=error.api_error_status,
            subtype=error.subtype,
            caps=caps,
            terminal_reason=error.terminal_reason,
            retry_after=watch.retry_after,
        )
        return with_calls(replace(outcome, claude_session_id=session_id), turns, result), None
    except ClaudeSDKError as error:  # the CLI did not start, died, or wrote something unreadable
        log.warning("claude_cli_failed", error=str(error))
        outcome = failure_from_error(error, result, status=None, subtype=None)
        return with_calls(replace(outcome, claude_session_id=session_id), turns, result), None
    if result is None:
        outcome = ExecutionOutcome.failure("the Claude Code CLI ended without a result", retryable=True)
        return with_calls(replace(outcome, claude_session_id=session_id), turns, result), None
    timings = cli_timings(started, first_message_at, result)
    outcome = replace(outcome_from_result(result, caps, watch.retry_after), timings=timings)
    return with_calls(replace(outcome, claude_session_id=session_id or result.session_id), turns, result), result


def with_calls(outcome: ExecutionOutcome, turns: TurnUsage, result: ResultMessage | None) -> ExecutionOutcome:
    """The outcome with each model call it made; its usage is then theirs, so the calls add up to the attempt."""
    calls = turns.calls(result)
    if not calls:
        return outcome
    return replace(outcome, model_calls=calls, token_usage=sum((call.usage for call in calls), TokenUsage()))


def message_session_id(message: object) -> str | None:
    """The Claude session a message of the CLI belongs to: the init message's `data`, or a field of the others."""
    if isinstance(message, SystemMessage):
        found = message.data.get("session_id")
        return found if isinstance(found, str) and found else None
    found = getattr(message, "session_id", None)
    return found if isinstance(found, str) and found else None


def cli_timings(started: float, first_message_at: float | None, result: ResultMessage) -> dict[str, float]:
    """The CLI's start-up (until its first message, the session's init) and its time waiting on the model."""
    timings = {"model_api_seconds": max(result.duration_api_ms, 0) / 1000}
    if first_message_at is not None:
        timings["cli_startup_seconds"] = round(first_message_at - started, 4)
    return timings
