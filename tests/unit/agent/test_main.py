"""`python -m agent` without FLEET_SECRET stops before it serves, saying in one line how to set it."""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_an_agent_without_a_fleet_secret_does_not_start(tmp_path: Path) -> None:
    environment = {name: value for name, value in os.environ.items() if name != "FLEET_SECRET"}
    environment |= {"AGENT_EXECUTOR": "stub", "AGENT_PORT": "8016", "PYTHONPATH": str(REPO_ROOT)}

    run = subprocess.run(
        [sys.executable, "-m", "agent"], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60
    )

    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("invalid configuration: FLEET_SECRET is not set")
    assert "scripts/start.sh generates one" in run.stderr and "Traceback" not in run.stderr
