"""The dashboard's only way to the system: the orchestrator's HTTP API, with short timeouts and one error type."""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import EventSource, connect_sse
from pydantic import BaseModel, ValidationError

from shared.artifacts import ArtifactView
from shared.models import AgentStatus, SubTaskResult, Task, TaskCreatedResponse
from ui.api_models import (
    AgentRecord,
    AttemptSpan,
    AttemptToolCalls,
    DryRun,
    HistoryBucket,
    LogLine,
    LogQuery,
    SpendReport,
    SubtaskNotes,
    TaskCost,
    TaskPage,
    TaskQuery,
    TaskRequest,
)

# Reads must come back fast or the page would hang; the dashboard retries by refreshing anyway.
READ_TIMEOUT = httpx.Timeout(5.0, connect=1.5)
# Submitting waits for Claude's decomposition (and possibly one repair round), which takes much longer.
SUBMIT_TIMEOUT = httpx.Timeout(180.0, connect=1.5)
# Idle pooled connections are dropped before the server's keep-alive (uvicorn: 5 s) can close them under a request.
POOL_LIMITS = httpx.Limits(max_connections=20, keepalive_expiry=2.0)
# The registry's agents may use any port the operator configured; range checks are the registry's job.
ANY_AGENT_PORT = {"agent_port_range": (1, 65535)}
NO_SUCH_ROUTE = "Not Found"  # the error of a 404 for a path the API does not serve (a missing id says more)
HOW_TO_GET_A_KEY = (
    "set ORCHESTRATOR_API_KEY for the dashboard, or start the fleet with scripts/start.sh, which keeps an operator "
    "key in .data/fleet/api-key (python -m orchestrator api-keys create --tenant ID --scope operator makes one)"
)


