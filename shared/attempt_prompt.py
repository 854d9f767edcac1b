"""The prompt of one subtask attempt: the subtask, its task, what its dependencies produced, where to work.

Agents send it to Claude; the orchestrator counts its tokens to estimate what a plan may cost
(orchestrator/estimates.py).
"""

from pathlib import Path
from typing import Any

from shared.models import TaskExecutionRequest

# Dependency outputs are quoted in full up to this size each; the rest is reachable with embedding_search.
MAX_DEPENDENCY_OUTPUT_CHARS = 8000


def dependency_outputs(request: TaskExecutionRequest) -> list[dict[str, Any]]:
    """`task_context["dependency_outputs"]` as a list of `{subtask_id, output}`; anything malformed is skipped."""
    entries = request.task_context.get("dependency_outputs", [])
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, dict) and "subtask_id" in entry]


def build_prompt(request: TaskExecutionRequest, workspace: Path, context_pack: str | None = None) -> str:
    """The attempt's prompt; `context_pack` is the section quoting its task's context pack (the agent's
    agent/executors/prompt.py writes it), if the task has one."""
    subtask = request.subtask
    capabilities = ", ".join(capability.value for capability in subtask.required_capabilities)
    sections = [
        f"Subtask {subtask.id} (attempt {subtask.attempt_count}) of task {request.task_id}:\n{subtask.description}",
        f"Required capabilities: {capabilities}",
    ]
    task_description = request.task_context.get("task_description")
    if task_description:
        sections.append(f"The whole task, for context:\n{task_description}")
    outputs = dependency_outputs(request)
    if outputs:
        sections.append(
            "Outputs of the subtasks this one depends on:\n" + "\n".join(_quote(entry) for entry in outputs)
        )
    if context_pack is not None:
        sections.append(context_pack)
    sections.append(
        f"Workspace: the task's files are in {workspace} (read_file takes paths relative to it); files you write "
        f"with write_file land in {workspace / 'output'}."
    )
    sections.append("Do only this subtask, then answer with its result.")
    return "\n\n".join(sections)


def _quote(entry: dict[str, Any]) -> str:
    output = str(entry.get("output") or "(no output)")
    if len(output) > MAX_DEPENDENCY_OUTPUT_CHARS:
        output = output[:MAX_DEPENDENCY_OUTPUT_CHARS] + " [... truncated; embedding_search finds the rest]"
    return f"--- {entry['subtask_id']} ---\n{output}"
