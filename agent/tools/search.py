"""embedding_search: ranked full-text search over the task's workspace files and its completed subtasks' outputs.

PostgreSQL does the ranking (`to_tsvector @@ websearch_to_tsquery`, `ts_rank`, `ts_headline` for snippets); the
workspace files travel as query parameters, so nothing is stored and the search sees the files as they are now.
"""

import asyncio
import itertools
import json
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from agent.tools.audit import ToolSpec, object_schema
from agent.tools.context import ToolContext
from agent.tools.errors import ToolError
from agent.tools.workspace import Workspace
from shared import nofollow
from shared.attempt_output import ATTEMPTS_DIR

DEFAULT_LIMIT = 5
MAX_LIMIT = 20
MAX_FILES = 200
MAX_QUERY_CHARS = 500
# PostgreSQL caps a tsvector at 1 MiB; files are searched up to this many bytes each.
MAX_FILE_BYTES = 256 * 1024

SEARCH_SQL = """
WITH documents (source, body) AS (
    SELECT 'file:' || path, body FROM unnest($2::text[], $3::text[]) AS files (path, body)
    UNION ALL
    (
        SELECT DISTINCT ON (subtask_id) 'subtask:' || subtask_id, output
        FROM subtask_results
        WHERE task_id = $4 AND status = 'completed' AND applied AND output IS NOT NULL
          -- the agent's own tenant only, whatever task id its request named
          AND EXISTS (SELECT FROM tasks WHERE id = $4 AND tenant_id = $6)
        ORDER BY subtask_id, created_at DESC
    )
), search AS (SELECT websearch_to_tsquery('english', $1) AS query)
SELECT source,
       ts_rank(to_tsvector('english', body), query) AS rank,
       ts_headline('english', body, query, 'MaxFragments=2, MinWords=8, MaxWords=30, StartSel=**, StopSel=**')
           AS snippet
FROM documents, search
WHERE to_tsvector('english', body) @@ query
ORDER BY rank DESC, source
LIMIT $5
"""


@dataclass(frozen=True)
class WorkspaceText:
    path: str
    body: str


async def embedding_search(context: ToolContext, arguments: dict[str, Any]) -> str:
    query = str(arguments["query"]).strip()
    if not query:
        raise ToolError("the query is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise ToolError(f"the query has {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
    limit = arguments.get("limit") or DEFAULT_LIMIT
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ToolError(f"limit must be a whole number between 1 and {MAX_LIMIT}")
    files = await asyncio.to_thread(workspace_texts, context.workspace)
    paths, bodies = [file.path for file in files], [file.body for file in files]
    tenant = context.settings.tenant_id
    # The orchestrator's database runs this: a search phrased to take long is cut off like a database_query.
    timeout = context.settings.agent_query_timeout_ms / 1000
    try:
        rows = await context.db.pool.fetch(
            SEARCH_SQL, query, paths, bodies, context.task_id, limit, tenant, timeout=timeout
        )
    except TimeoutError:
        raise ToolError(f"the search ran into the time limit ({timeout:g} s); search for fewer words") from None
    results = [{"source": row["source"], "rank": round(row["rank"], 6), "snippet": row["snippet"]} for row in rows]
    return json.dumps({"query": query, "results": results, "files_searched": len(files)})


def workspace_texts(workspace: Workspace) -> list[WorkspaceText]:
    """The workspace's UTF-8 text files: the first MAX_FILES regular files, folders depth-first and names sorted.

    Symlinks are neither followed nor read, and anything unreadable is skipped. Attempts' staged output is not the
    workspace's yet, and is left out.
    """
    try:
        with workspace.opened_root() as root_fd, closing(nofollow.regular_files(root_fd)) as files:
            published = (file for file in files if file.path.parts[0] != ATTEMPTS_DIR)
            return [
                WorkspaceText(file.path.as_posix(), body)
                for file in itertools.islice(published, MAX_FILES)
                if (body := _read_prefix(file))
            ]
    except FileNotFoundError:
        return []
    except nofollow.SymlinkRefused:
        raise ToolError("the task's workspace folder is a symlink; refusing to search it") from None


def _read_prefix(file: nofollow.RegularFile) -> str | None:
    try:
        with nofollow.opened_file(file.folder_fd, file.path.name) as descriptor:
            data = nofollow.read_at_most(descriptor, MAX_FILE_BYTES)
    except OSError:
        return None
    if b"\x00" in data:  # binary, and PostgreSQL text cannot hold NUL anyway
        return None
    return data.decode("utf-8", errors="ignore")


EMBEDDING_SEARCH = ToolSpec(
    name="embedding_search",
    description=(
        "Search the task's workspace files and the outputs of its completed subtasks (full-text, ranked). Answers "
        'JSON: {"results": [{"source": "file:<path>" | "subtask:<id>", "rank": r, "snippet": "..."}]}.'
    ),
    input_schema=object_schema(
        {
            "query": {"type": "string", "description": 'Words or a phrase; "quotes", OR and -word work'},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        },
        ["query"],
    ),
    function=embedding_search,
)
