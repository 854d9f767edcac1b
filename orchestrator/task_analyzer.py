"""Decomposition of a task into subtasks through Claude, with one repair round and a safe fallback.

A provider that cannot serve the call (429, 529, another 5xx, unreachable, too slow) never produces a fallback plan:
the decomposition comes back with a `provider_wait` and no subtasks, and the task waits for its plan. Calls are not
retried inline (the client's own retries are off here): the fleet decides when to try again. Each call first takes
its share of the fleet-wide limiter (shared/provider_limits.py), and what the provider answers feeds it: a 429 or
529 blocks the model for the fleet until its retry-after, and rate-limit headers at zero until they reset.
"""

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anthropic
import structlog
from anthropic.types import AssistantMessageParam, Message, MessageParam, UserMessageParam

from orchestrator.metrics import OrchestratorMetrics
from orchestrator.plan import PLAN_TOOL_NAME, plan_tool, validate_plan
from shared.config import Settings
from shared.failure_reasons import provider_error_kind
from shared.ledger import CallPurpose, ModelCallUsage
from shared.models import AgentCapability, AgentStatus, ProviderWait, SubTask, TaskType, TokenUsage
from shared.provider_limits import CHARACTERS_PER_TOKEN, ProviderLimiter, retry_after_seconds

log = structlog.get_logger(__name__)

SYSTEM_PROMPT = (
    "You plan work for a fleet of software agents. Break the user's task into the fewest subtasks that can each "
    "be done by one agent, tag each with the capabilities it needs, and make a subtask depend on another only "
    "when it needs that subtask's output. A simple task is a single subtask. Answer by calling submit_plan."
)
CAPABILITY_MEANINGS = {
    AgentCapability.DATA_ANALYSIS: "analyse data, compute statistics and summaries",
    AgentCapability.WEB_SCRAPING: "fetch and extract content from web pages",
    AgentCapability.CODE_GENERATION: "write and explain code",
    AgentCapability.FILE_PROCESSING: "read, transform and write files",
    AgentCapability.DATABASE_OPERATIONS: "query the database (read-only SQL)",
    AgentCapability.API_INTEGRATION: "call and combine external APIs",
    AgentCapability.COORDINATION: "inspect the agent pool: its live agents and load, and the isolation report",
}


@dataclass
class Decomposition:
    subtasks: list[SubTask]
    fallback_reason: str | None = None  # set when Claude's plan was replaced by a single subtask
    repaired: bool = False
    duration_ms: float = 0.0
    usage: TokenUsage = field(default_factory=TokenUsage)
    model: str | None = None  # the model that answered (None when no call got an answer)
    calls: list[ModelCallUsage] = field(default_factory=list)  # each answered call, for the cost ledger
    # Set when the provider could not serve the planning: no subtasks then, and the task waits for its plan.
    provider_wait: ProviderWait | None = None

    @property
    def fallback_used(self) -> bool:
        return self.fallback_reason is not None


def build_prompt(description: str, agents: Sequence[AgentStatus], max_subtasks: int) -> str:
    capabilities = "\n".join(f"- {capability.value}: {meaning}" for capability, meaning in CAPABILITY_MEANINGS.items())
    fleet = "\n".join(
        f"- {agent.agent_id}: {', '.join(capability.value for capability in agent.capabilities)}" for agent in agents
    )
    return (
        f"Task:\n<task>\n{description}\n</task>\n\n"
        f"Capabilities:\n{capabilities}\n\n"
        f"Live agents and the capabilities each one has:\n{fleet or '- (none registered yet)'}\n\n"
        f"Rules: every subtask's required_capabilities must all belong to one agent; prefer the agents listed above "
        f"(a subtask needing capabilities no live agent has waits until such an agent joins); ids are short "
        f"(s1, s2, ...); dependencies name ids of earlier subtasks; priority is 0-10 (10 most urgent); task_type only "
        f"where a subtask's kind of work differs from the task's; at most {max_subtasks} subtasks."
    )


