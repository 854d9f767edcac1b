"""Benchmark of the fleet on this machine; prints figures, asserts nothing.

Starts its own fleet as real processes (simulator, orchestrator, five agents on the stub executor, or on
the Claude Agent SDK for the sdk figures) against a fresh benchmark database and Redis database, then measures:

  idle hop     one 1-subtask task at a time: persisted -> completed (submit -> completed minus Claude's
               decomposition time), median and p99; and one 5-step chain at a time, per step (as the peers measure)
  throughput   tasks of 5 chained subtasks submitted at once -> subtasks completed per second
  api          POST /tasks p50/p95 at 20 concurrent clients, GET /tasks/{id} p50/p95 at 50
  sdk          the factorial task through the real Claude Agent SDK CLI against the simulator, with CLIs
               started per attempt (cold) and kept warm (AGENT_WARM_CLIS_PER_ROLE): wall time, how much of it
               the agent's SDK run took (and of that, the CLI's start-up and its wait on the model), the agent's
               overhead over the model's own time, CPU seconds per attempt (agents and their CLIs), and peak RSS
               of the orchestrator and the agents (with their CLI children) idle and running

  --peers      idle and throughput interleaved with Celery and dramatiq (../shared/bench-peers, scripts/peer_bench.py)
               for --rounds rounds, and a table of the ratios: the only figures worth comparing across days

With --history N, N subtasks of earlier work (N/5 completed tasks of 5 chained subtasks, each with its applied
result, agent logs and ledger rows) are stored first and analyzed, so the figures show what history costs.

Usage: python scripts/bench.py [--only idle,throughput,api,sdk] [--hops 200] [--chains 200] [--peers [--rounds 2]]
       [--history 0] [--sdk-modes cold,warm] [--sdk-runs 10]
Needs PostgreSQL and Redis (BENCH_POSTGRES_URL, BENCH_REDIS_URL; scripts/start.sh or test.sh can start them).
"""

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from peer_bench import PEERS, PeerFigures, Peers  # noqa: E402  (beside this script)

from shared.local_fleet import SEED_FLEET, LocalFleet, ServiceProcess, fleet_environment  # noqa: E402

CHAIN_CAPABILITIES = ["DATABASE_OPERATIONS", "DATA_ANALYSIS", "CODE_GENERATION", "FILE_PROCESSING", "API_INTEGRATION"]
TERMINAL = {"completed", "failed", "cancelled"}


