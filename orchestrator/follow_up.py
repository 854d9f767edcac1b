"""Whether a follow-up subtask may join its task's plan: the rules of a plan (orchestrator/plan.py), for one more.

Its capabilities are known by its type (AgentCapability). Its dependencies must be subtasks of the same task; it
cannot depend on itself (its id is new) and cannot close a cycle, since nothing stored can depend on a subtask that
did not exist. The plan, with it, must stay within MAX_SUBTASKS_PER_TASK.
"""

from collections.abc import Sequence

from shared.follow_up import FollowUpSubtask


def follow_up_problems(subtask: FollowUpSubtask, task_id: str, existing_ids: Sequence[str]) -> list[str]:
    """Every reason the subtask cannot join the task whose subtasks are `existing_ids`, worded for the model."""
    known = set(existing_ids)
    problems = [
        f"dependency {dependency!r} is not a subtask of task {task_id}"
        for dependency in subtask.dependencies
        if dependency not in known
    ]
    if subtask.id in subtask.dependencies:
        problems.append(f"subtask {subtask.id!r} depends on itself")
    return problems


def limit_problem(existing: int, max_subtasks: int) -> str | None:
    if existing + 1 > max_subtasks:
        return (
            f"the task has {existing} subtasks; at most {max_subtasks} are allowed "
            "(the setting MAX_SUBTASKS_PER_TASK raises it)"
        )
    return None
