"""An attempt whose task names a context pack: the agent loads the pack from its tenant's database into the task's
workspace and prompt, the model reads a pack file with read_file (the real SDK CLI against the simulator), and a
pack that vanished after submit fails the attempt for good with an error naming the pack."""

import stat
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.context_packs import ContextManifest, PackFile
from shared.database import DatabaseManager, Repositories
from shared.fleet_trust import FleetTrust
from shared.models import ContextPackRef, ResultStatus, TaskExecutionRequest
from shared.redis_manager import RedisManager
from simulator.testing import SimulatorHandle, running_simulator
from tests.integration.agent.test_sdk_execution import run_subtask
from tests.unit.agent.fixtures import OfferFactory, SettingsFactory, serving

pytestmark = pytest.mark.sdk

MODELS_PY = "class Invoice:\n    total_cents: int = 0\n"
READ_THE_MODEL = "Explain the invoice model of the context pack"
SCENARIOS: dict[str, Any] = {
    "subtasks": [
        {
            "name": "read-a-pack-file",
            "match": "(?i)explain the invoice model",
            "turns": [
                {"tool_calls": [{"tool": "read_file", "input": {"path": "context/src/app/models.py"}}]},
                {"final": "The model says: {{ tool_results[0].text }}"},
            ],
        }
    ]
}
MANIFEST = ContextManifest.model_validate(
    {
        "symbols": [{"name": "Invoice", "kind": "class", "path": "src/app/models.py", "line": 1}],
        "dependencies": [{"from": "src/app/billing.py", "to": "src/app/models.py", "note": "bills invoices"}],
        "notes": "Amounts are in cents.",
    }
)
FILES = [PackFile("src/app/models.py", MODELS_PY.encode()), PackFile("src/app/billing.py", b"from .models import *\n")]


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with running_simulator(SCENARIOS, request_log=tmp_path / "requests.jsonl") as handle:
        yield handle


@pytest.fixture
def sdk_agent(
    agent_settings_factory: SettingsFactory, simulator: SimulatorHandle, db: DatabaseManager
) -> Callable[..., Any]:
    @asynccontextmanager
    async def serve() -> AsyncIterator[httpx.AsyncClient]:
        settings = agent_settings_factory(
            agent_executor="sdk",
            anthropic_base_url=simulator.base_url,
            claude_simulated=True,
            agent_cli_env={"CLAUDE_CODE_MAX_RETRIES": "0"},
        )
        async with serving(settings) as (_, client):
            yield client

    return serve


@pytest.fixture
def pack_repositories(db: DatabaseManager, agent_tenant: str) -> Repositories:
    return Repositories(db.pool, agent_tenant)


async def with_pack(request: TaskExecutionRequest, pack_id: str, agent_settings_factory: SettingsFactory) -> Any:
    """The offer again, naming the pack, signed as the orchestrator signs it (the pack is part of what it signs)."""
    offer = request.model_copy(update={"context_pack": ContextPackRef(context_pack_id=pack_id)})
    offer.assignment = FleetTrust.from_settings(agent_settings_factory()).sign_offer(offer)
    return offer


async def test_the_agent_reads_a_pack_file_and_its_prompt_holds_the_manifest(
    sdk_agent: Callable[..., Any],
    agent_redis: RedisManager,
    agent_settings_factory: SettingsFactory,
    offered_request: OfferFactory,
    pack_repositories: Repositories,
    simulator: SimulatorHandle,
    tmp_path: Path,
) -> None:
    pack = await pack_repositories.context_packs.create_pack(FILES, MANIFEST)
    request = await with_pack(await offered_request(READ_THE_MODEL), pack.context_pack_id, agent_settings_factory)

    async with sdk_agent() as client:
        result = await run_subtask(client, agent_redis, request)

    assert result.status is ResultStatus.COMPLETED, result.error
    assert result.output == f"The model says: {MODELS_PY}".rstrip()
    materialized = tmp_path / "shared_files" / request.task_id / "context" / "src" / "app" / "models.py"
    assert materialized.read_text() == MODELS_PY
    assert stat.S_IMODE(materialized.stat().st_mode) == 0o444
    prompt = simulator.requests()[0]["messages"][0]["content"]
    prompt = prompt if isinstance(prompt, str) else " ".join(block.get("text", "") for block in prompt)
    assert f"Context pack {pack.context_pack_id}: 2 files" in prompt
    assert "- Invoice (class) in context/src/app/models.py, line 1" in prompt
    assert "- src/app/billing.py -> src/app/models.py: bills invoices" in prompt
    assert "Amounts are in cents." in prompt


async def test_a_pack_deleted_after_submit_fails_the_attempt_for_good_naming_the_pack(
    sdk_agent: Callable[..., Any],
    agent_redis: RedisManager,
    agent_settings_factory: SettingsFactory,
    offered_request: OfferFactory,
    pack_repositories: Repositories,
    db: DatabaseManager,
    simulator: SimulatorHandle,
) -> None:
    pack = await pack_repositories.context_packs.create_pack(FILES, MANIFEST)
    request = await with_pack(await offered_request(READ_THE_MODEL), pack.context_pack_id, agent_settings_factory)
    await db.pool.execute("DELETE FROM context_packs WHERE id = $1", pack.context_pack_id)

    async with sdk_agent() as client:
        result = await run_subtask(client, agent_redis, request)

    assert result.status is ResultStatus.FAILED
    assert result.retryable is False
    assert result.error is not None
    assert f"context pack {pack.context_pack_id} of task {request.task_id} no longer exists" in result.error
    assert simulator.requests() == []  # the model was never asked
