"""An attempt's files become the task's output only when its result applies: a superseded attempt's never do.

The files are written as an agent writes them (its Workspace, under the offer's delivery token); the lifecycle
promotes or discards them on the real PostgreSQL, so the token it trusts is the one PostgreSQL matched.
"""

from pathlib import Path

from agent.tools.workspace import Workspace, WorkspaceQuota
from orchestrator.lifecycle import TaskLifecycle
from shared.models import ResultStatus, SubTask, Task
from tests.factories import build_planned_task, build_result, subtask_id

ROOMY = WorkspaceQuota(max_bytes=1_000_000, max_files=100)


async def offered(lifecycle: TaskLifecycle, task: Task, agent_id: str) -> SubTask:
    [claimed] = await lifecycle.claim([(subtask_id(task, "a"), 1, agent_id)])
    return claimed.subtask


def written(lifecycle: TaskLifecycle, subtask: SubTask, files: dict[str, str]) -> Workspace:
    """What the agent running `subtask` writes with write_file."""
    assert subtask.delivery_token is not None
    workspace = Workspace(lifecycle.settings.shared_files_dir, subtask.task_id, subtask.delivery_token)
    workspace.create()
    for path, content in files.items():
        workspace.write(path, content.encode(), ROOMY)
    return workspace


def output_of(lifecycle: TaskLifecycle, task: Task) -> dict[str, str]:
    root = Path(lifecycle.settings.shared_files_dir).resolve() / task.id
    return {path.relative_to(root).as_posix(): path.read_text() for path in root.rglob("*") if path.is_file()}


async def submitted(lifecycle: TaskLifecycle, plan: dict[str, list[str]]) -> Task:
    task = build_planned_task(plan)
    await lifecycle.submit(task)
    return task


async def test_a_completed_attempt_s_files_become_the_task_s_output(lifecycle: TaskLifecycle) -> None:
    task = await submitted(lifecycle, {"a": [], "b": ["a"]})
    running = await offered(lifecycle, task, "agent1")
    written(lifecycle, running, {"report.md": "# Report", "tables/q1.csv": "a,b"})
    assert output_of(lifecycle, task).keys() == {
        f".attempts/{running.delivery_token}/report.md",
        f".attempts/{running.delivery_token}/tables/q1.csv",
    }

    outcome = await lifecycle.apply_results([build_result(running)])

    assert len(outcome.applied) == 1
    assert output_of(lifecycle, task) == {"output/report.md": "# Report", "output/tables/q1.csv": "a,b"}


async def test_a_superseded_attempt_s_files_never_reach_the_output(lifecycle: TaskLifecycle) -> None:
    """agent1 hung, its attempt was retried on agent2, then agent1 woke up, wrote and reported."""
    task = await submitted(lifecycle, {"a": [], "b": ["a"]})
    hung = await offered(lifecycle, task, "agent1")
    await lifecycle.fail_stranded([(hung, "agent agent1 stopped heartbeating while running the subtask")])
    [retried] = await lifecycle.claim([(subtask_id(task, "a"), 2, "agent2")])
    current = retried.subtask
    written(lifecycle, current, {"report.md": "agent2's report"})
    written(lifecycle, hung, {"report.md": "agent1's late report", "extra.md": "agent1's extra"})

    late = await lifecycle.apply_results([build_result(hung, agent_id="agent1")])
    on_time = await lifecycle.apply_results([build_result(current, attempt=2, agent_id="agent2")])

    assert (late.applied, len(on_time.applied)) == ([], 1)
    output = output_of(lifecycle, task)
    assert {path: text for path, text in output.items() if path.startswith("output/")} == {
        "output/report.md": "agent2's report"
    }
    assert set(output) - {"output/report.md"} == {
        f".attempts/{hung.delivery_token}/report.md",
        f".attempts/{hung.delivery_token}/extra.md",
    }


async def test_a_failed_attempt_s_files_are_removed_and_an_ended_task_keeps_no_staged_files(
    lifecycle: TaskLifecycle,
) -> None:
    task = await submitted(lifecycle, {"a": []})
    first = await offered(lifecycle, task, "agent1")
    written(lifecycle, first, {"half.md": "half done"})

    await lifecycle.apply_results([build_result(first, status=ResultStatus.FAILED, retryable=True)])
    assert output_of(lifecycle, task) == {}

    [second] = await lifecycle.claim([(subtask_id(task, "a"), 2, "agent2")])
    written(lifecycle, second.subtask, {"done.md": "done"})
    stray = written(lifecycle, first, {"stray.md": "written after its attempt failed"})

    await lifecycle.apply_results([build_result(second.subtask, attempt=2, agent_id="agent2")])

    assert output_of(lifecycle, task) == {"output/done.md": "done"}  # the task ended: nothing stays staged
    assert not stray.staged.exists()


async def test_cancel_removes_what_running_attempts_staged(lifecycle: TaskLifecycle) -> None:
    task = await submitted(lifecycle, {"a": []})
    running = await offered(lifecycle, task, "agent1")
    written(lifecycle, running, {"draft.md": "draft"})

    await lifecycle.cancel(task.id)
    await lifecycle.apply_results([build_result(running)])

    assert output_of(lifecycle, task) == {}
