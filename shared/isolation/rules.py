"""The isolation report's rules: what the audit of an attempt must show, and what counts as a violation.

Each rule reads only what the audit recorded, so it checks what the tools were asked to do, never what they did on
disk: a file path is resolved as the tool would (relative to its task's workspace, `..` and absolute paths taken
literally); symlinks cannot be judged from arguments, and the tool itself refuses them.
"""

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from shared.attempt_output import ATTEMPTS_DIR
from shared.database.isolation_repository import AuditedToolCall, RecordedAttempt
from shared.isolation.models import Violation

FILE_TOOLS = frozenset({"read_file", "write_file", "write_patch"})
STATE_TOOLS = frozenset({"get_shared_state", "set_shared_state"})
# The only keys the shared-state tools accept: with no ':' a key cannot name another task's `state:{task_id}:` entry.
STATE_KEY = re.compile(r"[A-Za-z0-9_.-]{1,128}")
# Tools whose arguments name nothing task-scoped, and why: the report lists them as unchecked rather than clean.
UNCHECKABLE = {
    "database_query": "it reaches the tenant's data source, which is not task-scoped",
    "embedding_search": "it searches the tenant's documents, which are not task-scoped",
    "pool_status": "it reads the tenant's registry, which is not task-scoped",
    "isolation_report": "it reads this report, which is the tenant's",
    "submit_follow_up_subtask": "the orchestrator checks its task against the attempt's signed assignment",
}


@dataclass
class CallCheck:
    """What one tool call shows: its violations, whether its arguments could be checked, why not."""

    violations: list[Violation] = field(default_factory=list)
    checked: bool = False
    escape_refused: bool = False
    unchecked_reason: str | None = None
    allowlist_unknown: bool = False


def check_tool_call(call: AuditedToolCall, shared_files_dir: str, allowed_tools: Sequence[str] | None) -> CallCheck:
    """The rules of one audited call; `allowed_tools` is its attempt's allowlist (None: not recorded)."""
    check = CallCheck()
    problems: list[tuple[str, str]] = []
    if call.subtask_task_id is not None and call.subtask_task_id != call.task_id:
        problems.append(("foreign_subtask", f"filed under task {call.task_id} for a subtask of {call.subtask_task_id}"))
    if allowed_tools is None:
        check.allowlist_unknown = True
    elif call.tool_name not in allowed_tools:
        problems.append(("tool_not_allowed", f"{call.tool_name} is not in its role's allowlist {list(allowed_tools)}"))
    scope_problem = _scope_problem(call, shared_files_dir, check)
    if scope_problem is not None:
        if call.is_error:
            check.escape_refused = True  # the tool refused it: evidence the sandbox held, not a breach
        else:
            problems.append(scope_problem)
    check.violations = [_violation(call, kind, detail) for kind, detail in problems]
    return check


def _scope_problem(call: AuditedToolCall, shared_files_dir: str, check: CallCheck) -> tuple[str, str] | None:
    if call.tool_name in FILE_TOOLS:
        path = call.arguments.get("path")
        if not isinstance(path, str):
            check.unchecked_reason = "its arguments name no path"
            return None
        check.checked = True
        problem = workspace_problem(shared_files_dir, call.task_id, path)
        return ("workspace_escape", problem) if problem else None
    if call.tool_name in STATE_TOOLS:
        key = call.arguments.get("key")
        if not isinstance(key, str):
            check.unchecked_reason = "its arguments name no key"
            return None
        check.checked = True
        if STATE_KEY.fullmatch(key):
            return None
        return "shared_state_escape", f"key {key!r} is not confined to state:{call.task_id}:"
    check.unchecked_reason = UNCHECKABLE.get(call.tool_name, "the report knows no rule for this tool")
    return None


def workspace_problem(shared_files_dir: str, task_id: str, path: str) -> str | None:
    """Where `path`, as a file tool of task `task_id` would take it, leads outside that task's workspace; None when
    it stays inside (and outside other attempts' unfinished output)."""
    # Plain string operations: the report judges up to 20,000 calls at once, and pathlib took seconds for them.
    workspaces = posixpath.normpath(shared_files_dir)
    root = posixpath.normpath(posixpath.join(workspaces, task_id))
    target = posixpath.normpath(posixpath.join(root, path))  # an absolute `path` replaces the root
    inside = _relative(target, root)
    if inside is not None:
        if inside.split("/", 1)[0] == ATTEMPTS_DIR:
            return f"path {path!r} reaches {ATTEMPTS_DIR}/, other attempts' unfinished output"
        return None
    other = _relative(target, workspaces)
    if other:
        return f"path {path!r} reaches the workspace of task {other.split('/', 1)[0]}"
    return f"path {path!r} reaches {target}, outside every task's workspace"


def _relative(path: str, folder: str) -> str | None:
    """`path` relative to `folder` ('' for the folder itself), or None when it is not inside; both normalized."""
    if path == folder:
        return ""
    if folder == ".":
        return None if path == ".." or path.startswith(("/", "../")) else path
    prefix = folder.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None


def _violation(call: AuditedToolCall, kind: str, detail: str) -> Violation:
    return Violation.model_validate(
        {
            "kind": kind,
            "task_id": call.task_id,
            "subtask_id": call.subtask_id,
            "attempt": call.attempt,
            "tool_call_id": call.id,
            "detail": f"tool call {call.id} ({call.tool_name}): {detail}",
        }
    )


def shared_sessions(attempts: Iterable[RecordedAttempt]) -> dict[str, list[Violation]]:
    """By agent: each session id more than one attempt reported, once per attempt that reported it."""
    by_session: dict[str, dict[tuple[str, int, str | None], RecordedAttempt]] = defaultdict(dict)
    for attempt in attempts:
        if attempt.claude_session_id:
            key = (attempt.subtask_id, attempt.attempt, attempt.delivery_token)
            by_session[attempt.claude_session_id][key] = attempt
    found: dict[str, list[Violation]] = defaultdict(list)
    for session_id, sharing in by_session.items():
        if len(sharing) < 2:
            continue
        names = ", ".join(f"{a.subtask_id} attempt {a.attempt} on {a.agent_id}" for a in sharing.values())
        for attempt in sharing.values():
            found[attempt.agent_id].append(
                Violation(
                    kind="shared_session",
                    task_id=attempt.task_id,
                    subtask_id=attempt.subtask_id,
                    attempt=attempt.attempt,
                    detail=f"Claude session {session_id} was reported by {len(sharing)} attempts: {names}",
                )
            )
    return found


def shared_config_dirs(attempts: Iterable[RecordedAttempt]) -> dict[str, list[Violation]]:
    """By agent: each CLI config folder another agent reported too."""
    agents_by_dir: dict[str, set[str]] = defaultdict(set)
    for attempt in attempts:
        if attempt.claude_config_dir:
            agents_by_dir[attempt.claude_config_dir].add(attempt.agent_id)
    found: dict[str, list[Violation]] = defaultdict(list)
    for config_dir, agents in agents_by_dir.items():
        if len(agents) > 1:
            for agent_id in sorted(agents):
                detail = f"CLI config folder {config_dir} is used by agents {', '.join(sorted(agents))}"
                found[agent_id].append(Violation(kind="shared_config_dir", detail=detail))
    return found
