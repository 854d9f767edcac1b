"""Submits tasks to a running fleet, or waits for tasks to complete: scripts/test_containers.sh's restart check.

  fleet_tasks.py --url URL submit N          submits N tasks, prints their ids one a line
  fleet_tasks.py --url URL wait [--timeout S] ID...   exit 0 when every task completed
  fleet_tasks.py --url URL sandbox [--timeout S]     exit 0 when a code agent ran a program in its sandbox

The API key comes from ORCHESTRATOR_API_KEY. Submitting and waiting are scripts/test_system.py's own.
"""

import argparse
import os
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from test_system import TASKS, submit, wait_for

# The demo scenario's code task: the agent writes slugify.py, runs it with run_command, and its answer quotes what
# the program printed, or the tool's error.
SANDBOX_TASK = "Write and check a slugify function"
SANDBOX_OUTPUT = "slugify self-check passed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("submit").add_argument("count", type=int)
    waiting = commands.add_parser("wait")
    waiting.add_argument("--timeout", type=float, default=300.0)
    waiting.add_argument("task_ids", nargs="+")
    commands.add_parser("sandbox").add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {os.environ['ORCHESTRATOR_API_KEY']}"}
    with httpx.Client(base_url=args.url, timeout=30, headers=headers) as client:
        if args.command == "submit":
            for index in range(args.count):
                print(submit(client, TASKS[index % len(TASKS)]))
            return 0
        if args.command == "sandbox":
            return sandbox_check(client, args.timeout)
        states = wait_for(client, args.task_ids, args.timeout)
    statuses = {task_id: state["task"]["status"] for task_id, state in states.items()}
    for task_id, status in statuses.items():
        print(f"  {status:<10} {task_id}", file=sys.stderr)
    completed = sum(status == "completed" for status in statuses.values())
    print(f"{completed}/{len(statuses)} tasks submitted around the restarts completed", file=sys.stderr)
    return 0 if completed == len(statuses) else 1


def sandbox_check(client: httpx.Client, timeout: float) -> int:
    task_id = submit(client, SANDBOX_TASK)
    task = wait_for(client, [task_id], timeout)[task_id]["task"]
    summary = (task.get("result") or {}).get("summary") or task.get("error") or ""
    print(f"  {task['status']:<10} {task_id}: {summary.strip()}", file=sys.stderr)
    return 0 if task["status"] == "completed" and SANDBOX_OUTPUT in summary else 1


if __name__ == "__main__":
    sys.exit(main())
