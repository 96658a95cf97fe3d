"""Progress lines for long stages: count, rate and ETA.

In a terminal the line is redrawn in place a few times a second. When the
output is captured (DVC, CI, a log file) there is no carriage-return spam:
a plain line at each 10% step reached at least 10 seconds after the last line
(or after 60 seconds without one), and a final summary line.
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int, unit: str = "items", stream=None):
        self.label, self.total, self.unit = label, max(total, 0), unit
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self.count = 0
        self.start = self._last = time.monotonic()
        self._next_tenth = 1

    def advance(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if self.interactive:
            if now - self._last >= 0.2:
                self._emit(now, end="\r")
        elif (self._tenths() >= self._next_tenth and now - self._last >= 10) or now - self._last >= 60:
            self._next_tenth = self._tenths() + 1
            self._emit(now, end="\n")

    def done(self) -> None:
        now = time.monotonic()
        if self.interactive:
            self.stream.write("\r\033[K")  # clear the in-place line before the summary
        self._emit(now, end="\n")

    def line(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.count / elapsed
        text = f"{self.label}: {self.count}/{self.total} {self.unit} ({rate:.1f}/s"
        if 0 < self.count < self.total and rate > 0:
            text += f", ETA {_clock((self.total - self.count) / rate)}"
        return text + f", {_clock(elapsed)} elapsed)"

    def _tenths(self) -> int:
        return 10 * self.count // self.total if self.total else 10

    def _emit(self, now: float, end: str) -> None:
        self._last = now
        self.stream.write(self.line(now) + end)
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 60}:{seconds % 60:02d}"
