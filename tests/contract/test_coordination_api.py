"""Contract of the coordination pool's endpoints (seed 004) against live orchestrators over real HTTP."""

import contextlib
import os
import re
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis

from shared.api_keys import ApiKeyScope
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.models import AgentCapability, AgentStatus, LogLevel, TaskType, ToolCall
from shared.redis_manager import RedisManager
from shared.seed_fleet import SEED_FLEET
from tests.api_keys import bearer, issue_key
from tests.contract.conftest import AppFactory, SettingsFactory
from tests.contract.orchestrator_support import TWO_STEP_TASK, assert_error
from tests.factories import build_result, build_task
from tests.polling import eventually

# --- pool lifecycle ---

AGENT_START_SECONDS = 90.0
SPAWNED_AGENT_FIELDS = {"agent_id", "url", "capabilities", "pid", "port", "log_path"}
POOL_MEMBER_FIELDS = {
    "agent_id",
    "url",
    "port",
    "capabilities",
    "pid",
    "process_started_at",
    "log_path",
    "started_at",
    "state",
    "exit_code",
}


async def test_pool_lists_nothing_before_anything_is_started(orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.get("/pool")

    assert response.status_code == 200, response.text
    assert response.json() == {"launcher": "none", "agents": []}
    stopped = await orchestrator_client.delete("/pool")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json() == {"stopped": []}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/agents", {"capabilities": ["DATA_ANALYSIS"]}, id="spawn"),
        pytest.param("/pool/initialize", {}, id="initialize"),
    ],
)
async def test_a_deployment_without_a_launcher_answers_409_saying_what_to_do(
    orchestrator_client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    response = await orchestrator_client.post(path, json=body)

    assert_error(response, 409, "cannot start agent processes", "AGENT_LAUNCHER=none", "start another agent service")


async def test_spawning_an_agent_id_that_is_live_answers_409(
    orchestrator_client: httpx.AsyncClient,
    orchestrator_redis_manager: RedisManager,
    orchestrator_agent_status: Callable[..., AgentStatus],
) -> None:
    await orchestrator_redis_manager.register_agent(orchestrator_agent_status("agent7", AgentCapability.DATA_ANALYSIS))

    response = await orchestrator_client.post("/agents", json={"capabilities": ["DATA_ANALYSIS"], "agent_id": "agent7"})

    assert_error(response, 409, "agent agent7 is already live")


async def test_spawning_past_max_pool_size_answers_429_before_starting_anything(
    orchestrator_settings_factory: SettingsFactory,
    orchestrator_app_factory: AppFactory,
    orchestrator_agent_status: Callable[..., AgentStatus],
    tmp_path: Path,
) -> None:
    settings = orchestrator_settings_factory(
        agent_launcher="native", max_pool_size=2, fleet_pid_dir=str(tmp_path / "pids")
    )
    redis = RedisManager(settings)
    await redis.connect()
    try:
        for agent_id in ("joined1", "joined2"):  # agents that joined on their own count
            await redis.register_agent(orchestrator_agent_status(agent_id, AgentCapability.DATA_ANALYSIS))
        async with await orchestrator_app_factory(settings) as client:
            spawn = await client.post("/agents", json={"capabilities": ["CODE_GENERATION"]})
            initialize = await client.post("/pool/initialize", json={"size": 1})
            pool = (await client.get("/pool")).json()
    finally:
        await redis.disconnect()

    body = assert_error(spawn, 429, "the pool is full: 2 of 2 agents are live (MAX_POOL_SIZE)")
    assert "stop one" in body["error"]
    assert_error(initialize, 429, "MAX_POOL_SIZE")
    assert pool == {"launcher": "native", "agents": []}
    assert not (tmp_path / "pids").exists()  # no process was started


@pytest.mark.parametrize(
    ("path", "body", "word"),
    [
        pytest.param("/agents", {}, "capabilities", id="spawn-without-capabilities"),
        pytest.param("/agents", {"capabilities": []}, "capabilities", id="spawn-no-capability"),
        pytest.param("/agents", {"capabilities": ["TIME_TRAVEL"]}, "capabilities", id="spawn-unknown-capability"),
        pytest.param("/agents", {"capabilities": ["DATA_ANALYSIS"], "agent_id": "a:b"}, "agent_id", id="bad-id"),
        pytest.param("/pool/initialize", {"size": 0}, "size", id="size-0"),
        pytest.param("/pool/initialize", {"size": 17}, "size", id="size-17"),
        pytest.param("/pool/initialize", {"capabilities": [[]]}, "capabilities", id="empty-capability-set"),
        pytest.param("/pool/initialize", {"capabilities": []}, "capabilities", id="no-capability-sets"),
    ],
)
async def test_invalid_pool_requests_answer_400(
    orchestrator_client: httpx.AsyncClient, path: str, body: dict[str, Any], word: str
) -> None:
    response = await orchestrator_client.post(path, json=body)

    assert_error(response, 400, word)  # the contract's 400 for invalid input, as everywhere in this API


async def test_initialize_starts_the_seed_mix_and_spawn_answers_201_with_the_agent(
    orchestrator_settings_factory: SettingsFactory, orchestrator_app_factory: AppFactory, tmp_path: Path
) -> None:
    settings = orchestrator_settings_factory(
        agent_launcher="native",
        agent_executor="stub",
        fleet_pid_dir=str(tmp_path / "pids"),
        fleet_log_dir=str(tmp_path / "logs"),
        agent_shutdown_grace_seconds=2.0,
    )
    pids: list[int] = []
    try:
        async with await orchestrator_app_factory(settings, timeout=AGENT_START_SECONDS) as client:
            initialized = await client.post("/pool/initialize", json={"size": 1})
            pids += [agent["pid"] for agent in initialized.json().get("agents", [])]
            spawned = await client.post("/agents", json={"capabilities": ["WEB_SCRAPING"], "agent_id": "scraper"})
            pids += [spawned.json()["pid"]] if spawned.status_code == 201 else []
            live = (await client.get("/agents")).json()["agents"]
            stopped = await client.delete("/pool")
    finally:
        for pid in pids:  # whatever happened above, no agent outlives the test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    assert initialized.status_code == 200, initialized.text
    (first,) = initialized.json()["agents"]
    assert set(first) == POOL_MEMBER_FIELDS
    assert (first["agent_id"], first["state"]) == ("agent1", "running")
    assert first["capabilities"] == list(SEED_FLEET["agent1"])  # the seed's mix, agent1's first
    assert spawned.status_code == 201, spawned.text
    agent = spawned.json()
    assert set(agent) == SPAWNED_AGENT_FIELDS
    assert (agent["agent_id"], agent["capabilities"]) == ("scraper", ["WEB_SCRAPING"])
    assert agent["url"] == f"http://127.0.0.1:{agent['port']}"
    assert Path(agent["log_path"]).parent == tmp_path / "logs"
    assert sorted(agent["agent_id"] for agent in live) == ["agent1", "scraper"]
    assert stopped.status_code == 200, stopped.text
    assert sorted((agent["agent_id"], agent["state"]) for agent in stopped.json()["stopped"]) == [
        ("agent1", "exited"),
        ("scraper", "exited"),
    ]


# --- declaring an agent failed ---

CONTRACT = Path(__file__).resolve().parents[2] / "contracts" / "orchestrator-api.yaml"


@pytest.fixture(scope="module")
def contract() -> Any:
    return schemathesis.openapi.from_path(CONTRACT)


@pytest.fixture
async def fail_agent_id(orchestrator_redis_manager: RedisManager) -> AsyncIterator[str]:
    """An agent id of this test alone (the orchestrator is shared), and its declaration removed afterwards."""
    agent_id = f"agent-{uuid.uuid4().hex[:8]}"
    yield agent_id
    await orchestrator_redis_manager.client.hdel(orchestrator_redis_manager.keys.failed_agents(), agent_id)


async def test_fail_answers_what_it_did_and_the_registry_shows_the_agent_failed(
    orchestrator_client: httpx.AsyncClient,
    orchestrator_redis_manager: RedisManager,
    orchestrator_agent_status: Callable[..., AgentStatus],
    fail_agent_id: str,
    contract: Any,
) -> None:
    await orchestrator_redis_manager.register_agent(
        orchestrator_agent_status(fail_agent_id, AgentCapability.DATA_ANALYSIS)  # its address answers nothing
    )

    response = await orchestrator_client.post(f"/agents/{fail_agent_id}/fail")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"agent_id", "status", "attempts_handed_back", "agent_notified", "notification"}
    assert (body["agent_id"], body["status"], body["attempts_handed_back"], body["agent_notified"]) == (
        fail_agent_id,
        "failed",
        0,
        False,
    )
    assert "could not be reached" in body["notification"]
    contract["/agents/{agent_id}/fail"]["POST"].validate_response(response)
    listed = {agent["agent_id"]: agent for agent in (await orchestrator_client.get("/agents")).json()["agents"]}
    assert (listed[fail_agent_id]["state"], listed[fail_agent_id]["is_available"]) == ("failed", False)
    available = (await orchestrator_client.get("/agents/available")).json()["available_agents"]
    assert fail_agent_id not in {agent["agent_id"] for agent in available}
    again = await orchestrator_client.post(f"/agents/{fail_agent_id}/fail")
    assert (again.status_code, again.json()["attempts_handed_back"]) == (200, 0)


