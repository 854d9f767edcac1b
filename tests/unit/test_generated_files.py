"""Files generated from the code must be committed as generated, so they cannot drift from it."""

import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_env_example_is_up_to_date() -> None:
    check = subprocess.run(
        [sys.executable, "scripts/export_env_example.py", "--check"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_setting_is_documented_in_env_example(name: str) -> None:
    lines = (REPO_ROOT / ".env.example").read_text().splitlines()
    assert any(line.startswith(f"{name.upper()}=") for line in lines)
    assert Settings.model_fields[name].description, f"{name} needs a description for .env.example"
