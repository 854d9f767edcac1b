"""The monitoring deployment: Prometheus scrapes what the apps serve, with the key scripts/start.sh keeps, and the
Grafana dashboard charts only metrics the code defines (no Grafana or Prometheus runs here: the files are read).

Also: docs/api.md lists every metric the orchestrator and the agents define.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from agent.app import create_app as create_agent_app
from agent.metrics import AgentMetrics
from orchestrator.app import create_app as create_orchestrator_app
from orchestrator.metrics import OrchestratorMetrics
from shared.config import Settings
from tests.unit.test_deployment import REPO_ROOT, agent_services, monitored  # noqa: F401 - fixture used by name

DEPLOY = REPO_ROOT / "deploy"
SCRAPE_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "fleet.json"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "fleet.yml"
METRIC_NAME = re.compile(r"\bfleet_[a-z_]+\b")
# The sample names Prometheus stores for each kind of metric family.
SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def families(registry: CollectorRegistry) -> dict[str, str]:
    """Metric family name -> type."""
    return {family.name: family.type for family in registry.collect()}


def defined_families() -> dict[str, str]:
    return {**families(OrchestratorMetrics().registry), **families(AgentMetrics("default").registry)}


def sample_names() -> set[str]:
    return {name + suffix for name, kind in defined_families().items() for suffix in SAMPLE_SUFFIXES[kind]}


def load_yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def dashboard_panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return panels


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts."""
    return {volume["target"]: volume["source"] for volume in service["volumes"] if volume["type"] == "bind"}


def scrape_jobs() -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in load_yaml(SCRAPE_CONFIG)["scrape_configs"]}


def test_metric_names_follow_prometheus_conventions() -> None:
    found = defined_families()
    assert len(found) >= 20
    for name, kind in found.items():
        assert re.fullmatch(r"fleet_(agent_)?[a-z_]+", name), name
        assert not name.endswith("_total"), f"{name}: the client adds _total to a counter's samples"
        if kind == "histogram":
            assert name.endswith("_seconds"), name
    assert all(name.startswith("fleet_agent_") for name in families(AgentMetrics("default").registry))


def test_every_panel_charts_only_metrics_the_code_defines_and_every_metric_is_charted() -> None:
    known = sample_names()
    charted: set[str] = set()
    for panel in dashboard_panels():
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = set(METRIC_NAME.findall(target["expr"]))
            assert names, f"{panel['title']}: {target['expr']} names no fleet metric"
            assert names <= known, f"{panel['title']}: {sorted(names - known)} are not defined by the code"
            charted |= names
    charted_families = {name for name in defined_families() if any(s.startswith(name) for s in charted)}
    assert charted_families == set(defined_families())


def test_the_dashboard_check_can_fail() -> None:
    assert not {"fleet_subtask", "fleet_subtasks_total"} & sample_names()
    assert {"fleet_subtasks", "fleet_retries_total", "fleet_assignment_latency_seconds_bucket"} <= sample_names()


def test_the_dashboard_reads_the_provisioned_data_source_and_is_where_grafana_looks(
    monitored: dict[str, Any],  # noqa: F811
) -> None:
    [source] = load_yaml(DATASOURCES)["datasources"]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in dashboard_panels()]
    assert len(ids) == len(set(ids))
    for panel in dashboard_panels():
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert all(target["datasource"]["uid"] == source["uid"] for target in panel["targets"]), panel["title"]
    [provider] = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    grafana = monitored["services"]["grafana"]
    mounts = bind_mounts(grafana)
    assert mounts[provider["options"]["path"]].endswith("deploy/grafana/dashboards")
    assert mounts["/etc/grafana/provisioning"].endswith("deploy/grafana/provisioning")
    assert grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].startswith(provider["options"]["path"])


def test_prometheus_scrapes_the_orchestrator_and_each_agent_where_they_serve(
    monitored: dict[str, Any],  # noqa: F811
    settings: Settings,
) -> None:
    jobs = scrape_jobs()
    services = monitored["services"]
    orchestrator_port = services["orchestrator"]["environment"]["ORCHESTRATOR_PORT"]
    assert jobs["orchestrator"]["static_configs"] == [{"targets": [f"orchestrator:{orchestrator_port}"]}]
    agents = {f"{name}:{agent['environment']['AGENT_PORT']}" for name, agent in agent_services(monitored).items()}
    [agent_targets] = jobs["agents"]["static_configs"]
    assert set(agent_targets["targets"]) == agents
    assert "authorization" not in jobs["agents"]  # the agents' metrics need no key
    orchestrator_paths = create_orchestrator_app(settings).openapi()["paths"]
    agent_paths = create_agent_app(settings).openapi()["paths"]
    assert "get" in orchestrator_paths[jobs["orchestrator"]["metrics_path"]]
    assert "get" in agent_paths[jobs["agents"]["metrics_path"]]


def test_prometheus_sends_the_operator_key_scripts_start_sh_keeps(monitored: dict[str, Any]) -> None:  # noqa: F811
    prometheus = monitored["services"]["prometheus"]
    authorization = scrape_jobs()["orchestrator"]["authorization"]
    assert authorization.get("type", "Bearer") == "Bearer"
    mounts = bind_mounts(prometheus)
    assert mounts[authorization["credentials_file"]].endswith("/.data/fleet/api-key")
    [key_mount] = [volume for volume in prometheus["volumes"] if volume["target"] == authorization["credentials_file"]]
    # Compose leaves out create_host_path when false; a short-syntax mount shows it true (Docker would make a folder).
    assert key_mount["read_only"] and not key_mount["bind"].get("create_host_path")
    start_sh = (REPO_ROOT / "scripts" / "start.sh").read_text()
    assert 'FLEET_DIR="$DATA_DIR/fleet"' in start_sh and 'API_KEY_FILE="$FLEET_DIR/api-key"' in start_sh
    assert 'DATA_DIR="${REPO_ROOT}/.data"' in (REPO_ROOT / "scripts" / "lib" / "services.sh").read_text()
    config_flag = next(arg for arg in prometheus["command"] if arg.startswith("--config.file="))
    assert mounts[config_flag.removeprefix("--config.file=")].endswith("deploy/prometheus/prometheus.yml")


def test_monitoring_is_opt_in_local_only_and_waits_for_what_it_reads(
    monitored: dict[str, Any],  # noqa: F811
) -> None:
    services = monitored["services"]
    for name, port, upstream in (("prometheus", 9090, "orchestrator"), ("grafana", 3000, "prometheus")):
        service = services[name]
        assert service["profiles"] == ["monitoring"], name
        assert service["healthcheck"]["test"][0] == "CMD", name
        assert {dependency: how["condition"] for dependency, how in service["depends_on"].items()} == {
            upstream: "service_healthy"
        }, name
        assert {(int(p["published"]), p.get("host_ip")) for p in service["ports"]} == {(port, "127.0.0.1")}, name


@pytest.mark.parametrize("section", ["Orchestrator (`fleet_`)", "Agents (`fleet_agent_`"])
def test_docs_list_every_metric_with_its_type(section: str) -> None:
    text = (REPO_ROOT / "docs" / "api.md").read_text().split("## Prometheus metrics", 1)[1]
    rows = dict(re.findall(r"^\| `(fleet_[a-z_]+)` \| (\w+) \|", text, re.MULTILINE))
    for name, kind in defined_families().items():
        documented = name + ("_total" if kind == "counter" else "")
        assert rows.get(documented) == kind, f"docs/api.md does not list {documented} as a {kind}"
    assert len(rows) == len(defined_families())
