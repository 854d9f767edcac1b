"""Browser test of the task view's artifacts: chromium clicks a download button of `streamlit run`'s dashboard and
gets the bytes the orchestrator recorded, fetched through its API."""

import hashlib
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from shared.config import Settings
from shared.models import AgentCapability
from tests.e2e.test_dashboard_browser import UI_TIMEOUT_MS, chromium_page, streamlit_server
from tests.fake_agent import result_for
from tests.orchestrator_harness import Fleet, OrchestratorFactory, plan, submit, wait_for_request, wait_until_ended
from tests.unit.ui.test_artifacts import stage

SCENARIOS: dict[str, Any] = {"plans": [{"match": "", "plan": plan(("fix", "fix the ledger", ["CODE_GENERATION"], []))}]}
PATCH = "--- a/ledger.py\n+++ b/ledger.py\n@@ -1 +1 @@\n-return sum(rows)\n+return sum(r.amount for r in rows)\n"


@pytest.mark.e2e
async def test_a_download_button_of_the_task_view_saves_the_recorded_bytes(
    orchestrator: OrchestratorFactory,
    orchestrator_settings: Settings,
    orchestrator_api_key: str,
    fleet: Fleet,
    tmp_path: Path,
) -> None:
    coder = await fleet.add("agent4", AgentCapability.CODE_GENERATION)
    async with orchestrator(SCENARIOS) as api:
        task_id = await submit(api, "Fix the ledger totals please")
        await wait_for_request(coder, "fix the ledger")
        [request] = coder.requests_for("fix the ledger")
        stage(orchestrator_settings, request, {"fixes/ledger.patch": PATCH})
        await fleet.report(result_for(request, "agent4", output="Wrote fixes/ledger.patch"))
        await wait_until_ended(api, task_id)
        [artifact] = (await api.get(f"/tasks/{task_id}/artifacts")).json()["artifacts"]

        async with (
            streamlit_server(str(api.base_url).rstrip("/"), orchestrator_api_key, tmp_path / "streamlit.log") as url,
            chromium_page() as page,
        ):
            await page.goto(url)
            button = page.get_by_role("button", name="Download fixes/ledger.patch")
            await expect(button).to_be_visible(timeout=2 * UI_TIMEOUT_MS)  # a busy machine renders slowly
            async with page.expect_download(timeout=UI_TIMEOUT_MS) as downloading:
                await button.click()
            download = await downloading.value
            saved = tmp_path / "downloaded.patch"
            await download.save_as(saved)

    assert download.suggested_filename == "ledger.patch"
    assert saved.read_bytes() == PATCH.encode()
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == artifact["sha256"]
