"""Artifacts end to end on the real PostgreSQL, Redis and simulator: a real agent (the Claude Agent SDK's CLI) writes
a report and a patch with write_file, its attempt completes, and the API lists and serves both exactly."""

import hashlib
from typing import Any

import pytest

from tests.integration.test_coordination_pool import SdkFleet, sdk_agents, sdk_fleet
from tests.orchestrator_harness import plan, submit, wait_until_ended

__all__ = ["sdk_agents", "sdk_fleet"]  # the fixtures, imported so this module's tests can use them

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
    sdk_fleet: SdkFleet,
) -> None:
    async with sdk_fleet(SCENARIOS, ["agent_a"]) as client:
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
