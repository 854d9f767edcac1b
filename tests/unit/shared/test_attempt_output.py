"""Promoting and discarding staged output never follows a symlink out of the task's workspace."""

import os
from pathlib import Path

import pytest

from shared import attempt_output
from shared.attempt_output import SettledAttempt

TOKEN = "0b7e0c47-6f07-4c8e-9a4c-2d1f61b1a7a9"


@pytest.fixture
def shared_files(tmp_path: Path) -> Path:
    staged = tmp_path / "shared_files" / "task_1" / ".attempts" / TOKEN
    (staged / "tables").mkdir(parents=True)
    (staged / "report.md").write_text("report")
    (staged / "tables" / "q1.csv").write_text("a,b")
    return tmp_path / "shared_files"


def files_under(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): path.read_text()
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink()
    }


def test_promotion_moves_every_staged_file_over_the_output(shared_files: Path) -> None:
    (shared_files / "task_1" / "output").mkdir()
    (shared_files / "task_1" / "output" / "report.md").write_text("an earlier report")
    (shared_files / "task_1" / "output" / "kept.md").write_text("kept")

    assert attempt_output.promote(shared_files, "task_1", TOKEN) == 2

    assert files_under(shared_files / "task_1") == {
        "output/report.md": "report",
        "output/tables/q1.csv": "a,b",
        "output/kept.md": "kept",
    }
    assert list((shared_files / "task_1" / ".attempts").iterdir()) == []


def test_nothing_staged_is_nothing_to_do(shared_files: Path) -> None:
    assert attempt_output.promote(shared_files, "task_1", "another-token") == 0
    assert attempt_output.promote(shared_files, "task_without_workspace", TOKEN) == 0
    attempt_output.discard(shared_files, "task_without_workspace", TOKEN)
    attempt_output.discard_all(shared_files, "task_without_workspace")


def test_a_symlinked_output_folder_is_refused_and_nothing_leaves_the_workspace(
    shared_files: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, shared_files / "task_1" / "output")

    attempt_output.settle(shared_files, [SettledAttempt("task_1", TOKEN, completed=True)])

    assert list(outside.iterdir()) == []
    assert files_under(shared_files / "task_1" / ".attempts" / TOKEN) == {"report.md": "report", "tables/q1.csv": "a,b"}


def test_a_symlink_staged_among_the_files_is_left_behind_not_followed(shared_files: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the host's")
    os.symlink(secret, shared_files / "task_1" / ".attempts" / TOKEN / "secret.txt")

    attempt_output.promote(shared_files, "task_1", TOKEN)

    assert files_under(shared_files / "task_1") == {"output/report.md": "report", "output/tables/q1.csv": "a,b"}
    assert secret.read_text() == "the host's"


def test_discarding_removes_the_staged_files_and_not_what_a_symlink_points_at(
    shared_files: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.md").write_text("keep")
    os.symlink(elsewhere, shared_files / "task_1" / ".attempts" / TOKEN / "linked")

    attempt_output.settle(shared_files, [SettledAttempt("task_1", TOKEN, completed=False)])

    assert not (shared_files / "task_1" / ".attempts" / TOKEN).exists()
    assert files_under(elsewhere) == {"keep.md": "keep"}


@pytest.mark.parametrize("name", ["..", "a/b", "", "."])
def test_names_that_are_not_one_folder_are_refused(shared_files: Path, name: str) -> None:
    with pytest.raises(ValueError, match="cannot name a workspace folder"):
        attempt_output.promote(shared_files, "task_1", name)
    with pytest.raises(ValueError, match="cannot name a workspace folder"):
        attempt_output.discard_all(shared_files, name)