def fallback_subtask(
    task_id: str, description: str, agents: Sequence[AgentStatus], task_type: TaskType = TaskType.GENERAL
) -> SubTask:
    """One subtask for the whole task, needing the capability the most live agents have."""
    counts = Counter(capability for agent in agents for capability in agent.capabilities)
    capability = counts.most_common(1)[0][0] if counts else AgentCapability.DATA_ANALYSIS
    return SubTask(task_id=task_id, description=description, required_capabilities=[capability], task_type=task_type)


def _plan_input(message: Message) -> tuple[str | None, object]:
    for block in message.content:
        if block.type == "tool_use" and block.name == PLAN_TOOL_NAME:
            return block.id, block.input
    return None, None


def call_usage(message: Message, purpose: CallPurpose) -> ModelCallUsage:
    """What one answered call used, for the cost ledger."""
    usage = message.usage
    tokens = TokenUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_input_tokens=usage.cache_read_input_tokens or 0,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
    )
    return ModelCallUsage(purpose=purpose, model=message.model, usage=tokens)


class ProviderUnavailable(Exception):
    """The provider could not serve a planning call (or the fleet's limiter held it back): the task waits."""

    def __init__(self, wait: ProviderWait, reason: str) -> None:
        super().__init__(reason)
        self.wait = wait


def api_error_kind(error: anthropic.APIError) -> str:
    """The provider error kind (shared/failure_reasons.py) of an error of the Anthropic client."""
    if isinstance(error, anthropic.APITimeoutError):
        return "timeout"
    if isinstance(error, anthropic.APIConnectionError):
        return "connection"
    if isinstance(error, anthropic.APIStatusError):
        return provider_error_kind(error.status_code)
    return "invalid_response"  # an answer the client could not read


def provider_wait_of(error: anthropic.APIError) -> ProviderWait | None:
    """The wait an API error calls for; None for a request the API refused (or an answer the client could not read),
    which waiting would not mend."""
    kind = api_error_kind(error)
    if kind not in ("rate_limited", "overloaded", "server_error", "connection", "timeout"):
        return None
    headers = error.response.headers if isinstance(error, anthropic.APIStatusError) else {}
    return ProviderWait(kind=kind, retry_after_seconds=retry_after_seconds(headers))


