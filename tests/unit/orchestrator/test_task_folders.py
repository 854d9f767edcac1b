"""A task's folders go with it, and nothing they point at: a symlink in place of a workspace is removed, never
followed; only folders named like task ids are ever offered to the sweep."""

import os
import time
from pathlib import Path

from orchestrator.task_folders import TaskFolders
from shared.models import new_task_id


def test_a_task_s_folders_go_and_what_a_symlink_in_their_place_points_at_stays(tmp_path: Path) -> None:
    workspaces, artifacts, outside = tmp_path / "shared_files", tmp_path / "artifacts", tmp_path / "host"
    task_id = new_task_id()
    (workspaces / task_id / "output" / "nested").mkdir(parents=True)
    (workspaces / task_id / "output" / "nested" / "report.md").write_text("report")
    outside.mkdir()
    (outside / "keep.txt").write_text("not the task's")
    artifacts.mkdir()
    (artifacts / task_id).symlink_to(outside)
    (workspaces / task_id / "output" / "link").symlink_to(outside)  # inside: removed as a link, never followed

    failed = TaskFolders((workspaces, artifacts)).remove([task_id, "../host"])

    assert failed == 0
    assert not os.path.lexists(workspaces / task_id) and not os.path.lexists(artifacts / task_id)
    assert (outside / "keep.txt").read_text() == "not the task's"


def test_only_folders_named_like_task_ids_and_untouched_long_enough_are_named_for_the_sweep(tmp_path: Path) -> None:
    root = tmp_path / "shared_files"
    old, recent = new_task_id(), new_task_id()
    for name in (old, recent, "notes", "task_short", f".{old}"):
        (root / name).mkdir(parents=True)
    long_ago = time.time() - 7200
    for name in (old, "notes", "task_short", f".{old}"):
        os.utime(root / name, (long_ago, long_ago))
    os.utime(root / recent, (long_ago + 6600, long_ago + 6600))  # ten minutes ago

    folders = TaskFolders((root, tmp_path / "missing"))

    assert folders.named_for_tasks(untouched_for=3600) == {old}
    assert folders.named_for_tasks(untouched_for=300) == {old, recent}
