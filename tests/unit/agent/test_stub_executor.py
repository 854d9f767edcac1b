"""The stub executor: deterministic output naming the subtask, failures chosen by a regex, its delay."""

import asyncio
import json

import pytest

from agent.executors import StubExecutor
from shared.config import ConfigurationError
from shared.models import AgentCapability
from shared.roles import load_roles
from tests.unit.agent.fixtures import RequestFactory, SettingsFactory

ROLE = load_roles()[AgentCapability.DATA_ANALYSIS]


async def test_output_is_deterministic_and_names_the_subtask(execution_request: RequestFactory) -> None:
    request = execution_request(
        "Count the widgets",
        task_context={"dependency_outputs": [{"subtask_id": "subtask_before", "output": "42 widgets"}]},
    )
    first = await StubExecutor().execute(request, ROLE)
    second = await StubExecutor().execute(request, ROLE)

    assert first == second
    assert first.succeeded and first.output is not None
    output = json.loads(first.output)
    assert output["subtask_id"] == request.subtask.id
    assert "Count the widgets" in output["summary"]
    assert output["dependencies"] == ["subtask_before"]
    assert output["role"] == ROLE.role.name


@pytest.mark.parametrize("retryable", [True, False])
async def test_matching_descriptions_fail_with_the_configured_retryable_flag(
    execution_request: RequestFactory, retryable: bool
) -> None:
    stub = StubExecutor(fail_pattern=r"(?i)\bexplode\b", fail_retryable=retryable)

    failed = await stub.execute(execution_request("Please EXPLODE now"), ROLE)
    passed = await stub.execute(execution_request("Please explain now"), ROLE)

    assert not failed.succeeded
    assert failed.retryable is retryable
    assert failed.error is not None and "explode" in failed.error
    assert passed.succeeded


async def test_the_delay_keeps_the_attempt_running(execution_request: RequestFactory) -> None:
    attempt = asyncio.create_task(StubExecutor(delay_seconds=30).execute(execution_request(), ROLE))
    await asyncio.sleep(0.05)
    assert not attempt.done()
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt


def test_settings_configure_it_and_a_bad_regex_stops_the_agent(agent_settings_factory: SettingsFactory) -> None:
    stub = StubExecutor.from_settings(agent_settings_factory(agent_stub_fail_pattern="boom"))
    assert stub.name == "stub"
    with pytest.raises(ConfigurationError, match="AGENT_STUB_FAIL_PATTERN"):
        StubExecutor.from_settings(agent_settings_factory(agent_stub_fail_pattern="(unclosed"))
