"""Requests, tools and scenarios shared by the simulator tests."""

import json
from typing import Any

MODEL = "claude-sonnet-5-5"

PLAN_TOOL: Any = {
    "name": "submit_plan",
    "description": "Submit the decomposition of the task into subtasks.",
    "input_schema": {
        "type": "object",
        "properties": {
            "subtasks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "description": {"type": "string"},
                        "required_capabilities": {
                            "type": "array",
                            "items": {
                                "type": "string",
                                "enum": [
                                    "DATA_ANALYSIS",
                                    "WEB_SCRAPING",
                                    "CODE_GENERATION",
                                    "FILE_PROCESSING",
                                    "DATABASE_OPERATIONS",
                                    "API_INTEGRATION",
                                ],
                            },
                        },
                        "dependencies": {"type": "array", "items": {"type": "string"}},
                        "priority": {"type": "integer", "minimum": 0, "maximum": 10},
                    },
                    "required": ["id", "description", "required_capabilities", "dependencies"],
                },
            }
        },
        "required": ["subtasks"],
    },
}

DATABASE_TOOL: Any = {
    "name": "mcp__agent__database_query",
    "description": "Run one read-only SQL statement.",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
}

FORCE_PLAN: Any = {"type": "tool", "name": "submit_plan"}

FACTORIAL_PLAN = {
    "subtasks": [
        {
            "id": "s1",
            "description": "Compute the factorial of 10 with the database",
            "required_capabilities": ["DATABASE_OPERATIONS"],
            "dependencies": [],
            "priority": 5,
        }
    ]
}

SCENARIOS: dict[str, Any] = {
    "plans": [
        {"name": "factorial", "match": "(?i)factorial of 10", "plan": FACTORIAL_PLAN},
        {"match": "(?i)plan rate limited", "error": {"status": 429, "retry_after": 7, "message": "slow down"}},
        {"match": "(?i)plan overloaded", "error": {"status": 529, "message": "[simulated] overloaded"}},
        {"match": "(?i)plan broken", "error": {"status": 500, "message": "[simulated] internal"}},
        {"match": "(?i)repair me", "plans": [{"subtasks": []}, FACTORIAL_PLAN]},
    ],
    "subtasks": [
        {
            "name": "factorial",
            "match": "(?i)compute the factorial of 10",
            "turns": [
                {
                    "text": "Querying the database.",
                    "tool_calls": [{"tool": "database_query", "input": {"query": "SELECT factorial(10) AS f"}}],
                },
                {"final": "factorial_10 = {{ tool_results[0].json.rows[0].f }}"},
            ],
        },
        {"match": "(?i)say hello", "match_system": "agent1", "turns": [{"final": "Hello from agent1."}]},
        {"match": "(?i)say hello", "turns": [{"final": "Hello from someone else."}]},
        {"match": "(?i)cut me short", "cut_stream_after_events": 3, "turns": [{"final": "never delivered whole"}]},
        {"match": "(?i)take your time", "delay_ms": 300, "turns": [{"final": "done slowly"}]},
        {"match": "(?i)call a missing tool", "turns": [{"tool_calls": [{"tool": "no_such_tool"}]}]},
        {"match": "(?i)second turn fails", "turns": [{"final": "first"}, {"error": {"status": 500}}]},
    ],
}


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The (event name, data) pairs of a server-sent event stream."""
    events = []
    for frame in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def streamed_text(events: list[tuple[str, dict[str, Any]]]) -> str:
    return "".join(data["delta"]["text"] for name, data in events if data.get("delta", {}).get("type") == "text_delta")
