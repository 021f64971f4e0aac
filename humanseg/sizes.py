"""Image sizes written as ``HxW`` (height x width in pixels, e.g. ``240x320``), parsed in one place."""

from __future__ import annotations

from collections.abc import Sequence


def parse_size(size: str | Sequence[int], minimum: int = 1) -> tuple[int, int]:
    """``"240x320"`` or ``(240, 320)`` -> ``(240, 320)`` as (height, width); both at least ``minimum`` pixels.

    Raises ``ValueError`` naming the bad value and the expected form.
    """
    try:
        parts = size.lower().split("x") if isinstance(size, str) else list(size)
        h, w = (int(v) for v in parts)
    except (TypeError, ValueError):
        raise ValueError(f"size must be HxW (HEIGHTxWIDTH) in pixels, e.g. 240x320; got {size!r}") from None
    if h < minimum or w < minimum:
        raise ValueError(f"size {h}x{w} is too small: use at least {minimum}x{minimum} pixels (HxW)")
    return h, w
