"""The client's failure handling, against a small raw HTTP server that misbehaves on purpose."""

import json
import socketserver
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager

import pytest

from ui.api_client import ApiError, OrchestratorClient
from ui.api_models import TaskRequest

AGENTS_BODY = json.dumps({"agents": []}).encode()


class MisbehavingServer(socketserver.ThreadingTCPServer):
    """Hangs up on the first `drops` requests without answering, then answers each with `status` and `body`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, drops: int, status: str, body: bytes) -> None:
        super().__init__(("127.0.0.1", 0), RequestHandler)
        self.drops, self.status, self.body = drops, status, body
        self.requests: list[str] = []
        self.authorizations: list[str | None] = []  # the Authorization header of each request
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class RequestHandler(socketserver.StreamRequestHandler):
    server: MisbehavingServer

    def handle(self) -> None:
        request_line = self.rfile.readline().decode().strip()
        authorization = None
        while (line := self.rfile.readline()) not in (b"\r\n", b""):  # the tests send no body worth reading
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "authorization":
                authorization = value.strip()
        with self.server.lock:
            self.server.requests.append(request_line)
            self.server.authorizations.append(authorization)
            if len(self.server.requests) <= self.server.drops:
                return  # hang up: the client sees a connection closed without a response
        head = (
            f"HTTP/1.1 {self.server.status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(self.server.body)}\r\nConnection: close\r\n\r\n"
        )
        self.wfile.write(head.encode() + self.server.body)


@contextmanager
def misbehaving_server(drops: int, status: str = "200 OK", body: bytes = AGENTS_BODY) -> Iterator[MisbehavingServer]:
    server = MisbehavingServer(drops, status, body)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def client_of(server: MisbehavingServer) -> Iterator[OrchestratorClient]:
    with closing(OrchestratorClient(server.url)) as client:
        yield client


def test_a_read_is_tried_again_when_the_server_drops_the_connection() -> None:
    with misbehaving_server(drops=1) as server, client_of(server) as client:
        assert client.list_agents() == []

    assert server.requests == ["GET /agents HTTP/1.1"] * 2


def test_a_read_dropped_twice_is_an_api_error() -> None:
    dropped = r"cannot reach the orchestrator at .* \(RemoteProtocolError\)"
    with misbehaving_server(drops=2) as server, client_of(server) as client, pytest.raises(ApiError, match=dropped):
        client.list_agents()


def test_a_submission_is_never_sent_twice() -> None:
    with misbehaving_server(drops=1) as server, client_of(server) as client, pytest.raises(ApiError) as raised:
        client.submit_task(TaskRequest("Do something useful with the data"))

    assert raised.value.status_code is None
    assert server.requests == ["POST /tasks HTTP/1.1"], "a retried POST could create the task twice"


def test_a_gateway_page_instead_of_the_api_is_a_readable_error() -> None:
    gateway = misbehaving_server(0, "502 Bad Gateway", b"<html>bad gateway</html>")
    with gateway as server, client_of(server) as client, pytest.raises(ApiError) as raised:
        client.list_tasks()

    assert (raised.value.message, raised.value.status_code) == ("HTTP 502 Bad Gateway", 502)


def test_a_body_that_breaks_the_contract_is_a_readable_error() -> None:
    broken = misbehaving_server(drops=0, body=b'{"agents": [{"agent_id": "no url"}]}')
    unexpected = r"the orchestrator sent an unexpected AgentStatus: \d+ invalid field"
    with broken as server, client_of(server) as client, pytest.raises(ApiError, match=unexpected):
        client.list_agents()


def test_every_request_carries_the_api_key() -> None:
    with misbehaving_server(drops=0) as server, closing(OrchestratorClient(server.url, "mats_key_123")) as client:
        client.list_agents()

    assert server.authorizations == ["Bearer mats_key_123"]


REFUSED = json.dumps({"error": "a valid API key is required", "detail": None}).encode()


@pytest.mark.parametrize(
    ("status", "api_key", "message"),
    [
        ("401 Unauthorized", None, r"has no API key \(a valid API key is required\): set ORCHESTRATOR_API_KEY"),
        ("401 Unauthorized", "revoked", r"refuses the dashboard's API key .*\.data/fleet/api-key"),
        ("403 Forbidden", "client-key", r"does not let this API key do that .*operator key"),
    ],
)
def test_a_refused_key_says_how_to_get_one_that_works(status: str, api_key: str | None, message: str) -> None:
    with (
        misbehaving_server(drops=0, status=status, body=REFUSED) as server,
        closing(OrchestratorClient(server.url, api_key)) as client,
        pytest.raises(ApiError, match=message) as raised,
    ):
        client.list_agents()

    assert raised.value.status_code == int(status.split()[0])


def test_a_route_the_orchestrator_lacks_is_told_apart_from_a_missing_task() -> None:
    no_route = json.dumps({"error": "Not Found", "detail": None}).encode()
    no_task = json.dumps({"error": "task task_1 not found", "detail": None}).encode()
    with (
        misbehaving_server(drops=0, status="404 Not Found", body=no_route) as server,
        client_of(server) as client,
        pytest.raises(ApiError) as older_orchestrator,
    ):
        client.task_timeline("task_1")
    with (
        misbehaving_server(drops=0, status="404 Not Found", body=no_task) as server,
        client_of(server) as client,
        pytest.raises(ApiError) as unknown_task,
    ):
        client.task_timeline("task_1")

    assert older_orchestrator.value.missing_endpoint
    assert not unknown_task.value.missing_endpoint
    assert not older_orchestrator.value.unreachable


def test_fields_a_newer_orchestrator_adds_are_read_and_missing_ones_are_none() -> None:
    row = {
        "id": "task_1",
        "user_id": None,
        "description": "d",
        "status": "pending",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "subtasks_total": 1,
        "subtasks_completed": 0,
    }
    older = json.dumps({"tasks": [row], "total": 1, "limit": 25, "offset": 0}).encode()
    newer_row = row | {"cost_usd": 0.5, "total_tokens": 1200, "subtasks_failed": 1, "a_field_from_later": True}
    newer = json.dumps({"tasks": [newer_row], "total": 1, "limit": 25, "offset": 0, "retention_days": 30}).encode()
    with misbehaving_server(drops=0, body=older) as server, client_of(server) as client:
        old_page = client.list_tasks()
    with misbehaving_server(drops=0, body=newer) as server, client_of(server) as client:
        new_page = client.list_tasks()

    assert (old_page.tasks[0].cost_usd, old_page.retention_known) == (None, False)
    assert (new_page.tasks[0].cost_usd, new_page.tasks[0].total_tokens) == (0.5, 1200)
    assert (new_page.retention_days, new_page.retention_known) == (30, True)
