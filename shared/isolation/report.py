"""GET /isolation-report: for each agent, live or seen in the audit, what isolates its subtasks and the evidence.

The facts are what each attempt recorded with its result (role hash and allowlist, CLI config folder, Claude
session); the evidence is the rules of `shared.isolation.rules` over the tenant's latest results and tool
calls. Where the audit cannot show something, the report says so in words instead of counting it as clean.
"""

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.database import Repositories
from shared.database.isolation_repository import AuditedToolCall, RecordedAttempt
from shared.isolation.models import (
    AgentIsolation,
    IsolationEvidence,
    IsolationFacts,
    IsolationReport,
    RoleFacts,
    Violation,
)
from shared.isolation.rules import check_tool_call, shared_config_dirs, shared_sessions
from shared.models import AgentStatus, utc_now

# The latest rows the report reads of each kind: enough for a live fleet's recent history at a bounded cost.
MAX_EXAMINED_ROWS = 20_000


@dataclass
class AgentAudit:
    """One agent's share of the examined rows, and what the rules found in them."""

    attempts: list[RecordedAttempt] = field(default_factory=list)
    tool_calls: int = 0
    checked: int = 0
    escapes_refused: int = 0
    unchecked: Counter[tuple[str, str]] = field(default_factory=Counter)  # (tool, reason) -> calls
    allowlist_unknown: int = 0
    violations: list[Violation] = field(default_factory=list)


async def build_isolation_report(
    repositories: Repositories, live_agents: Sequence[AgentStatus], shared_files_dir: str
) -> IsolationReport:
    """The report over the tenant's latest results and tool calls and every agent live or in its audit."""
    attempts = await repositories.isolation.latest_attempts(MAX_EXAMINED_ROWS)
    calls = await repositories.isolation.latest_tool_calls(MAX_EXAMINED_ROWS)
    seen = await repositories.isolation.agents_seen()
    audits = audit_agents(attempts, calls, shared_files_dir)
    live = {agent.agent_id: agent for agent in live_agents}
    agents = [agent_isolation(agent_id, live.get(agent_id), audits[agent_id]) for agent_id in sorted(seen | set(live))]
    return IsolationReport(
        generated_at=utc_now(),
        violations=sum(len(agent.evidence.violations) for agent in agents),
        attempts_examined=len(attempts),
        tool_calls_examined=len(calls),
        truncated=MAX_EXAMINED_ROWS in (len(attempts), len(calls)),
        agents=agents,
    )


def audit_agents(
    attempts: Sequence[RecordedAttempt], calls: Sequence[AuditedToolCall], shared_files_dir: str
) -> defaultdict[str, AgentAudit]:
    """Every rule over the rows, by agent."""
    audits: defaultdict[str, AgentAudit] = defaultdict(AgentAudit)
    allowlists: dict[tuple[str, int], list[str]] = {}
    for attempt in attempts:
        audits[attempt.agent_id].attempts.append(attempt)
        if attempt.allowed_tools is not None:
            allowlists[(attempt.subtask_id, attempt.attempt)] = attempt.allowed_tools
    for call in calls:
        audit = audits[call.agent_id]
        allowed = allowlists.get((call.subtask_id or "", call.attempt or 0))
        check = check_tool_call(call, shared_files_dir, allowed)
        audit.tool_calls += 1
        audit.checked += check.checked
        audit.escapes_refused += check.escape_refused
        audit.allowlist_unknown += check.allowlist_unknown
        if check.unchecked_reason is not None:
            audit.unchecked[(call.tool_name, check.unchecked_reason)] += 1
        audit.violations += check.violations
    for found in (shared_sessions(attempts), shared_config_dirs(attempts)):
        for agent_id, violations in found.items():
            audits[agent_id].violations += violations
    return audits


def agent_isolation(agent_id: str, status: AgentStatus | None, audit: AgentAudit) -> AgentIsolation:
    attempts = audit.attempts
    roles = Counter(
        (a.role_config_hash, tuple(a.allowed_tools) if a.allowed_tools is not None else None) for a in attempts
    )
    facts = IsolationFacts(
        config_dirs=sorted({a.claude_config_dir for a in attempts if a.claude_config_dir}),
        roles=[
            RoleFacts(role_config_hash=role_hash, allowed_tools=list(tools) if tools is not None else None, attempts=n)
            for (role_hash, tools), n in roles.most_common()
        ],
    )
    evidence = IsolationEvidence(
        attempts=len(attempts),
        tasks=len({a.task_id for a in attempts}),
        sessions_recorded=sum(1 for a in attempts if a.claude_session_id),
        tool_calls=audit.tool_calls,
        tool_calls_checked=audit.checked,
        escapes_refused=audit.escapes_refused,
        violations=audit.violations,
        missing=missing_evidence(audit),
    )
    capabilities = status.capabilities if status else []
    return AgentIsolation(
        agent_id=agent_id, live=status is not None, capabilities=capabilities, isolation=facts, evidence=evidence
    )


def missing_evidence(audit: AgentAudit) -> list[str]:
    """Where the agent's audit is silent, in plain words."""
    attempts = audit.attempts
    if not attempts:
        return ["no audited attempts: nothing recorded shows how its subtasks were isolated"]
    missing = []
    without_session = sum(1 for a in attempts if not a.claude_session_id)
    if without_session:
        missing.append(
            f"{without_session} of {len(attempts)} attempt(s) recorded no Claude session (results from before "
            "sessions were recorded, an executor without Claude, or an attempt the orchestrator failed for its "
            "agent): their conversations cannot be compared"
        )
    without_dir = sum(1 for a in attempts if not a.claude_config_dir)
    if without_dir:
        missing.append(f"{without_dir} of {len(attempts)} attempt(s) recorded no CLI config folder")
    for (tool, reason), count in sorted(audit.unchecked.items()):
        missing.append(f"{count} {tool} call(s): {reason}: its arguments say nothing checkable")
    if audit.allowlist_unknown:
        missing.append(
            f"{audit.allowlist_unknown} tool call(s) belong to attempts with no recorded allowlist: not checked "
            "against their role"
        )
    return missing
