"""Errors whose message says everything a user needs, and how the stage scripts report them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


class UserError(Exception):
    """Bad params, input or state, fully explained by the message (which names the key,
    file or folder and what to do): stages print it alone, without a traceback, and exit
    with `exit_code`."""

    exit_code = 1


def run_stage(main: Callable[[], None]) -> int:
    """Run a stage script's `main`; a UserError becomes one line on stderr and its exit code."""
    name = Path(sys.argv[0]).stem
    try:
        main()
    except UserError as err:
        print(f"{name}: {err}", file=sys.stderr)
        return err.exit_code
    return 0
