"""The folders a task leaves on disk, removed with it: its workspace `{SHARED_FILES_DIR}/{task_id}/` (inputs, output,
staged attempts) and the copies of its artifacts `{ARTIFACTS_DIR}/{task_id}/`.

A folder can outlive its task: a removal that failed after the rows were gone, or an agent whose attempt was still
running when its task was removed and wrote afterwards. The retention loop sweeps such leftovers: a folder named like a
task id whose task no longer exists, untouched for a while. Only names of the form the orchestrator gives task ids are
ever touched, so nothing else an operator keeps in these folders is at risk.
"""

import os
import re
import shutil
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog

from shared.attempt_output import workspace_name_problem
from shared.config import Settings

log = structlog.get_logger(__name__)

TASK_FOLDER_NAME = re.compile(r"task_[0-9a-f]{32}")  # shared.models.new_task_id


@dataclass(frozen=True)
class TaskFolders:
    roots: tuple[Path, ...]

    @classmethod
    def of(cls, settings: Settings) -> "TaskFolders":
        return cls((Path(settings.shared_files_dir), Path(settings.artifacts_dir)))

    def remove(self, task_ids: Iterable[str]) -> int:
        """Remove the tasks' folders; one that cannot be removed is logged and left for the sweep. How many failed."""
        failed = 0
        for task_id in task_ids:
            if workspace_name_problem(task_id):  # names no folder of these roots (and never reaches out of them)
                continue
            for root in self.roots:
                try:
                    _remove(root / task_id)
                except OSError as error:
                    failed += 1
                    log.warning(
                        "task_folder_not_removed", task_id=task_id, folder=str(root / task_id), error=str(error)
                    )
        return failed

    def named_for_tasks(self, untouched_for: float) -> set[str]:
        """The task ids that name a folder in any root not modified for `untouched_for` seconds."""
        oldest = time.time() - untouched_for
        names: set[str] = set()
        for root in self.roots:
            try:
                with os.scandir(root) as entries:
                    names |= {
                        entry.name
                        for entry in entries
                        if TASK_FOLDER_NAME.fullmatch(entry.name)
                        and entry.stat(follow_symlinks=False).st_mtime < oldest
                    }
            except FileNotFoundError:
                continue
        return names


def _remove(folder: Path) -> None:
    if folder.is_symlink():  # a symlink in place of a workspace goes, never what it points at
        folder.unlink()
        return
    try:
        shutil.rmtree(folder)  # never follows a symlink inside
    except FileNotFoundError:
        return
    except PermissionError:
        # A sandboxed command may have taken the write permission off a folder of its output.
        _make_folders_writable(folder)
        shutil.rmtree(folder)


def _make_folders_writable(folder: Path) -> None:
    os.chmod(folder, stat.S_IRWXU)
    for parent, names, _ in os.walk(folder):  # top-down: each folder is made readable before it is entered
        for name in names:
            path = os.path.join(parent, name)
            if stat.S_ISDIR(os.lstat(path).st_mode):  # os.walk lists symlinks to folders too: never changed
                os.chmod(path, stat.S_IRWXU)
