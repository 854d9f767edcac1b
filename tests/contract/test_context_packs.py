"""POST /context-packs and GET /context-packs/{id} against a live orchestrator, and POST /tasks naming a pack: a pack
is validated whole (paths, text, size, count, manifest) and an invalid one leaves nothing stored."""

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.config import Settings
from shared.context_packs import ContextManifest, PackFile
from shared.database import DatabaseManager, Repositories
from tests.contract.conftest import AppFactory
from tests.contract.orchestrator_support import TWO_STEP_TASK, assert_error

MODELS_PY = b"class Invoice:\n    total_cents: int = 0\n"
MANIFEST: dict[str, Any] = {
    "symbols": [{"name": "Invoice", "kind": "class", "path": "src/app/models.py", "line": 1}],
    "dependencies": [{"from": "src/app/models.py", "to": "sqlalchemy", "note": "the ORM"}],
    "notes": "Amounts are in cents.",
}
Files = list[tuple[str, bytes]]


def upload(client: httpx.AsyncClient, files: Files, manifest: dict[str, Any] | None = None) -> Any:
    parts = [("files", (path, content, "text/plain")) for path, content in files]
    return client.post("/context-packs", files=parts, data={"manifest": json.dumps(manifest or {})})


async def stored_packs(db: DatabaseManager, settings: Settings) -> int:
    count: int = await db.pool.fetchval("SELECT count(*) FROM context_packs WHERE tenant_id = $1", settings.tenant_id)
    return count


async def test_a_pack_is_stored_and_read_back_with_its_manifest(orchestrator_client: httpx.AsyncClient) -> None:
    files = [("src/app/models.py", MODELS_PY), ("README.md", "# Billing — in cents\n".encode())]

    response = await upload(orchestrator_client, files, MANIFEST)

    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"context_pack_id", "files", "bytes", "sha256"}
    assert created["context_pack_id"].startswith("ctx_")
    assert (created["files"], created["bytes"]) == (2, sum(len(content) for _, content in files))
    detail = (await orchestrator_client.get(f"/context-packs/{created['context_pack_id']}")).json()
    assert detail["sha256"] == created["sha256"]
    assert detail["manifest"] == {**MANIFEST, "symbols": MANIFEST["symbols"]}
    assert [item["path"] for item in detail["file_list"]] == ["README.md", "src/app/models.py"]


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../x", "'..' is refused"),
        ("/etc/passwd", "absolute paths are refused"),
        ("a/../../b", "'..' is refused"),
        ("src\\app.py", "backslashes are refused"),
        ("src//app.py", "write the path as 'src/app.py'"),
        ("./app.py", "write the path as 'app.py'"),
        ("/".join(["d"] * 40), "the limit is 32"),
    ],
)
async def test_a_pack_with_an_unsafe_path_is_refused_and_nothing_is_stored(
    path: str, why: str, orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings, db: DatabaseManager
) -> None:
    response = await upload(orchestrator_client, [("src/ok.py", b"ok = 1\n"), (path, b"x = 1\n")])

    assert_error(response, 400, why)
    assert await stored_packs(db, orchestrator_settings) == 0


@pytest.mark.parametrize(
    ("files", "manifest", "why"),
    [
        ([("a.py", b"1"), ("a.py", b"2")], {}, "'a.py' is in the pack twice"),
        ([("a", b"1"), ("a/b.py", b"2")], {}, "'a' is a file of the pack and a folder of a/b.py"),
        ([("logo.png", b"\x89PNG\r\n\x1a\n\xff\xfe")], {}, "'logo.png' is not UTF-8 text"),
        ([("a.txt", b"nul\x00inside")], {}, "contains NUL bytes"),
        ([("a.py", b"1")], {"symbols": [{"name": "X", "kind": "class", "path": "b.py"}]}, "not a file of the pack"),
        ([("a.py", b"1")], {"dependencies": [{"from": "b.py", "to": "a.py"}]}, "not a file of the pack"),
        ([("a.py", b"1")], {"symbols": [{"name": "X"}]}, "manifest: symbols.0.kind: Field required"),
        ([("a.py", b"1")], {"mood": "fine"}, "manifest: mood: Extra inputs are not permitted"),
    ],
)
async def test_an_invalid_pack_is_refused_with_what_to_change(
    files: Files,
    manifest: dict[str, Any],
    why: str,
    orchestrator_client: httpx.AsyncClient,
    orchestrator_settings: Settings,
    db: DatabaseManager,
) -> None:
    assert_error(await upload(orchestrator_client, files, manifest), 400, why)
    assert await stored_packs(db, orchestrator_settings) == 0


async def test_a_manifest_that_is_not_json_is_refused(orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.post(
        "/context-packs", files=[("files", ("a.py", b"1", "text/plain"))], data={"manifest": "{not json"}
    )

    assert_error(response, 400, "manifest: ")


async def test_a_pack_over_its_limits_is_refused(
    orchestrator_settings_factory: Callable[..., Settings], orchestrator_app_factory: AppFactory, db: DatabaseManager
) -> None:
    settings = orchestrator_settings_factory(context_pack_max_bytes=1000, context_pack_max_files=3)
    async with await orchestrator_app_factory(settings) as client:
        too_big = await upload(client, [("a.txt", b"a" * 600), ("b.txt", b"b" * 600)])
        # A body far over the upload's limit is refused from its Content-Length, before it is read.
        huge = await upload(client, [("a.txt", b"a" * 5_000_000)])
        too_many = await upload(client, [(f"f{n}.txt", b"x") for n in range(4)])
        just_fits = await upload(client, [("a.txt", b"a" * 500), ("b.txt", b"b" * 500)])

    assert_error(too_big, 413, "larger than 1000 bytes together")
    assert_error(huge, 413, "the request body is larger than")
    assert_error(too_many, 400, "the pack has 4 files; the limit is 3")
    assert just_fits.status_code == 201, just_fits.text
    assert await stored_packs(db, settings) == 1


async def test_a_task_names_its_pack_and_keeps_its_id(
    orchestrator_client: httpx.AsyncClient, orchestrator_repositories: Repositories
) -> None:
    pack = (await upload(orchestrator_client, [("src/app/models.py", MODELS_PY)], MANIFEST)).json()

    by_query = await orchestrator_client.post(
        "/tasks", params={"description": TWO_STEP_TASK, "context_pack_id": pack["context_pack_id"]}
    )
    by_json = await orchestrator_client.post(
        "/tasks", json={"description": TWO_STEP_TASK, "context_pack_id": pack["context_pack_id"]}
    )

    for response in (by_query, by_json):
        assert response.status_code == 200, response.text
        task = (await orchestrator_client.get(f"/tasks/{response.json()['task_id']}")).json()["task"]
        assert task["context_pack_id"] == pack["context_pack_id"]


async def test_an_unknown_or_another_tenant_s_pack_is_refused_before_decomposing(
    orchestrator_client: httpx.AsyncClient, db: DatabaseManager
) -> None:
    others = await Repositories(db.pool, "another-tenant").context_packs.create_pack(
        [PackFile("a.py", b"1")], ContextManifest()
    )

    for pack_id in ("ctx_0123456789abcdef", others.context_pack_id):
        response = await orchestrator_client.post(
            "/tasks", params={"description": TWO_STEP_TASK, "context_pack_id": pack_id}
        )
        assert_error(response, 400, f"context_pack_id: no context pack {pack_id!r}")
        assert (await orchestrator_client.get(f"/context-packs/{pack_id}")).status_code == 404
    assert await db.pool.fetchval("SELECT count(*) FROM tasks") == 0
