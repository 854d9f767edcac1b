"""The context pack's section of an attempt's prompt (shared/attempt_prompt.py builds the rest): its manifest."""

from agent.context_pack_loader import LoadedContextPack
from shared.models import CONTEXT_DIR

# A pack's listing in the prompt is cut after this many lines per part; the files themselves are all in context/.
MAX_CONTEXT_LINES = 300


def context_pack_section(pack: LoadedContextPack) -> str:
    """The pack's manifest, for the model: where its files are, its symbols, its dependencies and notes."""
    manifest = pack.manifest
    lines = [
        f"Context pack {pack.context_pack_id}: {len(pack.files)} files, read-only, in {pack.path} (read them with "
        f"read_file, e.g. {CONTEXT_DIR}/{pack.files[0].path}).",
        "Files:",
        *_capped([f"- {CONTEXT_DIR}/{file.path} ({len(file.content)} bytes)" for file in pack.files]),
    ]
    if manifest.symbols:
        symbols = [
            f"- {symbol.name} ({symbol.kind}) in {CONTEXT_DIR}/{symbol.path}"
            + (f", line {symbol.line}" if symbol.line else "")
            for symbol in manifest.symbols
        ]
        lines += ["Symbols:", *_capped(symbols)]
    if manifest.dependencies:
        dependencies = [
            f"- {dependency.source} -> {dependency.target}" + (f": {dependency.note}" if dependency.note else "")
            for dependency in manifest.dependencies
        ]
        lines += ["Dependencies:", *_capped(dependencies)]
    if manifest.notes:
        lines += ["Notes:", manifest.notes]
    return "\n".join(lines)


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_CONTEXT_LINES:
        return lines
    return [*lines[:MAX_CONTEXT_LINES], f"... and {len(lines) - MAX_CONTEXT_LINES} more"]
