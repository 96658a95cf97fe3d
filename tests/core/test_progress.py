import io

from colorizer.core.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_captured_output_has_no_carriage_returns_and_few_lines(monkeypatch):
    clock = iter(range(0, 10_000, 3))  # 3 "seconds" per step
    monkeypatch.setattr("colorizer.core.progress.time.monotonic", lambda: next(clock))
    stream = io.StringIO()
    progress = Progress("resize", total=100, unit="images", stream=stream)
    for _ in range(100):
        progress.advance()
    progress.done()
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert 5 <= len(lines) <= 12  # a line per 10% step at most, plus the summary
    assert lines[-1].startswith("resize: 100/100 images (")
    assert "ETA" in lines[0]


def test_terminal_output_redraws_in_place():
    stream = Terminal()
    progress = Progress("shard", total=3, stream=stream)
    progress.line(progress.start)
    progress.done()
    assert stream.getvalue().startswith("\r\033[K") and stream.getvalue().endswith("\n")
