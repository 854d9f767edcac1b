"""The coordination pool's services: the pool (orchestrator/pool.py) on the real Redis, with a launcher that records
what it would start (the limit, the ids, adoption and the supervisor's report); the isolation report's rules; the
rules of a follow-up subtask."""

import asyncio
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from pydantic import ValidationError

from orchestrator.agent_launcher import NativeLauncher
from orchestrator.follow_up import follow_up_problems, limit_problem
from orchestrator.pool import EXIT_POOL_FULL, AgentPool, AgentStartError, _next_agent_id
from orchestrator.scheduling import AgentLoadTracker, SuccessHistory, rank_agents
from orchestrator.waiting import TaskTypeDependencies, waiting_reason
from shared.config import Settings
from shared.database.isolation_repository import AuditedToolCall, RecordedAttempt
from shared.database.result_repository import RecordedOutcome
from shared.errors import AppError, ConflictError, PoolFullError
from shared.follow_up import FollowUpSubtask
from shared.isolation.report import agent_isolation, audit_agents
from shared.isolation.rules import check_tool_call, shared_config_dirs, shared_sessions, workspace_problem
from shared.models import (
    AgentCapability,
    AgentStatus,
    QueuedSubtask,
    ResultStatus,
    StatusReason,
    SubTask,
    TaskCreateRequest,
    TaskType,
)
from shared.redis.pool_members import PoolMember
from shared.redis_manager import RedisManager
from tests.polling import eventually

# --- pool lifecycle ---

DATA = AgentCapability.DATA_ANALYSIS


class RecordingLauncher:
    """Starts nothing: records each start; `running` says which pids are alive, `exit_codes` how the rest ended."""

    name = "native"

    def __init__(self) -> None:
        self.started: list[str] = []
        self.running: set[int] = set()
        self.exit_codes: dict[int, int] = {}

    def start(self, agent_id: str, capabilities: list[AgentCapability], taken_ports: Iterable[int]) -> PoolMember:
        self.started.append(agent_id)
        return pool_member(agent_id, pid=1000 + len(self.started))

    def is_running(self, member: PoolMember) -> bool:
        return member.pid in self.running

    def exit_code(self, member: PoolMember) -> int | None:
        return self.exit_codes.get(member.pid)

    def stop(self, member: PoolMember, grace: float) -> int | None:
        self.running.discard(member.pid)
        return 0

    def forget(self, member: PoolMember) -> None:
        pass


def pool_member(agent_id: str, pid: int) -> PoolMember:
    return PoolMember(
        agent_id=agent_id,
        url="http://127.0.0.1:9",
        port=9,
        capabilities=[DATA],
        pid=pid,
        process_started_at=0.0,
        log_path=f"/logs/{agent_id}.log",
    )


async def register(redis: RedisManager, agent_id: str) -> None:
    await redis.register_agent(
        AgentStatus(agent_id=agent_id, url="http://127.0.0.1:9", port=8001, is_available=True, capabilities=[DATA])
    )


@pytest.fixture
def launcher() -> RecordingLauncher:
    return RecordingLauncher()


@pytest.fixture
def small_pool(orchestrator_settings: Settings, test_redis: RedisManager, launcher: RecordingLauncher) -> AgentPool:
    return AgentPool(orchestrator_settings.model_copy(update={"max_pool_size": 3}), test_redis, launcher)


async def test_spawn_counts_agents_that_joined_on_their_own_and_those_starting(
    small_pool: AgentPool, test_redis: RedisManager, launcher: RecordingLauncher
) -> None:
    await register(test_redis, "joined1")
    await register(test_redis, "joined2")
    await test_redis.pool_members.save(pool_member("starting", pid=77))  # started, not registered yet

    with pytest.raises(PoolFullError) as refused:
        await small_pool.spawn([DATA])

    assert "the pool is full: 3 of 3 agents are live (MAX_POOL_SIZE)" in refused.value.message
    assert launcher.started == []  # refused before any process was started


async def test_initialize_refuses_what_would_pass_the_limit_before_starting_any(
    small_pool: AgentPool, test_redis: RedisManager, launcher: RecordingLauncher
) -> None:
    await register(test_redis, "joined1")

    with pytest.raises(PoolFullError, match="so 3 more cannot start"):
        await small_pool.initialize(3, None)

    assert launcher.started == []


