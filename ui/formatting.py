"""How values read on screen: status badges, ages, durations, token counts, costs, short ids."""

from datetime import UTC, datetime

from shared.models import StatusReason

# Streamlit's Material Symbols, drawn from the font Streamlit ships: no emoji font needed. They render in markdown,
# labels and icon= arguments; table cells are plain text, coloured by status_style instead.
STATUS_ICONS = {
    "pending": ":material/hourglass_empty:",
    "queued": ":material/inbox:",
    "running": ":material/autorenew:",
    "in_progress": ":material/autorenew:",
    "paused": ":material/pause_circle:",
    "completed": ":material/check_circle:",
    "failed": ":material/error:",
    "blocked": ":material/block:",
    "cancelled": ":material/cancel:",
}
# Text colours of a status in a table cell: green for done, red for failed, amber for waiting.
STATUS_TEXT_COLOURS = {
    "completed": "#15803d",
    "failed": "#b91c1c",
    "blocked": "#c2410c",
    "cancelled": "#6b7280",
    "running": "#1d4ed8",
    "in_progress": "#1d4ed8",
    "paused": "#c2410c",
    "queued": "#7c3aed",
    "pending": "#a16207",
}
# Graph node fill colours by subtask status, readable on the light and the dark theme.
STATUS_COLOURS = {
    "pending": "#e5e7eb",
    "queued": "#bfdbfe",
    "running": "#fde68a",
    "completed": "#bbf7d0",
    "failed": "#fecaca",
    "blocked": "#fed7aa",
    "cancelled": "#d1d5db",
}
SIMULATED_ICON = ":material/science:"
SIMULATED_BADGE = f"{SIMULATED_ICON} SIMULATED"
SIMULATED_MARK = "(simulated)"  # in table cells, where icons do not render


def status_text(status: str) -> str:
    """A status as a table cell shows it: `in progress`."""
    return status.replace("_", " ")


def status_badge(status: str) -> str:
    """A status for markdown and labels, with its icon: `:material/check_circle: completed`."""
    return f"{STATUS_ICONS.get(status, ':material/circle:')} {status_text(status)}"


def status_style(cell: object) -> str:
    """The CSS of a table cell holding a status text."""
    colour = STATUS_TEXT_COLOURS.get(str(cell).replace(" ", "_"))
    return f"color: {colour}; font-weight: 600" if colour else ""


def reason(status_reason: StatusReason | None) -> str:
    """Why a task or subtask is where it is, in one line ("—" when nothing is said)."""
    return status_reason.message if status_reason else "—"


def as_utc(moment: datetime) -> datetime:
    """Naive times from the API are UTC (the services store UTC everywhere)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def seconds_between(earlier: datetime, later: datetime) -> float:
    return max((as_utc(later) - as_utc(earlier)).total_seconds(), 0.0)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def age(moment: datetime, now: datetime) -> str:
    """`12 s ago`, `3 min ago`: how long since `moment`."""
    seconds = seconds_between(moment, now)
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} d ago"


def token_count(tokens: int) -> str:
    if tokens >= 1_000_000:
        return f"{tokens / 1_000_000:.1f}M"
    if tokens >= 1000:
        return f"{tokens / 1000:.1f}k"
    return str(tokens)


def cost(usd: float) -> str:
    if usd == 0:
        return "$0"
    return f"${usd:.4f}" if usd < 1 else f"${usd:.2f}"


def short_id(identifier: str) -> str:
    """`task_1a2b3c4d…` is enough to tell tasks apart on screen; the full id stays one click away."""
    prefix, _, rest = identifier.rpartition("_")
    if prefix and len(rest) > 8:
        return f"{prefix}_{rest[:8]}"
    return identifier


def preview(text: str, limit: int = 80) -> str:
    """One line of at most `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


MARKDOWN_SPECIALS = str.maketrans({char: f"\\{char}" for char in "\\`*_{}[]()#+-.!|<>~:$"})


def plain(text: str) -> str:
    """User text made inert for st.markdown: no accidental headings, links, colours or maths."""
    return text.translate(MARKDOWN_SPECIALS)
