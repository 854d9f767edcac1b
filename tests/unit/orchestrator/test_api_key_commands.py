"""`python -m orchestrator api-keys ...` as an operator (and scripts/start.sh) runs it: a real process."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from orchestrator.app import create_app
from shared.config import Settings
from shared.database import DatabaseManager
from shared.serving import serve_in_thread

REPO_ROOT = Path(__file__).resolve().parents[3]


def run_command(settings: Settings, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POSTGRES_URL": settings.postgres_url, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "api-keys", *arguments],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def listed(settings: Settings, tenant: str, *options: str) -> list[list[str]]:
    done = run_command(settings, "list", *options)
    assert done.returncode == 0, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines() if line.split("\t")[1] == tenant]


async def test_create_prints_a_working_key_on_its_last_line_and_list_shows_it(
    settings: Settings, db: DatabaseManager
) -> None:
    tenant = f"cli-{uuid.uuid4().hex[:10]}"
    created = run_command(settings, "create", "--tenant", tenant, "--name", "dashboard", "--scope", "operator")

    assert created.returncode == 0, created.stderr
    key = created.stdout.splitlines()[-1]
    assert key.startswith("mats_")
    [row] = listed(settings, tenant)
    assert row[0].startswith("key_") and row[2:4] == ["dashboard", "operator"] and row[5] == "never"
    served = settings.model_copy(update={"tenant_id": tenant, "anthropic_base_url": "http://127.0.0.1:9"})
    with serve_in_thread(create_app(served), name="orchestrator") as base_url:
        async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"}) as client:
            assert (await client.get("/agents")).status_code == 200  # an operator endpoint
    [row] = listed(settings, tenant)
    assert row[5] != "never"


def test_a_key_is_a_client_key_unless_told_otherwise(settings: Settings, db: DatabaseManager) -> None:
    tenant = f"cli-{uuid.uuid4().hex[:10]}"
    assert run_command(settings, "create", "--tenant", tenant).returncode == 0
    [row] = listed(settings, tenant)
    assert row[2:4] == ["-", "client"]


def test_revoke_removes_a_key_from_the_list_and_refuses_an_unknown_id(settings: Settings, db: DatabaseManager) -> None:
    tenant = f"cli-{uuid.uuid4().hex[:10]}"
    run_command(settings, "create", "--tenant", tenant, "--name", "old")
    [[key_id, *_]] = listed(settings, tenant)

    revoked = run_command(settings, "revoke", key_id)
    unknown = run_command(settings, "revoke", "key_nothing")

    assert revoked.returncode == 0 and key_id in revoked.stdout
    assert listed(settings, tenant) == []
    [row] = listed(settings, tenant, "--all")
    assert row[0] == key_id and row[-1].startswith("revoked ")
    assert unknown.returncode == 1 and "no API key with id 'key_nothing'" in unknown.stderr


def test_a_tenant_id_that_cannot_be_one_is_refused(settings: Settings) -> None:
    done = run_command(settings, "create", "--tenant", "Not A Tenant")

    assert done.returncode == 2 and "is not a tenant id" in done.stderr


def test_an_unreachable_database_is_one_line_that_says_where(settings: Settings) -> None:
    # Run just after the orchestrator's container joined its network, the name `postgres` once failed to resolve:
    # the command ended in a 60-line traceback of asyncpg's connect.
    unreachable = settings.model_copy(update={"postgres_url": "postgresql://postgres@127.0.0.1:1/keys"})

    done = run_command(unreachable, "list")

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("could not reach PostgreSQL at 127.0.0.1:1 (") and "POSTGRES_URL" in done.stderr
