"""Artifacts of applied attempts, recorded with their tenant and found only within it."""

from collections.abc import Sequence

from shared.artifacts import Artifact
from shared.database.executor import Executor

ARTIFACT_COLUMNS = (
    "artifact_id, task_id, subtask_id, attempt, agent_id, name, type, media_type, size, sha256, created_at"
)


class ArtifactRepository:
    def __init__(self, executor: Executor, tenant_id: str) -> None:
        self._executor = executor
        self._tenant_id = tenant_id

    async def record(self, artifacts: Sequence[Artifact]) -> None:
        """Record the artifacts of applied attempts (in the transaction that applies them)."""
        if not artifacts:
            return
        await self._executor.executemany(
            """
            INSERT INTO artifacts (artifact_id, tenant_id, task_id, subtask_id, attempt, agent_id, name, type,
                media_type, size, sha256, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            """,
            [
                (
                    artifact.artifact_id,
                    self._tenant_id,
                    artifact.task_id,
                    artifact.subtask_id,
                    artifact.attempt,
                    artifact.agent_id,
                    artifact.name,
                    artifact.type.value,
                    artifact.media_type,
                    artifact.size,
                    artifact.sha256,
                    artifact.created_at,
                )
                for artifact in artifacts
            ],
        )

    async def list_for_task(self, task_id: str) -> list[Artifact]:
        """The task's artifacts, oldest first (newest last)."""
        rows = await self._executor.fetch(
            f"""
            SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE tenant_id = $1 AND task_id = $2
            ORDER BY created_at, name, artifact_id
            """,
            self._tenant_id,
            task_id,
        )
        return [Artifact.model_validate(dict(row)) for row in rows]

    async def get(self, task_id: str, artifact_id: str) -> Artifact | None:
        row = await self._executor.fetchrow(
            f"SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE tenant_id = $1 AND task_id = $2 AND artifact_id = $3",
            self._tenant_id,
            task_id,
            artifact_id,
        )
        return Artifact.model_validate(dict(row)) if row else None
