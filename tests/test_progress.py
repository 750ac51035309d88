"""Progress: plain lines when the output is not a terminal."""

from __future__ import annotations

import io

from pipeline.progress import Progress


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    with Progress(3, "upload photos", stream=out, interval=0) as bar:
        for _ in range(3):
            bar.update()
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("upload photos: 3/3 files")
    assert len(lines) == 4  # one per update and the final one; no bar control characters
    assert "\r" not in out.getvalue()


def test_silent_when_disabled_or_empty():
    out = io.StringIO()
    with Progress(5, "x", stream=out, enabled=False) as bar:
        bar.update(5)
    with Progress(0, "y", stream=out) as bar:
        pass
    assert out.getvalue() == ""
