"""The isolation report (GET /isolation-report, and the coordinator's `isolation_report` tool): one builder for both."""

from shared.isolation.models import IsolationReport
from shared.isolation.report import build_isolation_report

__all__ = ["IsolationReport", "build_isolation_report"]
