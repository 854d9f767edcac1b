"""The prompt of one subtask attempt: the subtask, its task, what its dependencies produced, where to work."""

from pathlib import Path
from typing import Any

from agent.context_pack_loader import LoadedContextPack
from shared.models import CONTEXT_DIR, TaskExecutionRequest

# Dependency outputs are quoted in full up to this size each; the rest is reachable with embedding_search.
MAX_DEPENDENCY_OUTPUT_CHARS = 8000
# A pack's listing in the prompt is cut after this many lines per part; the files themselves are all in context/.
MAX_CONTEXT_LINES = 300


def dependency_outputs(request: TaskExecutionRequest) -> list[dict[str, Any]]:
    """`task_context["dependency_outputs"]` as a list of `{subtask_id, output}`; anything malformed is skipped."""
    entries = request.task_context.get("dependency_outputs", [])
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, dict) and "subtask_id" in entry]


def build_prompt(request: TaskExecutionRequest, workspace: Path, pack: LoadedContextPack | None = None) -> str:
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
    if pack is not None:
        sections.append(context_pack_section(pack))
    sections.append(
        f"Workspace: the task's files are in {workspace} (read_file takes paths relative to it); files you write "
        f"with write_file land in {workspace / 'output'}."
    )
    sections.append("Do only this subtask, then answer with its result.")
    return "\n\n".join(sections)


def context_pack_section(pack: LoadedContextPack) -> str:
    """The pack's manifest, for the model: where its files are, its symbols, its dependencies and notes."""
    manifest = pack.manifest
    lines = [
        f"Context pack {pack.context_pack_id}: {len(pack.files)} files, read-only, in {pack.path} (read them with "
        f"read_file, e.g. {CONTEXT_DIR}/{pack.files[0].path}).",
        "Files:",
        *_capped([f"- {CONTEXT_DIR}/{file.path} ({len(file.content)} bytes)" for file in pack.files]),
    ]
    if manifest.symbols:
        symbols = [
            f"- {symbol.name} ({symbol.kind}) in {CONTEXT_DIR}/{symbol.path}"
            + (f", line {symbol.line}" if symbol.line else "")
            for symbol in manifest.symbols
        ]
        lines += ["Symbols:", *_capped(symbols)]
    if manifest.dependencies:
        dependencies = [
            f"- {dependency.source} -> {dependency.target}" + (f": {dependency.note}" if dependency.note else "")
            for dependency in manifest.dependencies
        ]
        lines += ["Dependencies:", *_capped(dependencies)]
    if manifest.notes:
        lines += ["Notes:", manifest.notes]
    return "\n".join(lines)


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_CONTEXT_LINES:
        return lines
    return [*lines[:MAX_CONTEXT_LINES], f"... and {len(lines) - MAX_CONTEXT_LINES} more"]


def _quote(entry: dict[str, Any]) -> str:
    output = str(entry.get("output") or "(no output)")
    if len(output) > MAX_DEPENDENCY_OUTPUT_CHARS:
        output = output[:MAX_DEPENDENCY_OUTPUT_CHARS] + " [... truncated; embedding_search finds the rest]"
    return f"--- {entry['subtask_id']} ---\n{output}"
