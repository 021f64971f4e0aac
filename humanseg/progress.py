"""The one progress bar of the library: tqdm, quiet when nobody watches it.

Library functions take ``progress: bool = False`` and wrap their loops in :func:`bar`; the app tracks the same bars
with ``gr.Progress(track_tqdm=True)``. On a terminal the bar redraws as usual (every 0.1 s at most). When stderr is
a file or a pipe (CI logs, ``make example > log 2>&1``) every redraw would be one more carriage-return update in a
single log line, so the bar redraws only every :data:`LOG_INTERVAL_S` seconds (and once at the start and end).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm import tqdm

#: Seconds between redraws when the stream is not a terminal.
LOG_INTERVAL_S = 30.0
#: Seconds between redraws on a terminal (tqdm's own default).
TERMINAL_INTERVAL_S = 0.1


def bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: float | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    file: TextIO | None = None,
    **options: Any,
) -> tqdm:
    """A tqdm bar on ``file`` (default stderr); ``enabled=False`` gives a silent one that still counts.

    ``options`` go to tqdm unchanged (``leave``, ``initial``, ``position`` ...).
    """
    stream = sys.stderr if file is None else file
    interval = TERMINAL_INTERVAL_S if _is_terminal(stream) else LOG_INTERVAL_S
    # maxinterval >= mininterval, else tqdm's monitor thread forces a redraw every maxinterval (10 s) anyway.
    options = {"mininterval": interval, "maxinterval": max(interval, 10.0), "dynamic_ncols": True, **options}
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not enabled, file=stream, **options)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty (a custom stream), or a closed file
        return False