async def test_spawn_refuses_an_agent_id_that_is_live(
    small_pool: AgentPool, test_redis: RedisManager, launcher: RecordingLauncher
) -> None:
    await register(test_redis, "agent7")

    with pytest.raises(ConflictError, match="agent agent7 is already live"):
        await small_pool.spawn([DATA], "agent7")

    assert launcher.started == []


def test_new_agents_take_the_smallest_free_agent_number() -> None:
    assert _next_agent_id(set()) == "agent1"
    assert _next_agent_id({"agent1", "agent2", "agent4", "scraper"}) == "agent3"


async def test_a_member_that_exited_is_reported_once_and_not_started_again(
    small_pool: AgentPool, test_redis: RedisManager, launcher: RecordingLauncher
) -> None:
    await test_redis.pool_members.save(pool_member("agent1", pid=41))
    await test_redis.pool_members.save(pool_member("agent2", pid=42))
    launcher.running = {42}
    launcher.exit_codes = {41: 3}

    await small_pool.check_members()
    await small_pool.check_members()

    members = {member.agent_id: member for member in await small_pool.members()}
    assert (members["agent1"].state, members["agent1"].exit_code) == ("exited", 3)
    assert (members["agent2"].state, members["agent2"].exit_code) == ("running", None)
    assert launcher.started == []


async def test_a_restarted_orchestrator_adopts_running_members_and_forgets_the_others(
    small_pool: AgentPool, test_redis: RedisManager, launcher: RecordingLauncher
) -> None:
    await test_redis.pool_members.save(pool_member("agent1", pid=41))
    await test_redis.pool_members.save(pool_member("agent2", pid=42))
    launcher.running = {41}

    adopted = await small_pool.adopt()

    assert [member.agent_id for member in adopted] == ["agent1"]
    assert [member.agent_id for member in await small_pool.members()] == ["agent1"]


class ExitingLauncher(RecordingLauncher):
    """Its agents end at once with `code`."""

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code

    def start(self, agent_id: str, capabilities: list[AgentCapability], taken_ports: Iterable[int]) -> PoolMember:
        member = super().start(agent_id, capabilities, taken_ports)
        self.exit_codes[member.pid] = self.code
        return member


@pytest.mark.parametrize(
    ("code", "error", "words"),
    [
        pytest.param(EXIT_POOL_FULL, PoolFullError, "the registry refused agent agent1", id="registry-refused"),
        pytest.param(1, AgentStartError, "agent agent1 exited with code 1 during start-up", id="crashed"),
    ],
)
async def test_an_agent_that_ends_during_start_up_is_an_error_naming_its_log(
    orchestrator_settings: Settings, test_redis: RedisManager, code: int, error: type[AppError], words: str
) -> None:
    pool = AgentPool(orchestrator_settings, test_redis, ExitingLauncher(code))

    with pytest.raises(error) as failed:
        await pool.spawn([DATA])

    assert words in failed.value.message and "see its log /logs/agent1.log" in failed.value.message
    assert await pool.members() == []  # forgotten: nothing left to adopt or report


async def test_an_agent_that_never_registers_is_stopped_after_the_start_timeout(
    orchestrator_settings: Settings, test_redis: RedisManager, launcher: RecordingLauncher
) -> None:
    launcher.running = {1001}  # runs, but never registers
    settings = orchestrator_settings.model_copy(update={"agent_start_timeout_seconds": 0.5})
    pool = AgentPool(settings, test_redis, launcher)

    with pytest.raises(AgentStartError, match=r"did not register and answer its health check within 0\.5 s"):
        await pool.spawn([DATA])

    assert launcher.running == set() and await pool.members() == []


# --- isolation report ---

WORKSPACES = "/srv/shared_files"


def tool_call(tool_name: str, arguments: dict[str, Any], **fields: Any) -> AuditedToolCall:
    values: dict[str, Any] = {
        "id": 1, "agent_id": "agent1", "task_id": "task_a", "subtask_id": "subtask_a", "attempt": 1,
        "is_error": False, "subtask_task_id": "task_a",
    }  # fmt: skip
    return AuditedToolCall(tool_name=tool_name, arguments=arguments, **{**values, **fields})


