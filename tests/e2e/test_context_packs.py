"""Context packs end to end: a client uploads a pack and submits a task naming it; the orchestrator's offer names the
pack, a real agent on the SDK loads it into the task's workspace and prompt, and the model (the simulator) reads a
pack file with read_file. A pack deleted while the task runs fails the subtasks that start after, naming the pack."""

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.config import Settings
from shared.database import DatabaseManager
from shared.local_fleet import LocalFleet
from simulator.request_log import read_request_log
from tests.e2e.conftest import api_client, follow, sdk_fleet_environment, wait_for_agents, wait_until_running
from tests.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.sdk]

MODELS_PY = "class Invoice:\n    total_cents: int = 0\n"
MANIFEST = {
    "symbols": [{"name": "Invoice", "kind": "class", "path": "src/app/models.py", "line": 1}],
    "dependencies": [{"from": "src/app/models.py", "to": "sqlalchemy", "note": "the ORM"}],
}
READ_TASK = "Explain the invoice model from the context pack"
TWO_STEP_TASK = "Review the invoice model slowly, then summarise the review"
SCENARIOS: dict[str, Any] = {
    "plans": [
        {
            "name": "read-the-pack",
            "match": "(?i)explain the invoice model from the context pack",
            "plan": {
                "subtasks": [
                    {"id": "s1", "description": "Read the invoice model", "required_capabilities": ["DATA_ANALYSIS"]}
                ]
            },
        },
        {
            "name": "two-steps-on-the-pack",
            "match": "(?i)review the invoice model slowly",
            "plan": {
                "subtasks": [
                    {
                        "id": "s1",
                        "description": "Review the invoice model slowly",
                        "required_capabilities": ["DATA_ANALYSIS"],
                    },
                    {
                        "id": "s2",
                        "description": "Summarise the review",
                        "required_capabilities": ["DATA_ANALYSIS"],
                        "dependencies": ["s1"],
                    },
                ]
            },
        },
    ],
    "subtasks": [
        {
            "name": "read-a-pack-file",
            "match": "(?i)read the invoice model",
            "turns": [
                {"tool_calls": [{"tool": "read_file", "input": {"path": "context/src/app/models.py"}}]},
                {"final": "The model says: {{ tool_results[0].text }}"},
            ],
        },
        {
            "name": "slow-review",
            "match": "(?i)review the invoice model slowly",
            "delay_ms": 4000,
            "turns": [{"final": "Reviewed."}],
        },
        {"name": "summary", "match": "(?i)summarise the review", "turns": [{"final": "Summarised."}]},
    ],
}


@pytest.fixture(scope="module")
def pack_fleet(fleet_settings: Settings, fleet_settings_dir: Path) -> Iterator[LocalFleet]:
    """Simulator (logging every request it answers), orchestrator and one agent on the SDK."""
    scenarios = fleet_settings_dir / "context-pack-scenarios.yaml"
    scenarios.write_text(yaml.safe_dump(SCENARIOS))
    with LocalFleet(sdk_fleet_environment(fleet_settings, fleet_settings_dir), fleet_settings_dir / "logs") as fleet:
        simulator = fleet.add_simulator(scenarios, request_log=fleet_settings_dir / "requests.jsonl")
        fleet.start("simulator")
        fleet.base_env["ANTHROPIC_BASE_URL"] = simulator.url
        fleet.add_orchestrator()
        fleet.add_agent("agent1", "DATA_ANALYSIS")
        fleet.start("orchestrator", "agent1")
        yield fleet


@pytest.fixture
async def api(pack_fleet: LocalFleet) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(pack_fleet) as client:
        await wait_for_agents(client, 1)
        yield client


async def upload_pack(client: httpx.AsyncClient) -> str:
    response = await client.post(
        "/context-packs",
        files=[("files", ("src/app/models.py", MODELS_PY.encode(), "text/x-python"))],
        data={"manifest": json.dumps(MANIFEST)},
    )
    assert response.status_code == 201, response.text
    pack_id: str = response.json()["context_pack_id"]
    return pack_id


async def submit_with_pack(client: httpx.AsyncClient, description: str, pack_id: str) -> str:
    response = await client.post("/tasks", json={"description": description, "context_pack_id": pack_id})
    assert response.status_code == 200, response.text
    task_id: str = response.json()["task_id"]
    return task_id


def prompts_for(fleet_settings_dir: Path, subtask_id: str) -> list[str]:
    """The first user message of each agent conversation about `subtask_id` the simulator answered (not the
    orchestrator's token counts for its estimate)."""
    prompts = []
    for request in read_request_log(fleet_settings_dir / "requests.jsonl"):
        if request["source"] == "count_tokens":
            continue
        content = request["messages"][0]["content"]
        text = content if isinstance(content, str) else " ".join(block.get("text", "") for block in content)
        if subtask_id in text:
            prompts.append(text)
    return prompts


async def test_an_agent_reads_a_file_of_the_task_s_pack_and_is_shown_its_manifest(
    api: httpx.AsyncClient, fleet_settings_dir: Path
) -> None:
    pack_id = await upload_pack(api)
    task_id = await submit_with_pack(api, READ_TASK, pack_id)

    final, _ = await follow(api, task_id)

    assert final["task"]["status"] == "completed", final
    assert final["task"]["context_pack_id"] == pack_id
    (result,) = final["subtask_results"]
    assert result["output"] == f"The model says: {MODELS_PY}".rstrip()
    (subtask,) = final["task"]["subtasks"]
    (prompt, *_) = prompts_for(fleet_settings_dir, subtask["id"])
    assert f"Context pack {pack_id}: 1 files" in prompt
    assert "- Invoice (class) in context/src/app/models.py, line 1" in prompt
    workspace = fleet_settings_dir / "shared_files" / task_id / "context" / "src" / "app" / "models.py"
    assert workspace.read_text() == MODELS_PY


async def test_a_pack_deleted_while_its_task_runs_fails_the_next_subtask_naming_the_pack(
    api: httpx.AsyncClient, fleet_database: DatabaseManager, fleet_settings_dir: Path
) -> None:
    pack_id = await upload_pack(api)
    task_id = await submit_with_pack(api, TWO_STEP_TASK, pack_id)
    await wait_until_running(api, task_id)
    loaded = fleet_settings_dir / "shared_files" / task_id / "context" / "src" / "app" / "models.py"

    async def s1_loaded_the_pack() -> bool:
        return loaded.exists()

    await eventually(s1_loaded_the_pack, bool)  # s1 runs (slowly) with the pack; s2 waits for s1
    await fleet_database.pool.execute("DELETE FROM context_packs WHERE id = $1", pack_id)

    final, _ = await follow(api, task_id)

    assert final["task"]["status"] == "failed", final
    first, second = final["task"]["subtasks"]
    assert (first["status"], second["status"]) == ("completed", "failed")
    (failure,) = [result for result in final["subtask_results"] if result["status"] == "failed"]
    assert failure["retryable"] is False
    assert f"context pack {pack_id} of task {task_id} no longer exists" in failure["error"]
    assert second["attempt_count"] == 1  # not retried: no agent would find the pack
