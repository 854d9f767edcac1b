"""A task's artifacts in the dashboard: listed under the task with a download button each, fetched through the API."""

import asyncio
import hashlib
from typing import Any

import pytest

from agent.tools.workspace import Workspace, WorkspaceQuota
from shared.config import Settings
from shared.models import AgentCapability, TaskExecutionRequest
from tests.fake_agent import result_for
from tests.orchestrator_harness import Fleet, OrchestratorFactory, plan, submit, wait_for_request, wait_until_ended
from tests.unit.ui.conftest import DashboardFactory, cells, url_of
from ui.api_client import ApiError, OrchestratorClient
from ui.formatting import plain

SCENARIOS: dict[str, Any] = {"plans": [{"match": "", "plan": plan(("fix", "fix the ledger", ["CODE_GENERATION"], []))}]}
PATCH = "--- a/ledger.py\n+++ b/ledger.py\n@@ -1 +1 @@\n-return sum(rows)\n+return sum(r.amount for r in rows)\n"
REPORT = "# Ledger\n\nFixed the totals.\n"
ROOMY = WorkspaceQuota(max_bytes=1_000_000, max_files=100)


def stage(settings: Settings, request: TaskExecutionRequest, files: dict[str, str]) -> None:
    """What the agent running `request` writes with write_file."""
    assert request.subtask.delivery_token is not None
    workspace = Workspace(settings.shared_files_dir, request.task_id, request.subtask.delivery_token)
    workspace.create()
    for path, content in files.items():
        workspace.write(path, content.encode(), ROOMY)


async def test_a_task_s_artifacts_are_listed_with_a_download_button_each_that_fetches_the_recorded_bytes(
    orchestrator: OrchestratorFactory,
    orchestrator_settings: Settings,
    orchestrator_api_key: str,
    fleet: Fleet,
    dashboard: DashboardFactory,
) -> None:
    coder = await fleet.add("agent4", AgentCapability.CODE_GENERATION)
    async with orchestrator(SCENARIOS) as api:
        task_id = await submit(api, "Fix the ledger totals please")
        await wait_for_request(coder, "fix the ledger")
        page = dashboard(url_of(api))
        await page.run()
        before = page.texts("caption")

        [request] = coder.requests_for("fix the ledger")
        stage(orchestrator_settings, request, {"report.md": REPORT, "fixes/ledger.patch": PATCH})
        await fleet.report(result_for(request, "agent4", output="Wrote report.md and fixes/ledger.patch"))
        await wait_until_ended(api, task_id)
        await page.run()

        client = OrchestratorClient(url_of(api), orchestrator_api_key)
        artifacts = await asyncio.to_thread(client.list_artifacts, task_id)
        contents = [await asyncio.to_thread(client.download_artifact, artifact) for artifact in artifacts]
        forged = artifacts[0].model_copy(update={"sha256": "0" * 64})
        with pytest.raises(ApiError) as mismatch:
            await asyncio.to_thread(client.download_artifact, forged)
        client.close()

    assert "No artifacts yet: the files of each completed subtask appear here." in before
    assert cells(page.app, "Artifact") == ["fixes/ledger.patch", "report.md"]
    assert cells(page.app, "Type") == ["patch", "report"]
    labels = [button.label for button in page.app.download_button]
    assert labels == [f"Download {plain('fixes/ledger.patch')}", f"Download {plain('report.md')}"]
    assert contents == [PATCH.encode(), REPORT.encode()]
    assert [a.sha256 for a in artifacts] == [hashlib.sha256(c).hexdigest() for c in contents]
    assert mismatch.value.message == "the download of fixes/ledger.patch does not match its recorded SHA-256"
