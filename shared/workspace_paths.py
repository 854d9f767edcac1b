"""The rules a path inside a task's workspace keeps, wherever it comes from: a tool call of the model, or a file of
a context pack a client uploads. Relative, no `..`, no NUL, bounded in length, depth and name length."""

from pathlib import PurePosixPath

MAX_NAME_BYTES = 255  # NAME_MAX of Linux file systems
MAX_PATH_BYTES = 1024
MAX_PATH_DEPTH = 32
SHOWN_PATH_CHARS = 80


class UnsafePath(ValueError):
    """A path that may not name a file of a workspace; the message says why, for a person or a model to act on."""


def relative_path(path: str) -> PurePosixPath:
    """`path` as a relative path inside a workspace; UnsafePath when it could reach outside or passes a limit."""
    if not path.strip():
        raise UnsafePath("the path is empty")
    if "\x00" in path:
        raise UnsafePath("the path contains a NUL character")
    length = len(_utf8(path))
    if length > MAX_PATH_BYTES:
        raise UnsafePath(f"the path is {length} bytes long in UTF-8; the limit is {MAX_PATH_BYTES} bytes")
    relative = PurePosixPath(path)
    if relative.is_absolute():
        raise UnsafePath(f"absolute paths are refused ({shown(path)}); use a path relative to the task's workspace")
    if ".." in relative.parts:
        raise UnsafePath(f"'..' is refused in paths ({shown(path)})")
    if not relative.parts:
        raise UnsafePath(f"{shown(path)} names the workspace folder, not a file")
    if len(relative.parts) > MAX_PATH_DEPTH:
        raise UnsafePath(f"{shown(path)} has {len(relative.parts)} parts; the limit is {MAX_PATH_DEPTH}")
    for name in relative.parts:
        if len(_utf8(name)) > MAX_NAME_BYTES:
            raise UnsafePath(
                f"the name {shown(name)} is {len(_utf8(name))} bytes long in UTF-8; the limit of a file or "
                f"folder name is {MAX_NAME_BYTES} bytes"
            )
    return relative


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON can carry
        raise UnsafePath(f"{shown(text)} is not valid Unicode text") from None


def shown(path: str) -> str:
    """`path` quoted for a message, shortened when long."""
    if len(path) <= SHOWN_PATH_CHARS:
        return repr(path)
    return f"{path[:SHOWN_PATH_CHARS]!r}... ({len(path)} characters)"
