"""How the SDK executor sets up the CLI and reads what it reports; the CLI itself runs in tests/integration/agent."""

from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import ResultError, ResultMessage
from pydantic import SecretStr

from agent.executors import SdkExecutor
from agent.executors.outcomes import failure_from_error, is_retryable, outcome_from_result, provider_wait
from agent.executors.provider_signals import RetryAfterWatch
from agent.executors.sdk import cli_environment
from agent.tools import Workspace
from agent.tools.data_source import DataSourcePool
from shared.attempt_prompt import build_prompt
from shared.config import ConfigurationError
from shared.database import DatabaseManager
from shared.models import AgentCapability, TokenUsage
from shared.redis_manager import RedisManager
from shared.roles import load_roles
from tests.unit.agent.fixtures import RequestFactory, SettingsFactory

ROLES = load_roles()


def result_message(**fields: Any) -> ResultMessage:
    values: dict[str, Any] = {
        "subtype": "success",
        "duration_ms": 900,
        "duration_api_ms": 300,
        "is_error": False,
        "num_turns": 2,
        "session_id": "session",
        "total_cost_usd": 0.0123,
        "usage": {"input_tokens": 1200, "output_tokens": 80, "cache_read_input_tokens": 5, "server_tool_use": {}},
        "result": "factorial_10 = 3628800",
    }
    return ResultMessage(**{**values, **fields})


def test_options_follow_the_role_and_never_bypass_permissions(
    agent_settings_factory: SettingsFactory,
    db: DatabaseManager,
    agent_redis: RedisManager,
    agent_data_source: DataSourcePool,
    execution_request: RequestFactory,
) -> None:
    settings = agent_settings_factory(
        agent_executor="sdk",
        anthropic_base_url="http://127.0.0.1:9",
        sdk_permission_mode="dontAsk",
        agent_cli_env={"CLAUDE_CODE_MAX_RETRIES": "10", "API_TIMEOUT_MS": "5000"},
    )
    role = ROLES[AgentCapability.DATABASE_OPERATIONS]
    request = execution_request(required_capabilities=[AgentCapability.DATABASE_OPERATIONS])
    workspace = Workspace(settings.shared_files_dir, request.task_id, "token-of-the-offer")
    executor = SdkExecutor(settings, db, agent_redis, agent_data_source)

    options = executor.options(request, role, workspace)

    assert options.tools == []
    assert options.allowed_tools == [f"mcp__agent__{name}" for name in role.role.allowed_tools]
    assert list(options.mcp_servers) == ["agent"]  # type: ignore[arg-type]
    assert options.permission_mode == "dontAsk"
    assert options.setting_sources == []
    assert options.model == settings.claude_model
    assert (options.max_turns, options.max_budget_usd) == (role.role.max_turns, role.role.max_budget_usd)
    assert options.cwd == workspace.root
    assert options.system_prompt is not None and role.role.system_prompt.strip() in str(options.system_prompt)
    assert settings.agent_id in str(options.system_prompt)
    config_dir = Path(settings.agent_claude_config_root).resolve() / settings.agent_id
    assert options.env == {
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
        "ANTHROPIC_API_KEY": "offline-simulator",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CONFIG_DIR": str(config_dir),
        "XDG_RUNTIME_DIR": str(config_dir / "run"),
        "CLAUDE_CODE_MAX_OUTPUT_TOKENS": str(role.role.max_output_tokens),
        "ANTHROPIC_LOG": "debug",  # the response headers (retry-after) on the CLI's stderr
        "API_TIMEOUT_MS": "5000",
        # The fleet decides when a call the provider could not serve is tried again, whatever AGENT_CLI_ENV says.
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }
    assert options.extra_args == {"debug-to-stderr": None}
    assert (config_dir / "run").is_dir()


def test_a_real_key_is_passed_and_a_missing_claude_stops_the_agent(
    agent_settings_factory: SettingsFactory,
    db: DatabaseManager,
    agent_redis: RedisManager,
    agent_data_source: DataSourcePool,
) -> None:
    keyed = agent_settings_factory(agent_executor="sdk", anthropic_api_key=SecretStr("sk-ant-real-looking"))
    executor = SdkExecutor(keyed, db, agent_redis, agent_data_source)
    role = ROLES[AgentCapability.DATA_ANALYSIS]

    env = cli_environment(keyed, executor.config_dir, role)
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-real-looking"
    assert "ANTHROPIC_BASE_URL" not in env
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        SdkExecutor(agent_settings_factory(agent_executor="sdk"), db, agent_redis, agent_data_source)


