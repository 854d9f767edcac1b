"""A bubblewrap sandbox that runs one program of the code role: no network, no host files, bounded in time and size.

The program runs in new user, mount, PID, network, IPC, UTS and cgroup namespaces, with no capabilities and a
clean environment. Its file system is built from nothing: the interpreter's folders read-only (/usr, /lib*, the
Python prefix and virtualenv), a private size-capped /tmp, the task's workspace read-only at /workspace (other
attempts' staged output hidden), and the attempt's own staged output read-write at /output, its working folder.
There is no /etc, no home, no /run, so no passwords, credentials or PostgreSQL and Redis sockets; with a network
namespace of its own, 127.0.0.1 is the sandbox's loopback, where nothing listens. Limits are rlimits inherited by
every process of the command, plus a wall-clock timeout that kills the whole process group; bwrap's
--die-with-parent and its PID namespace take every descendant down with it.

The process limit is set inside the sandbox, not on bwrap. The kernel counts RLIMIT_NPROC per user and user
namespace, at every level: set on bwrap, it would also count every thread of the agent's user outside (the agent's,
its CLIs', another container's of the same uid), and bwrap could not even start. Set inside, by `prlimit` just
before the command, it counts the processes of the sandbox's own user namespace: the command's, plus bwrap's init.

Where the container engine masks paths of /proc (its default), the kernel refuses a new /proc mount to a user
namespace; the sandbox then has no /proc at all rather than a view of the container's.

A seccomp filter refuses the command new user namespaces (in one it would hold every capability again, over
namespaces of its own: the kernel's widest surface). bwrap's own --disable-userns does it by writing
/proc/sys/user/max_user_namespaces, which container engines mount read-only; the filter works in both places.

The workspace folders are handed to bwrap as descriptors opened without following symlinks (agent/tools/workspace.py),
so a symlink planted in the workspace cannot make bwrap mount another folder.
"""

import asyncio
import errno
import functools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path

from shared.config import Settings

WORKSPACE_MOUNT = "/workspace"
OUTPUT_MOUNT = "/output"
# Folders of the host root the interpreter may need, each bound read-only (or recreated as its symlink) if present.
SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SANDBOX_UID = 65534  # nobody, inside the sandbox's user namespace
CLONE_NEWUSER = 0x10000000  # <linux/sched.h>
MAX_OPEN_FILES = 256
PROBE_TIMEOUT_SECONDS = 20.0
READ_CHUNK_BYTES = 65536
WATCH_SECONDS = 0.2  # how often a running command's `stop_when` is asked


class SandboxUnavailable(Exception):
    """The sandbox cannot run on this host; the message says what failed and how to fix it."""


