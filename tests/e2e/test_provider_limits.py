"""A burst of 429s with retry-after during a 20-task run, on the whole fleet as real processes: the simulator as
Claude (its request log is the witness), the orchestrator, and five agents running the Claude Agent SDK CLI.

Every task completes; no attempt is spent on a 429 (each subtask ends on its first attempt, the fleet retries
nothing); and the fleet keeps to its limiter: after a 429 with retry-after R at t, no new session or decomposition
starts before t + R (sessions already admitted before t excepted), and no minute holds more starts than
PROVIDER_LIMITS allows.
"""

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import Settings
from shared.database import DatabaseManager
from shared.local_fleet import LocalFleet
from tests.e2e.conftest import api_client, follow, sdk_fleet_environment, submit, wait_for_agents

pytestmark = pytest.mark.e2e

MODEL = "claude-sonnet-5-5"  # the settings' default: decomposition and every role use it
REQUESTS_PER_MINUTE = 45
RETRY_AFTER_SECONDS = 5
BURST = {"name": "storm", "after": 26, "requests": 6, "error": {"status": 429, "retry_after": RETRY_AFTER_SECONDS}}
TASKS = 20
# What a start may take between the limiter's admission and its first request reaching the provider: the CLI's
# start-up (measured below) and the moment a 429's result takes to block the model, on a busy machine.
ADMISSION_SLACK_SECONDS = 1.0


def step(sid: str, capability: str, dependencies: list[str]) -> dict[str, Any]:
    return {
        "id": sid,
        "description": f"storm {sid} step",
        "required_capabilities": [capability],
        "dependencies": dependencies,
    }


# A mix of plans: one step, a chain of two, and a fan of two joined by a third.
PLANS = {
    "single": [step("s1", "DATA_ANALYSIS", [])],
    "chain": [step("s1", "DATABASE_OPERATIONS", []), step("s2", "CODE_GENERATION", ["s1"])],
    "fan": [
        step("s1", "DATA_ANALYSIS", []),
        step("s2", "DATABASE_OPERATIONS", []),
        step("s3", "CODE_GENERATION", ["s1", "s2"]),
    ],
}
SCENARIOS = {
    "plans": [{"match": f"storm task of kind {kind}", "plan": {"subtasks": steps}} for kind, steps in PLANS.items()],
    "subtasks": [{"match": "(?i)storm s\\d step", "turns": [{"final": "step done (simulated)"}]}],
    "bursts": [BURST],
}


@pytest.fixture(scope="module")
def limited_fleet(fleet_settings: Settings, fleet_settings_dir: Path) -> Iterator[tuple[LocalFleet, Path]]:
    scenarios = fleet_settings_dir / "storm.yaml"
    scenarios.write_text(yaml.safe_dump(SCENARIOS))
    request_log = fleet_settings_dir / "requests.jsonl"
    env = {
        **sdk_fleet_environment(fleet_settings, fleet_settings_dir),
        "PROVIDER_LIMITS": json.dumps({MODEL: {"requests_per_minute": REQUESTS_PER_MINUTE}}),
        "RECOVERY_INTERVAL_SECONDS": "0.5",
    }
    with LocalFleet(env, fleet_settings_dir / "logs") as fleet:
        fleet.start_seed_fleet(scenarios, request_log)
        yield fleet, request_log


def starts(requests: list[dict[str, Any]]) -> list[tuple[datetime, dict[str, Any]]]:
    """Requests that start a session (no assistant turn yet) or a decomposition (the forced plan tool), by time."""
    started = [
        (datetime.fromisoformat(entry["timestamp"]), entry)
        for entry in requests
        if not entry["path"].startswith("/v1/messages/count_tokens")  # the estimates' counting: no model call
        and not any(message["role"] == "assistant" for message in entry["messages"])
    ]
    return sorted(started, key=lambda pair: pair[0])


async def test_a_burst_of_429s_spends_no_attempt_and_the_fleet_keeps_to_the_limiter(
    limited_fleet: tuple[LocalFleet, Path], fleet_database: DatabaseManager
) -> None:
    fleet, request_log = limited_fleet
    kinds = list(PLANS)
    async with api_client(fleet) as api:
        await wait_for_agents(api, 5)
        task_ids = [await submit(api, f"Run storm task of kind {kinds[n % 3]} number {n}") for n in range(TASKS)]
        finals = await asyncio.gather(*(follow(api, task_id, timeout=150) for task_id in task_ids))
        metrics = (await api.get("/metrics", headers={"Accept": "text/plain"})).text

    assert [state["task"]["status"] for state, _ in finals] == ["completed"] * TASKS
    assert not any(state["task"]["decomposition_fallback"] for state, _ in finals)
    subtasks = [subtask for state, _ in finals for subtask in state["task"]["subtasks"]]
    assert {subtask["attempt_count"] for subtask in subtasks} == {1}  # no attempt spent on a 429
    assert 'fleet_retries_total{reason="rate_limited"}' not in metrics and "fleet_retries_total{" not in metrics

    requests = [json.loads(line) for line in request_log.read_text().splitlines()]
    limited = [entry for entry in requests if entry["status"] == 429]
    assert len(limited) == BURST["requests"]
    # Every 429 made its work wait, none failed it: an attempt's is recorded as its provider wait, a planning's
    # deferred its task. (The other waits are the limiter holding attempts back: no request was made for them.)
    waits_on_429 = await fleet_database.pool.fetchval(
        """SELECT count(*) FROM subtask_results
           WHERE task_id = ANY ($1::text[]) AND provider_wait ->> 'kind' = 'rate_limited' AND error LIKE '%429%'""",
        task_ids,
    )
    plannings_limited = sum(1 for entry in limited if entry["tool_choice"])
    assert waits_on_429 + plannings_limited == BURST["requests"]

    slack = await admission_slack(fleet_database, task_ids)
    started = starts(requests)
    for at in (datetime.fromisoformat(entry["timestamp"]) for entry in limited):
        early = [
            s
            for s_at, s in started
            if at + timedelta(seconds=slack) < s_at < at + timedelta(seconds=RETRY_AFTER_SECONDS)
        ]
        assert early == [], f"{len(early)} start(s) within the retry-after of the 429 at {at}"
    window = timedelta(seconds=60 - slack)  # admissions in any 60 s are capped; their arrivals spread by the slack
    for at, _ in started:
        assert sum(1 for s_at, _ in started if at <= s_at < at + window) <= REQUESTS_PER_MINUTE


async def admission_slack(db: DatabaseManager, task_ids: list[str]) -> float:
    """The longest CLI start-up of the run's attempts (agent_logs), plus the slack of a busy machine."""
    rows = await db.pool.fetch(
        "SELECT metadata FROM agent_logs WHERE task_id = ANY ($1::text[]) AND message = 'subtask completed'", task_ids
    )
    startups = [
        float(row["metadata"]["cli_startup_seconds"]) for row in rows if "cli_startup_seconds" in row["metadata"]
    ]
    assert startups, "no attempt recorded its CLI start-up"
    return max(startups) + ADMISSION_SLACK_SECONDS
