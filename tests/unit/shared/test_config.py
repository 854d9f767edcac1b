"""Settings come from the environment with the seed's defaults; a bad value stops start-up with one clear line."""

from pathlib import Path

import pytest

from shared.config import ConfigurationError, Settings, load_settings
from shared.models import AgentCapability


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting comes from the machine running the tests (the test suite itself sets POSTGRES_URL)."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def configuration_error(monkeypatch: pytest.MonkeyPatch, **environment: str) -> str:
    """The message `load_settings()` stops with when the environment holds these variables."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as stopped:
        load_settings(_env_file=None)
    assert isinstance(stopped.value, SystemExit)
    message = str(stopped.value.code)
    assert "\n" not in message
    return message


def test_defaults_are_the_seeds() -> None:
    settings = load_settings(_env_file=None)

    assert settings.postgres_url == "postgresql://postgres:postgres@localhost:5432/multi_agent_db"
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.max_retries == 3
    assert settings.max_queue_depth == 100
    assert settings.heartbeat_interval_seconds == 10
    assert settings.heartbeat_ttl_seconds == 60
    assert (settings.db_pool_min_size, settings.db_pool_max_size) == (2, 20)
    assert settings.agent_port_range == (8001, 8016)
    assert settings.agent_capabilities == [AgentCapability.DATA_ANALYSIS]
    assert settings.anthropic_api_key is None


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_RETRIES", "5")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/2")

    settings = load_settings(_env_file=None)

    assert (settings.max_retries, settings.redis_url) == (5, "redis://cache:6379/2")


def test_capabilities_are_comma_separated_and_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_CAPABILITIES", "data_analysis, CODE_GENERATION,,data_analysis ")

    settings = load_settings(_env_file=None)

    assert settings.agent_capabilities == [AgentCapability.DATA_ANALYSIS, AgentCapability.CODE_GENERATION]


def test_custom_agent_port_range_accepts_a_port_inside_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_PORT_MIN", "9000")
    monkeypatch.setenv("AGENT_PORT_MAX", "9010")
    monkeypatch.setenv("AGENT_PORT", "9010")

    settings = load_settings(_env_file=None)

    assert (settings.agent_port, settings.agent_port_range) == (9010, (9000, 9010))
    assert settings.agent_url == "http://localhost:9010"


@pytest.mark.parametrize(
    ("environment", "variable"),
    [
        ({"AGENT_CAPABILITIES": "DATA_ANALYSIS,TELEPATHY"}, "AGENT_CAPABILITIES"),
        ({"AGENT_CAPABILITIES": " , "}, "AGENT_CAPABILITIES"),
        ({"AGENT_PORT": "8017"}, "AGENT_PORT"),
        ({"AGENT_PORT": "8000"}, "AGENT_PORT"),
        ({"AGENT_PORT_MIN": "9000", "AGENT_PORT_MAX": "9010", "AGENT_PORT": "8001"}, "AGENT_PORT"),
        ({"ANTHROPIC_API_KEY": "changeme"}, "ANTHROPIC_API_KEY"),
        ({"ANTHROPIC_API_KEY": " YOUR-API-KEY "}, "ANTHROPIC_API_KEY"),
        ({"MAX_RETRIES": "three"}, "MAX_RETRIES"),
        ({"MAX_QUEUE_DEPTH": "0"}, "MAX_QUEUE_DEPTH"),
        ({"HEARTBEAT_INTERVAL_SECONDS": "60"}, "HEARTBEAT_INTERVAL_SECONDS"),
        ({"DB_POOL_MIN_SIZE": "30"}, "DB_POOL_MIN_SIZE"),
        ({"TENANT_ID": "Not A Tenant"}, "TENANT_ID"),
        ({"SDK_PERMISSION_MODE": "bypassPermissions"}, "SDK_PERMISSION_MODE"),
        ({"CONTEXT_PACK_MAX_FILES": "1001"}, "CONTEXT_PACK_MAX_FILES"),
    ],
    ids=[
        "unknown-capability",
        "no-capability",
        "port-above-range",
        "port-below-range",
        "port-outside-custom-range",
        "placeholder-key",
        "placeholder-key-any-case",
        "non-numeric-retries",
        "zero-queue-depth",
        "heartbeat-not-shorter-than-ttl",
        "pool-min-above-max",
        "bad-tenant",
        "bypass-permissions",
        "more-pack-files-than-the-form-parser-takes",
    ],
)
def test_invalid_setting_stops_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], variable: str
) -> None:
    message = configuration_error(monkeypatch, **environment)

    assert variable in message
    assert message.startswith("invalid configuration: ")


def test_every_bad_setting_is_named_in_the_same_line(monkeypatch: pytest.MonkeyPatch) -> None:
    message = configuration_error(monkeypatch, MAX_RETRIES="0", AGENT_CAPABILITIES="TELEPATHY")

    assert "MAX_RETRIES" in message
    assert "AGENT_CAPABILITIES" in message


def test_api_key_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-real-looking-secret")

    settings = load_settings(_env_file=None)

    assert settings.anthropic_api_key is not None
    assert settings.anthropic_api_key.get_secret_value() == "sk-ant-api03-real-looking-secret"
    for rendering in (repr(settings), str(settings), settings.model_dump_json()):
        assert "real-looking-secret" not in rendering


def test_blank_api_key_means_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "   ")

    assert load_settings(_env_file=None).anthropic_api_key is None


def test_env_file_is_read_when_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MAX_QUEUE_DEPTH=7\nAGENT_PORT=8009\n")
    monkeypatch.setenv("AGENT_PORT", "8010")  # the environment wins over the file

    settings = load_settings(_env_file=env_file)

    assert (settings.max_queue_depth, settings.agent_port) == (7, 8010)


def test_pool_settings_default_to_a_native_launcher_and_the_fleet_s_folders() -> None:
    settings = load_settings(_env_file=None)

    assert (settings.agent_launcher, settings.default_pool_size) == ("native", 4)
    assert (settings.fleet_pid_dir, settings.fleet_log_dir) == (".data/fleet/pids", ".data/fleet/logs")


def test_as_environment_gives_another_process_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(
        _env_file=None,
        fleet_secret="a-fleet-secret-of-enough-characters-0123",
        agent_capabilities=[AgentCapability.WEB_SCRAPING, AgentCapability.API_INTEGRATION],
        agent_cli_env={"CLAUDE_CODE_MAX_RETRIES": "0"},
        cors_origins=["http://a.example", "http://b.example"],
        claude_simulated=True,
        log_json=False,
        tenant_id="acme",
    )

    environment = settings.as_environment()
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    assert "ANTHROPIC_API_KEY" not in environment  # unset stays unset
    assert load_settings(_env_file=None) == settings
