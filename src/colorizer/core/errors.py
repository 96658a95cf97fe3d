"""Errors whose message says everything a user needs, and how the stage scripts report them."""

from __future__ import annotations

import contextlib
import errno
import json
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

_FULL = (errno.ENOSPC, errno.EDQUOT)
# What a full disk says where no errno comes with it: NumPy's short writes, SQLite.
_FULL_TEXT = re.compile(r"No space left on device|\d+ requested and \d+ written|Not enough free space|"
                        r"database or disk is full")


class UserError(Exception):
    """Bad params, input or state, fully explained by the message (which names the key,
    file or folder and what to do): stages print it alone, without a traceback, and exit
    with `exit_code`."""

    exit_code = 1


def read_stage_json(path: str | Path, stage: str):
    """A JSON file that `stage` writes: missing or damaged (a disk error, an edit by hand), it is
    one line saying how to get it back, not a JSONDecodeError from deep inside the next stage."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} not found: run `dvc repro {stage}` first") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path} is damaged ({err}): restore it with `dvc checkout {stage}`, "
                        f"or re-run `dvc repro -f -s {stage}`") from None


def one_line(err: BaseException, limit: int = 200) -> str:
    """`err` as its type and the first line of its message, cut to `limit` characters: what a
    one-line error quotes of a library's error (SQLAlchemy's runs on to the SQL and a web link)."""
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(err).__name__}: {first[:limit]}{'...' if len(first) > limit or len(text) > 1 else ''}"


@contextlib.contextmanager
def damaged_file(path: Path, remedy: str, also: tuple[type[Exception], ...] = ()):
    """A file that cannot be read inside this block (missing, cut short by a disk error or a copy
    by hand) is one line naming it and `remedy`, not a parser's error from deep inside a stage.
    `also` adds the exceptions of a reader that are not OSError or ValueError (zipfile, csv)."""
    try:
        yield
    except (OSError, ValueError, TypeError, KeyError, *also) as err:
        raise UserError(f"{path} is damaged ({one_line(err)}): {remedy}") from None


def run_stage(main: Callable[[], None]) -> int:
    """Run a stage script's `main`; a UserError becomes one line on stderr and its exit code.

    SIGTERM (`kill`, `timeout`, preemption) is raised as KeyboardInterrupt, as SIGINT is, so a
    stage stopped anywhere unwinds through its `finally` blocks (partial outputs removed, its MLflow
    run closed) and ends in one line and 128 + the signal, as a shell reports it. Train handles
    both signals itself while it trains, to save its state first."""
    name = Path(sys.argv[0]).stem
    received: list[int] = []

    def interrupt(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        main()
    except UserError as err:
        print(f"{name}: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        signum = received[-1] if received else signal.SIGINT
        print(f"{name}: stopped by {signal.Signals(signum).name}; nothing it was writing passes for complete: "
              "run it again (`dvc repro`)", file=sys.stderr)
        return 128 + signum
    except Exception as err:
        return report_disk_full(name, err)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def report_disk_full(program: str, err: BaseException, note: str = "") -> int:
    """Called while handling `err`: one line and exit code 1 if a full disk caused it, else re-raised."""
    full = disk_full(err)
    if full is None:
        raise  # noqa: PLE0704  the error being handled, with its traceback
    print(f"{program}: {full}{note}", file=sys.stderr)
    return 1


def disk_full(err: BaseException) -> str | None:
    """One line for an error that a full disk (or quota) caused anywhere in its chain: the output
    it was writing (`atomic.writing`, else the error's own file), how much of it was written and
    the space left; None for any other error."""
    from colorizer.core.atomic import WRITING

    chain = _chain(err)
    if not any(isinstance(e, OSError) and e.errno in _FULL or _FULL_TEXT.search(str(e)) for e in chain):
        return None
    interrupted = next((getattr(e, WRITING) for e in chain if hasattr(e, WRITING)), None)
    if interrupted is None:
        path = next((e.filename for e in chain if getattr(e, "filename", None)), None)
        return f"no space left on device writing {_shown(path) if path else 'its output'}; free some space and run it again"
    written = f"{_size(interrupted.written)} written" if interrupted.written else "nothing of it written yet"
    return (f"no space left on device writing {_shown(interrupted.path)} ({written}, "
            f"{_size(interrupted.free)} left on its file system): it needs more than that, free some space and run it "
            "again (nothing it wrote passes for complete)")


def _shown(path) -> str:
    """An output by the name the user knows: a file inside a stage's staging folder
    (`data/.partial.raw/report.json`) is named as it will be (`data/raw/report.json`)."""
    return str(path).replace(".partial.", "")


def _chain(err: BaseException | None) -> list[BaseException]:
    chain = []
    while err is not None and all(err is not e for e in chain):
        chain.append(err)
        err = err.__cause__ or err.__context__
    return chain


def _size(count: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return ""
