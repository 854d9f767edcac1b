"""The dashboard under Streamlit's AppTest, talking over real HTTP to a live orchestrator started by the test.

The orchestrator, its simulator and the fake agents are the integration tests' own fixtures, imported here.
"""

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Dataframe

APP = Path(__file__).resolve().parents[3] / "ui" / "streamlit_app.py"
# A run makes a few HTTP calls to a local orchestrator; the default 3 s is too tight on a busy machine.
RUN_TIMEOUT_SECONDS = 30


class Dashboard:
    """The app under AppTest; `run` goes through a worker thread so the test's event loop (heartbeats) keeps going."""

    def __init__(self, app: AppTest) -> None:
        self.app = app

    async def run(self) -> AppTest:
        await asyncio.to_thread(self.app.run)
        assert not self.app.exception, [item.value for item in self.app.exception]
        return self.app

    def texts(self, kind: str) -> list[str]:
        """The values of every element of one kind (error, success, caption, markdown, ...)."""
        return [str(element.value) for element in getattr(self.app, kind)]

    async def open(self, **params: str) -> AppTest:
        """Follow a link to the dashboard: `open(view="Agents")`, `open(task=task_id)`; other parameters stay."""
        for name, value in params.items():
            self.app.query_params[name] = value
        return await self.run()

    def has_text(self, kind: str, part: str) -> bool:
        return any(part in text for text in self.texts(kind))


DashboardFactory = Callable[[str], Dashboard]


@pytest.fixture
def unused_url() -> str:
    """A loopback URL nothing listens on: a port the OS handed out, then closed again."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def dashboard(monkeypatch: pytest.MonkeyPatch, orchestrator_api_key: str) -> DashboardFactory:
    """Opens the dashboard against an orchestrator URL, given to it the way a deployment does: the environment,
    with the operator key of the test's tenant (the key the `orchestrator` fixture's clients send)."""

    def open_dashboard(orchestrator_url: str) -> Dashboard:
        monkeypatch.setenv("ORCHESTRATOR_URL", orchestrator_url)
        monkeypatch.setenv("ORCHESTRATOR_API_KEY", orchestrator_api_key)
        monkeypatch.delenv("CLAUDE_SIMULATED", raising=False)
        return Dashboard(AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT_SECONDS))

    return open_dashboard


def url_of(client: httpx.AsyncClient) -> str:
    return str(client.base_url).rstrip("/")


def table(app: AppTest, column: str) -> Dataframe:
    """The one dataframe that has `column`."""
    matches = [frame for frame in app.dataframe if column in frame.value.columns]
    assert len(matches) == 1, f"{len(matches)} tables have a {column!r} column"
    return matches[0]


def cells(app: AppTest, column: str, *, table_with: str | None = None) -> list[Any]:
    """One column, top to bottom, of the table that has it (or that has `table_with`, when several have it)."""
    return list(table(app, table_with or column).value[column])
