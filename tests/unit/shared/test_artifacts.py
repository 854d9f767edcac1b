"""What kind each artifact is, and how its content is kept: copied while promoted, hashed as copied, never changed."""

import hashlib
import io
import os
import stat
from pathlib import Path

import pytest

from orchestrator.artifact_service import content_disposition
from shared import attempt_output
from shared.artifact_store import ArtifactStore
from shared.artifacts import ArtifactType, artifact_type, media_type
from shared.attempt_output import SettledAttempt

TOKEN = "0b7e0c47-6f07-4c8e-9a4c-2d1f61b1a7a9"
PATCH = "--- a/ledger.py\n+++ b/ledger.py\n@@ -1,2 +1,2 @@\n def total(rows):\n-    return sum(rows)\n+    return 0\n"


def kind(name: str, content: bytes) -> ArtifactType:
    return artifact_type(name, io.BytesIO(content), len(content))


@pytest.mark.parametrize("name", ["fix.patch", "fixes/ledger.diff", "UPPER.PATCH"])
def test_a_unified_diff_named_as_a_patch_is_a_patch(name: str) -> None:
    assert kind(name, PATCH.encode()) is ArtifactType.PATCH


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"I fixed the ledger; apply this by hand.",
        PATCH.replace("@@ -1,2 +1,2 @@", "@@ -1,9 +1,2 @@").encode(),  # a hunk shorter than it says
        b"\xff\xfe--- a/x\n+++ b/x\n",  # not UTF-8
    ],
    ids=["empty", "prose", "truncated-hunk", "not-utf8"],
)
def test_a_patch_name_on_what_is_no_unified_diff_is_other(content: bytes) -> None:
    assert kind("fix.patch", content) is ArtifactType.OTHER


def test_the_other_kinds_follow_the_name() -> None:
    kinds = {name: kind(name, PATCH.encode()) for name in ["r.md", "t.csv", "s.py", "blob.bin", "diff.txt"]}
    assert kinds == {
        "r.md": ArtifactType.REPORT,
        "t.csv": ArtifactType.DATA,
        "s.py": ArtifactType.CODE,
        "blob.bin": ArtifactType.OTHER,
        "diff.txt": ArtifactType.REPORT,  # a diff in a .txt is not listed as a patch
    }


def test_media_types_do_not_depend_on_the_host() -> None:
    names = ["r.md", "f.patch", "t.csv", "d.json", "x.unknownsuffix"]
    assert [media_type(name) for name in names] == [
        "text/markdown",
        "text/x-diff",
        "text/csv",
        "application/json",
        "application/octet-stream",
    ]


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    folder = tmp_path / "shared_files" / "task_1" / ".attempts" / TOKEN
    (folder / "fixes").mkdir(parents=True)
    (folder / "report.md").write_text("report")
    (folder / "fixes" / "ledger.patch").write_text(PATCH)
    (folder / "same.md").write_text("report")
    return folder


def test_promotion_keeps_a_read_only_copy_of_each_file_named_by_its_sha256(staged: Path, tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")

    kept = attempt_output.settle(tmp_path / "shared_files", [SettledAttempt("task_1", TOKEN, True)], store)

    files = {file.name: (file.type, file.size, file.sha256) for file in kept[TOKEN]}
    report_sha, patch_sha = hashlib.sha256(b"report").hexdigest(), hashlib.sha256(PATCH.encode()).hexdigest()
    assert files == {
        "report.md": (ArtifactType.REPORT, 6, report_sha),
        "same.md": (ArtifactType.REPORT, 6, report_sha),
        "fixes/ledger.patch": (ArtifactType.PATCH, len(PATCH), patch_sha),
    }
    assert sorted(path.name for path in (tmp_path / "artifacts" / "task_1").iterdir()) == sorted(
        [report_sha, patch_sha]  # equal contents are stored once, and no partial copy is left
    )
    stored = store.path_of("task_1", patch_sha)
    assert stored.read_text() == PATCH
    assert not stored.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    output = tmp_path / "shared_files" / "task_1" / "output"
    assert (output / "fixes" / "ledger.patch").read_text() == PATCH  # promoted as before

    (output / "fixes" / "ledger.patch").write_text("overwritten by a later subtask")
    assert stored.read_text() == PATCH


def test_a_staged_file_with_other_hard_links_is_promoted_but_never_kept(staged: Path, tmp_path: Path) -> None:
    """A hard link may bring a host file into the workspace: its content is never copied where a download reads."""
    secret = tmp_path / "host-secret"
    secret.write_text("the host's secret")
    os.link(secret, staged / "leak.md")
    store = ArtifactStore(tmp_path / "artifacts")

    kept = attempt_output.settle(tmp_path / "shared_files", [SettledAttempt("task_1", TOKEN, True)], store)

    assert "leak.md" not in {file.name for file in kept[TOKEN]}
    assert hashlib.sha256(b"the host's secret").hexdigest() not in os.listdir(tmp_path / "artifacts" / "task_1")


def test_a_failed_attempt_keeps_nothing(staged: Path, tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    kept = attempt_output.settle(tmp_path / "shared_files", [SettledAttempt("task_1", TOKEN, False)], store)
    assert kept == {}
    assert not (tmp_path / "artifacts").exists()


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("fixes/ledger.patch", "attachment; filename=\"ledger.patch\"; filename*=UTF-8''ledger.patch"),
        (
            'a/"x";\r\nSet-Cookie: y',
            "attachment; filename=\"_x____Set-Cookie_ y\"; filename*=UTF-8''%22x%22%3B%0D%0ASet-Cookie%3A%20y",
        ),
        ("..", "attachment; filename=\"artifact\"; filename*=UTF-8''artifact"),
    ],
)  # fmt: skip
def test_the_download_s_file_name_cannot_break_out_of_its_header(name: str, header: str) -> None:
    assert content_disposition(name) == header
