"""The settings scripts/start.sh hands the services (scripts/lib/settings.sh): `.env` under the environment, the
secrets it generates once and keeps, and the operator's API key. Each test runs the real function in bash."""

import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from shutil import which

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = "source scripts/lib/services.sh; source scripts/lib/settings.sh"


def bash(script: str, work: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `script` after sourcing the libraries as start.sh does, in `work`, with only `env` (and PATH, HOME)."""
    environment = {"PATH": env.pop("PATH", os.environ["PATH"]), "HOME": str(work), "REPO_ROOT": str(REPO_ROOT), **env}
    command = f"set -euo pipefail; cd {REPO_ROOT}; {LIBRARIES}; cd {work}; {script}"
    return subprocess.run(["bash", "-c", command], env=environment, capture_output=True, text=True, timeout=30)


def exported(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def test_the_environment_wins_over_env_file_and_env_file_fills_the_rest(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ANTHROPIC_API_KEY=\nCLAUDE_MODEL=from-the-file\nTENANT_ID=file-tenant\n")

    run = bash("source_env_file .env; env", tmp_path, ANTHROPIC_API_KEY="sk-ant-from-the-environment", TENANT_ID="")

    assert run.returncode == 0, run.stderr
    seen = exported(run.stdout)  # what the services started from here would see
    assert seen["ANTHROPIC_API_KEY"] == "sk-ant-from-the-environment"
    assert seen["CLAUDE_MODEL"] == "from-the-file"
    assert seen["TENANT_ID"] == "file-tenant"  # an empty variable sets nothing, as in shared/config.py


def test_no_env_file_changes_nothing(tmp_path: Path) -> None:
    run = bash("source_env_file .env; echo TENANT_ID=$TENANT_ID", tmp_path, TENANT_ID="acme")

    assert run.returncode == 0, run.stderr
    assert exported(run.stdout)["TENANT_ID"] == "acme"


def test_a_kept_secret_is_generated_once_private_and_long_enough(tmp_path: Path) -> None:
    secret = tmp_path / "fleet" / "fleet-secret"

    first = bash(f"kept_secret {secret}", tmp_path)
    again = bash(f"kept_secret {secret}", tmp_path)

    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert len(first.stdout) == 64 and int(first.stdout, 16) >= 0  # FLEET_SECRET takes 32 characters or more
    assert again.stdout == first.stdout
    assert secret.stat().st_mode & 0o777 == 0o600
    secret.chmod(0o644)  # opened up since
    assert bash(f"kept_secret {secret}", tmp_path).stdout == first.stdout
    assert secret.stat().st_mode & 0o777 == 0o600


class KeyChecker(BaseHTTPRequestHandler):
    """An orchestrator that knows one key: 200 for it, 401 for any other."""

    known = "mats_known"
    seen: list[str | None] = []

    def do_GET(self) -> None:
        KeyChecker.seen.append(self.headers.get("Authorization"))
        self.send_response(200 if self.headers.get("Authorization") == f"Bearer {self.known}" else 401)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_the_kept_key_is_checked_with_the_orchestrator_without_showing_it_to_ps(tmp_path: Path) -> None:
    shims = tmp_path / "bin"  # a curl that notes its command line (what `ps` shows), then runs the real one
    shims.mkdir()
    (shims / "curl").write_text(f'#!/usr/bin/env bash\necho "$*" >>{tmp_path}/curl-args\nexec {which("curl")} "$@"\n')
    (shims / "curl").chmod(0o755)
    server = ThreadingHTTPServer(("127.0.0.1", 0), KeyChecker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    path = f"{shims}:{os.environ['PATH']}"
    try:
        known = bash(f"api_key_refused {url} mats_known && echo refused || echo kept", tmp_path, PATH=path)
        unknown = bash(f"api_key_refused {url} mats_forgotten && echo refused || echo kept", tmp_path, PATH=path)
    finally:
        server.shutdown()
        server.server_close()

    assert (known.stdout.strip(), unknown.stdout.strip()) == ("kept", "refused"), known.stderr + unknown.stderr
    assert KeyChecker.seen[-2:] == ["Bearer mats_known", "Bearer mats_forgotten"]
    command_lines = (tmp_path / "curl-args").read_text()
    assert command_lines.count("--config -") == 2 and "mats_" not in command_lines


@pytest.fixture
def cli(tmp_path: Path) -> Path:
    """A stand-in for `python -m orchestrator`: prints a line of its own, then a new key; counts its calls."""
    script = tmp_path / "orchestrator-cli"
    script.write_text(
        '#!/usr/bin/env bash\necho "$*" >>"$(dirname "$0")/cli-calls"\n'
        'echo "created key 7 for tenant default"\necho "mats_new_$(wc -l <"$(dirname "$0")/cli-calls" | tr -d " ")"\n'
    )
    script.chmod(0o755)
    return script


def calls(cli: Path) -> list[str]:
    log = cli.parent / "cli-calls"
    return log.read_text().splitlines() if log.exists() else []


ENSURE = "ensure_api_key http://127.0.0.1:1 {file} -- {cli} api-keys create && echo new; echo KEY=$ORCHESTRATOR_API_KEY"


def test_the_first_start_makes_an_operator_key_and_later_starts_reuse_it(tmp_path: Path, cli: Path) -> None:
    kept = tmp_path / "fleet" / "api-key"

    first = bash(ENSURE.format(file=kept, cli=cli), tmp_path)
    again = bash(ENSURE.format(file=kept, cli=cli), tmp_path)

    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert first.stdout.splitlines() == ["new", "KEY=mats_new_1"]
    assert kept.read_text() == "mats_new_1\n" and kept.stat().st_mode & 0o777 == 0o600
    assert again.stdout.splitlines() == ["KEY=mats_new_1"]  # nothing printed "new": the kept key
    assert calls(cli) == ["api-keys create"]


def test_a_key_from_the_environment_wins_and_nothing_is_made(tmp_path: Path, cli: Path) -> None:
    kept = tmp_path / "fleet" / "api-key"

    run = bash(ENSURE.format(file=kept, cli=cli), tmp_path, ORCHESTRATOR_API_KEY="mats_mine")

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["KEY=mats_mine"]
    assert calls(cli) == [] and not kept.exists()


def test_a_kept_key_the_orchestrator_refuses_is_replaced(tmp_path: Path, cli: Path) -> None:
    kept = tmp_path / "fleet" / "api-key"
    kept.parent.mkdir()
    kept.write_text("mats_forgotten\n")
    # curl as a shell function answering as an orchestrator whose database lost the key (a function, not a file
    # written just before it runs: a busy machine can refuse to run that with "Text file busy"). It reads its config
    # from stdin as curl does: one that did not could exit first and fail the writer with SIGPIPE.
    as_refused = "curl() { cat >/dev/null; printf 401; }; "

    run = bash(as_refused + ENSURE.format(file=kept, cli=cli), tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["new", "KEY=mats_new_1"]
    assert "refuses the kept API key" in run.stderr
    assert kept.read_text() == "mats_new_1\n"
