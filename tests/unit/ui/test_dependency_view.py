"""The reading order of a plan: each subtask after what it waits on, indented by the length of its chain."""

from shared.models import AgentCapability, SubTask, SubTaskStatus
from ui.dependency_view import dependency_dot, plan_steps


def subtask(subtask_id: str, *dependencies: str, status: SubTaskStatus = SubTaskStatus.PENDING) -> SubTask:
    return SubTask(
        id=subtask_id,
        task_id="task_1",
        description=f"step {subtask_id}",
        required_capabilities=[AgentCapability.DATA_ANALYSIS],
        dependencies=list(dependencies),
        status=status,
    )


def test_steps_come_after_what_they_wait_on_even_when_the_plan_lists_them_first() -> None:
    steps = plan_steps(
        [
            subtask("report", "analyse", "chart"),
            subtask("chart", "fetch"),
            subtask("analyse", "fetch"),
            subtask("fetch"),
        ]
    )

    assert [(step.number, step.subtask.id, step.depth, step.waits_on) for step in steps] == [
        (1, "fetch", 0, []),
        (2, "chart", 1, [1]),
        (3, "analyse", 1, [1]),
        (4, "report", 2, [2, 3]),
    ]


def test_depth_is_the_longest_chain_not_the_shortest() -> None:
    steps = plan_steps([subtask("a"), subtask("b", "a"), subtask("c", "a", "b")])

    assert {step.subtask.id: step.depth for step in steps} == {"a": 0, "b": 1, "c": 2}


def test_unknown_dependencies_and_cycles_still_show_every_subtask() -> None:
    # The orchestrator refuses both; the view must not lose subtasks if one ever reaches it.
    steps = plan_steps([subtask("x", "gone"), subtask("y", "z"), subtask("z", "y")])

    assert [(step.subtask.id, step.depth, step.waits_on) for step in steps] == [
        ("x", 0, []),
        ("y", 1, [3]),
        ("z", 1, [2]),
    ]


def test_the_graph_colours_nodes_by_status_and_escapes_labels() -> None:
    quoted = subtask("a", status=SubTaskStatus.FAILED).model_copy(update={"description": 'say "hi" \\ bye'})
    dot = dependency_dot(plan_steps([quoted, subtask("b", "a", status=SubTaskStatus.BLOCKED)]))

    assert 's1 [label="1. say \\"hi\\" \\\\ bye\\nfailed", fillcolor="#fecaca"];' in dot
    assert 's2 [label="2. step b\\nblocked", fillcolor="#fed7aa"];' in dot
    assert "s1 -> s2;" in dot
