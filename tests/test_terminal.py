"""The command line's progress bar: redrawn in place on a terminal, whole lines in a log."""

import io

from explorer.jobs import Progress
from explorer.terminal import ProgressBar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_line_fits_the_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    out = _Terminal()
    bar = ProgressBar(out)
    bar(Progress("embed", 5, 10, "a long message that would wrap the line on a narrow terminal"))
    drawn = out.getvalue().split("\r\033[K")[-1]
    assert len(drawn) < 40 and drawn.startswith("embed") and drawn.endswith("…")


def test_in_a_log_every_line_is_whole():
    out = io.StringIO()
    bar = ProgressBar(out)
    bar(Progress("scan", 10, 10, "done"))
    bar(Progress("map", 1, 1, "done"))
    bar.finish()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("scan") and "100.0% 10/10" in lines[0] and "\r" not in out.getvalue()
    assert any(line.startswith("map") for line in lines)
