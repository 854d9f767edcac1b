"""Submits tasks to a running fleet, or waits for tasks to complete: scripts/test_containers.sh's restart check.

  fleet_tasks.py --url URL submit N          submits N tasks, prints their ids one a line
  fleet_tasks.py --url URL wait [--timeout S] ID...   exit 0 when every task completed

The API key comes from ORCHESTRATOR_API_KEY. Submitting and waiting are scripts/test_system.py's own.
"""

import argparse
import os
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from test_system import TASKS, submit, wait_for


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("submit").add_argument("count", type=int)
    waiting = commands.add_parser("wait")
    waiting.add_argument("--timeout", type=float, default=300.0)
    waiting.add_argument("task_ids", nargs="+")
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {os.environ['ORCHESTRATOR_API_KEY']}"}
    with httpx.Client(base_url=args.url, timeout=30, headers=headers) as client:
        if args.command == "submit":
            for index in range(args.count):
                print(submit(client, TASKS[index % len(TASKS)]))
            return 0
        states = wait_for(client, args.task_ids, args.timeout)
    statuses = {task_id: state["task"]["status"] for task_id, state in states.items()}
    for task_id, status in statuses.items():
        print(f"  {status:<10} {task_id}", file=sys.stderr)
    completed = sum(status == "completed" for status in statuses.values())
    print(f"{completed}/{len(statuses)} tasks submitted around the restarts completed", file=sys.stderr)
    return 0 if completed == len(statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
