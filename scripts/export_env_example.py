"""Writes .env.example from the Settings class (every setting, its default and its description), or
with --check fails when the committed file differs. Settings is the single source of truth."""

import argparse
import json
import sys
from pathlib import Path

from pydantic_core import to_jsonable_python

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from shared.config import Settings  # noqa: E402

HEADER = """\
# Every setting of the system, with its default. Copy to .env and change what you need;
# the environment overrides .env. Unset ANTHROPIC_API_KEY = offline mode with the simulator.
# Generated from shared/config.py by scripts/export_env_example.py: edit the descriptions there.
"""
SECTIONS = {
    "anthropic_api_key": "Claude",
    "postgres_url": "Storage and transport",
    "max_retries": "Scheduling",
    "orchestrator_host": "Orchestrator",
    "agent_id": "Agent (one process per agent)",
    "streamlit_port": "Dashboard and logging",
}


def render_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(to_jsonable_python(value), separators=(",", ":"))
    return str(value)


def env_example() -> str:
    lines = [HEADER]
    for name, field in Settings.model_fields.items():
        if name in SECTIONS:
            lines.append(f"\n# --- {SECTIONS[name]} ---")
        lines.append(f"# {field.description}")
        lines.append(f"{name.upper()}={render_value(field.get_default(call_default_factory=True))}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if .env.example is out of date")
    path = REPO_ROOT / ".env.example"
    if parser.parse_args().check:
        if path.read_text() != env_example():
            print(".env.example is out of date; run python scripts/export_env_example.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(env_example())
    print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
