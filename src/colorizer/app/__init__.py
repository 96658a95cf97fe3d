"""User-facing tools built on the trained model: the `colorize` command."""
