"""Errors shared by the sources."""

from colorizer.core.errors import UserError


class SourceUnavailable(UserError, RuntimeError):
    """A remote source could not be reached; the message says how to work offline."""


class SourceNotFound(UserError, FileNotFoundError):
    """`data.source` names a path that is not there (or not a folder or .zip)."""
