"""Files under a directory descriptor, opened without following a symlink at any component.

Each component is opened relative to its parent's descriptor with O_NOFOLLOW, so a symlink swapped in after a check
cannot redirect the open: the folder that was opened is the folder that is used. Names are single path components.
"""

import errno
import os
import secrets
import stat
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import PurePosixPath

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO must not wait for a writer (the fstat that follows refuses it).
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
TEMPORARY_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
TEMPORARY_PREFIX = ".tmp-"
READ_CHUNK_BYTES = 1 << 20


class SymlinkRefused(OSError):
    """A component of a path is a symlink."""

    def __init__(self, name: str) -> None:
        super().__init__(errno.ELOOP, "is a symlink", name)


class NotRegularFile(OSError):
    """The name is a pipe, a device or a socket."""

    def __init__(self, name: str) -> None:
        super().__init__(errno.EINVAL, "is not a regular file", name)


class HardLinkRefused(OSError):
    """The file has other names, possibly outside the folder walked."""

    def __init__(self, name: str) -> None:
        super().__init__(errno.EMLINK, "has other hard links", name)


@dataclass(frozen=True)
class RegularFile:
    path: PurePosixPath  # relative to the folder walked
    folder_fd: int  # open only until the walk moves on
    size: int


def open_directory(parent_fd: int, name: str, *, create: bool = False) -> int:
    """A descriptor of the folder `name` in `parent_fd`; with `create`, the folder is made when missing."""
    if create:
        with suppress(FileExistsError):  # a symlink there exists too, and the open below refuses it
            os.mkdir(name, dir_fd=parent_fd)
    return _open(parent_fd, name, DIRECTORY_FLAGS)


@contextmanager
def walk(root_fd: int, folders: Sequence[str], *, create: bool = False) -> Iterator[int]:
    """A descriptor of `folders` under `root_fd`, each folder opened from its parent's descriptor."""
    descriptor = os.dup(root_fd)
    try:
        for name in folders:
            child = open_directory(descriptor, name, create=create)
            os.close(descriptor)
            descriptor = child
        yield descriptor
    finally:
        os.close(descriptor)


@contextmanager
def opened_file(folder_fd: int, name: str) -> Iterator[int]:
    """A read-only descriptor of the regular file `name` in `folder_fd`, that has no other name.

    A device is refused before it is opened (opening one can act on it). A file with several hard links may be
    another task's or the host's file linked in from outside, so it is refused too.
    """
    found = entry_stat(folder_fd, name)
    if found is not None and not stat.S_ISREG(found.st_mode) and not stat.S_ISLNK(found.st_mode):
        _refuse_irregular(name, found.st_mode)
    descriptor = _open(folder_fd, name, FILE_FLAGS)
    try:
        opened = os.fstat(descriptor)
        if not stat.S_ISREG(opened.st_mode):  # swapped since the look above
            _refuse_irregular(name, opened.st_mode)
        if opened.st_nlink > 1:
            raise HardLinkRefused(name)
        yield descriptor
    finally:
        os.close(descriptor)


def _refuse_irregular(name: str, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
    raise NotRegularFile(name)


def read_at_most(descriptor: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(descriptor, min(remaining, READ_CHUNK_BYTES))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def replace_file(folder_fd: int, name: str, data: bytes) -> None:
    """Write `name` in `folder_fd` through a temporary file renamed into place, so readers never see half a file."""
    existing = entry_stat(folder_fd, name)
    if existing is not None and stat.S_ISLNK(existing.st_mode):
        raise SymlinkRefused(name)
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
    # A short name of its own: a name derived from the target's could pass NAME_MAX.
    temporary = TEMPORARY_PREFIX + secrets.token_hex(8)
    descriptor = os.open(temporary, TEMPORARY_FLAGS, 0o600, dir_fd=folder_fd)
    try:
        try:
            _write_all(descriptor, data)
        finally:
            os.close(descriptor)
        # rename() replaces a symlink put at `name` since the check above; it never follows one.
        os.replace(temporary, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=folder_fd)
        raise


def regular_files(root_fd: int) -> Generator[RegularFile, None, None]:
    """The regular files under `root_fd`, folders depth-first and names sorted; symlinks are not followed."""
    for folder, names, folder_fd in _folders(root_fd):
        for name in sorted(names):
            found = entry_stat(folder_fd, name)
            if found is not None and stat.S_ISREG(found.st_mode):
                yield RegularFile(PurePosixPath(folder, name), folder_fd, found.st_size)


def folder_paths(root_fd: int) -> Iterator[PurePosixPath]:
    """Every folder under `root_fd` (itself as "."), relative to it; symlinks are not followed."""
    for folder, _names, _folder_fd in _folders(root_fd):
        yield PurePosixPath(folder)


def _folders(root_fd: int) -> Iterator[tuple[str, list[str], int]]:
    """Each folder under `root_fd` (itself first) with the names of its files and its descriptor."""
    # os.fwalk opens each folder from its parent's descriptor and checks it is the folder it listed.
    for folder, subfolders, names, folder_fd in os.fwalk(".", dir_fd=root_fd):
        subfolders.sort()
        yield folder, names, folder_fd


def entry_stat(folder_fd: int, name: str) -> os.stat_result | None:
    """The entry `name` of `folder_fd` itself (a symlink is not followed), or None when there is none."""
    try:
        return os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _open(parent_fd: int, name: str, flags: int) -> int:
    try:
        return os.open(name, flags, dir_fd=parent_fd)
    except OSError as error:
        # O_NOFOLLOW fails with ELOOP on a symlink, and with ENOTDIR when O_DIRECTORY is set too.
        if error.errno in {errno.ELOOP, errno.ENOTDIR} and _is_symlink(parent_fd, name):
            raise SymlinkRefused(name) from None
        raise


def _is_symlink(folder_fd: int, name: str) -> bool:
    with suppress(OSError):
        found = entry_stat(folder_fd, name)
        return found is not None and stat.S_ISLNK(found.st_mode)
    return False


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]
