"""run_command's sandbox under the two conditions a container puts it in, reproduced on this host: an agent user
that already runs many processes (uid `app` with the agent's threads and its CLIs, and with the other containers'
`app` when the engine does not remap users), a /proc with masked paths and a read-only /proc/sys (every engine's
defaults).

Each case runs the real bwrap in a child process: as an unprivileged user, or inside a user and mount namespace
whose /proc has a path bound over, as the engine's masking does.
"""

import json
import os
import shutil
import site
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
UNPRIVILEGED_UID = 65534  # nobody
MAX_PROCESSES = 20
AGENT_USER_PROCESSES = 80  # more than MAX_PROCESSES: what the agent's user already runs outside the sandbox

# Runs one command in the sandbox over a fresh workspace and prints what it did, as JSON.
# The module is loaded by its path: the package's __init__ would import all the agent's tools.
RUN_IN_SANDBOX = """
import asyncio, importlib.util, os, sys, tempfile
spec = importlib.util.spec_from_file_location("sandbox", "{repo}/agent/tools/sandbox.py")
sandbox_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sandbox_module)
BwrapSandbox, SandboxLimits = sandbox_module.BwrapSandbox, sandbox_module.SandboxLimits

limits = SandboxLimits(timeout_seconds=30, cpu_seconds=10, memory_bytes=2**30, max_processes={max_processes},
                       max_file_bytes=2**20, tmp_bytes=2**22, output_bytes=4096)
sandbox = BwrapSandbox("bwrap", limits)
sandbox.probe([sys.executable, "-c", "pass"])
with tempfile.TemporaryDirectory() as folder:
    os.makedirs(f"{{folder}}/.attempts/one")
    workspace_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    output_fd = os.open(f"{{folder}}/.attempts/one", os.O_RDONLY | os.O_DIRECTORY)
    run = asyncio.run(sandbox.run([sys.executable, "-c", sys.argv[1]], workspace_fd=workspace_fd, output_fd=output_fd))
print(run.as_json())
"""

# Asks the kernel for a new user namespace, and prints its answer.
NEW_USER_NAMESPACE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print("created" if libc.unshare(0x10000000) == 0 else os.strerror(ctypes.get_errno()))
"""

# Starts processes until the kernel refuses one, and says how many it had running then.
FORK_UNTIL_REFUSED = """
import subprocess
children = []
try:
    for _ in range(200):
        children.append(subprocess.Popen(["sleep", "30"]))
except BlockingIOError:
    pass
print(len(children))
for child in children:
    child.kill()
"""


def run_in_sandbox(
    command: str, *, python: str = sys.executable, wrapper: Sequence[str] = (), **popen: Any
) -> dict[str, Any]:
    script = RUN_IN_SANDBOX.format(repo=REPO_ROOT, max_processes=MAX_PROCESSES)
    python_path = os.pathsep.join([str(REPO_ROOT), *site.getsitepackages()])
    environment = {"PATH": os.environ["PATH"], "PYTHONPATH": python_path, "HOME": "/tmp"}
    argv = [*wrapper, python, "-c", script, command]
    done = subprocess.run(argv, capture_output=True, text=True, env=environment, cwd="/", timeout=120, **popen)
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return answer


@pytest.fixture
def unprivileged_user() -> Iterator[dict[str, Any]]:
    """How to run as an unprivileged user that already runs more processes than the sandbox may start."""
    if os.geteuid() != 0:
        pytest.skip("starting processes as another user needs root")
    as_user = {"user": UNPRIVILEGED_UID, "group": UNPRIVILEGED_UID, "extra_groups": []}
    sleepers = [subprocess.Popen(["sleep", "120"], **as_user) for _ in range(AGENT_USER_PROCESSES)]  # type: ignore[call-overload]
    yield as_user
    for sleeper in sleepers:
        sleeper.kill()
        sleeper.wait()


def test_the_process_limit_counts_the_command_s_processes_not_the_agent_user_s(
    unprivileged_user: dict[str, Any],
) -> None:
    # Set on bwrap, the limit counted the user's 80 other processes: bwrap itself could not start ("Creating new
    # namespace failed: Resource temporarily unavailable"), as in every agent container. (The system's interpreter,
    # with this one's packages: the test's own may live where the unprivileged user cannot read.)
    python = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin:/usr/local/bin")
    if python is None:
        pytest.skip("no system Python of this version for the unprivileged user")

    answer = run_in_sandbox(FORK_UNTIL_REFUSED, python=python, **unprivileged_user)

    assert answer["exit_code"] == 0, answer
    started = int(str(answer["stdout"]))
    # The command itself, bwrap's init and prlimit's exec count too: a few under the limit, never over it.
    assert MAX_PROCESSES - 4 <= started < MAX_PROCESSES, answer


@pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux's unshare is needed to mask a path of /proc")
def test_where_proc_has_masked_paths_commands_run_without_proc() -> None:
    # A container engine binds over paths of /proc (kcore, sysrq-trigger, ...); the kernel then refuses a new proc
    # mount to an unprivileged user namespace, and bwrap --proc failed: "Can't mount proc on /newroot/proc".
    masked_proc = ["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "--mount-proc"]
    masked_proc += ["sh", "-c", 'mount --bind /dev/null /proc/uptime && exec "$@"', "mask"]

    answer = run_in_sandbox("import os; print(os.path.exists('/proc'), os.getpid())", wrapper=masked_proc)

    assert answer["exit_code"] == 0, answer
    proc_exists, pid = str(answer["stdout"]).split()
    assert proc_exists == "False"
    assert int(pid) < 10, answer  # still in a PID namespace of its own


@pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux's unshare is needed to mount /proc/sys")
@pytest.mark.parametrize("proc_sys", ["writable", "read-only"])
def test_a_command_cannot_create_a_user_namespace(proc_sys: str) -> None:
    # Where /proc/sys is read-only (every container engine mounts it so), bwrap --disable-userns failed before the
    # command ran: "cannot open /proc/sys/user/max_user_namespaces: Read-only file system".
    wrapper = []
    if proc_sys == "read-only":
        wrapper = ["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "--mount-proc", "sh", "-c"]
        wrapper += ['mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$@"', "ro"]

    answer = run_in_sandbox(NEW_USER_NAMESPACE, wrapper=wrapper)

    assert answer["exit_code"] == 0, answer
    assert str(answer["stdout"]).strip() == "Operation not permitted"
