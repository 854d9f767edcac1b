"""Context packs and their files (migration 0011), each its tenant's: another tenant's pack is an unknown one."""

from collections.abc import Sequence

from shared.context_packs import (
    ContextManifest,
    ContextPackCreated,
    ContextPackDetail,
    ContextPackFileInfo,
    PackFile,
    new_context_pack_id,
    pack_digest,
)
from shared.database.executor import Executor


class ContextPackRepository:
    def __init__(self, executor: Executor, tenant_id: str) -> None:
        self._executor = executor
        self._tenant_id = tenant_id

    async def create_pack(self, files: Sequence[PackFile], manifest: ContextManifest) -> ContextPackCreated:
        """Store a checked pack (shared.context_packs.check_pack) and its files in one statement: all or nothing."""
        created = ContextPackCreated(
            context_pack_id=new_context_pack_id(),
            files=len(files),
            bytes=sum(len(file.content) for file in files),
            sha256=pack_digest(files),
        )
        await self._executor.execute(
            """
            WITH pack AS (
                INSERT INTO context_packs (id, tenant_id, sha256, file_count, total_bytes, manifest)
                VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
            )
            INSERT INTO context_pack_files (pack_id, path, content, sha256)
            SELECT (SELECT id FROM pack), file.path, file.content, file.sha256
            FROM unnest($7::text[], $8::bytea[], $9::text[]) AS file (path, content, sha256)
            """,
            created.context_pack_id,
            self._tenant_id,
            created.sha256,
            created.files,
            created.bytes,
            manifest.model_dump(mode="json", by_alias=True),
            [file.path for file in files],
            [file.content for file in files],
            [file.sha256 for file in files],
        )
        return created

    async def pack_exists(self, pack_id: str) -> bool:
        exists: bool = await self._executor.fetchval(
            "SELECT EXISTS (SELECT FROM context_packs WHERE id = $1 AND tenant_id = $2)", pack_id, self._tenant_id
        )
        return exists

    async def get_pack(self, pack_id: str) -> ContextPackDetail | None:
        """The pack's metadata, manifest and file list (without the files' content)."""
        row = await self._executor.fetchrow(
            """
            SELECT p.id, p.sha256, p.file_count, p.total_bytes, p.manifest,
                   (SELECT json_agg(json_build_object('path', f.path, 'bytes', length(f.content), 'sha256', f.sha256)
                                    ORDER BY f.path)
                    FROM context_pack_files f WHERE f.pack_id = p.id) AS file_list
            FROM context_packs p WHERE p.id = $1 AND p.tenant_id = $2
            """,
            pack_id,
            self._tenant_id,
        )
        if row is None:
            return None
        return ContextPackDetail(
            context_pack_id=row["id"],
            files=row["file_count"],
            bytes=row["total_bytes"],
            sha256=row["sha256"],
            manifest=ContextManifest.model_validate(row["manifest"]),
            file_list=[ContextPackFileInfo.model_validate(item) for item in row["file_list"] or []],
        )

    async def get_files(self, pack_id: str) -> list[PackFile] | None:
        """The pack's files with their content, or None when this tenant has no such pack."""
        rows = await self._executor.fetch(
            """
            SELECT f.path, f.content FROM context_packs p JOIN context_pack_files f ON f.pack_id = p.id
            WHERE p.id = $1 AND p.tenant_id = $2 ORDER BY f.path
            """,
            pack_id,
            self._tenant_id,
        )
        return [PackFile(row["path"], row["content"]) for row in rows] or None
