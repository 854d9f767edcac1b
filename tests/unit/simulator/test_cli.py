"""`python -m simulator` as a real process: it serves, logs, and refuses a bad scenario file clearly."""

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from simulator.request_log import read_request_log
from tests.unit.simulator.helpers import MODEL, PLAN_TOOL

ROOT = Path(__file__).parents[3]
DEMO = ROOT / "simulator" / "scenarios" / "demo.yaml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the simulator exited with {process.returncode}")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise TimeoutError(url)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port, log = _free_port(), tmp_path / "requests.jsonl"
    command = [sys.executable, "-m", "simulator", "--port", str(port), "--scenarios", str(DEMO)]
    command += ["--request-log", str(log), "--latency-ms", "5", "--log-level", "WARNING"]
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/hello", process)
        yield f"http://127.0.0.1:{port}", log
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_demo_plan_is_served(served: tuple[str, Path]) -> None:
    base_url, log = served
    body = {
        "model": MODEL,
        "max_tokens": 1000,
        "tools": [PLAN_TOOL],
        "tool_choice": {"type": "tool", "name": "submit_plan"},
        "messages": [{"role": "user", "content": "Task: Build the quarterly sales report"}],
    }
    answer = httpx.post(f"{base_url}/v1/messages", json=body).json()
    subtasks = answer["content"][0]["input"]["subtasks"]
    assert [subtask["dependencies"] for subtask in subtasks] == [[], ["s1"], ["s2"]]
    assert [entry["source"] for entry in read_request_log(log)] == ["plans[1] (sales-report)"]


def test_an_invalid_scenario_file_stops_the_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("plans:\n  - match: '('\n    plan: {}\n")
    finished = subprocess.run(
        [sys.executable, "-m", "simulator", "--scenarios", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert finished.returncode == 2
    assert "bad.yaml: plans[0].match: invalid regex '('" in finished.stderr
