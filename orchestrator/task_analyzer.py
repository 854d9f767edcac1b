"""Decomposition of a task into subtasks through Claude, with one repair round and a safe fallback."""

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
from shared.models import AgentCapability, AgentStatus, SubTask, TaskType, TokenUsage

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


def api_error_kind(error: anthropic.APIError) -> str:
    """The provider error kind (shared/failure_reasons.py) of an error of the Anthropic client."""
    if isinstance(error, anthropic.APITimeoutError):
        return "timeout"
    if isinstance(error, anthropic.APIConnectionError):
        return "connection"
    if isinstance(error, anthropic.APIStatusError):
        return provider_error_kind(error.status_code)
    return "invalid_response"  # an answer the client could not read


class TaskAnalyzer:
    def __init__(
        self, client: anthropic.AsyncAnthropic, settings: Settings, metrics: OrchestratorMetrics | None = None
    ) -> None:
        self._client = client
        self._settings = settings
        self._metrics = metrics or OrchestratorMetrics()

    async def _ask(self, messages: list[MessageParam]) -> Message:
        max_subtasks = self._settings.max_subtasks_per_task
        return await self._client.messages.create(
            model=self._settings.claude_model,
            max_tokens=self._settings.decomposition_max_tokens,
            system=SYSTEM_PROMPT,
            messages=messages,
            tools=[plan_tool(max_subtasks)],
            tool_choice={"type": "tool", "name": PLAN_TOOL_NAME},
        )

    async def decompose_task(
        self,
        task_id: str,
        description: str,
        agents: Sequence[AgentStatus],
        task_type: TaskType = TaskType.GENERAL,
    ) -> Decomposition:
        """Subtasks for the task: Claude's plan, repaired once if invalid, else a single fallback subtask; each of
        the task's type unless the plan gives it another."""
        started = time.perf_counter()
        decomposition = await self._plan_or_fallback(task_id, description, agents, task_type)
        decomposition.duration_ms = (time.perf_counter() - started) * 1000
        log.info(
            "task_decomposed",
            task_id=task_id,
            subtasks=len(decomposition.subtasks),
            repaired=decomposition.repaired,
            fallback_reason=decomposition.fallback_reason,
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
        except anthropic.APIError as error:
            log.warning("decomposition_api_failed", task_id=task_id, error=str(error))
            self._metrics.provider_errors.labels(api_error_kind(error)).inc()
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
    ) -> Decomposition:
        """The plan with what its calls used: each call, their sum, and the model that answered last."""
        usage = sum((call.usage for call in calls), TokenUsage())
        model = calls[-1].model if calls else None
        return Decomposition(
            subtasks, fallback_reason=fallback_reason, repaired=repaired, usage=usage, model=model, calls=calls
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
