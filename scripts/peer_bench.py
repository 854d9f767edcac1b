"""The peers `scripts/bench.py --peers` runs between its own rounds: Celery and dramatiq from ../shared/bench-peers/,
on the same noop work (200 chains of 5 dependent tasks, and an idle chain), so that only ratios measured in one run
are compared: these machines change speed 2-3x from one day to the next.

The peers run as their folder's README says: their own virtualenv (created here when missing, with the versions the
README pins) and a private Redis and PostgreSQL (`services.sh`, started here when they do not answer, and stopped
again at the end). Their figures come from the JSON lines `run_peers.sh` writes.
"""

import json
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

PEERS = ("dramatiq", "celery-prefork")
PEER_VENV = Path("/tmp/perf-venv")  # where run_peers.sh looks for the peers
PEER_PACKAGES = ["celery[redis]==5.7.0", "redis==8.1.0", "hiredis", "dramatiq[redis]==2.2.1", "asyncpg==0.32.0"]
PEER_REDIS = ("127.0.0.1", 56479)  # services.sh's private Redis
PEER_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class PeerFigures:
    peer: str
    dag_per_s: float  # chained tasks completed per second
    idle_hop_ms: float  # one step of an idle chain


def answers(address: tuple[str, int]) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(address) == 0


class Peers:
    """The peers' services for the length of a `with` block; `run_round()` runs each peer once."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._out = Path(tempfile.mkdtemp(prefix="bench-peers-"))
        self._started_services = False

    def __enter__(self) -> "Peers":
        if not (self._folder / "run_peers.sh").is_file():
            sys.exit(f"no peers at {self._folder}: pass the bench-peers folder with --peers-dir")
        if not (PEER_VENV / "bin" / "celery").exists():
            print(f"creating the peers' virtualenv at {PEER_VENV} ({', '.join(PEER_PACKAGES)})", flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
            subprocess.run([PEER_VENV / "bin" / "pip", "install", "-q", *PEER_PACKAGES], check=True)
        if not answers(PEER_REDIS):
            subprocess.run([self._folder / "services.sh", "start"], check=True, stdout=subprocess.DEVNULL)
            self._started_services = True
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._started_services:
            subprocess.run([self._folder / "services.sh", "stop"], check=False, stdout=subprocess.DEVNULL)

    def run_round(self) -> list[PeerFigures]:
        """Each peer once, one after the other (run_peers.sh starts and stops each one's workers)."""
        results = self._out / "results" / "peers.jsonl"
        seen = len(results.read_text().splitlines()) if results.exists() else 0
        subprocess.run(
            [self._folder / "run_peers.sh", *PEERS],
            env={"ROUNDS": "1", "BENCH_PEERS_OUT": str(self._out), "PATH": "/usr/bin:/bin"},
            check=False,
            stderr=subprocess.DEVNULL,
            timeout=PEER_TIMEOUT_SECONDS,
        )
        lines = results.read_text().splitlines()[seen:] if results.exists() else []
        figures = [json.loads(line) for line in lines]
        missing = set(PEERS) - {line["peer"] for line in figures}
        if missing:
            print(f"  peers that failed this round: {', '.join(sorted(missing))} (logs: {self._out}/logs)")
        return [PeerFigures(line["peer"], line["dag_per_s"], line["idle_hop_ms"]) for line in figures]
