"""Writes contracts/*.yaml from the services' OpenAPI, or with --check fails when they differ.

The contracts are committed; a change to an API shows up as a diff of its contract in review.
"""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from shared.config import Settings  # noqa: E402


def orchestrator_openapi() -> dict[str, Any]:
    from orchestrator.app import create_app

    return create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]


def agent_openapi() -> dict[str, Any]:
    from agent.app import create_app

    return create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]


CONTRACTS: dict[str, Callable[[], dict[str, Any]]] = {
    "orchestrator-api.yaml": orchestrator_openapi,
    "agent-api.yaml": agent_openapi,
}


def render(spec: dict[str, Any]) -> str:
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a committed contract differs")
    parser.add_argument("names", nargs="*", default=list(CONTRACTS), help="contract files to handle")
    args = parser.parse_args()
    stale = []
    for name in args.names:
        path = REPO_ROOT / "contracts" / name
        text = render(CONTRACTS[name]())
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO_ROOT)}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python scripts/export_contracts.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
