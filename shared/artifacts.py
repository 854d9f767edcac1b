"""Artifacts: the files an applied, completed attempt produced, each with its kind, media type, size and SHA-256.

What kind of artifact a file is follows from its name, except that a patch must also be one: a `.patch` or `.diff`
file is a `patch` only when it parses as a unified diff of at least one file (unidiff), else it is `other`, so a
client that applies what the listing calls a patch never gets prose. The rest by extension:

- report: prose for people (`.md`, `.txt`, `.rst`, `.html`, `.pdf`, ...)
- data: tables and documents a program reads (`.csv`, `.json`, `.jsonl`, `.yaml`, `.xml`, `.parquet`, ...)
- code: source files (`.py`, `.js`, `.ts`, `.sql`, `.sh`, `.go`, ...)
- other: anything else
"""

import mimetypes
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import PurePosixPath
from typing import BinaryIO

import unidiff
from pydantic import BaseModel, Field

from shared.models import SubTaskResult

# A larger .patch is not read to be validated: it is listed as `other`.
MAX_VALIDATED_PATCH_BYTES = 10_000_000
SHA256_PATTERN = r"^[0-9a-f]{64}$"


class ArtifactType(StrEnum):
    REPORT = "report"
    PATCH = "patch"
    DATA = "data"
    CODE = "code"
    OTHER = "other"


PATCH_SUFFIXES = {".patch", ".diff"}
TYPE_BY_SUFFIX: dict[str, ArtifactType] = {
    **dict.fromkeys((".md", ".markdown", ".txt", ".rst", ".adoc", ".html", ".htm", ".pdf"), ArtifactType.REPORT),
    **dict.fromkeys(
        (".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".xml", ".yaml", ".yml", ".toml", ".parquet", ".xlsx"),
        ArtifactType.DATA,
    ),
    **dict.fromkeys(
        (".py", ".ipynb", ".js", ".mjs", ".ts", ".tsx", ".jsx", ".sh", ".sql", ".go", ".rs", ".java", ".kt", ".c",
         ".h", ".cpp", ".hpp", ".cs", ".rb", ".php", ".swift", ".scala", ".r", ".lua"),
        ArtifactType.CODE,
    ),
}  # fmt: skip
# Media types Python's own table lacks or guesses differently from host to host.
MEDIA_TYPE_BY_SUFFIX = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".patch": "text/x-diff",
    ".diff": "text/x-diff",
    ".rst": "text/x-rst",
    ".jsonl": "application/jsonl",
    ".ndjson": "application/x-ndjson",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".toml": "application/toml",
    ".sql": "application/sql",
    ".parquet": "application/vnd.apache.parquet",
}
# Python's built-in table only: the host's /etc/mime.types would make the answer depend on the machine.
BUILT_IN_MEDIA_TYPES = mimetypes.MimeTypes()
FALLBACK_MEDIA_TYPE = "application/octet-stream"


def artifact_type(name: str, content: BinaryIO, size: int) -> ArtifactType:
    """The kind of the file `name` whose content is `content` (read only for a patch)."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in PATCH_SUFFIXES:
        return (
            ArtifactType.PATCH if size <= MAX_VALIDATED_PATCH_BYTES and is_unified_diff(content) else ArtifactType.OTHER
        )
    return TYPE_BY_SUFFIX.get(suffix, ArtifactType.OTHER)


def is_unified_diff(content: BinaryIO) -> bool:
    """Whether `content` is UTF-8 text that parses as a unified diff of at least one file."""
    try:
        text = content.read().decode("utf-8")
    except UnicodeDecodeError:
        return False
    return unified_diff_problem(text) is None


def unified_diff_problem(text: str) -> str | None:
    """Why `text` is not a unified diff of at least one file, or None when it is one."""
    try:
        patch = unidiff.PatchSet(text)
    except unidiff.UnidiffParseError as error:
        return str(error)
    return None if len(patch) > 0 else "it names no file (a unified diff starts with '--- a/path' and '+++ b/path')"


def media_type(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in MEDIA_TYPE_BY_SUFFIX:
        return MEDIA_TYPE_BY_SUFFIX[suffix]
    guessed, _ = BUILT_IN_MEDIA_TYPES.guess_type(f"file{suffix}")
    return guessed or FALLBACK_MEDIA_TYPE


class StoredFile(BaseModel):
    """One promoted file whose content the artifact store holds: what the lifecycle records as an artifact."""

    name: str  # its path in the task's output/
    type: ArtifactType
    media_type: str
    size: int
    sha256: str


class ArtifactRef(BaseModel):
    """What an event or a result says of an artifact: enough to name it and check a download."""

    artifact_id: str
    name: str = Field(description="Its path in the task's output folder")
    type: ArtifactType
    size: int = Field(ge=0, description="Bytes")
    sha256: str = Field(pattern=SHA256_PATTERN, description="SHA-256 of its content, hex; also the download's ETag")


class Artifact(ArtifactRef):
    """A file an applied, completed attempt produced, as recorded in the same transaction that applied it."""

    media_type: str
    task_id: str
    subtask_id: str
    attempt: int = Field(ge=1)
    agent_id: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def of(cls, file: StoredFile, result: SubTaskResult, created_at: datetime) -> "Artifact":
        """The artifact `file` is, made by the attempt whose applied completion is `result`."""
        return cls(
            created_at=created_at,
            artifact_id=f"artifact_{uuid.uuid4().hex}",
            **file.model_dump(),
            task_id=result.task_id,
            subtask_id=result.subtask_id,
            attempt=result.attempt,
            agent_id=result.agent_id,
        )

    def ref(self) -> ArtifactRef:
        return ArtifactRef.model_validate(self.model_dump(include=set(ArtifactRef.model_fields)))


class ArtifactView(Artifact):
    """An artifact as the API lists it."""

    download_url: str = Field(description="Where its content downloads, relative to the API's base URL")


class ArtifactListResponse(BaseModel):
    task_id: str
    artifacts: list[ArtifactView] = Field(description="Oldest first, newest last")
