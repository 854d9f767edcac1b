"""What the orchestrator's contract tests share besides fixtures: the simulator's scenario and error assertions."""

from typing import Any

import httpx

# A task text the simulator answers with a known plan: s1, then s2 which depends on s1.
TWO_STEP_TASK = "Run the two-step contract plan: gather the figures, then summarise them"
SCENARIOS: dict[str, Any] = {
    "plans": [
        {
            "name": "contract-two-step",
            "match": "(?i)two-step contract plan",
            "plan": {
                "subtasks": [
                    {
                        "id": "s1",
                        "description": "Gather the figures",
                        "required_capabilities": ["DATABASE_OPERATIONS"],
                        "dependencies": [],
                    },
                    {
                        "id": "s2",
                        "description": "Summarise the figures",
                        "required_capabilities": ["DATA_ANALYSIS"],
                        "dependencies": ["s1"],
                    },
                ]
            },
        }
    ]
}


def assert_error(response: httpx.Response, status_code: int, *words: str) -> dict[str, Any]:
    """The response is an error of the contract's shape, whose message names each of `words`."""
    assert response.status_code == status_code, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "detail"}, body
    assert isinstance(body["error"], str) and body["error"].strip(), body
    for word in words:
        assert word in body["error"], f"{word!r} not in {body['error']!r}"
    return body
