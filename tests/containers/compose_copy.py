"""Writes the copy of docker-compose.yml that scripts/test_containers.sh brings up with podman-compose.

Only what keeps the test away from a fleet on this host changes: the project name (so the containers, volumes and
network are the test's own), and the published ports (the orchestrator on a port of the test's, on 127.0.0.1; the
agents and the dashboard unpublished). The images are built beforehand, so `build:` goes; the monitoring profile
goes too (it mounts files of a started fleet). A copy rather than an override file: podman-compose appends list
values such as `ports` when it merges files, so an override cannot take a port away.

Usage: python compose_copy.py SOURCE TARGET PROJECT ORCHESTRATOR_PORT
"""

import sys
from pathlib import Path
from typing import Any

import yaml

MONITORING = "monitoring"
MONITORING_VOLUMES = ("prometheus_data", "grafana_data")


def container_test_copy(compose: dict[str, Any], project: str, orchestrator_port: int) -> dict[str, Any]:
    services = {
        name: service for name, service in compose["services"].items() if MONITORING not in service.get("profiles", [])
    }
    for name, service in services.items():
        service.pop("build", None)
        service.pop("ports", None)
        if name == "orchestrator":
            service["ports"] = [f"127.0.0.1:{orchestrator_port}:8000"]
    volumes = {name: spec for name, spec in compose["volumes"].items() if name not in MONITORING_VOLUMES}
    return {**compose, "name": project, "services": services, "volumes": volumes}


def main() -> int:
    source, target, project, port = sys.argv[1:]
    compose = yaml.safe_load(Path(source).read_text())  # anchors and `<<` merges resolved here
    Path(target).write_text(yaml.safe_dump(container_test_copy(compose, project, int(port)), sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
