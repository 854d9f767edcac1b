"""The one exception a tool raises on purpose."""


class ToolError(Exception):
    """A failure the model should read (bad input, refused query, missing file): sent back as `is_error`."""
