"""The virtualenv step shared by scripts/start.sh and scripts/test.sh (`ensure_venv` in scripts/lib/services.sh).

Each test runs the real function in bash, one call per script as the scripts make it, on a fresh venv under a tmp
folder acting as the repository, installing two tiny wheels built here from a local folder: no index, no network.
"""

import base64
import hashlib
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

SERVICES_SH = Path(__file__).resolve().parents[2] / "scripts" / "lib" / "services.sh"
RUNTIME_PACKAGE = "tiny_runtime"  # stands for requirements.txt's packages, what start.sh needs
DEV_PACKAGE = "tiny_devtool"  # stands for what requirements-dev.txt adds, such as pytest


def record_hash(content: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_wheel(folder: Path, name: str, version: str) -> None:
    """A pure-Python wheel holding one module, `{name}.py`, whose VERSION is the package's version."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": f"VERSION = {version!r}\n".encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},{record_hash(content)},{len(content)}\n" for path, content in files.items())
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as wheel:
        for path, content in files.items():
            wheel.writestr(path, content)
        wheel.writestr(f"{dist_info}/RECORD", record + f"{dist_info}/RECORD,,\n")


def write_requirements(repo: Path, runtime_version: str) -> None:
    wheels = repo / "wheels"
    (repo / "requirements.txt").write_text(f"--find-links {wheels}\n{RUNTIME_PACKAGE}=={runtime_version}\n")
    (repo / "requirements-dev.txt").write_text(f"-r requirements.txt\n{DEV_PACKAGE}==1.0\n")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository root with both requirements files and the wheels they name (two versions of the runtime one)."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name, version in [(RUNTIME_PACKAGE, "1.0"), (RUNTIME_PACKAGE, "2.0"), (DEV_PACKAGE, "1.0")]:
        build_wheel(wheels, name, version)
    write_requirements(tmp_path, runtime_version="1.0")
    return tmp_path


def ensure_venv(repo: Path, requirements: str) -> str:
    """Runs `ensure_venv <requirements>` as start.sh or test.sh does; returns what it said on stderr."""
    # Nothing from the developer's machine (a PIP_FIND_LINKS, a pip config file, a PYTHON or PYTHONPATH, an active
    # venv) and no index: pip sees only ./wheels, and `pip install --upgrade pip` has nothing to upgrade to.
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "PYTHON"))}
    environment.update(REPO_ROOT=str(repo), PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull)
    environment.pop("VIRTUAL_ENV", None)
    script = 'set -euo pipefail; source "$1"; ensure_venv "$2"'
    completed = subprocess.run(
        ["bash", "-c", script, "bash", str(SERVICES_SH), requirements],
        env=environment,
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stderr


def installed_version(repo: Path, package: str) -> str | None:
    """The VERSION of the package as the venv's python imports it, or None when it cannot."""
    completed = subprocess.run(
        [str(repo / ".venv" / "bin" / "python"), "-c", f"import {package}; print({package}.VERSION)"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return completed.stdout.strip() if completed.returncode == 0 else None


def test_start_then_test_installs_the_dev_requirements_too(repo: Path) -> None:
    ensure_venv(repo, "requirements.txt")
    assert installed_version(repo, RUNTIME_PACKAGE) == "1.0"
    assert installed_version(repo, DEV_PACKAGE) is None

    ensure_venv(repo, "requirements-dev.txt")

    assert installed_version(repo, RUNTIME_PACKAGE) == "1.0"
    assert installed_version(repo, DEV_PACKAGE) == "1.0"


def test_test_then_start_needs_no_second_install(repo: Path) -> None:
    ensure_venv(repo, "requirements-dev.txt")

    said = ensure_venv(repo, "requirements.txt")

    assert "installing" not in said  # requirements-dev.txt includes requirements.txt: already installed
    assert installed_version(repo, RUNTIME_PACKAGE) == "1.0"
    assert installed_version(repo, DEV_PACKAGE) == "1.0"


def test_a_changed_included_file_installs_again(repo: Path) -> None:
    ensure_venv(repo, "requirements.txt")
    ensure_venv(repo, "requirements-dev.txt")
    assert "installing" not in ensure_venv(repo, "requirements-dev.txt")

    write_requirements(repo, runtime_version="2.0")  # requirements-dev.txt itself is unchanged
    ensure_venv(repo, "requirements-dev.txt")

    assert installed_version(repo, RUNTIME_PACKAGE) == "2.0"
    assert installed_version(repo, DEV_PACKAGE) == "1.0"