async def test_fail_of_an_unknown_agent_is_a_404_saying_so(
    orchestrator_client: httpx.AsyncClient, fail_agent_id: str, contract: Any
) -> None:
    response = await orchestrator_client.post(f"/agents/{fail_agent_id}/fail")

    assert_error(response, 404, f"no agent '{fail_agent_id}'", "runs no subtask")
    contract["/agents/{agent_id}/fail"]["POST"].validate_response(response)


async def test_fail_of_an_id_no_agent_can_have_is_a_400(orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.post("/agents/agent%3Aone/fail")

    assert_error(response, 400, "agent_id")


@pytest.mark.parametrize("scope", [None, ApiKeyScope.CLIENT])
async def test_fail_needs_an_operator_key(
    orchestrator_url: str,
    orchestrator_settings: Settings,
    orchestrator_redis_manager: RedisManager,
    orchestrator_agent_status: Callable[..., AgentStatus],
    db: DatabaseManager,
    fail_agent_id: str,
    scope: ApiKeyScope | None,
) -> None:
    await orchestrator_redis_manager.register_agent(
        orchestrator_agent_status(fail_agent_id, AgentCapability.DATA_ANALYSIS)
    )
    headers = bearer(await issue_key(db, orchestrator_settings.tenant_id, scope)) if scope else {}
    async with httpx.AsyncClient(base_url=orchestrator_url, headers=headers, timeout=30) as client:
        response = await client.post(f"/agents/{fail_agent_id}/fail")

    expected: dict[str, tuple[int, str]] = {"none": (401, "API key"), "client": (403, "operator key")}
    status_code, words = expected[scope.value if scope else "none"]
    assert_error(response, status_code, words)
    agent = await orchestrator_redis_manager.registry.get_agent(fail_agent_id)
    assert agent is not None and agent.state.value == "active"


# --- isolation report ---


async def test_isolation_report_lists_live_and_audited_agents_with_their_facts_and_evidence(
    orchestrator_client: httpx.AsyncClient,
    orchestrator_redis_manager: RedisManager,
    orchestrator_agent_status: Callable[..., AgentStatus],
    orchestrator_settings: Settings,
    db: DatabaseManager,
) -> None:
    await orchestrator_redis_manager.register_agent(orchestrator_agent_status("agent1", AgentCapability.DATA_ANALYSIS))
    repos = Repositories(db.pool, orchestrator_settings.tenant_id)
    task = build_task()
    await repos.tasks.create_task(task)
    [subtask] = task.subtasks
    facts: dict[str, Any] = {
        "claude_session_id": "session-1",
        "claude_config_dir": "/claude/agent2",
        "allowed_tools": ["read_file"],
    }
    await repos.results.save_subtask_result(
        build_result(subtask, agent_id="agent2", role_config_hash="ab" * 32, **facts), applied=True
    )
    call = ToolCall(
        agent_id="agent2", task_id=task.id, subtask_id=subtask.id, attempt=1, tool_name="read_file",
        arguments={"path": "input.csv"},
    )  # fmt: skip
    await repos.audit.record_tool_call(call)

    response = await orchestrator_client.get("/isolation-report")

    assert response.status_code == 200, response.text
    report = response.json()
    assert set(report) == {
        "generated_at", "violations", "attempts_examined", "tool_calls_examined", "truncated", "agents"
    }  # fmt: skip
    assert (report["violations"], report["attempts_examined"], report["tool_calls_examined"]) == (0, 1, 1)
    live, audited = report["agents"]
    assert (live["agent_id"], live["live"], live["capabilities"]) == ("agent1", True, ["DATA_ANALYSIS"])
    assert live["evidence"]["missing"] == ["no audited attempts: nothing recorded shows how its subtasks were isolated"]
    assert (audited["agent_id"], audited["live"], audited["capabilities"]) == ("agent2", False, [])
    assert audited["isolation"]["config_dirs"] == ["/claude/agent2"]
    assert audited["isolation"]["roles"] == [
        {"role_config_hash": "ab" * 32, "allowed_tools": ["read_file"], "attempts": 1}
    ]
    assert {"workspace", "shared_state", "conversation"} <= set(audited["isolation"])
    evidence = audited["evidence"]
    assert (evidence["attempts"], evidence["sessions_recorded"], evidence["tool_calls_checked"]) == (1, 1, 1)
    assert (evidence["violations"], evidence["missing"]) == ([], [])


# --- coordination tools: follow-up subtasks ---


async def test_a_follow_up_request_not_signed_by_the_fleet_is_refused_even_with_an_operator_key(
    orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings, db: DatabaseManager
) -> None:
    repos = Repositories(db.pool, orchestrator_settings.tenant_id)
    task = build_task()
    await repos.tasks.create_task(task)
    body = {
        "attempt": {
            "task_id": task.id, "subtask_id": task.subtasks[0].id, "attempt": 1, "delivery_token": "token",
            "agent_id": "agent1", "assignment": {"expires_at": 0, "content_digest": "0" * 64, "signature": "0" * 64},
        },
        "subtask": {"description": "One more step", "required_capabilities": ["DATA_ANALYSIS"]},
    }  # fmt: skip
    path = "/coordination/follow-up-subtasks"

    unsigned = await orchestrator_client.post(path, json=body)
    wrongly_signed = await orchestrator_client.post(path, json=body, headers={"X-Fleet-Signature": "0" * 64})
    malformed = await orchestrator_client.post(path, json={**body, "subtask": {"description": "no capabilities"}})

    assert_error(unsigned, 401, "not signed by a member of the fleet")
    assert_error(wrongly_signed, 401, "not signed by a member of the fleet")
    assert_error(malformed, 400, "required_capabilities")
    assert await db.pool.fetchval("SELECT count(*) FROM subtasks WHERE task_id = $1", task.id) == 1


# --- attack pass: the isolation report of one tenant ---


async def test_the_isolation_report_shows_nothing_of_another_tenant_sharing_the_database(
    orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings, db: DatabaseManager
) -> None:
    """Another tenant's results, tool calls and logs, made to collide with ours (the same session and config
    folder, a call into our task's workspace), neither appear in our report nor count as our violations."""
    ours = Repositories(db.pool, orchestrator_settings.tenant_id)
    theirs = Repositories(db.pool, "another-tenant")
    facts: dict[str, Any] = {"claude_session_id": "session-1", "claude_config_dir": "/claude/agent2"}
    task, foreign = build_task(), build_task()
    for repos, owned, agent_id in ((ours, task, "agent2"), (theirs, foreign, "intruder")):
        await repos.tasks.create_task(owned)
        [subtask] = owned.subtasks
        await repos.results.save_subtask_result(build_result(subtask, agent_id=agent_id, **facts), applied=True)
    [their_subtask] = foreign.subtasks
    call = ToolCall(
        agent_id="intruder", task_id=foreign.id, subtask_id=their_subtask.id, attempt=1, tool_name="read_file",
        arguments={"path": f"../{task.id}/input.csv"},
    )  # fmt: skip
    await theirs.audit.record_tool_call(call)
    await theirs.audit.log_agent_activity("intruder", foreign.id, LogLevel.INFO, "a log line of theirs")

    response = await orchestrator_client.get("/isolation-report")

    assert response.status_code == 200, response.text
    report = response.json()
    assert [agent["agent_id"] for agent in report["agents"]] == ["agent2"]
    assert (report["violations"], report["attempts_examined"], report["tool_calls_examined"]) == (0, 1, 0)
    assert foreign.id not in response.text and "intruder" not in response.text


@pytest.mark.parametrize(
    "agent_id", ["../../tmp/agent1", "agent1/../../x", "agent1\n", "agent\x001", "..", "a" * 65, "agént1"]
)
async def test_an_agent_id_that_could_name_a_path_is_refused_before_anything_starts(
    orchestrator_client: httpx.AsyncClient, agent_id: str
) -> None:
    """The id names the agent's pidfile and log file: only letters, digits, '-' and '_' reach them."""
    response = await orchestrator_client.post("/agents", json={"capabilities": ["DATA_ANALYSIS"], "agent_id": agent_id})

    assert_error(response, 400, "agent_id")


# --- trace ids -------------------------------------------------------------------------------------------------------

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
GENERATED_TRACE_ID = re.compile(r"[0-9a-f]{32}")


async def stored_trace_ids(repositories: Repositories, task_id: str) -> tuple[str | None, set[str | None]]:
    """The trace id stored with the task, and those stored with its subtasks."""
    task = await repositories.tasks.get_task(task_id)
    assert task is not None
    return task.trace_id, {subtask.trace_id for subtask in task.subtasks}


async def test_submit_with_a_traceparent_answers_stores_and_shows_its_trace_id(
    orchestrator_client: httpx.AsyncClient, orchestrator_repositories: Repositories
) -> None:
    response = await orchestrator_client.post(
        "/tasks", params={"description": TWO_STEP_TASK}, headers={"traceparent": TRACEPARENT, "X-Request-ID": "req-1"}
    )

    assert response.status_code == 200, response.text
    created = response.json()
    assert created["trace_id"] == TRACE_ID and response.headers["x-request-id"] == TRACE_ID
    assert await stored_trace_ids(orchestrator_repositories, created["task_id"]) == (TRACE_ID, {TRACE_ID})
    shown = await orchestrator_client.get(f"/tasks/{created['task_id']}", headers={"traceparent": "unrelated"})
    assert shown.status_code == 200, shown.text
    task = shown.json()["task"]
    assert task["trace_id"] == TRACE_ID
    assert [subtask["trace_id"] for subtask in task["subtasks"]] == [TRACE_ID, TRACE_ID]
    assert shown.headers["x-request-id"] != TRACE_ID  # reading the task is a request of its own trace


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"X-Request-ID": "checkout-7f3a"}, "checkout-7f3a", id="x-request-id"),
        pytest.param({"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01", "X-Request-ID": "r-2"}, "r-2", id="zero"),
        pytest.param({"traceparent": "00-nonsense", "X-Request-ID": "has a space"}, None, id="neither-usable"),
        pytest.param({}, None, id="none"),
    ],
)
async def test_submit_takes_the_trace_id_from_x_request_id_or_makes_one(
    orchestrator_client: httpx.AsyncClient,
    orchestrator_repositories: Repositories,
    headers: dict[str, str],
    expected: str | None,
) -> None:
    response = await orchestrator_client.post("/tasks", json={"description": TWO_STEP_TASK}, headers=headers)

    assert response.status_code == 200, response.text
    trace_id = response.json()["trace_id"]
    if expected is None:
        assert GENERATED_TRACE_ID.fullmatch(trace_id), trace_id
    else:
        assert trace_id == expected
    assert response.headers["x-request-id"] == trace_id
    assert await stored_trace_ids(orchestrator_repositories, response.json()["task_id"]) == (trace_id, {trace_id})


