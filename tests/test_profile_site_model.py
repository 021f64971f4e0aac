"""The profile's timers: each part's own time, the time of the parts it calls left out, and nothing left wrapped."""

from __future__ import annotations

import pytest

from bench import profile_site_model
from bench.profile_site_model import Timers


class Clock:
    """A hand-driven perf_counter: the parts below advance it by known amounts (seconds)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Part:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def outer(self) -> str:
        self.clock.now += 0.003
        self.inner()
        self.clock.now += 0.001
        return "outer"

    def inner(self) -> None:
        self.clock.now += 0.005


def test_each_part_counts_its_own_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(profile_site_model.time, "perf_counter", clock)
    part = Part(clock)
    timers = Timers()
    timers.wrap(part, "outer", "outer part")
    timers.wrap(Part, "inner", "inner part")  # on the class: every instance's calls count
    try:
        assert part.outer() == "outer"
        part.outer()
    finally:
        timers.restore()
    # outer: 3 + 1 ms of its own per call (the inner 5 ms are the inner part's), two calls
    assert timers.ms["outer part"] == pytest.approx(8.0)
    assert timers.ms["inner part"] == pytest.approx(10.0)
    assert timers.calls == {"outer part": 2, "inner part": 2}


def test_restore_puts_back_instance_and_class_methods() -> None:
    part, original = Part(Clock()), Part.__dict__["inner"]
    timers = Timers()
    timers.wrap(part, "outer", "outer part")
    timers.wrap(Part, "inner", "inner part")
    timers.restore()
    assert "outer" not in vars(part)  # the instance falls back to its class's method again
    assert Part.__dict__["inner"] is original
    part.outer()
    assert not timers.calls
