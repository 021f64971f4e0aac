"""Per-frame timings for tables and captions: a running mean that leaves out the first frame."""

from __future__ import annotations


class WarmMean:
    """Running mean of per-frame milliseconds that ignores the first sample (lazy model loading, JIT warm-up), in
    constant memory; the first sample alone when it is the only one, 0.0 before any."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.total = 0.0
        self.count = 0

    def add(self, ms: float) -> None:
        if self.first is None:
            self.first = ms
        else:
            self.total += ms
            self.count += 1

    @property
    def mean(self) -> float:
        if self.count:
            return self.total / self.count
        return self.first if self.first is not None else 0.0