def attempt(subtask_id: str, session_id: str | None, **fields: Any) -> RecordedAttempt:
    values: dict[str, Any] = {
        "agent_id": "agent1", "task_id": "task_a", "attempt": 1, "delivery_token": f"token-{subtask_id}",
        "role_config_hash": "ab" * 32, "claude_config_dir": "/claude/agent1", "allowed_tools": ["read_file"],
        "created_at": datetime.now(UTC),
    }  # fmt: skip
    return RecordedAttempt(subtask_id=subtask_id, claude_session_id=session_id, **{**values, **fields})


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("input.csv", None),
        ("output/report.md", None),
        ("notes/../input.csv", None),
        ("../task_b/output/report.md", "reaches the workspace of task task_b"),
        ("/srv/shared_files/task_b/input.csv", "reaches the workspace of task task_b"),
        ("../../etc/passwd", "outside every task's workspace"),
        (".attempts/other-token/report.md", "other attempts' unfinished output"),
    ],
)
def test_a_file_path_must_stay_inside_its_task_s_workspace(path: str, problem: str | None) -> None:
    found = workspace_problem(WORKSPACES, "task_a", path)
    assert found is None if problem is None else found is not None and problem in found


@pytest.mark.parametrize("workspaces", ["shared_files", "./shared_files/", ".", "/"])
@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("input.csv", None),
        (".", None),
        ("output/../input.csv", None),
        ("../task_b/input.csv", "reaches the workspace of task task_b"),
        ("..", "reaches"),
        ("../../etc/passwd", "reaches"),
        ("/etc/passwd", "reaches"),
        (".attempts/t/report.md", "other attempts' unfinished output"),
    ],
)
def test_a_file_path_is_judged_alike_whatever_form_shared_files_dir_takes(
    workspaces: str, path: str, problem: str | None
) -> None:
    found = workspace_problem(workspaces, "task_a", path)
    assert found is None if problem is None else found is not None and problem in found


def test_a_successful_call_into_another_task_s_workspace_is_a_violation() -> None:
    check = check_tool_call(tool_call("read_file", {"path": "../task_b/secret.txt"}), WORKSPACES, ["read_file"])
    [violation] = check.violations
    assert (violation.kind, violation.task_id, violation.tool_call_id) == ("workspace_escape", "task_a", 1)
    assert "task_b" in violation.detail and check.checked


def test_an_escape_the_tool_refused_is_evidence_of_the_sandbox_not_a_violation() -> None:
    call = tool_call("read_file", {"path": "../task_b/secret.txt"}, is_error=True)
    check = check_tool_call(call, WORKSPACES, ["read_file"])
    assert (check.violations, check.escape_refused) == ([], True)


@pytest.mark.parametrize(("key", "escapes"), [("totals.q4", False), ("task_b:totals", True), ("a" * 129, True)])
def test_a_shared_state_key_must_stay_in_its_task_s_namespace(key: str, escapes: bool) -> None:
    check = check_tool_call(tool_call("set_shared_state", {"key": key, "value": "1"}), WORKSPACES, None)
    assert [v.kind for v in check.violations] == (["shared_state_escape"] if escapes else [])
    assert check.checked and check.allowlist_unknown


def test_a_call_for_another_task_s_subtask_and_a_tool_outside_the_allowlist_are_violations() -> None:
    call = tool_call("write_file", {"path": "out.md"}, subtask_task_id="task_b")
    kinds = [violation.kind for violation in check_tool_call(call, WORKSPACES, ["read_file"]).violations]
    assert kinds == ["foreign_subtask", "tool_not_allowed"]


def test_tools_whose_arguments_say_nothing_task_scoped_are_reported_unchecked() -> None:
    check = check_tool_call(tool_call("database_query", {"query": "SELECT 1"}), WORKSPACES, ["database_query"])
    assert (check.checked, check.violations) == (False, [])
    assert check.unchecked_reason is not None and "data source" in check.unchecked_reason