class ApiError(Exception):
    """The orchestrator could not be reached, or answered with an error; `message` is fit for a person."""

    def __init__(self, message: str, *, status_code: int | None = None, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after

    @property
    def unreachable(self) -> bool:
        """No answer at all (refused, timed out, broken): the data shown is stale, not wrong."""
        return self.status_code is None

    @property
    def missing_endpoint(self) -> bool:
        """The orchestrator has no such route (an older version): its 404 names no missing thing."""
        return self.status_code == 404 and self.message == NO_SUCH_ROUTE


@dataclass(frozen=True)
class TaskDetail:
    task: Task
    results: list[SubTaskResult]
    cost_usd: float | None = None  # results plus decomposition, when the orchestrator totals it
    decomposition_cost_usd: float | None = None
    decomposition_model: str | None = None
    notes: dict[str, SubtaskNotes] = field(default_factory=dict)  # subtask id -> why it was retried or is blocked


@dataclass(frozen=True)
class Health:
    healthy: bool
    postgres: str
    redis: str


def _error_message(response: httpx.Response) -> str:
    """The `error` of the API's `{"error", "detail"}` body, or the bare HTTP status when the body is not that."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return f"HTTP {response.status_code} {response.reason_phrase}"


def _member(answer: Any, key: str) -> Any:
    if not isinstance(answer, dict) or key not in answer:
        raise ApiError(f"the orchestrator's answer has no '{key}'")
    return answer[key]


def _parse(model: type[BaseModel], value: Any, context: dict[str, Any] | None = None) -> Any:
    try:
        return model.model_validate(value, context=context)
    except ValidationError as error:
        raise ApiError(
            f"the orchestrator sent an unexpected {model.__name__}: {error.error_count()} invalid field(s)"
        ) from None


def _refusal_message(response: httpx.Response, has_key: bool) -> str:
    """What a person needs to hear about a 401 or 403: whose key is refused, and how to get one that works."""
    reason = _error_message(response)
    if response.status_code == 403:
        return f"the orchestrator does not let this API key do that ({reason}); use an operator key of its tenant"
    if not has_key:
        return f"the dashboard has no API key ({reason}): {HOW_TO_GET_A_KEY}"
    return f"the orchestrator refuses the dashboard's API key ({reason}): {HOW_TO_GET_A_KEY}"


class OrchestratorClient:
    def __init__(self, base_url: str, api_key: str | None = None, http: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.has_api_key = bool(api_key)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = http or httpx.Client(
            base_url=self.base_url, timeout=READ_TIMEOUT, limits=POOL_LIMITS, headers=headers
        )

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ApiError(f"the orchestrator at {self.base_url} did not answer in time") from None
        except httpx.HTTPError as error:
            raise ApiError(f"cannot reach the orchestrator at {self.base_url} ({type(error).__name__})") from None

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A read is tried twice on a broken connection: the server may close a pooled one just as it is reused.

        A submission is sent once: it may have arrived, and sending it again could create a second task.
        """
        if method != "GET":
            return self._http.request(method, path, **kwargs)
        try:
            return self._http.request(method, path, **kwargs)
        except (httpx.NetworkError, httpx.RemoteProtocolError):
            return self._http.request(method, path, **kwargs)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code in (401, 403):
            raise ApiError(_refusal_message(response, self.has_api_key), status_code=response.status_code)
        if response.is_error:
            raise ApiError(
                _error_message(response),
                status_code=response.status_code,
                retry_after=response.headers.get("retry-after"),
            )
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"the orchestrator answered {path} with something that is not JSON") from None

    def submit_task(self, request: TaskRequest) -> TaskCreatedResponse:
        answer = self._json("POST", "/tasks", json=request.body(), timeout=SUBMIT_TIMEOUT)
        parsed: TaskCreatedResponse = _parse(TaskCreatedResponse, answer)
        return parsed

    def estimate_task(self, request: TaskRequest) -> DryRun:
        """The plan and what it may cost (a dry run: nothing stored or run; the planning call itself is spent)."""
        answer = self._json("POST", "/tasks", params={"dry_run": "true"}, json=request.body(), timeout=SUBMIT_TIMEOUT)
        dry_run: DryRun = _parse(DryRun, answer)
        return dry_run

    def list_tasks(self, query: TaskQuery | None = None) -> TaskPage:
        answer = self._json("GET", "/tasks", params=(query or TaskQuery()).params())
        page: TaskPage = _parse(TaskPage, answer)
        # An orchestrator without retention says nothing; one that keeps forever says null.
        return page.model_copy(update={"retention_known": isinstance(answer, dict) and "retention_days" in answer})

    def count_tasks(self, query: TaskQuery) -> int:
        """How many tasks the search finds (one row fetched: the total is what counts)."""
        answer = self._json("GET", "/tasks", params={**query.params(), "limit": 1, "offset": 0})
        return int(_member(answer, "total"))

    def get_task(self, task_id: str) -> TaskDetail:
        answer = self._json("GET", f"/tasks/{task_id}")
        results = [_parse(SubTaskResult, item) for item in _member(answer, "subtask_results")]
        raw_task = _member(answer, "task")
        plan = raw_task.get("decomposition") or {}
        return TaskDetail(
            _parse(Task, raw_task),
            results,
            cost_usd=answer.get("cost_usd", raw_task.get("cost_usd")),  # totals sit beside the task
            decomposition_cost_usd=plan.get("cost_usd"),
            decomposition_model=plan.get("model"),
            notes={item["id"]: _parse(SubtaskNotes, item) for item in raw_task.get("subtasks", [])},
        )

    def task_cost(self, task_id: str) -> TaskCost:
        """What the task cost by the cost ledger: planning and attempts apart, per subtask, attempt and call."""
        cost: TaskCost = _parse(TaskCost, self._json("GET", f"/tasks/{task_id}/cost"))
        return cost

    def spend(self, days: int, by: str = "day") -> SpendReport:
        """Spend per UTC day of the last `days` (`by="tenant"`: every tenant's, an operator key's view)."""
        report: SpendReport = _parse(SpendReport, self._json("GET", "/spend", params={"days": days, "by": by}))
        return report

    def task_timeline(self, task_id: str) -> list[AttemptSpan]:
        answer = self._json("GET", f"/tasks/{task_id}/timeline")
        return [_parse(AttemptSpan, item) for item in _member(answer, "attempts")]

    def task_tool_calls(self, task_id: str) -> list[AttemptToolCalls]:
        answer = self._json("GET", f"/tasks/{task_id}/tool-calls")
        return [_parse(AttemptToolCalls, item) for item in _member(answer, "attempts")]

    def list_artifacts(self, task_id: str) -> list[ArtifactView]:
        answer = self._json("GET", f"/tasks/{task_id}/artifacts")
        return [_parse(ArtifactView, item) for item in _member(answer, "artifacts")]

    def download_artifact(self, artifact: ArtifactView) -> bytes:
        """The artifact's content, checked against its recorded SHA-256 (a mismatch is an ApiError)."""
        response = self._send("GET", artifact.download_url)
        if response.is_error:
            raise ApiError(_error_message(response), status_code=response.status_code)
        if hashlib.sha256(response.content).hexdigest() != artifact.sha256:
            raise ApiError(f"the download of {artifact.name} does not match its recorded SHA-256")
        return response.content

    def cancel_task(self, task_id: str) -> int:
        """Cancels what has not finished; returns how many subtasks were cancelled."""
        answer = self._json("POST", f"/tasks/{task_id}/cancel")
        return int(_member(answer, "subtasks_cancelled"))

    def retry_task(self, task_id: str) -> int:
        """Gives the failed task's failed subtasks a fresh attempt; returns how many were queued again."""
        answer = self._json("POST", f"/tasks/{task_id}/retry")
        return int(_member(answer, "subtasks_requeued"))

    def resume_task(self, task_id: str, max_cost_usd: float | None = None) -> int:
        """Resumes the paused task (with a new budget when given); returns how many subtasks were queued again."""
        body = {} if max_cost_usd is None else {"max_cost_usd": max_cost_usd}
        answer = self._json("POST", f"/tasks/{task_id}/resume", json=body)
        return int(_member(answer, "subtasks_requeued"))

    def retry_subtask(self, task_id: str, subtask_id: str) -> int:
        answer = self._json("POST", f"/tasks/{task_id}/subtasks/{subtask_id}/retry")
        return int(_member(answer, "subtasks_requeued"))

    def rerun_task(self, task_id: str) -> TaskCreatedResponse:
        """A new task with the same input; waits for its decomposition like a submission."""
        answer = self._json("POST", f"/tasks/{task_id}/rerun", timeout=SUBMIT_TIMEOUT)
        created: TaskCreatedResponse = _parse(TaskCreatedResponse, answer)
        return created

    def list_agents(self) -> list[AgentStatus]:
        answer = self._json("GET", "/agents")
        return [_parse(AgentStatus, item, ANY_AGENT_PORT) for item in _member(answer, "agents")]

    def agent_history(self) -> list[AgentRecord]:
        answer = self._json("GET", "/agents/history")
        return [_parse(AgentRecord, item) for item in _member(answer, "agents")]

    def agent_attempts(self, agent_id: str, limit: int = 50) -> list[AttemptSpan]:
        answer = self._json("GET", f"/agents/{agent_id}/attempts", params={"limit": limit})
        return [_parse(AttemptSpan, item) for item in _member(answer, "attempts")]

    def metrics_history(self, minutes: int = 60) -> list[HistoryBucket]:
        answer = self._json("GET", "/metrics/history", params={"minutes": minutes})
        return [_parse(HistoryBucket, item) for item in _member(answer, "buckets")]

    def list_logs(self, query: LogQuery) -> list[LogLine]:
        answer = self._json("GET", "/logs", params=query.params())
        return [_parse(LogLine, item) for item in _member(answer, "logs")]

    @contextmanager
    def event_stream(self, path: str, *, headers: dict[str, str], read_timeout: float) -> Iterator[EventSource]:
        """A Server-Sent Events stream of the API; ApiError when it answers with an error instead. A read that waits
        longer than `read_timeout` for the next bytes raises httpx.ReadTimeout."""
        timeout = httpx.Timeout(read_timeout, connect=READ_TIMEOUT.connect)
        with connect_sse(self._http, "GET", path, headers=headers, timeout=timeout) as source:
            if source.response.is_error:
                source.response.read()
                raise ApiError(_error_message(source.response), status_code=source.response.status_code)
            yield source

    def health(self) -> Health:
        """503 is an answer here, not an error: it names the dependency that is down."""
        response = self._send("GET", "/health")
        try:
            body = response.json()
            return Health(body["status"] == "healthy", body["postgres"]["status"], body["redis"]["status"])
        except (ValueError, KeyError, TypeError):
            raise ApiError(_error_message(response), status_code=response.status_code) from None
