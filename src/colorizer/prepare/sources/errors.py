"""Errors shared by the sources."""


class SourceUnavailable(RuntimeError):
    """A remote source could not be reached; the message says how to work offline."""