class TaskAnalyzer:
    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        settings: Settings,
        metrics: OrchestratorMetrics | None = None,
        limiter: ProviderLimiter | None = None,
    ) -> None:
        self._client = client.with_options(max_retries=0)  # the fleet, not the client, decides when to try again
        self._settings = settings
        self._metrics = metrics or OrchestratorMetrics()
        self._limiter = limiter

    async def _ask(self, messages: list[MessageParam]) -> Message:
        """One planning call, after the fleet's limiter lets it start; ProviderUnavailable when it cannot be made."""
        model = self._settings.claude_model
        estimate = self._settings.decomposition_max_tokens + len(str(messages)) // CHARACTERS_PER_TOKEN
        if self._limiter is not None:
            held = await self._limiter.admit(model, estimate)
            if held:
                reason = f"the fleet's limit for {model} is reached for {held:.1f} s"
                raise ProviderUnavailable(ProviderWait(kind="rate_limited", retry_after_seconds=held), reason)
        try:
            raw = await self._client.messages.with_raw_response.create(
                model=model,
                max_tokens=self._settings.decomposition_max_tokens,
                system=SYSTEM_PROMPT,
                messages=messages,
                tools=[plan_tool(self._settings.max_subtasks_per_task)],
                tool_choice={"type": "tool", "name": PLAN_TOOL_NAME},
            )
        except anthropic.APIError as error:
            self._metrics.provider_errors.labels(api_error_kind(error)).inc()
            wait = provider_wait_of(error)
            if wait is None:
                raise
            if self._limiter is not None:
                await self._limiter.refused(model, wait, self._settings.provider_backoff_base_seconds)
            raise ProviderUnavailable(wait, str(error)) from error
        message = await raw.parse()
        if self._limiter is not None:
            await self._limiter.heed(model, raw.headers)
            await self._limiter.charge(model, message.usage.input_tokens + message.usage.output_tokens - estimate)
        return message

    async def decompose_task(
        self,
        task_id: str,
        description: str,
        agents: Sequence[AgentStatus],
        task_type: TaskType = TaskType.GENERAL,
    ) -> Decomposition:
        """Subtasks for the task: Claude's plan, repaired once if invalid, else a single fallback subtask; each of
        the task's type unless the plan gives it another. None at all, and a `provider_wait`, when the provider
        could not serve the planning."""
        started = time.perf_counter()
        decomposition = await self._plan_or_fallback(task_id, description, agents, task_type)
        decomposition.duration_ms = (time.perf_counter() - started) * 1000
        log.info(
            "task_decomposed",
            task_id=task_id,
            subtasks=len(decomposition.subtasks),
            repaired=decomposition.repaired,
            fallback_reason=decomposition.fallback_reason,
            provider_wait=decomposition.provider_wait.kind if decomposition.provider_wait else None,
            duration_ms=round(decomposition.duration_ms, 1),
        )
        return decomposition

    async def _plan_or_fallback(
        self, task_id: str, description: str, agents: Sequence[AgentStatus], task_type: TaskType
    ) -> Decomposition:
        max_subtasks = self._settings.max_subtasks_per_task
        messages: list[MessageParam] = [{"role": "user", "content": build_prompt(description, agents, max_subtasks)}]
        calls: list[ModelCallUsage] = []
        try:
            for purpose in (CallPurpose.DECOMPOSITION, CallPurpose.REPAIR):
                response = await self._ask(messages)
                calls.append(call_usage(response, purpose))
                tool_use_id, raw_plan = _plan_input(response)
                plan, errors = validate_plan(raw_plan, max_subtasks)
                if plan is not None:
                    subtasks = plan.to_subtasks(task_id, task_type)
                    return self._decomposition(subtasks, calls, repaired=purpose is CallPurpose.REPAIR)
                log.warning("plan_invalid", task_id=task_id, round=len(calls), errors=errors)
                messages += self._repair_messages(response, tool_use_id, errors)
            reason = "the plan stayed invalid after one repair: " + "; ".join(errors)
        except ProviderUnavailable as unavailable:
            log.warning("decomposition_waits_on_provider", task_id=task_id, reason=str(unavailable))
            return self._decomposition([], calls, provider_wait=unavailable.wait)
        except anthropic.APIError as error:  # the API refused the request: waiting would not mend it
            log.warning("decomposition_api_failed", task_id=task_id, error=str(error))
            reason = f"Claude API error: {error}"
        fallback = fallback_subtask(task_id, description, agents, task_type)
        return self._decomposition([fallback], calls, fallback_reason=reason)

    @staticmethod
    def _decomposition(
        subtasks: list[SubTask],
        calls: list[ModelCallUsage],
        *,
        repaired: bool = False,
        fallback_reason: str | None = None,
        provider_wait: ProviderWait | None = None,
    ) -> Decomposition:
        """The plan with what its calls used: each call, their sum, and the model that answered last."""
        usage = sum((call.usage for call in calls), TokenUsage())
        model = calls[-1].model if calls else None
        return Decomposition(
            subtasks,
            fallback_reason=fallback_reason,
            repaired=repaired,
            usage=usage,
            model=model,
            calls=calls,
            provider_wait=provider_wait,
        )

    @staticmethod
    def _repair_messages(response: Message, tool_use_id: str | None, errors: list[str]) -> list[MessageParam]:
        problems = "\n".join(f"- {error}" for error in errors)
        content: list[Any] = [
            {"type": "text", "text": f"The plan was invalid. Call {PLAN_TOOL_NAME} again with a corrected plan."}
        ]
        if tool_use_id is not None:  # the API requires an answer to the tool call before anything else
            content.insert(
                0, {"type": "tool_result", "tool_use_id": tool_use_id, "is_error": True, "content": problems}
            )
        else:
            content[0]["text"] += f"\n{problems}"
        assistant_turn: list[Any] = [block.model_dump(exclude_none=True) for block in response.content]
        assistant: AssistantMessageParam = {"role": "assistant", "content": assistant_turn}
        user: UserMessageParam = {"role": "user", "content": content}
        return [assistant, user]
