"""Rules of the coordination pool's services (seed 004)."""

from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.follow_up import follow_up_problems, limit_problem
from shared.database.isolation_repository import AuditedToolCall, RecordedAttempt
from shared.follow_up import FollowUpSubtask
from shared.isolation.report import agent_isolation, audit_agents
from shared.isolation.rules import check_tool_call, shared_config_dirs, shared_sessions, workspace_problem
from shared.models import AgentCapability

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
