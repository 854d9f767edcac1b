"""Artifacts are the files of applied completions, recorded with them: a superseded attempt's never are, and a
download is the bytes whose SHA-256 was recorded, whatever later subtasks write over the output.

The files are written as an agent writes them (its Workspace, under the offer's delivery token); the lifecycle
applies the results on the real PostgreSQL, and the API of an orchestrator of the lifecycle's tenant serves what it
recorded.
"""

import asyncio
import hashlib
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest

from orchestrator.lifecycle import TaskLifecycle
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.models import ResultStatus, SubTask, Task
from tests.factories import build_result, subtask_id
from tests.integration.orchestrator.test_attempt_output import offered, output_of, submitted, written
from tests.orchestrator_harness import OrchestratorFactory

PATCH = """--- a/ledger.py
+++ b/ledger.py
@@ -1,2 +1,2 @@
 def total(rows):
-    return sum(rows)
+    return sum(row.amount for row in rows)
"""
REPORT = "# Ledger report\n\nThe totals now add the amounts.\n"
Api = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def api(orchestrator: OrchestratorFactory, settings: Settings) -> Api:
    """`api(**settings)`: a client of an orchestrator of the tenant whose tasks the `lifecycle` fixture makes."""
    return lambda **overrides: orchestrator({}, **{"tenant_id": settings.tenant_id, **overrides})


@pytest.fixture
def repositories(db: DatabaseManager) -> Repositories:
    """The `lifecycle` fixture's tenant's repositories."""
    return db.repositories()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def listed(body: dict[str, object]) -> dict[str, dict[str, object]]:
    artifacts = body["artifacts"]
    assert isinstance(artifacts, list)
    return {artifact["name"]: artifact for artifact in artifacts}


async def test_a_completed_attempt_s_files_are_recorded_as_artifacts_in_the_transaction_that_applies_it(
    lifecycle: TaskLifecycle, repositories: Repositories
) -> None:
    task = await submitted(lifecycle, {"a": [], "b": ["a"]})
    running = await offered(lifecycle, task, "agent1")
    files = {"report.md": REPORT, "fixes/ledger.patch": PATCH, "notes.patch": "not a diff at all", "q1.csv": "a,b"}
    written(lifecycle, running, files)

    outcome = await lifecycle.apply_results([build_result(running)])

    refs = {ref.name: ref for ref in outcome.artifacts[(running.id, 1)]}
    kinds = {name: (ref.type.value, ref.size, ref.sha256) for name, ref in refs.items()}
    assert kinds == {
        "report.md": ("report", len(REPORT), sha256(REPORT)),
        "fixes/ledger.patch": ("patch", len(PATCH), sha256(PATCH)),
        "notes.patch": ("other", 17, sha256("not a diff at all")),  # named a patch, but no unified diff
        "q1.csv": ("data", 3, sha256("a,b")),
    }
    recorded = await repositories.artifacts.list_for_task(task.id)
    assert {(a.artifact_id, a.subtask_id, a.attempt, a.agent_id) for a in recorded} == {
        (ref.artifact_id, running.id, 1, "agent1") for ref in refs.values()
    }
    media = {artifact.name: artifact.media_type for artifact in recorded}
    assert (media["report.md"], media["fixes/ledger.patch"], media["q1.csv"]) == (
        "text/markdown",
        "text/x-diff",
        "text/csv",
    )
    for artifact in recorded:
        stored = lifecycle.artifact_store.path_of(task.id, artifact.sha256)
        assert stored.read_text() == files[artifact.name]


async def test_an_artifact_keeps_its_content_when_a_later_subtask_overwrites_its_output_file(
    lifecycle: TaskLifecycle, api: Api
) -> None:
    task = await submitted(lifecycle, {"a": [], "b": ["a"]})
    first = await offered(lifecycle, task, "agent1")
    written(lifecycle, first, {"report.md": REPORT})
    await lifecycle.apply_results([build_result(first)])
    [second] = await lifecycle.claim([(subtask_id(task, "b"), 1, "agent2")])
    written(lifecycle, second.subtask, {"report.md": "# The second subtask's report\n"})
    await lifecycle.apply_results([build_result(second.subtask, agent_id="agent2")])
    assert output_of(lifecycle, task) == {"output/report.md": "# The second subtask's report\n"}

    async with api() as client:
        body = (await client.get(f"/tasks/{task.id}/artifacts")).json()
        [older, newer] = body["artifacts"]  # newest last
        downloads = [await client.get(artifact["download_url"]) for artifact in (older, newer)]

    assert [(a["name"], a["subtask_id"], a["agent_id"]) for a in (older, newer)] == [
        ("report.md", first.id, "agent1"),
        ("report.md", second.subtask.id, "agent2"),
    ]
    assert [download.text for download in downloads] == [REPORT, "# The second subtask's report\n"]


