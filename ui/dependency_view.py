"""A task's plan as a person reads it: subtasks in an order where each comes after what it waits on."""

from dataclasses import dataclass

from shared.models import SubTask
from ui.formatting import STATUS_COLOURS, preview


@dataclass(frozen=True)
class PlanStep:
    number: int  # 1-based position in the reading order
    subtask: SubTask
    depth: int  # longest chain of dependencies before it: the indentation of the list
    waits_on: list[int]  # numbers of the steps it depends on


def _depths(subtasks: list[SubTask]) -> dict[str, int]:
    """Depth of each subtask, computed in rounds; what is left after the rounds sits on a cycle (or on itself)."""
    known = {subtask.id for subtask in subtasks}
    depths: dict[str, int] = {}
    remaining = list(subtasks)
    while remaining:
        ready = [s for s in remaining if all(d in depths or d not in known for d in s.dependencies)]
        if not ready:
            break  # the orchestrator refuses cycles; if one slips through, show the rest after the others
        for subtask in ready:
            depths[subtask.id] = 1 + max((depths[d] for d in subtask.dependencies if d in depths), default=-1)
        remaining = [s for s in remaining if s.id not in depths]
    deepest = max(depths.values(), default=-1)
    depths.update({subtask.id: deepest + 1 for subtask in remaining})
    return depths


def plan_steps(subtasks: list[SubTask]) -> list[PlanStep]:
    """Subtasks by depth, plan order within a depth; each names the steps it waits on."""
    depths = _depths(subtasks)
    ordered = sorted(subtasks, key=lambda subtask: depths[subtask.id])  # stable: plan order within a depth
    numbers = {subtask.id: index for index, subtask in enumerate(ordered, start=1)}
    return [
        PlanStep(
            number=numbers[subtask.id],
            subtask=subtask,
            depth=depths[subtask.id],
            waits_on=sorted(numbers[d] for d in subtask.dependencies if d in numbers),
        )
        for subtask in ordered
    ]


def _dot_label(step: PlanStep) -> str:
    text = preview(step.subtask.description, 48).replace("\\", "\\\\").replace('"', '\\"')
    return f"{step.number}. {text}\\n{step.subtask.status.value}"


def dependency_dot(steps: list[PlanStep]) -> str:
    """A Graphviz digraph, left to right, one node per subtask coloured by status, an edge per dependency."""
    lines = [
        "digraph plan {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fontname="sans-serif", fontsize=11, color="#6b7280"];',
        '  edge [color="#9ca3af"];',
    ]
    for step in steps:
        colour = STATUS_COLOURS.get(step.subtask.status.value, "#ffffff")
        lines.append(f'  s{step.number} [label="{_dot_label(step)}", fillcolor="{colour}"];')
    lines.extend(f"  s{before} -> s{step.number};" for step in steps for before in step.waits_on)
    lines.append("}")
    return "\n".join(lines)
