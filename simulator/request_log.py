"""An append-only JSON-lines record of every message request (and token count), so tests can assert what the model
was shown."""

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from simulator.conversation import Conversation


class RequestLog:
    """One line per `/v1/messages` request: what was asked and which scenario entry answered; and one per
    `/v1/messages/count_tokens` request, with `source` "count_tokens"."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        # Requests are answered on one event loop, but several in-process servers may share a file.
        self._lock = threading.Lock()

    def record(self, *, path: str, conversation: Conversation, source: str, status: int) -> None:
        if self.path is None:
            return
        request = conversation.request
        entry = {
            "timestamp": datetime.now(UTC).isoformat(),
            "path": path,
            "model": request.model,
            "stream": request.stream,
            "tools": conversation.tool_names,
            "tool_choice": request.tool_choice,
            "system": conversation.system_text,
            "messages": request.messages,
            # The CLI names its session here (`metadata.user_id`): which conversation each request belongs to.
            "metadata": (request.model_extra or {}).get("metadata"),
            "source": source,
            "status": status,
        }
        self._append(entry)

    def record_count(self, *, model: str, system: Any, messages: list[Any], input_tokens: int) -> None:
        if self.path is None:
            return
        entry = {
            "timestamp": datetime.now(UTC).isoformat(),
            "path": "/v1/messages/count_tokens",
            "model": model,
            "stream": False,
            "tools": [],
            "tool_choice": None,
            "system": system,
            "messages": messages,
            "source": "count_tokens",
            "status": 200,
            "input_tokens": input_tokens,
        }
        self._append(entry)

    def _append(self, entry: dict[str, Any]) -> None:
        assert self.path is not None
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as log_file:
            log_file.write(line)


def read_request_log(path: Path) -> list[dict[str, Any]]:
    """The logged requests in order (an absent file means none yet)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
