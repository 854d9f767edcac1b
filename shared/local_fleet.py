"""The fleet as real local processes on free ports: what the end-to-end tests and the benchmark run.

Each service is `python -m <package>` with its settings in the environment, a log file of its own,
and a health URL that is polled until it answers. Stopping sends SIGTERM (the graceful path the
services implement) and SIGKILL only after a grace period; `kill()` is the crash a test can inflict.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from shared.seed_fleet import SEED_FLEET as SEED_CAPABILITIES

REPO_ROOT = Path(__file__).resolve().parent.parent
# The seed's fleet: agent id -> capabilities (scripts/start.sh and docker-compose.yml run the same five).
SEED_FLEET = {agent_id: ",".join(capabilities) for agent_id, capabilities in SEED_CAPABILITIES.items()}
HEALTH_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServiceProcess:
    name: str
    module: str
    port: int
    health_path: str
    env: dict[str, str]
    log_path: Path
    arguments: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.arguments],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            try:
                if httpx.get(self.url + self.health_path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} was not healthy within {timeout:.0f} s; see {self.log_path}")

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL: the process dies without any chance to clean up, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def fleet_environment(postgres_url: str, redis_url: str, tenant_id: str, work_dir: Path) -> dict[str, str]:
    """What every local fleet shares: its storage, its own tenant, workspace and FLEET_SECRET, and agents on any
    free port."""
    return {
        "FLEET_SECRET": secrets.token_urlsafe(32),
        "POSTGRES_URL": postgres_url,
        "REDIS_URL": redis_url,
        "TENANT_ID": tenant_id,
        "AGENT_CLAUDE_CONFIG_ROOT": str(work_dir / "claude"),
        "SHARED_FILES_DIR": str(work_dir / "shared_files"),
        "ARTIFACTS_DIR": str(work_dir / "artifacts"),
        "AGENT_PORT_MIN": "1024",
        "AGENT_PORT_MAX": "65535",
        "CLAUDE_SIMULATED": "true",
    }


class LocalFleet:
    """A set of service processes sharing one base environment (database, Redis, tenant, Claude endpoint)."""

    def __init__(self, base_env: dict[str, str], log_dir: Path) -> None:
        inherited = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
        # Bytecode caching stays on: without it every start compiles the SDKs' sources again (seconds each).
        self.base_env = {**inherited, "PYTHONPATH": str(REPO_ROOT), "LOG_JSON": "true", **base_env}
        self.log_dir = log_dir
        self.services: dict[str, ServiceProcess] = {}
        # An operator key of the fleet's tenant, made when its orchestrator first starts: what its callers send.
        self.api_key = ""

    def add(
        self,
        name: str,
        module: str,
        *,
        port: int,
        health_path: str,
        env: dict[str, str] | None = None,
        arguments: list[str] | None = None,
    ) -> ServiceProcess:
        service = ServiceProcess(
            name=name,
            module=module,
            port=port,
            health_path=health_path,
            env={**self.base_env, **(env or {})},
            log_path=self.log_dir / f"{name}.log",
            arguments=arguments or [],
        )
        self.services[name] = service
        return service

    def add_simulator(self, scenarios: Path, request_log: Path | None = None) -> ServiceProcess:
        port = free_port()
        arguments = ["--host", "127.0.0.1", "--port", str(port), "--scenarios", str(scenarios)]
        if request_log is not None:
            arguments += ["--request-log", str(request_log)]
        return self.add("simulator", "simulator", port=port, health_path="/api/hello", arguments=arguments)

    def add_orchestrator(self, env: dict[str, str] | None = None) -> ServiceProcess:
        port = free_port()
        orchestrator_env = {"ORCHESTRATOR_HOST": "127.0.0.1", "ORCHESTRATOR_PORT": str(port)}
        return self.add(
            "orchestrator", "orchestrator", port=port, health_path="/health", env={**orchestrator_env, **(env or {})}
        )

    def add_agent(self, agent_id: str, capabilities: str, env: dict[str, str] | None = None) -> ServiceProcess:
        port = free_port()
        agent_env = {
            "AGENT_ID": agent_id,
            "AGENT_HOST": "127.0.0.1",
            "AGENT_PORT": str(port),
            "AGENT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "AGENT_CAPABILITIES": capabilities,
        }
        return self.add(agent_id, "agent", port=port, health_path="/health", env={**agent_env, **(env or {})})

    def start_seed_fleet(self, scenarios: Path, request_log: Path | None = None) -> None:
        """Simulator (as Claude, with `scenarios`, logging each request to `request_log` if given), orchestrator and
        the seed's five agents, all healthy."""
        simulator = self.add_simulator(scenarios, request_log)
        self.start("simulator")
        self.base_env["ANTHROPIC_BASE_URL"] = simulator.url
        self.add_orchestrator()
        for agent_id, capabilities in SEED_FLEET.items():
            self.add_agent(agent_id, capabilities)
        self.start("orchestrator", *SEED_FLEET)

    def create_api_key(self, scope: str = "operator") -> str:
        """A new key of the fleet's tenant, made as an operator makes one: `python -m orchestrator api-keys create`."""
        tenant = self.base_env["TENANT_ID"]
        command = ["api-keys", "create", "--tenant", tenant, "--name", "local-fleet", "--scope", scope]
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", *command],
            cwd=REPO_ROOT,
            env=self.base_env,
            capture_output=True,
            text=True,
            timeout=HEALTH_TIMEOUT_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"api-keys create failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        return done.stdout.splitlines()[-1]

    def start(self, *names: str) -> None:
        """Start the named services (all when none are named) and wait until each answers its health check."""
        selected = [self.services[name] for name in names] if names else list(self.services.values())
        for service in selected:
            service.start()
        for service in selected:
            service.wait_healthy()
        if not self.api_key and any(service.module == "orchestrator" for service in selected):
            self.api_key = self.create_api_key()  # what the fleet's callers (tests, the benchmark) send

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()

    def __enter__(self) -> "LocalFleet":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
