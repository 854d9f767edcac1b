"""Artifacts end to end on the real PostgreSQL, Redis and simulator: a real agent (the Claude Agent SDK's CLI) writes
a report and a patch with write_file, its attempt completes, and the API lists and serves both exactly."""

import hashlib
from typing import Any

import pytest

from shared.config import Settings
from simulator.testing import running_simulator
from tests.integration.test_coordination_pool import AgentFleet, sdk_agents
from tests.orchestrator_harness import OrchestratorFactory, plan, submit, wait_until_ended
from tests.polling import eventually

__all__ = ["sdk_agents"]  # the fixture, imported so this module's tests can use it

REPORT = "# Ledger fix\n\nTotals add each row's amount; the patch does it.\n"
PATCH = """--- a/ledger.py
+++ b/ledger.py
@@ -1,2 +1,2 @@
 def total(rows):
-    return sum(rows)
+    return sum(row.amount for row in rows)
"""
SCENARIOS: dict[str, Any] = {
    "plans": [{"match": "ledger fix", "plan": plan(("s1", "Write the ledger fix", ["DATA_ANALYSIS"], []))}],
    "subtasks": [
        {
            "match": "(?i)write the ledger fix",
            "turns": [
                {"tool_calls": [{"tool": "write_file", "input": {"path": "report.md", "content": REPORT}}]},
                {"tool_calls": [{"tool": "write_file", "input": {"path": "fixes/ledger.patch", "content": PATCH}}]},
                {"final": "Wrote output/report.md and output/fixes/ledger.patch"},
            ],
        }
    ],
}


@pytest.mark.sdk
async def test_a_report_and_a_patch_a_real_agent_writes_are_listed_and_download_byte_exact(
    orchestrator: OrchestratorFactory, orchestrator_settings: Settings, sdk_agents: AgentFleet
) -> None:
    with running_simulator(SCENARIOS) as simulator:
        async with (
            sdk_agents(orchestrator_settings, simulator.base_url, ["agent_a"]),
            orchestrator(SCENARIOS, anthropic_base_url=simulator.base_url) as client,
        ):
            await eventually(lambda: client.get("/agents"), lambda answer: len(answer.json()["agents"]) == 1)
            task_id = await submit(client, "Make the ledger fix")
            state = await wait_until_ended(client, task_id, timeout=60)
            assert state["task"]["status"] == "completed", state["task"]["error"]
            listing = (await client.get(f"/tasks/{task_id}/artifacts")).json()
            downloads = {a["name"]: await client.get(a["download_url"]) for a in listing["artifacts"]}

    [subtask] = state["task"]["subtasks"]
    artifacts = {artifact["name"]: artifact for artifact in listing["artifacts"]}
    expected = {"report.md": ("report", REPORT), "fixes/ledger.patch": ("patch", PATCH)}
    assert artifacts.keys() == expected.keys()
    for name, (kind, content) in expected.items():
        artifact, download = artifacts[name], downloads[name]
        assert (artifact["type"], artifact["size"]) == (kind, len(content.encode()))
        assert artifact["sha256"] == hashlib.sha256(content.encode()).hexdigest()
        assert (artifact["subtask_id"], artifact["attempt"], artifact["agent_id"]) == (subtask["id"], 1, "agent_a")
        assert download.status_code == 200 and download.content == content.encode()
        assert download.headers["etag"] == f'"{artifact["sha256"]}"'