async def test_every_answer_carries_its_request_s_trace_id(orchestrator_client: httpx.AsyncClient) -> None:
    headers = {"traceparent": TRACEPARENT}
    answers = [
        await orchestrator_client.get("/health", headers=headers),
        await orchestrator_client.get("/tasks/task_unknown", headers=headers),
        await orchestrator_client.get("/tasks", params={"limit": 0}, headers=headers),
        await orchestrator_client.get("/tasks", headers={**headers, "Authorization": "Bearer mats_nope"}),
        await orchestrator_client.post("/tasks", content=b"x", headers={**headers, "Content-Type": "text/plain"}),
    ]

    assert [answer.status_code for answer in answers] == [200, 404, 400, 401, 415]
    assert {answer.headers["x-request-id"] for answer in answers} == {TRACE_ID}
    made = {(await orchestrator_client.get("/tasks/task_unknown")).headers["x-request-id"] for _ in range(2)}
    assert len(made) == 2 and all(GENERATED_TRACE_ID.fullmatch(trace_id) for trace_id in made)


# --- task types and status_reason ---


async def task_detail(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(f"/tasks/{task_id}")
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


KNOWN_TYPES = "'DISCOVERY', 'MIGRATION', 'HEARTBEAT', 'INGEST', 'RESEARCH' or 'GENERAL'"


@pytest.mark.parametrize(
    ("submitted", "expected"),
    [
        pytest.param({}, "GENERAL", id="default"),
        pytest.param({"task_type": "MIGRATION"}, "MIGRATION", id="named"),
        pytest.param({"task_type": "research"}, "RESEARCH", id="any-case"),
    ],
)
@pytest.mark.parametrize("form", ["json", "query"])
async def test_submit_takes_a_task_type_that_the_task_and_its_subtasks_carry(
    orchestrator_client: httpx.AsyncClient,
    orchestrator_repositories: Repositories,
    form: str,
    submitted: dict[str, str],
    expected: str,
) -> None:
    fields = {"description": TWO_STEP_TASK, **submitted}
    response = await (
        orchestrator_client.post("/tasks", json=fields)
        if form == "json"
        else orchestrator_client.post("/tasks", params=fields)
    )

    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]
    detail = await task_detail(orchestrator_client, task_id)
    assert detail["task"]["task_type"] == expected
    assert {subtask["task_type"] for subtask in detail["task"]["subtasks"]} == {expected}
    # The shared orchestrator has no agent: the queued first step waits, saying so, on itself and on its task.
    waiting = {"code": "no_live_agent", "message": "waiting: no live agent with DATABASE_OPERATIONS"}
    detail = await eventually(
        lambda: task_detail(orchestrator_client, task_id), lambda detail: detail["task"]["status_reason"] is not None
    )
    assert detail["task"]["status_reason"] == waiting
    assert [subtask["status_reason"] for subtask in detail["task"]["subtasks"]] == [waiting, None]
    [summary] = (await orchestrator_client.get("/tasks")).json()["tasks"]
    assert (summary["task_type"], summary["status_reason"]) == (expected, waiting)
    stored = await orchestrator_repositories.tasks.get_task(task_id)
    assert stored is not None and stored.task_type is TaskType(expected)


@pytest.mark.parametrize("form", ["json", "query"])
async def test_submit_refuses_an_unknown_task_type_naming_the_known_ones(
    orchestrator_client: httpx.AsyncClient, db: DatabaseManager, form: str
) -> None:
    fields = {"description": TWO_STEP_TASK, "task_type": "database_query"}
    response = await (
        orchestrator_client.post("/tasks", json=fields)
        if form == "json"
        else orchestrator_client.post("/tasks", params=fields)
    )

    assert_error(response, 400, "task_type", KNOWN_TYPES)
    assert await db.pool.fetchval("SELECT count(*) FROM tasks") == 0