@dataclass(frozen=True)
class SandboxLimits:
    timeout_seconds: float
    cpu_seconds: int
    memory_bytes: int
    max_processes: int
    max_file_bytes: int
    tmp_bytes: int
    output_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "SandboxLimits":
        return cls(
            timeout_seconds=settings.code_sandbox_timeout_seconds,
            cpu_seconds=settings.code_sandbox_cpu_seconds,
            memory_bytes=settings.code_sandbox_memory_bytes,
            max_processes=settings.code_sandbox_max_processes,
            max_file_bytes=settings.agent_file_max_bytes,
            tmp_bytes=settings.code_sandbox_tmp_bytes,
            output_bytes=settings.code_sandbox_output_bytes,
        )

    def apply(self) -> None:
        """Set the rlimits in the child before it becomes bwrap; every process of the command inherits them (the
        process limit is set inside the sandbox: `BwrapSandbox.argv`)."""
        for limit, value in (
            (resource.RLIMIT_CPU, self.cpu_seconds),
            (resource.RLIMIT_AS, self.memory_bytes),
            (resource.RLIMIT_FSIZE, self.max_file_bytes),
            (resource.RLIMIT_NOFILE, MAX_OPEN_FILES),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(limit, (value, value))


@dataclass(frozen=True)
class CommandRun:
    """What a sandboxed command did: the JSON the model reads."""

    exit_code: int | None  # None when the timeout killed it; 128+N when signal N ended it (e.g. 137, 152)
    timed_out: bool
    duration_seconds: float
    stdout: str  # the last `output_bytes` of each stream
    stderr: str
    stdout_bytes: int  # how much each stream wrote in all
    stderr_bytes: int
    stopped: str | None = None  # why the command was killed before its end and its timeout
    writes_discarded: str | None = None  # why what the command wrote was removed (the workspace's quota)

    def as_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


class SandboxStartFailed(Exception):
    """bwrap could not set the sandbox up (its message is the exception's)."""


class BwrapSandbox:
    """Runs commands under `bwrap`, with the interpreter of this process available read-only."""

    def __init__(self, bwrap: str, limits: SandboxLimits) -> None:
        self._bwrap = bwrap
        self.limits = limits
        self._seccomp_filter = _no_new_user_namespaces()

    @classmethod
    def from_settings(cls, settings: Settings) -> "BwrapSandbox":
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailable(
                "bwrap (bubblewrap) is not installed: `apt-get install bubblewrap`, or set CODE_SANDBOX=off"
            )
        if _prlimit() is None:
            raise SandboxUnavailable("prlimit is not installed: `apt-get install util-linux`, or set CODE_SANDBOX=off")
        try:
            return cls(bwrap, SandboxLimits.from_settings(settings))
        except RuntimeError as error:  # pyseccomp found no libseccomp
            raise SandboxUnavailable(f"{error}: `apt-get install libseccomp2`, or set CODE_SANDBOX=off") from None

    @property
    def has_proc(self) -> bool:
        """Whether the sandbox gets a /proc of its own (not where the container's /proc has masked paths)."""
        return _proc_mountable(self._bwrap)

    def argv(
        self, command: Sequence[str], *, workspace_fd: int, output_fd: int, status_fd: int, seccomp_fd: int
    ) -> list[str]:
        """bwrap's command line running `command` with the workspace and output folders given as descriptors, and
        the seccomp filter read from `seccomp_fd` (`_seccomp_filter_fd`)."""
        arguments = [self._bwrap, "--unshare-all", "--unshare-user", "--cap-drop", "ALL"]
        arguments += ["--seccomp", str(seccomp_fd), "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
        arguments += ["--die-with-parent", "--new-session", "--clearenv", "--json-status-fd", str(status_fd)]
        arguments += _system_binds()
        arguments += ["--proc", "/proc"] if self.has_proc else []
        arguments += ["--dev", "/dev", "--size", str(self.limits.tmp_bytes), "--tmpfs", "/tmp"]
        # After the tmpfs: an interpreter that lives under /tmp (a checkout there) is bound on top of it, not hidden.
        arguments += _interpreter_binds()
        arguments += ["--ro-bind-fd", str(workspace_fd), WORKSPACE_MOUNT]
        # Other attempts' unfinished output is no business of this one: an empty folder covers it.
        arguments += ["--size", "4096", "--tmpfs", f"{WORKSPACE_MOUNT}/.attempts"]
        arguments += ["--bind-fd", str(output_fd), OUTPUT_MOUNT, "--chdir", OUTPUT_MOUNT]
        for name, value in _environment().items():
            arguments += ["--setenv", name, value]
        process_limit = f"--nproc={self.limits.max_processes}:{self.limits.max_processes}"
        return [*arguments, "--", _prlimit() or "prlimit", process_limit, "--", *command]

    def _seccomp_filter_fd(self) -> int:
        """A descriptor bwrap reads the filter from, at its start (one per run: bwrap reads it to the end)."""
        descriptor = os.memfd_create("sandbox-seccomp")
        os.write(descriptor, self._seccomp_filter)
        os.lseek(descriptor, 0, os.SEEK_SET)
        return descriptor

    async def run(
        self,
        command: Sequence[str],
        *,
        workspace_fd: int,
        output_fd: int,
        stop_when: Callable[[], str | None] = lambda: None,
    ) -> CommandRun:
        """Run `command` to its end, its timeout, or until `stop_when` (asked in a thread every WATCH_SECONDS while
        it runs) gives a reason to kill it; SandboxStartFailed when bwrap could not set the sandbox up."""
        status_read, status_write = os.pipe()
        seccomp_fd = self._seccomp_filter_fd()
        started = time.monotonic()
        try:
            argv = self.argv(
                command, workspace_fd=workspace_fd, output_fd=output_fd, status_fd=status_write, seccomp_fd=seccomp_fd
            )
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(workspace_fd, output_fd, status_write, seccomp_fd),
                env=_environment(),  # bwrap stays the sandbox's PID 1, and its /proc/1/environ is readable there
                start_new_session=True,  # its own process group, killed whole on timeout
                preexec_fn=self.limits.apply,
            )
            os.close(status_write)
            status_write = -1
            return await self._collect(process, status_read, started, stop_when)
        finally:
            os.close(seccomp_fd)
            os.close(status_read)
            if status_write >= 0:
                os.close(status_write)

    async def _collect(
        self,
        process: asyncio.subprocess.Process,
        status_read: int,
        started: float,
        stop_when: Callable[[], str | None],
    ) -> CommandRun:
        assert process.stdout is not None and process.stderr is not None
        streams = asyncio.gather(
            _tail(process.stdout, self.limits.output_bytes), _tail(process.stderr, self.limits.output_bytes)
        )
        timed_out, stopped = False, None
        try:
            try:
                async with asyncio.timeout(self.limits.timeout_seconds):
                    stopped = await _watch(process, stop_when)
            except TimeoutError:
                timed_out = True
            if timed_out or stopped:
                _kill_group(process.pid)
                await process.wait()
            (stdout, stdout_bytes), (stderr, stderr_bytes) = await streams
        finally:  # cancelled (the attempt ended): nothing of the command outlives it
            if process.returncode is None:
                _kill_group(process.pid)
                await process.wait()
            streams.cancel()
        if not _child_started(status_read):
            raise SandboxStartFailed(_text(stderr).strip() or f"bwrap exited with {process.returncode}")
        return CommandRun(
            exit_code=None if timed_out else process.returncode,
            timed_out=timed_out,
            duration_seconds=round(time.monotonic() - started, 3),
            stdout=_text(stdout),
            stderr=_text(stderr),
            stdout_bytes=stdout_bytes,
            stderr_bytes=stderr_bytes,
            stopped=stopped,
        )

    def probe(self, command: Sequence[str]) -> None:
        """Run `command` (a trivial one) in a sandbox over an empty workspace; SandboxUnavailable saying why not."""
        with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as folder:
            workspace = Path(folder)
            (workspace / ".attempts" / "probe").mkdir(parents=True)
            workspace_fd = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY)
            output_fd = os.open(workspace / ".attempts" / "probe", os.O_RDONLY | os.O_DIRECTORY)
            status_fd = os.open(os.devnull, os.O_WRONLY)  # stderr keeps bwrap's own words, for the message
            seccomp_fd = self._seccomp_filter_fd()
            try:
                argv = self.argv(
                    command, workspace_fd=workspace_fd, output_fd=output_fd, status_fd=status_fd, seccomp_fd=seccomp_fd
                )
                result = subprocess.run(
                    argv,
                    capture_output=True,
                    pass_fds=(workspace_fd, output_fd, status_fd, seccomp_fd),
                    env=_environment(),
                    preexec_fn=self.limits.apply,
                    timeout=PROBE_TIMEOUT_SECONDS,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as error:
                raise SandboxUnavailable(f"bwrap could not run: {error}") from None
            finally:
                os.close(workspace_fd)
                os.close(output_fd)
                os.close(status_fd)
                os.close(seccomp_fd)
        if result.returncode != 0:
            message = _text(result.stderr).replace("\n", " ").strip()
            raise SandboxUnavailable(f"bwrap failed (exit {result.returncode}): {message[-500:]}")


@functools.cache
def _prlimit() -> str | None:
    """util-linux's prlimit, from the system folders bound into the sandbox (never the interpreter's folder, which
    comes first on the sandbox's PATH)."""
    return shutil.which("prlimit", path="/usr/bin:/bin")


@functools.cache
def _no_new_user_namespaces() -> bytes:
    """The compiled seccomp filter: everything allowed but a new user namespace (EPERM, as a kernel that forbids
    them answers). clone3 passes its flags behind a pointer, out of a filter's sight: it is refused as if this
    kernel had none (ENOSYS), and the C library falls back to clone."""
    import pyseccomp  # here, not at the top: it loads libseccomp, which only the sandbox needs

    seccomp = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    new_user_namespace = pyseccomp.Arg(0, pyseccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)
    seccomp.add_rule(pyseccomp.ERRNO(errno.EPERM), "unshare", new_user_namespace)
    seccomp.add_rule(pyseccomp.ERRNO(errno.EPERM), "clone", new_user_namespace)
    seccomp.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as compiled:
        seccomp.export_bpf(compiled)
        compiled.seek(0)
        return compiled.read()


@functools.cache
def _proc_mountable(bwrap: str) -> bool:
    """Whether bwrap may mount a /proc of its own here: container engines mask paths of theirs by default, and the
    kernel then refuses a new one to an unprivileged user namespace. Asked once per process."""
    trial = [bwrap, "--unshare-all", "--unshare-user", *_system_binds(), "--proc", "/proc", "--", "true"]
    try:
        result = subprocess.run(trial, capture_output=True, timeout=PROBE_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return True  # bwrap does not run at all: the probe says why
    return b"Can't mount proc" not in result.stderr


def _system_binds() -> list[str]:
    arguments: list[str] = []
    for folder in SYSTEM_FOLDERS:
        if os.path.islink(folder):  # merged /usr: /lib -> usr/lib
            arguments += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            arguments += ["--ro-bind", folder, folder]
    return arguments


def _interpreter_binds() -> list[str]:
    """This process's Python (its installation and its virtualenv) at the paths it runs from."""
    arguments: list[str] = []
    for prefix in dict.fromkeys((sys.base_prefix, sys.prefix)):
        if not prefix.startswith("/usr/"):
            arguments += ["--ro-bind", os.path.realpath(prefix), prefix]
    return arguments


def _environment() -> dict[str, str]:
    path = [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
    return {
        "PATH": ":".join(dict.fromkeys(path)),
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        # Bytecode, pytest's and ruff's caches would land in the output beside the attempt's deliverables.
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTEST_ADDOPTS": "-p no:cacheprovider",
        "RUFF_CACHE_DIR": "/tmp/.ruff_cache",
    }


async def _tail(stream: asyncio.StreamReader, limit: int) -> tuple[bytes, int]:
    """The last `limit` bytes of `stream` and how many it carried, read to its end so the writer never blocks."""
    tail = bytearray()
    total = 0
    while chunk := await stream.read(READ_CHUNK_BYTES):
        total += len(chunk)
        tail += chunk
        del tail[:-limit]
    return bytes(tail), total


async def _watch(process: asyncio.subprocess.Process, stop_when: Callable[[], str | None]) -> str | None:
    """Wait for the process to end, asking `stop_when` meanwhile; its reason to stop, or None once it ended."""
    while True:
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), WATCH_SECONDS)
            return None
        except TimeoutError:
            if reason := await asyncio.to_thread(stop_when):
                return reason


def _kill_group(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _child_started(status_read: int) -> bool:
    """Whether bwrap reported starting the command: its first JSON status names the child's pid."""
    os.set_blocking(status_read, False)
    try:
        first_line = os.read(status_read, READ_CHUNK_BYTES).split(b"\n", 1)[0]
    except BlockingIOError:
        return False
    try:
        return "child-pid" in json.loads(first_line)
    except ValueError:
        return False


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")