@pytest.mark.parametrize("superseded_by", ["stranded", "handed_back"])
async def test_a_superseded_attempt_s_patch_is_never_an_artifact(
    lifecycle: TaskLifecycle, api: Api, superseded_by: str
) -> None:
    """agent1's attempt failed stranded (it stopped heartbeating) or was handed back (it was declared failed), and
    ran again on agent2; agent1 then woke up, wrote a patch and reported completion."""
    task = await submitted(lifecycle, {"a": [], "b": ["a"]})
    hung = await offered(lifecycle, task, "agent1")
    if superseded_by == "stranded":
        await lifecycle.fail_stranded([(hung, "agent agent1 stopped heartbeating while running the subtask")])
    else:
        await lifecycle.hand_back("agent1", "agent agent1 was declared failed")
    [retried] = await lifecycle.claim([(subtask_id(task, "a"), 2, "agent2")])
    written(lifecycle, retried.subtask, {"report.md": REPORT})
    written(lifecycle, hung, {"fix.patch": PATCH})

    late = await lifecycle.apply_results([build_result(hung, agent_id="agent1")])
    on_time = await lifecycle.apply_results([build_result(retried.subtask, attempt=2, agent_id="agent2")])

    assert (late.applied, late.artifacts) == ([], {})
    assert [ref.name for ref in on_time.artifacts[(retried.subtask.id, 2)]] == ["report.md"]
    async with api() as client:
        body = (await client.get(f"/tasks/{task.id}/artifacts")).json()
    assert [(a["name"], a["attempt"], a["agent_id"]) for a in body["artifacts"]] == [("report.md", 2, "agent2")]


async def test_a_failed_attempt_s_files_are_no_artifacts(lifecycle: TaskLifecycle, repositories: Repositories) -> None:
    task = await submitted(lifecycle, {"a": []})
    first = await offered(lifecycle, task, "agent1")
    written(lifecycle, first, {"half.patch": PATCH})

    outcome = await lifecycle.apply_results([build_result(first, status=ResultStatus.FAILED, retryable=True)])

    assert len(outcome.applied) == 1 and outcome.artifacts == {}
    assert await repositories.artifacts.list_for_task(task.id) == []


async def completed_with(lifecycle: TaskLifecycle, files: dict[str, str]) -> tuple[Task, SubTask]:
    task = await submitted(lifecycle, {"a": []})
    running = await offered(lifecycle, task, "agent1")
    written(lifecycle, running, files)
    await lifecycle.apply_results([build_result(running)])
    return task, running


async def test_a_download_is_the_recorded_bytes_as_an_attachment_with_the_sha256_as_etag(
    lifecycle: TaskLifecycle, api: Api
) -> None:
    task, _ = await completed_with(lifecycle, {'fixes/"odd"\r\nname é.patch': PATCH})

    async with api() as client:
        [artifact] = (await client.get(f"/tasks/{task.id}/artifacts")).json()["artifacts"]
        download = await client.get(artifact["download_url"])

    assert download.status_code == 200, download.text
    assert download.content == PATCH.encode() and hashlib.sha256(download.content).hexdigest() == artifact["sha256"]
    assert download.headers["etag"] == f'"{artifact["sha256"]}"'
    assert download.headers["content-type"].startswith("text/x-diff")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"_odd___name _.patch\"; filename*=UTF-8''%22odd%22%0D%0Aname%20%C3%A9.patch"
    )


async def test_another_tenant_and_unknown_ids_find_no_artifact(lifecycle: TaskLifecycle, api: Api) -> None:
    task, _ = await completed_with(lifecycle, {"fix.patch": PATCH})

    async with api() as client:
        [artifact] = (await client.get(f"/tasks/{task.id}/artifacts")).json()["artifacts"]
        unknown_artifact = await client.get(f"/tasks/{task.id}/artifacts/artifact_{uuid.uuid4().hex}")
        unknown_task = await client.get(f"/tasks/task_{uuid.uuid4().hex}/artifacts")
        other_task = await submitted(lifecycle, {"a": []})
        wrong_task = await client.get(f"/tasks/{other_task.id}/artifacts/{artifact['artifact_id']}")
    async with api(tenant_id=f"other-{uuid.uuid4().hex[:10]}") as other:
        foreign_list = await other.get(f"/tasks/{task.id}/artifacts")
        foreign_download = await other.get(artifact["download_url"])

    for answer in (unknown_artifact, unknown_task, wrong_task, foreign_list, foreign_download):
        assert answer.status_code == 404, answer.text
    assert foreign_download.json()["error"] == f"task {task.id!r} has no artifact {artifact['artifact_id']!r}"
    assert foreign_list.json()["error"] == f"no task with id {task.id!r}"


async def test_content_missing_from_the_store_is_a_404_that_says_so(lifecycle: TaskLifecycle, api: Api) -> None:
    task, _ = await completed_with(lifecycle, {"report.md": REPORT})
    stored = lifecycle.artifact_store.path_of(task.id, sha256(REPORT))
    await asyncio.to_thread(Path(stored).unlink)

    async with api() as client:
        [artifact] = (await client.get(f"/tasks/{task.id}/artifacts")).json()["artifacts"]
        download = await client.get(artifact["download_url"])

    assert download.status_code == 404
    assert "no longer stored" in download.json()["error"]


async def test_an_unauthenticated_caller_gets_no_artifact(api: Api) -> None:
    async with api() as client:
        answer = await client.get("/tasks/any/artifacts", headers={"Authorization": ""})
    assert answer.status_code == 401
