"""The agent service: runs subtasks with the Claude Agent SDK (or the stub) and reports their results."""
