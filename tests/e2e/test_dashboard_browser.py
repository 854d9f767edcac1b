"""Browser smoke test: `streamlit run` serves the dashboard, Debian's chromium (driven by playwright) uses it.

The orchestrator is real (in-process, with the simulator as Claude) and one fake agent takes the work, so the
test decides when a subtask finishes and can watch the page update by itself.
"""

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from shared.models import AgentCapability, TokenUsage
from tests.fake_agent import result_for
from tests.orchestrator_harness import (
    Fleet,
    OrchestratorFactory,
    plan,
    wait_for_request,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 10
UI_TIMEOUT_MS = 30_000
DESCRIPTION = "Collect the monthly numbers and chart the trend"
SCENARIOS: dict[str, Any] = {
    "plans": [
        {
            "match": "monthly numbers",
            "plan": plan(
                ("collect", "collect the monthly numbers", ["DATA_ANALYSIS"], []),
                ("chart", "chart the trend", ["CODE_GENERATION"], ["collect"]),
            ),
        }
    ]
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def wait_until_healthy(url: str, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(timeout=1) as client, asyncio.timeout(START_TIMEOUT_SECONDS):
        while process.returncode is None:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/_stcore/health")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"streamlit exited with {process.returncode}")


@contextlib.asynccontextmanager
async def streamlit_server(orchestrator_url: str, api_key: str, log_path: Path) -> AsyncIterator[str]:
    """`streamlit run ui/streamlit_app.py` as start.sh runs it, on a free port, in offline (simulated) mode, with an
    operator key in its environment."""
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "streamlit"),
        "run",
        "ui/streamlit_app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    env = {
        **os.environ,
        "ORCHESTRATOR_URL": orchestrator_url,
        "ORCHESTRATOR_API_KEY": api_key,
        "CLAUDE_SIMULATED": "true",
    }
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}"
            await wait_until_healthy(url, process)
            yield url
        finally:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                process.kill()
                await process.wait()


@contextlib.asynccontextmanager
async def chromium_page(width: int = 1500, height: int = 1700) -> AsyncIterator[Page]:
    """A page in Debian's chromium; playwright's own browser downloads are never used."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield await browser.new_page(viewport={"width": width, "height": height})
        finally:
            await browser.close()


async def submit_in_the_sidebar(page: Page) -> None:
    await page.get_by_label("What should the agents do?").fill(DESCRIPTION)
    await page.get_by_role("button", name="Submit Task").click()
    await expect(page.get_by_text("Task created:")).to_be_visible(timeout=UI_TIMEOUT_MS)


@pytest.mark.e2e
async def test_a_task_submitted_in_the_browser_appears_and_updates_by_itself(
    orchestrator: OrchestratorFactory,
    orchestrator_api_key: str,
    fleet: Fleet,
    tmp_path: Path,
) -> None:
    agent = await fleet.add("agent1", AgentCapability.DATA_ANALYSIS, AgentCapability.CODE_GENERATION)
    async with (
        orchestrator(SCENARIOS) as api,
        streamlit_server(
            str(api.base_url).rstrip("/"), orchestrator_api_key, tmp_path / "streamlit.log"
        ) as dashboard_url,
        chromium_page() as page,
    ):
        await page.goto(dashboard_url)
        await submit_in_the_sidebar(page)
        [task] = (await api.get("/tasks")).json()["tasks"]
        await expect(page.get_by_text(f"in progress · {task['id']}")).to_be_visible(timeout=UI_TIMEOUT_MS)

        # The agent finishes the first subtask; the page must show it without anyone touching it.
        await wait_for_request(agent, "collect the monthly numbers")
        request = agent.requests_for("collect the monthly numbers")[0]
        result = result_for(request, "agent1", output='{"months": 12, "growth": "7%"}')
        usage = TokenUsage(input_tokens=1830, output_tokens=412)
        await fleet.report(result.model_copy(update={"simulated": True, "token_usage": usage}))
        await expect(page.get_by_text("1 of 2 subtasks completed")).to_be_visible(timeout=UI_TIMEOUT_MS)
        await expect(page.get_by_text("offline mode: these results come from")).to_be_visible()
        await expect(page.locator("[data-testid='stGraphVizChart'] svg")).to_be_visible()
        await page.screenshot(path=tmp_path / "dashboard.png")

    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
