"""POST /context-packs: read a multipart upload within its limits, check the pack, store it.

Three limits hold before anything is stored: the body as a whole (RequestLimits refuses one over `upload_limit` as
it streams in, without reading the rest), the files' bytes together (CONTEXT_PACK_MAX_BYTES, counted as they are
read) and their number (CONTEXT_PACK_MAX_FILES). The pack is then checked whole (shared.context_packs.check_pack)
and stored in one statement: an invalid pack leaves nothing behind.
"""

from collections.abc import Sequence

import structlog
from fastapi import UploadFile
from pydantic import ValidationError

from shared.config import Settings
from shared.context_packs import (
    MAX_MANIFEST_BYTES,
    ContextManifest,
    ContextPackCreated,
    InvalidPack,
    PackFile,
    check_pack,
)
from shared.database import Repositories
from shared.errors import InvalidInputError, PayloadTooLargeError, describe_validation_errors

log = structlog.get_logger(__name__)

# What a multipart body carries besides the files' bytes: each part's headers (a filename may be 1 KiB) and the
# manifest.
PART_OVERHEAD_BYTES = 2048
BODY_SLACK_BYTES = 65_536
UPLOAD_PATH = "/context-packs"


def upload_limit(settings: Settings) -> int:
    """The most bytes a POST /context-packs body may have: the files, their parts' headers and the manifest."""
    overhead = settings.context_pack_max_files * PART_OVERHEAD_BYTES + MAX_MANIFEST_BYTES + BODY_SLACK_BYTES
    return settings.context_pack_max_bytes + overhead


async def store_upload(
    repos: Repositories, settings: Settings, uploads: Sequence[UploadFile], manifest_json: str
) -> ContextPackCreated:
    manifest = _manifest(manifest_json)
    files = await _read_files(uploads, settings)
    try:
        checked = check_pack(files, manifest)
    except InvalidPack as error:
        raise InvalidInputError(str(error)) from None
    created = await repos.context_packs.create_pack(checked, manifest)
    log.info("context_pack_stored", context_pack_id=created.context_pack_id, files=created.files, bytes=created.bytes)
    return created


def _manifest(manifest_json: str) -> ContextManifest:
    try:
        return ContextManifest.model_validate_json(manifest_json)
    except ValidationError as error:
        raise InvalidInputError(f"manifest: {describe_validation_errors(list(error.errors()))}") from None


async def _read_files(uploads: Sequence[UploadFile], settings: Settings) -> list[PackFile]:
    if len(uploads) > settings.context_pack_max_files:
        raise InvalidInputError(
            f"the pack has {len(uploads)} files; the limit is {settings.context_pack_max_files} "
            "(the setting CONTEXT_PACK_MAX_FILES)"
        )
    files: list[PackFile] = []
    remaining = settings.context_pack_max_bytes
    for upload in uploads:
        if not upload.filename:
            raise InvalidInputError("each `files` part needs the file's path in the pack as its filename")
        content = await upload.read(remaining + 1)
        remaining -= len(content)
        if remaining < 0:
            raise PayloadTooLargeError(
                f"the pack's files are larger than {settings.context_pack_max_bytes} bytes together "
                "(the setting CONTEXT_PACK_MAX_BYTES)"
            )
        files.append(PackFile(upload.filename, content))
    return files
