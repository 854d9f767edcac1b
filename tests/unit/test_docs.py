"""The operator's documentation cannot drift from the code: docs/api.md against the OpenAPI contracts, the README's
configuration table against Settings, and every repository path or test the docs name against the tree."""

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from shared.models import SubTaskStatus, TaskStatus
from tests.events_contract import json_problems

REPO_ROOT = Path(__file__).resolve().parents[2]
API_DOC = REPO_ROOT / "docs" / "api.md"
README = REPO_ROOT / "README.md"
ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"
SECURITY = REPO_ROOT / "docs" / "security.md"
DOCS = [README, ARCHITECTURE, API_DOC, SECURITY]
# docs/api.md's level-2 heading for each contract, and where its curl examples send requests.
CONTRACTS = {
    "Orchestrator API": ("orchestrator-api.yaml", r"http://localhost:8000"),
    "Agent API": ("agent-api.yaml", r"http://localhost:800[1-5]"),
}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# First path segments that are folders of this repository (so `application/json` is not taken for a path).
REPO_FOLDERS = ("agent", "contracts", "docs", "orchestrator", "scripts", "shared", "shared_files", "simulator",
                "tests", "ui", ".ci")  # fmt: skip


def load_contract(name: str) -> dict[str, Any]:
    contract: dict[str, Any] = yaml.safe_load((REPO_ROOT / "contracts" / name).read_text())
    return contract


@dataclass(frozen=True)
class Endpoint:
    contract: str
    method: str
    path: str

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path} ({self.contract})"


def contract_endpoints() -> list[Endpoint]:
    return [
        Endpoint(heading, method, path)
        for heading, (name, _) in CONTRACTS.items()
        for path, operations in load_contract(name)["paths"].items()
        for method in operations
        if method in HTTP_METHODS
    ]


def split_sections(text: str, level: int) -> dict[str, str]:
    """Heading text -> the section's body, for the headings of one level."""
    marker = "#" * level + " "
    sections: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith(marker):
            current = line[len(marker) :].strip()
            sections[current] = ""
        elif current is not None:
            if re.match(rf"#{{1,{level - 1}}} ", line):
                current = None
            else:
                sections[current] += line + "\n"
    return sections


def documented_endpoints() -> dict[Endpoint, str]:
    documented = {}
    for heading, body in split_sections(API_DOC.read_text(), 2).items():
        contract = next((name for name in CONTRACTS if heading.startswith(name)), None)
        for title, section in split_sections(body, 3).items():
            operation = re.fullmatch(r"`([A-Z]+) (/\S*)`", title)
            assert contract and operation, f"docs/api.md: '### {title}' under '## {heading}' names no operation"
            documented[Endpoint(contract, operation.group(1).lower(), operation.group(2))] = section
    return documented


def operation(endpoint: Endpoint) -> dict[str, Any]:
    found: dict[str, Any] = load_contract(CONTRACTS[endpoint.contract][0])["paths"][endpoint.path][endpoint.method]
    return found


@pytest.fixture(scope="module")
def documented() -> dict[Endpoint, str]:
    return documented_endpoints()


endpoint_params = pytest.mark.parametrize("endpoint", contract_endpoints(), ids=str)


def test_api_doc_documents_exactly_the_contracts_operations(documented: dict[Endpoint, str]) -> None:
    assert set(documented) == set(contract_endpoints())


@endpoint_params
def test_api_doc_lists_the_contract_s_status_codes(endpoint: Endpoint, documented: dict[Endpoint, str]) -> None:
    listed = set(re.findall(r"^\| `(\d{3})` \|", documented[endpoint], re.MULTILINE))
    assert listed == set(operation(endpoint)["responses"])


@endpoint_params
def test_api_doc_lists_the_contract_s_parameters(endpoint: Endpoint, documented: dict[Endpoint, str]) -> None:
    listed = set(re.findall(r"^\| `([\w-]+)` \| (query|path|header) \|", documented[endpoint], re.MULTILINE))
    assert listed == {(parameter["name"], parameter["in"]) for parameter in operation(endpoint).get("parameters", [])}


@endpoint_params
def test_api_doc_has_a_curl_example(endpoint: Endpoint, documented: dict[Endpoint, str]) -> None:
    base = CONTRACTS[endpoint.contract][1]
    path = re.sub(r"\\\{\w+\\\}", r"[^/?' ]+", re.escape(endpoint.path))
    method = "" if endpoint.method == "get" else rf"-X {endpoint.method.upper()} "
    commands = "\n".join(re.findall(r"```bash\n(.*?)```", documented[endpoint], re.DOTALL))
    assert re.search(rf"curl {method}'?{base}{path}['?\s]", commands), f"no curl example for {endpoint}"


def examples(section: str) -> list[tuple[str, str]]:
    """(status code, JSON text) of each example answer: a **`NNN`** line, then a json code block."""
    return re.findall(r"^\*\*`(\d{3})`\*\*[^\n]*\n```json\n(.*?)```", section, re.MULTILINE | re.DOTALL)


