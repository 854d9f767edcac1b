"""Context pack endpoints: upload a pack of files with its manifest, and read back what was stored."""

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, UploadFile

from orchestrator.context_pack_upload import store_upload
from orchestrator.state import State
from shared.context_packs import ContextPackCreated, ContextPackDetail
from shared.errors import NotFoundError, error_responses

router = APIRouter(prefix="/context-packs", tags=["context packs"])

PackId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$", description="The id POST /context-packs gave")
]


@router.post(
    "",
    status_code=201,
    response_model=ContextPackCreated,
    responses=error_responses(400, 413, 415, 500, 503),
    summary="Upload a context pack: files and a manifest of their symbols and dependencies, for tasks to name",
)
async def upload_context_pack(
    state: State,
    files: Annotated[
        list[UploadFile],
        File(description="The pack's files, UTF-8 text; each part's filename is its path in the pack, e.g. src/app.py"),
    ],
    manifest: Annotated[
        str,
        Form(
            description='JSON: {"symbols": [{"name", "kind", "path", "line"?}], "dependencies": [{"from", "to", '
            '"note"?}], "notes"?}; every symbol\'s path and dependency\'s "from" is a file of the pack'
        ),
    ],
) -> ContextPackCreated:
    return await store_upload(state.db.repositories(), state.settings, files, manifest)


@router.get(
    "/{context_pack_id}",
    response_model=ContextPackDetail,
    responses=error_responses(400, 404, 500, 503),
    summary="A context pack's files (paths, sizes, digests) and manifest",
)
async def get_context_pack(state: State, context_pack_id: PackId) -> ContextPackDetail:
    pack = await state.db.repositories().context_packs.get_pack(context_pack_id)
    if pack is None:
        raise NotFoundError(f"no context pack with id {context_pack_id!r}")
    return pack
