"""`python -m simulator`: serve the Claude Messages API simulator."""

import argparse
import sys
from pathlib import Path

import structlog
import uvicorn

from shared.logging import configure_logging
from shared.runtime import tune_garbage_collector
from simulator.app import create_app
from simulator.scenarios import ScenarioError, ScenarioSet, load_scenarios
from simulator.service import SimulatorConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="A deterministic, scriptable Claude-compatible Messages API server (answers are simulated).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--scenarios", type=Path, help="YAML or JSON scenario file (default: fallback answers only)")
    parser.add_argument("--latency-ms", type=int, default=0, help="simulated model time added to every answer")
    parser.add_argument("--request-log", type=Path, help="append one JSON line per message request to this file")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    log = structlog.get_logger("simulator")
    try:
        scenarios = load_scenarios(args.scenarios) if args.scenarios else ScenarioSet()
    except ScenarioError as exc:
        print(f"invalid scenario file:\n{exc}", file=sys.stderr)
        return 2
    config = SimulatorConfig(scenarios=scenarios, latency_ms=args.latency_ms, request_log=args.request_log)
    log.info(
        "simulator_starting",
        host=args.host,
        port=args.port,
        scenarios=str(args.scenarios) if args.scenarios else None,
        plans=len(scenarios.plans),
        subtasks=len(scenarios.subtasks),
        latency_ms=args.latency_ms,
    )
    app = create_app(config)
    tune_garbage_collector()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        log_level=args.log_level.lower(),
        access_log=False,
        ws="none",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
