"""Checks a running fleet from the outside: submits three tasks, waits for them, prints what happened.

Usage: python scripts/test_system.py [--url http://localhost:8000] [--timeout 180] [--api-key KEY]
The API key defaults to ORCHESTRATOR_API_KEY, else the operator key scripts/start.sh keeps in .data/fleet/api-key.
Exit status 0 means every task completed.
"""

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

TASKS = [
    "Calculate factorial of 10",
    "Build the quarterly sales report",
    "Summarise in three bullet points why automated tests matter",
]
TERMINAL = {"completed", "failed", "cancelled"}
KEPT_API_KEY = Path(__file__).resolve().parent.parent / ".data" / "fleet" / "api-key"


def default_api_key() -> str | None:
    """ORCHESTRATOR_API_KEY, else the key scripts/start.sh keeps (a standalone script: no shared settings here)."""
    if os.environ.get("ORCHESTRATOR_API_KEY"):
        return os.environ["ORCHESTRATOR_API_KEY"]
    return KEPT_API_KEY.read_text().strip() if KEPT_API_KEY.is_file() else None


def submit(client: httpx.Client, description: str) -> str:
    response = client.post("/tasks", params={"description": description, "user_id": "test_system"})
    if response.status_code in (401, 403):
        sys.exit(
            f"POST /tasks answered {response.status_code}: {response.text}\n"
            "Pass --api-key, set ORCHESTRATOR_API_KEY, or start the fleet with scripts/start.sh (it keeps a key in "
            ".data/fleet/api-key)."
        )
    if response.status_code != 200:
        sys.exit(f"POST /tasks answered {response.status_code}: {response.text}")
    task_id: str = response.json()["task_id"]
    return task_id


def wait_for(client: httpx.Client, task_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    states: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        states = {task_id: client.get(f"/tasks/{task_id}").json() for task_id in task_ids}
        if all(state["task"]["status"] in TERMINAL for state in states.values()):
            break
        time.sleep(0.5)
    return states


def print_task(state: dict[str, Any]) -> None:
    task = state["task"]
    took = datetime.fromisoformat(task["updated_at"]) - datetime.fromisoformat(task["created_at"])
    result = task.get("result") or {}
    label = " (SIMULATED)" if result.get("simulated") else ""
    print(f"\n[{task['status'].upper()}] {task['description']}{label}")
    print(f"  id {task['id']}, {len(task['subtasks'])} subtask(s), {took.total_seconds():.2f}s from submit to end")
    for subtask in task["subtasks"]:
        agent = subtask.get("assigned_agent") or "-"
        print(f"  - {subtask['status']:<9} {agent:<7} attempt {subtask['attempt_count']}  {subtask['description']}")
    if task["status"] == "completed":
        print("  result:", (result.get("summary") or "").strip().replace("\n", "\n          "))
    elif task.get("error"):
        print("  error:", task["error"])


def print_utilization(client: httpx.Client, states: dict[str, dict[str, Any]]) -> None:
    per_agent: dict[str, list[float]] = {}
    for state in states.values():
        for result in state["subtask_results"]:
            per_agent.setdefault(result["agent_id"], []).append(result["execution_time"])
    agents = client.get("/agents").json()["agents"]
    print("\nAgents:")
    for agent in sorted(agents, key=lambda a: a["agent_id"]):
        times = per_agent.get(agent["agent_id"], [])
        print(
            f"  {agent['agent_id']:<7} {','.join(agent['capabilities']):<40} "
            f"subtasks here: {len(times)}  busy {sum(times):.2f}s  completed overall: {agent['tasks_completed']}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:8000", help="orchestrator URL")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the tasks")
    parser.add_argument("--api-key", default=default_api_key(), help="the orchestrator API key to send")
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    with httpx.Client(base_url=args.url, timeout=30, headers=headers) as client:
        health = client.get("/health")
        if health.status_code != 200:
            sys.exit(f"the orchestrator is not healthy: {health.text}")
        started = time.monotonic()
        task_ids = [submit(client, description) for description in TASKS]
        print(f"submitted {len(task_ids)} tasks")
        states = wait_for(client, task_ids, args.timeout)
        elapsed = time.monotonic() - started
        for state in states.values():
            print_task(state)
        print_utilization(client, states)
    completed = sum(state["task"]["status"] == "completed" for state in states.values())
    print(f"\n{completed}/{len(task_ids)} tasks completed in {elapsed:.1f}s")
    return 0 if completed == len(task_ids) else 1


if __name__ == "__main__":
    sys.exit(main())
