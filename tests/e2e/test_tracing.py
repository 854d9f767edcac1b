"""Trace ids end to end: two tasks through a real orchestrator and two agents on the SDK, and every JSON log line of
either service that is about one of them carries that task's trace id.

A line is about a task when its text names the task's id or one of its subtasks' ids. Lines about several tasks at
once (batch lines: the ids appear only inside a list, such as a heartbeat's `current_tasks`) name no single trace:
they are set apart, and must not carry a trace id of one of the tasks either.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.config import Settings
from shared.local_fleet import LocalFleet
from tests.e2e.conftest import api_client, e2e_scenarios, follow, sdk_fleet_environment, wait_for_agents
from tests.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.sdk]

# Between them the two cover the seed's three-step chain: DATABASE_OPERATIONS, DATA_ANALYSIS, FILE_PROCESSING.
AGENTS = {"agent3": "FILE_PROCESSING,DATABASE_OPERATIONS", "agent5": "DATA_ANALYSIS,DATABASE_OPERATIONS"}
TASKS = {
    # description -> the traceparent its client sends (None: the orchestrator makes the trace id)
    "Build the quarterly sales report": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "Calculate factorial of 10": None,
}
# What each service must have said about every task, under its trace id: a test that finds no line proves nothing.
ORCHESTRATOR_EVENTS = {"task_submitted", "subtask_dispatched", "result_applied"}
AGENT_EVENTS = {"subtask_accepted", "tool_called", "result_published"}

LogLine = dict[str, Any]


@pytest.fixture(scope="module")
def tracing_fleet(fleet_settings: Settings, fleet_settings_dir: Path) -> Iterator[LocalFleet]:
    """Simulator, orchestrator and two agents, logging JSON lines to files of their own."""
    with LocalFleet(sdk_fleet_environment(fleet_settings, fleet_settings_dir), fleet_settings_dir / "logs") as fleet:
        simulator = fleet.add_simulator(e2e_scenarios(fleet_settings_dir / "scenarios.yaml"))
        fleet.start("simulator")
        fleet.base_env["ANTHROPIC_BASE_URL"] = simulator.url
        fleet.add_orchestrator()
        for agent_id, capabilities in AGENTS.items():
            fleet.add_agent(agent_id, capabilities)
        fleet.start("orchestrator", *AGENTS)
        yield fleet


@pytest.fixture
async def api(tracing_fleet: LocalFleet) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(tracing_fleet) as client:
        await wait_for_agents(client, len(AGENTS))
        yield client


async def submit_traced(client: httpx.AsyncClient, description: str, traceparent: str | None) -> dict[str, Any]:
    headers = {"traceparent": traceparent} if traceparent else {}
    response = await client.post("/tasks", params={"description": description}, headers=headers)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    assert response.headers["x-request-id"] == created["trace_id"]
    return created


def read_lines(log_path: Path) -> list[tuple[str, LogLine | None]]:
    """Each line of a service's log, with its JSON object (None for a line that is not one)."""
    lines = []
    for text in log_path.read_text().splitlines():
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        lines.append((text, parsed if isinstance(parsed, dict) else None))
    return lines


def names_in_a_scalar(value: Any, ids: set[str]) -> bool:
    """Whether one of `ids` appears in the value outside any list of ids (a batch)."""
    if isinstance(value, str):
        return any(id_ in value for id_ in ids)
    if isinstance(value, dict):
        return any(names_in_a_scalar(item, ids) for item in value.values())
    return False  # a list names several things at once: a batch


def lines_about(service_lines: list[tuple[str, LogLine | None]], ids: set[str]) -> tuple[list[LogLine], list[str]]:
    """The lines about one task (each must be a JSON object), and the batch lines that name it among others."""
    about, batches = [], []
    for text, line in service_lines:
        if not any(id_ in text for id_ in ids):
            continue
        assert line is not None, f"a log line about the task is not JSON: {text}"
        if names_in_a_scalar(line, ids):
            about.append(line)
        else:
            batches.append(text)
    return about, batches


async def test_every_log_line_about_a_task_carries_its_trace_id(
    api: httpx.AsyncClient, tracing_fleet: LocalFleet
) -> None:
    created = await asyncio.gather(*(submit_traced(api, text, parent) for text, parent in TASKS.items()))
    finals = await asyncio.gather(*(follow(api, task["task_id"]) for task in created))
    tasks = {task["task_id"]: task["trace_id"] for task in created}
    subtask_ids = {}
    for state, _ in finals:
        task = state["task"]
        assert task["status"] == "completed", task["error"]
        assert task["trace_id"] == tasks[task["id"]] and {s["trace_id"] for s in task["subtasks"]} == {task["trace_id"]}
        subtask_ids[task["id"]] = {subtask["id"] for subtask in task["subtasks"]}
    assert tasks[created[0]["task_id"]] == "4bf92f3577b34da6a3ce929d0e0e4736"
    services = {"orchestrator": ["orchestrator"], "agents": list(AGENTS)}
    logs = {name: [tracing_fleet.services[s].log_path for s in members] for name, members in services.items()}

    async def agents_reported() -> list[tuple[str, LogLine | None]]:
        return [line for path in logs["agents"] for line in read_lines(path)]

    # The agent logs a published result just after the push the orchestrator may already have applied.
    published = sum(len(ids) for ids in subtask_ids.values())
    await eventually(agents_reported, lambda lines: sum('"result_published"' in t for t, _ in lines) >= published)

    for task_id, trace_id in tasks.items():
        ids = {task_id} | subtask_ids[task_id]
        for name, paths in logs.items():
            about, batches = lines_about([line for path in paths for line in read_lines(path)], ids)
            wrong = [line for line in about if line.get("trace_id") != trace_id]
            assert not wrong, f"{name}: lines about {task_id} without its trace id {trace_id}: {wrong}"
            assert not [text for text in batches if trace_id in text], f"{name}: a batch line took one task's trace"
            expected = ORCHESTRATOR_EVENTS if name == "orchestrator" else AGENT_EVENTS
            assert expected <= {line["event"] for line in about}, f"{name} said too little about {task_id}"