def stream_examples(section: str) -> list[tuple[str, str]]:
    """(status code, stream text) of each example event stream: a **`NNN`** line, then a text code block."""
    return re.findall(r"^\*\*`(\d{3})`\*\*[^\n]*\n```text\n(.*?)```", section, re.MULTILINE | re.DOTALL)


def stream_data(stream: str) -> list[Any]:
    """The JSON of each `data:` line of an example event stream."""
    return [json.loads(line.removeprefix("data: ")) for line in stream.splitlines() if line.startswith("data: ")]


@endpoint_params
def test_api_doc_examples_answer_as_the_contract_says(endpoint: Endpoint, documented: dict[Endpoint, str]) -> None:
    found = examples(documented[endpoint])
    responses = operation(endpoint)["responses"]
    success = min(status for status in operation(endpoint)["responses"] if status.startswith("2"))
    streams = stream_examples(documented[endpoint])
    if "text/event-stream" in responses[success].get("content", {}):
        # An event stream: each message's data is an event as the contract's itemSchema describes it.
        event_schema = responses[success]["content"]["text/event-stream"]["itemSchema"]["properties"]["data"]
        assert success in {status for status, _ in streams}, f"{endpoint} has no example of its {success} stream"
        for _, stream in streams:
            assert stream_data(stream), f"{endpoint}: the example stream has no event"
            for event in stream_data(stream):
                jsonschema.validate(event, event_schema["contentSchema"])
                assert json_problems(event) == []  # and its payload as contracts/events.yaml says
    elif "application/json" in responses[success].get("content", {}):  # a download's bytes have no JSON example
        assert success in {status for status, _ in found}, f"{endpoint} has no example of its {success} answer"
    components = load_contract(CONTRACTS[endpoint.contract][0])["components"]
    for status, text in found:
        assert status in responses, f"{endpoint}: the contract has no {status}"
        schema = responses[status]["content"]["application/json"]["schema"]
        # The contract's components ride along so its `#/components/schemas/...` references resolve.
        jsonschema.validate(json.loads(text), {**schema, "components": components})


def test_every_json_block_of_the_api_doc_is_a_checked_example() -> None:
    text = API_DOC.read_text()
    assert len(examples(text)) == text.count("```json"), "a JSON block without a **`status`** line is not checked"


def test_the_example_check_can_fail() -> None:
    """An example the contract does not allow is caught (here: an agent with a field the schema forbids)."""
    endpoint = Endpoint("Agent API", "get", "/status")
    section = documented_endpoints()[endpoint].replace('"executor": "sdk",', '"executor": "sdk", "mood": "fine",')
    schema = operation(endpoint)["responses"]["200"]["content"]["application/json"]["schema"]
    components = load_contract("agent-api.yaml")["components"]
    ((_, text),) = examples(section)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(text), {**schema, "components": components})


# --- README and architecture ------------------------------------------------------------------------------------


def env_example_defaults() -> dict[str, str]:
    lines = (REPO_ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_readme_configuration_table_matches_settings() -> None:
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \| ([^|]*) \|", README.read_text(), re.MULTILINE)
    assert len(rows) >= 5, "the README's configuration table is missing"
    defaults = env_example_defaults()
    for name, default in rows:
        assert name in defaults, f"README documents {name}, which Settings does not read"
        written = default.strip()
        expected = f"`{defaults[name]}`" if defaults[name] else "unset"
        assert written == expected, f"README says {name} defaults to {written}; Settings says {expected}"


def test_readme_quick_start_uses_the_scripts() -> None:
    text = README.read_text()
    for command in ("scripts/start.sh", "scripts/stop.sh", "scripts/test.sh", "scripts/test_system.py"):
        assert command in text


def repository_references(text: str) -> set[str]:
    """Paths in backticks or links whose first segment is a folder of this repository."""
    tokens = re.findall(r"`([^`\s]+)`", text) + re.findall(r"\]\(((?:\.\./)?[^)\s#]+)\)", text)
    references = set()
    for token in tokens:
        token = token.removeprefix("../")
        if "/" in token and token.split("/")[0] in REPO_FOLDERS and not re.search(r"[{}<>*\[\]]", token):
            references.add(token)
    return references


@pytest.mark.parametrize("doc", DOCS, ids=[doc.name for doc in DOCS])
def test_every_path_a_doc_names_exists(doc: Path) -> None:
    missing = []
    for reference in repository_references(doc.read_text()):
        path, _, test_name = reference.partition("::")
        exists = (REPO_ROOT / path).exists()
        if not exists or (test_name and test_name not in defined_functions(REPO_ROOT / path)):
            missing.append(reference)
    assert not missing, f"{doc.name} names what is not there: {sorted(missing)}"


def defined_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_architecture_names_the_tests_behind_each_guarantee() -> None:
    tests = [ref for ref in repository_references(ARCHITECTURE.read_text()) if "::test_" in ref]
    assert len(tests) >= 10, "docs/architecture.md should say which tests hold each guarantee"


def test_architecture_covers_every_state() -> None:
    text = ARCHITECTURE.read_text()
    for state in [*SubTaskStatus, *TaskStatus]:
        assert f"`{state.value}`" in text, f"docs/architecture.md does not mention the state {state.value}"
