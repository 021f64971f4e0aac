"""The progress convention: a tqdm bar that redraws rarely when nobody watches the stream."""

from __future__ import annotations

import io

import pytest
import tqdm.std

from humanseg.progress import LOG_INTERVAL_S, bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch):
    """A fake clock for tqdm, advanced by hand; no monitor thread (it would redraw on the real clock)."""
    now = [1000.0]
    monkeypatch.setattr(tqdm.std, "time", lambda: now[0])
    monkeypatch.setattr(tqdm.std.tqdm, "monitor_interval", 0)
    return now


def _redraws(stream: io.StringIO, steps: int, seconds_per_step: float, clock: list[float]) -> int:
    b = bar(total=steps, desc="train", unit="step", file=stream)
    for _ in range(steps):
        clock[0] += seconds_per_step
        b.update(1)
    b.close()
    return stream.getvalue().count("\r")


def test_log_stream_gets_few_updates(clock):
    # 1000 steps of 0.5 s: a terminal redraws at every step, a log file about every LOG_INTERVAL_S seconds.
    log = _redraws(io.StringIO(), 1000, 0.5, clock)
    assert log <= 1000 * 0.5 / LOG_INTERVAL_S + 3  # + the first draw, the last update and the close
    assert _redraws(_Terminal(), 1000, 0.5, clock) >= 1000


def test_disabled_bar_writes_nothing_but_counts():
    stream = io.StringIO()
    b = bar(range(5), desc="x", enabled=False, file=stream)
    assert list(b) == [0, 1, 2, 3, 4] and stream.getvalue() == ""


def test_options_reach_tqdm():
    b = bar(total=3, desc="load", unit="img", leave=False, initial=1, file=io.StringIO())
    assert (b.total, b.desc, b.unit, b.leave, b.n) == (3, "load", "img", False, 1)
    b.close()