def test_the_prompt_holds_the_subtask_its_task_its_dependencies_and_the_workspace(
    execution_request: RequestFactory, tmp_path: Path
) -> None:
    request = execution_request(
        "Analyse the quarterly sales figures",
        dependencies=["subtask_fetch"],
        task_context={
            "task_description": "Build the quarterly sales report",
            "dependency_outputs": [{"subtask_id": "subtask_fetch", "output": "Q1=120000 Q2=135000"}],
        },
    )
    prompt = build_prompt(request, tmp_path / "task")

    for expected in (
        request.subtask.id,
        "Analyse the quarterly sales figures",
        "Build the quarterly sales report",
        "subtask_fetch",
        "Q1=120000 Q2=135000",
        str(tmp_path / "task" / "output"),
    ):
        assert expected in prompt


def test_a_successful_result_gives_output_usage_cost_and_turns() -> None:
    outcome = outcome_from_result(result_message())
    assert outcome.succeeded
    assert outcome.output == "factorial_10 = 3628800"
    assert outcome.token_usage == TokenUsage(input_tokens=1200, output_tokens=80, cache_read_input_tokens=5)
    assert (outcome.cost_usd, outcome.num_turns) == (0.0123, 2)


@pytest.mark.parametrize(
    ("status", "subtype", "retryable"),
    [
        (429, "success", True),
        (529, "success", True),
        (500, "success", True),
        (503, "success", True),
        (408, "success", True),
        (400, "success", False),
        (401, "success", False),
        (403, "success", False),
        (None, "success", True),  # lost connection or timeout: no status
        (None, "error_during_execution", True),
        (None, "error_max_turns", False),
        (None, "error_max_budget_usd", False),
    ],
)
def test_errors_are_retryable_when_another_attempt_may_pass(status: int | None, subtype: str, retryable: bool) -> None:
    assert is_retryable(status, subtype) is retryable


def test_a_raised_result_error_keeps_the_usage_reported_before_it() -> None:
    reported = result_message(is_error=True, api_error_status=529, result="API Error: 529 overloaded", num_turns=1)
    error = ResultError(
        "Claude Code returned an error result: API Error: 529 overloaded",
        data={"subtype": "success", "api_error_status": 529, "result": "API Error: 529 overloaded"},
        exit_code=1,
    )
    outcome = failure_from_error(error, reported, status=error.api_error_status, subtype=error.subtype)

    assert not outcome.succeeded
    assert outcome.retryable
    assert outcome.error == "API Error: 529 overloaded"
    assert outcome.num_turns == 1
    assert outcome.token_usage.input_tokens == 1200


@pytest.mark.parametrize(
    ("status", "text", "kind"),
    [
        (429, "API Error: Request rejected (429) · slow down", "rate_limited"),
        (529, "API Error: 529 overloaded", "overloaded"),
        (500, "API Error: 500 internal error", "server_error"),
        (503, "API Error: 503 unavailable", "server_error"),
        (408, "API Error: 408 request timeout", "timeout"),
        (None, "API Error: Connection refused (ECONNREFUSED)", "connection"),
        (None, "API Error: Request timed out.", "timeout"),
        (400, "API Error: 400 invalid request", None),
        (401, "Failed to authenticate. API Error: 401 bad key", None),
        (403, "API Error: 403 forbidden", None),
    ],
)
def test_the_provider_failing_to_serve_a_call_is_a_wait_and_a_refused_request_a_failure(
    status: int | None, text: str, kind: str | None
) -> None:
    wait = provider_wait(status, "api_error", text, retry_after=7)
    assert (wait.kind if wait else None) == kind
    if wait is not None:
        assert wait.retry_after_seconds == 7


def test_a_run_that_did_not_end_on_an_api_error_never_waits_on_the_provider() -> None:
    # The CLI died or a role's limit stopped it: no status, and no api_error ending.
    assert provider_wait(None, None, "the CLI exited") is None
    assert provider_wait(None, "max_turns", "error_max_turns") is None


def test_a_raised_429_waits_with_the_retry_after_the_cli_logged() -> None:
    watch = RetryAfterWatch()
    for line in ["  status: 429,", "  headers: {", '    "retry-after": "7",', '    server: "uvicorn",']:
        watch(line)
    text = "API Error: Request rejected (429) · slow down"
    error = ResultError(
        f"Claude Code returned an error result: {text}",
        data={"subtype": "success", "api_error_status": 429, "terminal_reason": "api_error", "result": text},
        exit_code=1,
    )
    outcome = failure_from_error(
        error,
        None,
        status=error.api_error_status,
        subtype=error.subtype,
        terminal_reason=error.terminal_reason,
        retry_after=watch.retry_after,
    )
    assert outcome.provider_wait is not None
    assert (outcome.provider_wait.kind, outcome.provider_wait.retry_after_seconds) == ("rate_limited", 7.0)
    assert "429" in (outcome.error or "")


def test_an_error_result_without_an_exception_is_still_a_failure() -> None:
    outcome = outcome_from_result(result_message(is_error=True, subtype="error_max_turns", result=None, errors=[]))
    assert not outcome.succeeded
    assert not outcome.retryable
    assert outcome.limit_reached == "max_turns"
    assert outcome.error == "the role's max_turns cap stopped the attempt: error_max_turns"
