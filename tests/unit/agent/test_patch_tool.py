"""write_patch writes only unified diffs, under a .patch or .diff name, like write_file; every call is audited."""

import pytest

from agent.tools import ToolContext
from shared.database import DatabaseManager
from shared.models import AgentCapability
from shared.roles import load_roles
from tests.unit.agent.fixtures import ContextFactory, call_tool

PATCH = "--- a/ledger.py\n+++ b/ledger.py\n@@ -1,2 +1,2 @@\n def total(rows):\n-    return sum(rows)\n+    return 0\n"


@pytest.fixture
def context(tool_context_factory: ContextFactory) -> ToolContext:
    return tool_context_factory()


async def test_a_unified_diff_is_staged_for_output_like_any_written_file(context: ToolContext) -> None:
    text, is_error = await call_tool(context, "write_patch", path="fixes/ledger.patch", content=PATCH)

    assert (text, is_error) == (f"wrote {len(PATCH)} bytes to output/fixes/ledger.patch", False)
    assert (context.workspace.staged / "fixes" / "ledger.patch").read_text() == PATCH


@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        ("fix.patch", "I changed total() to add the amounts.", "the content is not a unified diff (it names no file"),
        ("fix.patch", PATCH.replace("@@ -1,2 +1,2 @@", "@@ -1,7 +1,2 @@"), "the content is not a unified diff (Hunk"),
        ("fix.md", PATCH, "a patch's path ends in .patch or .diff (e.g. fixes/ledger.patch), not 'fix.md'"),
        ("../fix.patch", PATCH, "'..' is refused in paths"),
    ],
    ids=["prose", "short-hunk", "not-a-patch-name", "escape"],
)
async def test_what_is_no_patch_is_refused_and_nothing_is_written(
    context: ToolContext, path: str, content: str, message: str
) -> None:
    text, is_error = await call_tool(context, "write_patch", path=path, content=content)

    assert is_error and message in text, text
    assert not context.workspace.staged.exists()


async def test_every_call_is_audited(context: ToolContext, db: DatabaseManager) -> None:
    await call_tool(context, "write_patch", path="fix.diff", content=PATCH)
    await call_tool(context, "write_patch", path="fix.diff", content="not a diff")

    calls = await db.repositories().audit.list_tool_calls(context.task_id)
    assert [(call.tool_name, call.is_error) for call in calls] == [("write_patch", False), ("write_patch", True)]


def test_the_code_role_may_write_patches() -> None:
    role = load_roles()[AgentCapability.CODE_GENERATION].role
    assert {"write_file", "write_patch"} <= set(role.allowed_tools)
