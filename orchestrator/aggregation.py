"""The final result of a task, assembled from the results that completed its subtasks."""

import json
from typing import Any

from shared.models import SubTask, SubTaskResult

SUMMARY_PREVIEW_CHARS = 500


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def final_subtasks(subtasks: list[SubTask]) -> list[SubTask]:
    """Subtasks nothing else depends on: their outputs are the task's answer."""
    needed = {dependency for subtask in subtasks for dependency in subtask.dependencies}
    return [subtask for subtask in subtasks if subtask.id not in needed]


def aggregate_results(subtasks: list[SubTask], results: list[SubTaskResult]) -> dict[str, Any]:
    """Every subtask's output in plan order, JSON outputs merged, a summary, and the totals."""
    completed = {result.subtask_id: result for result in results}
    outputs = [
        {
            "subtask_id": subtask.id,
            "description": subtask.description,
            "agent_id": completed[subtask.id].agent_id,
            "output": completed[subtask.id].output,
            "execution_time": completed[subtask.id].execution_time,
        }
        for subtask in subtasks
        if subtask.id in completed
    ]
    merged: dict[str, Any] = {}
    for subtask in subtasks:
        if subtask.id in completed:
            merged.update(_json_object(completed[subtask.id].output or "") or {})
    answers = [completed[subtask.id].output or "" for subtask in final_subtasks(subtasks) if subtask.id in completed]
    summary = "\n\n".join(answer[:SUMMARY_PREVIEW_CHARS] for answer in answers)
    return {
        "summary": summary,
        "outputs": outputs,
        "merged": merged,
        "total_execution_time": round(sum(result.execution_time for result in completed.values()), 6),
        "token_usage": {
            "input_tokens": sum(result.token_usage.input_tokens for result in completed.values()),
            "output_tokens": sum(result.token_usage.output_tokens for result in completed.values()),
        },
        "cost_usd": round(sum(result.cost_usd for result in completed.values()), 6),
        "simulated": any(result.simulated for result in completed.values()),
    }


def describe_failure(subtasks: list[SubTask], failures: list[SubTaskResult], blocked: int) -> str:
    """One readable line for a failed task: which subtasks failed and why, and how many never ran."""
    descriptions = {subtask.id: subtask.description for subtask in subtasks}
    parts = [f"subtask '{descriptions.get(r.subtask_id, r.subtask_id)[:80]}' failed: {r.error}" for r in failures]
    if blocked:
        parts.append(f"{blocked} dependent subtask(s) blocked")
    return "; ".join(parts) or "the task could not complete"
