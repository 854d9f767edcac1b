"""Context packs (seeds 000-002, US-04): files a client uploads once, with a manifest of their symbols and
dependencies, that the agents of every task naming the pack find in the task's workspace and in their prompt.

A pack is validated whole before anything is stored: every path keeps the workspace's path rules
(`shared.workspace_paths`) and names a UTF-8 text file; the manifest names only paths of the pack.
"""

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import ConfigDict, Field

from shared.models import DomainModel, Identifier
from shared.workspace_paths import UnsafePath, relative_path, shown

MAX_SYMBOLS = 2000
MAX_DEPENDENCIES = 2000
MAX_NOTES_CHARS = 20_000
MAX_MANIFEST_BYTES = 1_048_576

PackPath = Annotated[str, Field(min_length=1, max_length=1024)]


def new_context_pack_id() -> str:
    return f"ctx_{uuid.uuid4().hex}"


class PackSymbol(DomainModel):
    name: str = Field(min_length=1, max_length=256, examples=["Invoice"])
    kind: str = Field(min_length=1, max_length=64, examples=["class"])
    path: PackPath = Field(examples=["src/app/models.py"])
    line: int | None = Field(None, ge=1)


class PackDependency(DomainModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    source: PackPath = Field(alias="from", description="A file of the pack", examples=["src/app/billing.py"])
    target: str = Field(
        alias="to",
        min_length=1,
        max_length=1024,
        description="What it depends on: a file of the pack or anything outside it (a package, a service)",
        examples=["src/app/models.py"],
    )
    note: str | None = Field(None, max_length=1000)


class ContextManifest(DomainModel):
    """What the pack's files hold, for the agents' prompts."""

    symbols: list[PackSymbol] = Field(default_factory=list, max_length=MAX_SYMBOLS)
    dependencies: list[PackDependency] = Field(default_factory=list, max_length=MAX_DEPENDENCIES)
    notes: str | None = Field(None, max_length=MAX_NOTES_CHARS)


class ContextPackCreated(DomainModel):
    context_pack_id: Identifier
    files: int = Field(ge=1)
    bytes: int = Field(ge=0)
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 over the sorted lines `path NUL sha256-of-file` of its files"
    )


class ContextPackFileInfo(DomainModel):
    path: str
    bytes: int = Field(ge=0)
    sha256: str


class ContextPackDetail(ContextPackCreated):
    manifest: ContextManifest
    file_list: list[ContextPackFileInfo]


@dataclass(frozen=True)
class PackFile:
    path: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


class InvalidPack(ValueError):
    """A pack that may not be stored; the message says what to change."""


def pack_digest(files: Sequence[PackFile]) -> str:
    listing = "".join(f"{file.path}\x00{file.sha256}\n" for file in sorted(files, key=lambda file: file.path))
    return hashlib.sha256(listing.encode()).hexdigest()


def check_pack(files: Sequence[PackFile], manifest: ContextManifest) -> list[PackFile]:
    """The pack's files under their normalized paths; InvalidPack for an unsafe, duplicate or non-text file, or a
    manifest naming a file the pack lacks."""
    if not files:
        raise InvalidPack("a context pack needs at least one file: send each as a `files` part")
    checked = [PackFile(_pack_path(file.path), file.content) for file in files]
    paths = [PurePosixPath(file.path) for file in checked]
    _refuse_duplicates_and_nesting(paths)
    for file in checked:
        _require_text(file)
    known = {file.path for file in checked}
    named = [("symbol", symbol.name, symbol.path) for symbol in manifest.symbols] + [
        ("dependency from", dependency.source, dependency.source) for dependency in manifest.dependencies
    ]
    for what, name, path in named:
        if path not in known:
            raise InvalidPack(
                f"the manifest's {what} {shown(name)} names {shown(path)}, which is not a file of the pack"
            )
    return checked


def _pack_path(path: str) -> str:
    if "\\" in path:
        raise InvalidPack(f"{shown(path)}: backslashes are refused in paths; separate folders with '/'")
    try:
        relative = relative_path(path)
    except UnsafePath as error:
        raise InvalidPack(f"{shown(path)}: {error}") from None
    if relative.as_posix() != path:
        raise InvalidPack(f"{shown(path)}: write the path as {relative.as_posix()!r} (no '.', '//' or trailing '/')")
    return path


def _refuse_duplicates_and_nesting(paths: Sequence[PurePosixPath]) -> None:
    seen: set[PurePosixPath] = set()
    for path in paths:
        if path in seen:
            raise InvalidPack(f"{shown(path.as_posix())} is in the pack twice")
        seen.add(path)
    for path in paths:
        for folder in path.parents:
            if folder in seen:
                raise InvalidPack(f"{shown(folder.as_posix())} is a file of the pack and a folder of {path.as_posix()}")


def _require_text(file: PackFile) -> None:
    try:
        text = file.content.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPack(f"{shown(file.path)} is not UTF-8 text: a context pack holds text files only") from None
    if "\x00" in text:
        raise InvalidPack(f"{shown(file.path)} contains NUL bytes: a context pack holds text files only")