def test_one_session_reported_by_two_attempts_is_a_shared_conversation() -> None:
    attempts = [
        attempt("subtask_a", "session-1"),
        attempt("subtask_b", "session-1", agent_id="agent2", task_id="task_b"),
        attempt("subtask_c", "session-2"),
        attempt("subtask_d", None),
    ]
    found = shared_sessions(attempts)
    assert sorted(found) == ["agent1", "agent2"]
    [violation] = found["agent2"]
    assert (violation.kind, violation.task_id, violation.subtask_id) == ("shared_session", "task_b", "subtask_b")
    assert "session-1" in violation.detail


def test_the_same_attempt_reported_twice_is_not_a_shared_session() -> None:
    assert shared_sessions([attempt("subtask_a", "session-1"), attempt("subtask_a", "session-1")]) == {}


def test_a_config_folder_two_agents_use_is_a_violation() -> None:
    attempts = [attempt("subtask_a", "s1"), attempt("subtask_b", "s2", agent_id="agent2")]
    found = shared_config_dirs(attempts)
    assert [v.kind for v in found["agent1"]] == [v.kind for v in found["agent2"]] == ["shared_config_dir"]
    assert (
        shared_config_dirs([attempts[0], attempt("subtask_b", "s2", agent_id="agent2", claude_config_dir="/c/2")]) == {}
    )


def test_the_report_says_where_evidence_is_missing() -> None:
    attempts = [attempt("subtask_a", "s1"), attempt("subtask_b", None, claude_config_dir=None, allowed_tools=None)]
    calls = [
        tool_call("database_query", {"query": "SELECT 1"}, subtask_id="subtask_b"),
        tool_call("read_file", {"path": "in.csv"}),
    ]
    audits = audit_agents(attempts, calls, WORKSPACES)
    report = agent_isolation("agent1", None, audits["agent1"])
    evidence = report.evidence
    assert (evidence.attempts, evidence.sessions_recorded, evidence.tool_calls, evidence.tool_calls_checked) == (
        2,
        1,
        2,
        1,
    )
    assert evidence.violations == []
    missing = " | ".join(evidence.missing)
    assert "1 of 2 attempt(s) recorded no Claude session" in missing
    assert "1 of 2 attempt(s) recorded no CLI config folder" in missing
    assert "1 database_query call(s)" in missing
    assert "1 tool call(s) belong to attempts with no recorded allowlist" in missing
    assert [role.allowed_tools for role in report.isolation.roles] == [["read_file"], None]
    silent = agent_isolation("agent9", None, audit_agents([], [], WORKSPACES)["agent9"])
    assert silent.evidence.missing == ["no audited attempts: nothing recorded shows how its subtasks were isolated"]


# --- coordination tools: follow-up subtasks ---


def test_a_follow_up_may_depend_only_on_subtasks_of_its_own_task() -> None:
    follow_up = FollowUpSubtask(
        id="subtask_new", description="Tally again", required_capabilities=[AgentCapability.DATA_ANALYSIS],
        dependencies=["subtask_1", "subtask_of_another_task"],
    )  # fmt: skip
    assert follow_up_problems(follow_up, "task_a", ["subtask_1", "subtask_2"]) == [
        "dependency 'subtask_of_another_task' is not a subtask of task task_a"
    ]
    assert (
        follow_up_problems(follow_up.model_copy(update={"dependencies": ["subtask_2"]}), "task_a", ["subtask_2"]) == []
    )


def test_a_follow_up_must_keep_the_task_within_max_subtasks_per_task() -> None:
    assert limit_problem(9, 10) is None
    problem = limit_problem(10, 10)
    assert problem is not None and "at most 10" in problem and "MAX_SUBTASKS_PER_TASK" in problem


# --- attack pass: the pool's record in Redis ---


async def test_a_pool_member_written_into_redis_without_fleet_secret_is_never_adopted_listed_or_signalled(
    orchestrator_settings: Settings, test_redis: RedisManager, tmp_path: Path
) -> None:
    """Whoever reaches Redis could name any process of the orchestrator's user as a member (its pid and start time
    are public in /proc): the pool must not adopt it, list it, or SIGTERM it on DELETE /pool."""
    settings = orchestrator_settings.model_copy(
        update={"fleet_pid_dir": str(tmp_path / "pids"), "fleet_log_dir": str(tmp_path / "logs")}
    )
    # A process of the orchestrator's user that the pool never started.
    victim = await asyncio.create_subprocess_exec("sleep", "120")
    try:
        forged = PoolMember(
            agent_id="agent1",
            url="http://127.0.0.1:9",
            port=9,
            capabilities=[DATA],
            pid=victim.pid,
            process_started_at=psutil.Process(victim.pid).create_time(),
            log_path="/dev/null",
        )
        await test_redis.client.hset(test_redis.keys.key("pool_members"), "agent1", forged.model_dump_json())
        pool = AgentPool(settings, test_redis, NativeLauncher(settings))

        assert await pool.adopt() == []
        assert await pool.members() == []
        await pool.shut_down()

        assert psutil.Process(victim.pid).status() != psutil.STATUS_ZOMBIE  # never signalled: still running
    finally:
        victim.kill()
        await victim.wait()


