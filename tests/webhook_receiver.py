"""A real HTTP endpoint for webhook tests: aiohttp on a free port of 127.0.0.1, in the test's event loop.

It records every request it receives and answers as the test scripts it: a status per request (`answer`), or no
answer until the test releases it (`hold_next`), standing in for an endpoint that is down, busy or slow.
"""

import asyncio
import json
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int | None = None  # the status it was answered with; None while held

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    base_url: str = ""
    requests: list[Received] = field(default_factory=list)
    _answers: dict[str, deque[int]] = field(default_factory=lambda: defaultdict(deque))
    _holds: dict[str, deque[asyncio.Event]] = field(default_factory=lambda: defaultdict(deque))

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    def answer(self, path: str, *statuses: int) -> None:
        """Answer the next requests to `path` with these statuses, in order (then 200)."""
        self._answers[path].extend(statuses)

    def hold_next(self, path: str) -> asyncio.Event:
        """Keep the next request to `path` unanswered until the returned event is set."""
        release = asyncio.Event()
        self._holds[path].append(release)
        return release

    async def received(self, path: str = "/hook") -> list[Received]:
        """The requests to `path` that were answered 2xx: the deliveries it took."""
        return [r for r in self.requests if r.path == path and r.answered is not None and 200 <= r.answered < 300]

    async def arrived(self, path: str = "/hook") -> list[Received]:
        """Every request to `path`, answered or not. (Both are coroutines for tests/polling.py's `eventually`.)"""
        return [r for r in self.requests if r.path == path]

    def release_all(self) -> None:
        for holds in self._holds.values():
            for release in holds:
                release.set()

    async def handle(self, request: web.Request) -> web.Response:
        received = Received(request.path, dict(request.headers), await request.read())
        self.requests.append(received)
        holds = self._holds.get(request.path)
        if holds:
            await holds.popleft().wait()
        answers = self._answers.get(request.path)
        received.answered = answers.popleft() if answers else 200
        return web.Response(status=received.answered, text="ok")


@asynccontextmanager
async def running_receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.base_url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        receiver.release_all()
        await runner.cleanup()