def bench_scenarios() -> dict[str, Any]:
    chain = [
        {
            "id": f"s{n}",
            "description": f"bench step {n}",
            "required_capabilities": [capability],
            "dependencies": [f"s{n - 1}"] if n > 1 else [],
        }
        for n, capability in enumerate(CHAIN_CAPABILITIES, start=1)
    ]
    single = [{"id": "s1", "description": "bench hop", "required_capabilities": ["DATA_ANALYSIS"], "dependencies": []}]
    demo = yaml.safe_load((REPO_ROOT / "simulator/scenarios/demo.yaml").read_text())
    return {
        "plans": [
            {"match": "bench chain", "plan": {"subtasks": chain}},
            {"match": "bench hop", "plan": {"subtasks": single}},
            *demo["plans"],
        ],
        "subtasks": demo["subtasks"],
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def describe(values: list[float], unit: str = "ms") -> str:
    return (
        f"p50 {percentile(values, 0.5):.2f} {unit}, p95 {percentile(values, 0.95):.2f} {unit}, "
        f"p99 {percentile(values, 0.99):.2f} {unit} (n={len(values)})"
    )


async def recreate_database(postgres_url: str) -> None:
    base, _, name = postgres_url.rpartition("/")
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


@contextmanager
def fleet(
    args: argparse.Namespace, executor: str, work_dir: Path, env: dict[str, str] | None = None
) -> Iterator[LocalFleet]:
    work_dir.mkdir(parents=True, exist_ok=True)
    scenarios = work_dir / "bench-scenarios.yaml"
    scenarios.write_text(yaml.safe_dump(bench_scenarios()))
    base_env = {
        **fleet_environment(args.postgres_url, args.redis_url, f"bench{os.getpid()}", work_dir),
        "MAX_QUEUE_DEPTH": "100000",
        "AGENT_EXECUTOR": executor,
        "AGENT_CONCURRENCY": str(args.agent_concurrency if executor == "stub" else 1),
        "LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    with LocalFleet(base_env, work_dir / "logs") as local:
        local.start_seed_fleet(scenarios)
        yield local


class OrchestratorClient:
    """The orchestrator API over aiohttp: at 50 concurrent requests httpx's own CPU would be most of what is
    measured, on the same two cores as the fleet."""

    def __init__(self, fleet: LocalFleet, timeout: float) -> None:
        self._base_url = fleet.services["orchestrator"].url
        self._headers = {"Authorization": f"Bearer {fleet.api_key}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def __aenter__(self) -> "OrchestratorClient":
        self._session = aiohttp.ClientSession(self._base_url, headers=self._headers, timeout=self._timeout)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._session.close()

    async def request(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        async with self._session.request(method, path, params=params) as response:
            response.raise_for_status()
            return await response.json()

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await self.request("GET", path, params)

    async def post(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await self.request("POST", path, params)


async def submit(client: OrchestratorClient, description: str, user_id: str = "bench") -> str:
    created = await client.post("/tasks", params={"description": description, "user_id": user_id})
    task_id: str = created["task_id"]
    return task_id


async def wait_ended(client: OrchestratorClient, task_id: str, poll: float = 0.01) -> dict[str, Any]:
    # The hop is timed by the server's own timestamps, so polling faster adds nothing but load on the server.
    while True:
        task: dict[str, Any] = (await client.get(f"/tasks/{task_id}"))["task"]
        if task["status"] in TERMINAL:
            return task
        await asyncio.sleep(poll)


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


async def idle_task_ms(client: OrchestratorClient, description: str) -> float:
    """One task submitted on an idle fleet: stored -> completed, less Claude's decomposition time."""
    task = await wait_ended(client, await submit(client, description))
    assert task["status"] == "completed", task
    total_ms = seconds_between(task["created_at"], task["updated_at"]) * 1000
    return float(total_ms - task["decomposition"]["duration_ms"])


async def measure_idle_hop(client: OrchestratorClient, hops: int) -> list[float]:
    samples = [await idle_task_ms(client, "bench hop: one step") for _ in range(hops)]
    print(f"idle hop (stored -> completed):   {describe(samples)}")
    return samples


async def measure_idle_chain_step(client: OrchestratorClient, chains: int) -> list[float]:
    """As the peers measure their idle hop: a chain of five steps on an idle fleet, divided by five."""
    steps = len(CHAIN_CAPABILITIES)
    samples = [await idle_task_ms(client, "bench chain of five steps") / steps for _ in range(chains)]
    print(f"idle chain, per step:             {describe(samples)} (chains of {steps}, as the peers measure)")
    return samples


async def gather_limited(count: int, concurrency: int, make: Callable[[int], Awaitable[Any]]) -> list[Any]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(index: int) -> Any:
        async with semaphore:
            return await make(index)

    return await asyncio.gather(*(one(index) for index in range(count)))


async def wait_for_user_tasks(client: OrchestratorClient, user_id: str, count: int) -> None:
    """Until `count` tasks of the user have completed; exits if any failed.

    Timings come from the tasks' own timestamps, so a slow poll costs no accuracy, and it keeps the bench's
    listing queries from being part of the load it measures.
    """
    while True:
        completed = await client.get("/tasks", params={"user_id": user_id, "status": "completed", "limit": 1})
        if completed["total"] >= count:
            return
        failed = await client.get("/tasks", params={"user_id": user_id, "status": "failed", "limit": 1})
        if failed["total"]:
            sys.exit(f"{failed['total']} benchmark tasks of {user_id} failed")
        await asyncio.sleep(0.1)


async def last_completion(postgres_url: str, user_id: str) -> datetime:
    """When the user's last task ended, by the database's clock (this machine's)."""
    connection = await asyncpg.connect(postgres_url)
    try:
        ended: datetime = await connection.fetchval("SELECT max(updated_at) FROM tasks WHERE user_id = $1", user_id)
    finally:
        await connection.close()
    return ended


class CpuAccount:
    """CPU seconds each group of processes (and the whole machine) spent between enter and exit.

    Groups are looked up again at exit, so a process that started meanwhile (a new PostgreSQL backend) counts
    with all it spent; one that ended meanwhile is lost.
    """

    def __init__(self, groups: Callable[[], dict[str, list[int]]]) -> None:
        self._groups = groups
        self.spent: dict[str, float] = {}

    @staticmethod
    def _machine() -> float:
        times = psutil.cpu_times()
        return float(times.user + times.system + times.softirq)

    def _per_process(self) -> dict[str, dict[int, float]]:
        return {name: {pid: _cpu_seconds(pid) for pid in pids} for name, pids in self._groups().items()}

    def __enter__(self) -> "CpuAccount":
        self._machine_started, self._started = self._machine(), self._per_process()
        return self

    def __exit__(self, *_: object) -> None:
        self.spent = {"machine": self._machine() - self._machine_started}
        for name, ended in self._per_process().items():
            started = self._started.get(name, {})
            self.spent[name] = sum(seconds - started.get(pid, 0.0) for pid, seconds in ended.items())

    def per_item(self, count: int) -> str:
        return ", ".join(f"{name} {seconds / count * 1000:.2f}" for name, seconds in self.spent.items())


def _cpu_seconds(pid: int) -> float:
    try:
        return float(sum(psutil.Process(pid).cpu_times()[:2]))
    except psutil.NoSuchProcess:
        return 0.0


def fleet_cpu_groups(local: LocalFleet) -> Callable[[], dict[str, list[int]]]:
    """The fleet's processes by group, and the local PostgreSQL and Redis servers (whatever else they serve)."""

    def groups() -> dict[str, list[int]]:
        servers: dict[str, list[int]] = {"postgres": [], "redis": []}
        for process in psutil.process_iter(["name"]):
            name = process.info["name"] or ""
            if name == "postgres" or name.startswith("redis-server"):
                servers["postgres" if name == "postgres" else "redis"].append(process.pid)
        return {
            "orchestrator": [local.services["orchestrator"].pid],
            "agents": [service.pid for name, service in local.services.items() if name in SEED_FLEET],
            "simulator": [local.services["simulator"].pid],
            "bench client": [os.getpid()],
            **servers,
        }

    return groups


async def measure_throughput(
    client: OrchestratorClient, chains: int, cpu_groups: Callable[[], dict[str, list[int]]], postgres_url: str
) -> float:
    with CpuAccount(cpu_groups) as cpu:
        started, started_at = time.perf_counter(), datetime.now(UTC)
        task_ids = await gather_limited(chains, 20, lambda _: submit(client, "bench chain of five steps", "chains"))
        submitted = time.perf_counter() - started
        await wait_for_user_tasks(client, "chains", chains)
    elapsed = (await last_completion(postgres_url, "chains") - started_at).total_seconds()
    subtasks = len(task_ids) * len(CHAIN_CAPABILITIES)
    print(
        f"throughput:                       {subtasks / elapsed:.0f} subtasks/s "
        f"({subtasks} subtasks in {len(task_ids)} chains, {elapsed:.2f} s; submitting took {submitted:.2f} s)"
    )
    print(f"  CPU ms per subtask:             {cpu.per_item(subtasks)}")
    return subtasks / elapsed


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def measure_api(client: OrchestratorClient) -> None:
    posts = await gather_limited(
        400,
        20,
        lambda _: timed(lambda: client.post("/tasks", params={"description": "bench hop api", "user_id": "api"})),
    )
    print(f"POST /tasks at 20 concurrent:     {describe(posts)} (each task then runs on the agents)")
    await wait_for_user_tasks(client, "api", len(posts))
    task_id = await submit(client, "bench chain for reads")
    await wait_ended(client, task_id)
    gets = await gather_limited(2000, 50, lambda _: timed(lambda: client.get(f"/tasks/{task_id}")))
    print(f"GET /tasks/{{id}} at 50 concurrent: {describe(gets)} (a finished 5-subtask task, nothing else running)")


class PeakRss:
    """Samples the RSS of a process and its children (the agent's CLI) in a background thread."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                total = self._process.memory_info().rss
                total += sum(child.memory_info().rss for child in self._process.children(recursive=True))
            except psutil.Error:
                total = 0
            self.peak = max(self.peak, total)
            time.sleep(0.02)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def mib(value: int) -> str:
    return f"{value / 2**20:.0f} MiB"


async def sdk_time_split(postgres_url: str, task_ids: list[str]) -> list[dict[str, float]]:
    """Per subtask: the agent's run, the CLI's start-up and its time waiting on the model, from the results and the
    agents' completion logs."""
    connection = await asyncpg.connect(postgres_url)
    try:
        for _ in range(50):  # agents write their logs in batches, a moment after the result
            rows = await connection.fetch(
                "SELECT r.execution_time AS run, (l.metadata->>'cli_startup_seconds')::float AS startup,"
                " (l.metadata->>'model_api_seconds')::float AS api"
                " FROM agent_logs l JOIN subtask_results r ON r.subtask_id = l.subtask_id"
                " WHERE l.task_id = ANY($1::text[]) AND l.message = 'subtask completed'",
                task_ids,
            )
            if len(rows) >= len(task_ids):
                break
            await asyncio.sleep(0.1)
    finally:
        await connection.close()
    return [dict(row) for row in rows]


def claude_children(pid: int) -> list[psutil.Process]:
    try:
        return [child for child in psutil.Process(pid).children(recursive=True) if child.name() == "claude"]
    except psutil.NoSuchProcess:
        return []


def tree_cpu_seconds(pid: int) -> float:
    """CPU the process, its live descendants and the children it has reaped (CLIs that served and ended) spent."""
    try:
        process = psutil.Process(pid)
        times = process.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += sum(child.cpu_times()[:2])
        return float(total)
    except psutil.NoSuchProcess:
        return 0.0


def roles_served(agent: ServiceProcess) -> int:
    return len(SEED_FLEET[agent.name].split(","))


async def warmed_up(agents: list[ServiceProcess], warm: bool, timeout: float = 120.0) -> float:
    """Wait until each agent runs its warm CLIs (one per role), if `warm`; the mean CPU one took to start."""
    async with asyncio.timeout(timeout):
        # Other processes' children: nothing to await but their count.
        while warm and any(len(claude_children(agent.pid)) < roles_served(agent) for agent in agents):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # started is not yet ready: the CLI answers the SDK's initialize a moment later
    clis = [cli for agent in agents for cli in claude_children(agent.pid)]
    return sum(sum(cli.cpu_times()[:2]) for cli in clis) / len(clis) if clis else 0.0


async def measure_sdk(
    client: OrchestratorClient,
    orchestrator: ServiceProcess,
    agents: list[ServiceProcess],
    postgres_url: str,
    mode: str,
    runs: int,
) -> None:
    warm_per_agent = roles_served(agents[0]) if mode == "warm" else 0  # one CLI per role (capability), 1 slot
    startup_cpu = await warmed_up(agents, mode == "warm")
    with PeakRss(orchestrator.pid) as orchestrator_idle, PeakRss(agents[0].pid) as agent_idle:
        await asyncio.sleep(1.0)
    walls, runs_seen, task_ids = [], [], []
    agent_peaks = [PeakRss(agent.pid) for agent in agents]
    cpu_before = sum(tree_cpu_seconds(agent.pid) for agent in agents)
    with PeakRss(orchestrator.pid) as orchestrator_busy, contextlib.ExitStack() as stack:
        for peak in agent_peaks:
            stack.enter_context(peak)
        for _ in range(runs):
            started = time.perf_counter()
            task = await wait_ended(client, await submit(client, "Calculate factorial of 10"), poll=0.01)
            walls.append(time.perf_counter() - started)
            assert task["status"] == "completed", task
            task_ids.append(task["id"])
            detail = await client.get(f"/tasks/{task['id']}")
            runs_seen.append(sum(result["execution_time"] for result in detail["subtask_results"]))
    cpu_per_attempt = (sum(tree_cpu_seconds(agent.pid) for agent in agents) - cpu_before) / runs
    split = await sdk_time_split(postgres_url, task_ids)
    median = statistics.median
    print(f"[{mode}] SDK factorial task, wall:    median {median(walls):.3f} s over {len(walls)} runs")
    print(f"  of which the agent's SDK run:   median {median(runs_seen):.3f} s (CLI start-up + 2 model turns)")
    startup, model = median(row["startup"] for row in split), median(row["api"] for row in split)
    print(f"  of which CLI start-up:          median {startup:.3f} s (until its first message)")
    print(f"  of which waiting on the model:  median {model:.3f} s (the CLI's API time; the simulator answers)")
    overhead = [row["run"] - row["api"] for row in split]
    overhead_line = f"median {median(overhead):.3f} s, max {max(overhead):.3f} s per subtask"
    print(f"  agent overhead over the model:  {overhead_line} (target <= 0.15 s)")
    print(f"  answer:                         {task['result']['summary']}")
    cpu_line = f"{cpu_per_attempt:.3f} s measured over {runs} attempts (agents + their CLIs)"
    if mode == "warm":
        reuse = int(os.environ.get("AGENT_WARM_CLI_ATTEMPTS", "20"))
        amortized = cpu_per_attempt + startup_cpu / reuse
        cpu_line += f"; + a warm CLI's start-up {startup_cpu:.2f} s / {reuse} attempts = {amortized:.3f} s"
    print(f"  CPU per SDK attempt:            {cpu_line} (target <= 0.3 s)")
    print(f"orchestrator RSS:                 idle {mib(orchestrator_idle.peak)}, busy {mib(orchestrator_busy.peak)}")
    busiest = max(agent_peaks, key=lambda peak: peak.peak)
    print(f"agent RSS (with its CLIs):        idle {mib(agent_idle.peak)}, busy {mib(busiest.peak)} (busiest agent)")
    if warm_per_agent:
        per_role = agent_idle.peak / warm_per_agent
        print(
            f"  idle per role kept warm:        {mib(per_role)} ({warm_per_agent} roles, 1 CLI each; target < 500 MiB)"
        )


# Spread over the last 30 days, so today's spend (the daily budget's read) is not all of it.
HISTORY_TASKS_SQL = """
    CREATE TEMP TABLE history ON COMMIT DROP AS
    SELECT n, 'task_' || md5('history' || n) AS task_id, now() - (n % 43200) * interval '1 minute' AS at
    FROM generate_series(1, $1::int) AS n
"""
# Each statement that stores rows takes the tenant as $1.
HISTORY_SQL = [
    """
    INSERT INTO tasks (id, tenant_id, user_id, description, status, result, decomposition, created_at, updated_at)
    SELECT task_id, $1, 'history', 'bench chain of five steps (history)', 'completed',
           jsonb_build_object('summary', repeat('x', 900)),
           '{"model": "claude-sonnet-5-5", "cost_usd": 0.002424, "duration_ms": 30}', at, at + interval '1 second'
    FROM history
    """,
    """
    CREATE TEMP TABLE history_subtasks ON COMMIT DROP AS
    SELECT h.task_id, h.at, k, 'subtask_' || md5(h.task_id || k) AS id,
           CASE WHEN k > 1 THEN ARRAY['subtask_' || md5(h.task_id || (k - 1))] ELSE '{}' END AS dependencies,
           'agent' || (1 + (h.n + k) % 5) AS agent_id
    FROM history h, generate_series(1, 5) AS k
    """,
    """
    INSERT INTO subtasks (id, task_id, tenant_id, position, description, required_capabilities, dependencies, status,
                          attempt_count, assigned_agent, assigned_at, assignment_latency_ms, queued_at,
                          delivery_token, accepted_at, created_at, updated_at)
    SELECT id, task_id, $1, k - 1, 'bench step ' || k, ARRAY['DATA_ANALYSIS'], dependencies, 'completed', 1, agent_id,
           at, 2, at, gen_random_uuid()::text, at, at, at + interval '1 second'
    FROM history_subtasks
    """,
    """
    INSERT INTO subtask_results (result_id, subtask_id, task_id, tenant_id, agent_id, attempt, status, output,
                                 execution_time, applied, simulated, delivery_token, queued_at, assigned_at,
                                 created_at)
    SELECT md5(id), id, task_id, $1, agent_id, 1, 'completed',
           '{"attempt": 1, "executor": "stub", "subtask_id": "' || id || '", "summary": "' || repeat('y', 120) || '"}',
           0.001, true, true, gen_random_uuid()::text, at, at, at
    FROM history_subtasks
    """,
    """
    INSERT INTO agent_logs (agent_id, task_id, subtask_id, tenant_id, level, message, metadata, created_at)
    SELECT agent_id, task_id, id, $1, 'INFO', message, '{"attempt": 1, "executor": "stub"}', at
    FROM history_subtasks, unnest(ARRAY['subtask started', 'subtask completed']) AS message
    """,
    """
    INSERT INTO model_calls (tenant_id, task_id, purpose, model, input_tokens, output_tokens, cost_usd, created_at)
    SELECT $1, task_id, 'decomposition', 'claude-sonnet-5-5', 658, 30, 0.002424, at FROM history
    """,
]


async def store_history(postgres_url: str, tenant_id: str, subtasks: int) -> None:
    """Store `subtasks` subtasks of earlier, completed work of the fleet's tenant (set-based, seconds for 100,000)
    and analyze the tables, as a long-running database would have them."""
    started = time.perf_counter()
    connection = await asyncpg.connect(postgres_url)
    try:
        async with connection.transaction():
            await connection.execute(HISTORY_TASKS_SQL, subtasks // 5)
            for statement in HISTORY_SQL:
                await connection.execute(statement, *([tenant_id] if "$1" in statement else []))
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    elapsed = time.perf_counter() - started
    print(f"history:                          {subtasks // 5 * 5} subtasks stored and analyzed in {elapsed:.1f} s")


@dataclass
class StubFigures:
    """What a run on the stub fleet measured, for the side-by-side table (`--peers`)."""

    idle_step_ms: float | None = None  # median step of an idle chain of five
    dag_per_s: float | None = None  # chained subtasks completed per second


async def run_stub_benchmarks(args: argparse.Namespace, local: LocalFleet) -> StubFigures:
    figures = StubFigures()
    async with OrchestratorClient(local, timeout=60) as client:
        if args.history:
            await store_history(args.postgres_url, local.base_env["TENANT_ID"], args.history)
        if "idle" in args.only:
            await measure_idle_hop(client, args.hops)
            figures.idle_step_ms = percentile(await measure_idle_chain_step(client, max(20, args.hops // 5)), 0.5)
        if "throughput" in args.only:
            cpu_groups = fleet_cpu_groups(local)
            figures.dag_per_s = await measure_throughput(client, args.chains, cpu_groups, args.postgres_url)
        if "api" in args.only:
            await measure_api(client)
    return figures


def stub_round(args: argparse.Namespace, work: Path) -> StubFigures:
    """A fresh database and stub fleet, its idle RSS, and the stub benchmarks `--only` names."""
    asyncio.run(recreate_database(args.postgres_url))
    with fleet(args, "stub", work) as local:
        print(f"fleet: orchestrator + 5 stub agents x {args.agent_concurrency} slots, simulator for decomposition")
        agents = [service.pid for name, service in local.services.items() if name in SEED_FLEET]
        print(
            f"idle RSS:                         orchestrator {mib(rss(local.services['orchestrator'].pid))}, "
            f"agents {', '.join(mib(rss(pid)) for pid in agents)}"
        )
        return asyncio.run(run_stub_benchmarks(args, local))


def rss(pid: int) -> int:
    process = psutil.Process(pid)
    return int(process.memory_info().rss + sum(child.memory_info().rss for child in process.children(recursive=True)))


def side_by_side(args: argparse.Namespace, work: Path) -> None:
    """`args.rounds` rounds, each the fleet's idle chain and throughput, then each peer's: one table of ratios."""
    rows: list[tuple[StubFigures, dict[str, PeerFigures]]] = []
    with Peers(args.peers_dir) as peers:
        for number in range(1, args.rounds + 1):
            print(f"== round {number}: the fleet", flush=True)
            fleet_figures = stub_round(args, work / f"round{number}")
            print(f"== round {number}: the peers ({', '.join(PEERS)})", flush=True)
            rows.append((fleet_figures, {figures.peer: figures for figures in peers.run_round()}))
    print(
        "\n| round | fleet DAG subtasks/s | dramatiq | Celery prefork | fleet / dramatiq | fleet / Celery "
        "| fleet idle step ms | dramatiq idle hop ms | Celery idle hop ms | fleet / Celery idle |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for number, (ours, theirs) in enumerate(rows, start=1):
        dramatiq, celery = theirs.get("dramatiq"), theirs.get("celery-prefork")
        dramatiq_dag = dramatiq.dag_per_s if dramatiq else None
        celery_dag, celery_idle = (celery.dag_per_s, celery.idle_hop_ms) if celery else (None, None)
        print(
            f"| {number} | {figure(ours.dag_per_s, '.0f')} | {figure(dramatiq_dag, '.0f')} "
            f"| {figure(celery_dag, '.0f')} "
            f"| {ratio(ours.dag_per_s, dramatiq_dag)} | {ratio(ours.dag_per_s, celery_dag)} "
            f"| {figure(ours.idle_step_ms, '.2f')} | {figure(dramatiq.idle_hop_ms if dramatiq else None, '.2f')} "
            f"| {figure(celery_idle, '.2f')} | {ratio(ours.idle_step_ms, celery_idle)} |"
        )


def figure(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def ratio(ours: float | None, theirs: float | None) -> str:
    return "-" if not ours or not theirs else f"{ours / theirs:.2f}x"


async def run_sdk_benchmark(local: LocalFleet, postgres_url: str, mode: str, runs: int) -> None:
    async with OrchestratorClient(local, timeout=120) as client:
        agents = [service for name, service in local.services.items() if name in SEED_FLEET]
        await measure_sdk(client, local.services["orchestrator"], agents, postgres_url, mode, runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="idle,throughput,api,sdk", type=lambda text: set(text.split(",")))
    parser.add_argument("--hops", type=int, default=200)
    parser.add_argument("--chains", type=int, default=200)
    parser.add_argument("--history", type=int, default=0, help="subtasks of earlier work stored first")
    parser.add_argument("--agent-concurrency", type=int, default=8, help="slots per stub agent")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="side by side with Celery and dramatiq (--peers-dir): idle and throughput, interleaved, with ratios",
    )
    parser.add_argument("--peers-dir", type=Path, default=REPO_ROOT.parent / "shared" / "bench-peers")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the side-by-side run")
    parser.add_argument(
        "--sdk-modes",
        default="cold,warm",
        type=lambda text: text.split(","),
        help="sdk: CLIs started per attempt (cold), kept warm (warm), or both in turn",
    )
    parser.add_argument("--sdk-runs", type=int, default=10, help="sdk: factorial tasks per mode, one at a time")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/mats_bench"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"))
    args = parser.parse_args()
    memory_gib = psutil.virtual_memory().total / 2**30
    print(f"machine: {os.cpu_count()} CPUs, {memory_gib:.0f} GiB; python {sys.version.split()[0]}")
    work = REPO_ROOT / ".data" / "bench"  # kept after the run: the services' logs are there
    shutil.rmtree(work, ignore_errors=True)
    if args.peers:
        args.only = {"idle", "throughput"}
        side_by_side(args, work / "stub")
        return 0
    if args.only & {"idle", "throughput", "api"}:
        stub_round(args, work / "stub")
    for mode in args.sdk_modes if "sdk" in args.only else []:
        asyncio.run(recreate_database(args.postgres_url))
        warm_clis = {"AGENT_WARM_CLIS_PER_ROLE": "0" if mode == "cold" else "1"}
        with fleet(args, "sdk", work / f"sdk-{mode}", warm_clis) as local:
            print(f"fleet: orchestrator + 5 agents on the Claude Agent SDK ({mode} CLIs), simulator as Claude")
            asyncio.run(run_sdk_benchmark(local, args.postgres_url, mode, args.sdk_runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