async def test_the_pool_reads_back_the_members_it_saved(test_redis: RedisManager) -> None:
    member = pool_member("agent1", pid=41)
    await test_redis.pool_members.save(member)

    assert await test_redis.pool_members.all() == [member]
    assert await test_redis.pool_members.get("agent1") == member


# --- attack pass: a follow-up's lists, as the model may fill them ---

FOLLOW_UP_FIELDS: dict[str, Any] = {"description": "Tally again", "required_capabilities": ["DATA_ANALYSIS"]}


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        pytest.param("dependencies", ["subtask_a", "subtask_b", "subtask_a"], "subtask_a. listed", id="dependency"),
        pytest.param("required_capabilities", ["DATA_ANALYSIS"] * 2, "listed more than once", id="capability-twice"),
        pytest.param("required_capabilities", ["DATA_ANALYSIS"] * 10_000, "at most", id="capabilities-10000"),
    ],
)  # fmt: skip
def test_a_follow_up_lists_each_dependency_and_capability_once(field: str, value: list[str], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        FollowUpSubtask.model_validate({**FOLLOW_UP_FIELDS, field: value})


class HangingLauncher(RecordingLauncher):
    """Its agents never end on SIGTERM: each stop holds its thread until the test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.stopping = 0

    def stop(self, member: PoolMember, grace: float) -> int | None:
        self.stopping += 1
        self.release.wait(PROCESS_WAIT_SECONDS)
        return None


PROCESS_WAIT_SECONDS = 30.0
# More than the default thread pool has workers anywhere (at most 32).
HUNG_MEMBERS = 40


async def test_delete_pool_waiting_on_hung_agents_leaves_the_thread_pool_to_the_rest_of_the_orchestrator(
    orchestrator_settings: Settings, test_redis: RedisManager
) -> None:
    """Results that carry files are settled in the default thread pool: a DELETE /pool that waits out many hung
    agents must not hold all its threads meanwhile."""
    for number in range(HUNG_MEMBERS):
        await test_redis.pool_members.save(pool_member(f"agent{number}", pid=1000 + number))
    launcher = HangingLauncher()
    pool = AgentPool(orchestrator_settings, test_redis, launcher)
    stopping = asyncio.create_task(pool.shut_down())
    try:
        await eventually(lambda: asyncio.sleep(0, launcher.stopping), lambda started: started > 0)
        async with asyncio.timeout(PROCESS_WAIT_SECONDS / 3):
            assert await asyncio.to_thread(lambda: "settled") == "settled"
    finally:
        launcher.release.set()
        stopped = await stopping
    assert len(stopped) == HUNG_MEMBERS


# --- task types, affinity and graceful degradation ---

WEB = AgentCapability.WEB_SCRAPING
CODE = AgentCapability.CODE_GENERATION
COMPLETED, FAILED = ResultStatus.COMPLETED, ResultStatus.FAILED


def agent(agent_id: str, *capabilities: AgentCapability, slots: int = 1) -> AgentStatus:
    port = 8000 + int(agent_id.removeprefix("agent"))
    return AgentStatus(
        agent_id=agent_id,
        url=f"http://127.0.0.1:{port}",
        port=port,
        is_available=True,
        capabilities=list(capabilities),
        slots=slots,
    )


def item(*capabilities: AgentCapability, task_type: TaskType = TaskType.GENERAL) -> QueuedSubtask:
    return QueuedSubtask(
        task_id="task_1",
        subtask_id="subtask_1",
        attempt=1,
        required_capabilities=list(capabilities),
        task_type=task_type,
    )


def ranked_ids(
    agents: list[AgentStatus], work: QueuedSubtask, history: SuccessHistory, load: AgentLoadTracker
) -> list[str]:
    return [ranked.agent_id for ranked in rank_agents(agents, work, load, history)]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("DISCOVERY", TaskType.DISCOVERY),
        ("migration", TaskType.MIGRATION),
        ("Heartbeat", TaskType.HEARTBEAT),
        (" ingest ", TaskType.INGEST),
        ("research", TaskType.RESEARCH),
        ("general", TaskType.GENERAL),
    ],
)
def test_a_task_type_is_read_in_any_case(written: str, expected: TaskType) -> None:
    assert TaskType(written) is expected
    assert TaskCreateRequest(description="Analyse the quarterly sales", task_type=written).task_type is expected


@pytest.mark.parametrize("written", ["database_query", "", "GENERAL2", "analysis"])
def test_an_unknown_task_type_is_refused_naming_the_known_ones(written: str) -> None:
    with pytest.raises(ValidationError) as refused:
        TaskCreateRequest(description="Analyse the quarterly sales", task_type=written)

    message = str(refused.value)
    assert "task_type" in message
    assert "'DISCOVERY', 'MIGRATION', 'HEARTBEAT', 'INGEST', 'RESEARCH' or 'GENERAL'" in message


def test_tasks_and_subtasks_are_general_unless_told_otherwise() -> None:
    assert TaskCreateRequest(description="Analyse the quarterly sales").task_type is TaskType.GENERAL
    subtask = SubTask(task_id="task_1", description="a step", required_capabilities=[DATA])
    assert subtask.task_type is TaskType.GENERAL
    assert subtask.status_reason is None
    assert (
        QueuedSubtask.for_subtask(
            subtask.model_copy(update={"task_type": TaskType.INGEST, "attempt_count": 1})
        ).task_type
        is TaskType.INGEST
    )


def test_a_status_reason_has_a_code_to_act_on_and_a_message_to_read() -> None:
    reason = StatusReason(code="no_live_agent", message="waiting: no live agent with WEB_SCRAPING")

    assert reason.model_dump() == {"code": "no_live_agent", "message": "waiting: no live agent with WEB_SCRAPING"}
    with pytest.raises(ValidationError):
        StatusReason(code="No Live Agent", message="codes are snake_case")
    with pytest.raises(ValidationError):
        StatusReason(code="no_live_agent", message="")


def test_without_history_agents_rank_by_load_then_id() -> None:
    agents = [agent("agent5", DATA), agent("agent1", DATA, CODE), agent("agent2", WEB)]
    load = AgentLoadTracker()

    assert ranked_ids(agents, item(DATA), SuccessHistory(), load) == ["agent1", "agent5"]
    assert load.try_reserve(agents[1], "subtask_busy")
    assert ranked_ids(agents, item(DATA), SuccessHistory(), load) == ["agent5"]  # agent1's one slot is taken


def test_the_agent_with_the_better_record_for_the_task_type_comes_first() -> None:
    agents = [agent("agent1", DATA), agent("agent5", DATA)]
    history = SuccessHistory()
    research = item(DATA, task_type=TaskType.RESEARCH)
    history.record("agent1", research, FAILED, 1.0)
    history.record("agent5", research, COMPLETED, 1.0)

    assert ranked_ids(agents, research, history, AgentLoadTracker()) == ["agent5", "agent1"]
    # Another task type, or another capability set, has its own record: here neither agent has one.
    assert ranked_ids(agents, item(DATA, task_type=TaskType.INGEST), history, AgentLoadTracker()) == [
        "agent1",
        "agent5",
    ]
    together = [agent("agent1", DATA, CODE), agent("agent5", DATA, CODE)]
    assert ranked_ids(together, item(DATA, CODE, task_type=TaskType.RESEARCH), history, AgentLoadTracker()) == [
        "agent1",
        "agent5",
    ]


def test_between_equal_success_rates_the_faster_agent_comes_first() -> None:
    agents = [agent("agent1", DATA), agent("agent5", DATA)]
    history = SuccessHistory()
    for _ in range(3):
        history.record("agent1", item(DATA), COMPLETED, 9.0)
        history.record("agent5", item(DATA), COMPLETED, 2.0)

    assert ranked_ids(agents, item(DATA), history, AgentLoadTracker()) == ["agent5", "agent1"]
    assert history.track_record("agent5", item(DATA)).mean_seconds == 2.0


def test_load_comes_before_the_record() -> None:
    agents = [agent("agent1", DATA, slots=2), agent("agent5", DATA, slots=2)]
    history = SuccessHistory()
    history.record("agent1", item(DATA), COMPLETED, 1.0)
    load = AgentLoadTracker()
    load.try_reserve(agents[0], "subtask_busy")

    assert ranked_ids(agents, item(DATA), history, load) == ["agent5", "agent1"]


def test_only_the_recent_window_counts() -> None:
    agents = [agent("agent1", DATA), agent("agent5", DATA)]
    history = SuccessHistory(window=3)
    for _ in range(10):
        history.record("agent1", item(DATA), FAILED, 1.0)  # a bad start, long ago
    for _ in range(3):
        history.record("agent1", item(DATA), COMPLETED, 1.0)
    history.record("agent5", item(DATA), COMPLETED, 1.0)
    history.record("agent5", item(DATA), FAILED, 1.0)

    record = history.track_record("agent1", item(DATA))
    assert (record.completed, record.failed) == (3, 0)
    assert ranked_ids(agents, item(DATA), history, AgentLoadTracker()) == ["agent1", "agent5"]


def test_a_loaded_record_ranks_like_one_recorded_live() -> None:
    agents = [agent("agent1", DATA), agent("agent5", DATA)]
    history = SuccessHistory()
    history.load(
        [
            RecordedOutcome(
                agent_id=agent_id,
                task_type=TaskType.RESEARCH,
                required_capabilities=[DATA],
                status=status,
                execution_time=1.0,
            )
            for agent_id, status in [("agent1", FAILED), ("agent5", COMPLETED)]
        ]
    )

    assert ranked_ids(agents, item(DATA, task_type=TaskType.RESEARCH), history, AgentLoadTracker()) == [
        "agent5",
        "agent1",
    ]


def test_work_no_live_agent_can_take_waits_naming_what_is_missing() -> None:
    agents = [agent("agent1", DATA, CODE), agent("agent5", DATA)]
    no_dependencies = TaskTypeDependencies({})

    assert waiting_reason(item(WEB), agents, no_dependencies) == StatusReason(
        code="no_live_agent", message="waiting: no live agent with WEB_SCRAPING"
    )
    assert waiting_reason(item(WEB, DATA), agents, no_dependencies) == StatusReason(
        code="no_live_agent", message="waiting: no live agent with WEB_SCRAPING, DATA_ANALYSIS"
    )
    assert waiting_reason(item(DATA, CODE), agents, no_dependencies) is None
    assert waiting_reason(item(DATA), [], no_dependencies) is not None


def test_a_task_type_waits_while_the_capability_it_depends_on_has_no_live_agent() -> None:
    dependencies = TaskTypeDependencies({TaskType.INGEST: "WEB_SCRAPING"})
    ingest = item(DATA, task_type=TaskType.INGEST)

    assert waiting_reason(ingest, [agent("agent1", DATA)], dependencies) == StatusReason(
        code="dependency_unavailable", message="waiting: INGEST needs a live agent with WEB_SCRAPING, and there is none"
    )
    assert waiting_reason(ingest, [agent("agent1", DATA), agent("agent2", WEB)], dependencies) is None
    assert waiting_reason(item(DATA), [agent("agent1", DATA)], dependencies) is None  # other types flow


def test_a_task_type_waits_while_its_health_url_is_not_known_to_answer() -> None:
    url = "http://discovery:9000/health"
    dependencies = TaskTypeDependencies({TaskType.DISCOVERY: url})
    discovery = item(DATA, task_type=TaskType.DISCOVERY)
    agents = [agent("agent1", DATA)]

    assert dependencies.urls == [url]
    assert waiting_reason(discovery, agents, dependencies) == StatusReason(
        code="dependency_unavailable", message=f"waiting: DISCOVERY needs {url}, which does not answer"
    )
    dependencies.up[url] = True
    assert waiting_reason(discovery, agents, dependencies) is None
