"""Checks every command runs on its inputs and outputs before any work, so a mistake costs a second, not a run.

- Output paths: a folder that is a file (or lies under a file) would fail only when the first result is written,
  after minutes of work; :func:`check_output_dir` and :func:`check_output_file` say so up front.
- Frame size: memory grows with the pixels of a frame (decoded frames, float masks, segmenter buffers, video
  encoders), so frames above :data:`DEFAULT_MAX_PIXELS` are refused with the limit and how to raise it, instead
  of letting a machine swap or die half way. ``HUMANSEG_MAX_PIXELS`` (an environment variable, so every command
  and the app honour it alike) changes the limit.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

#: 4096 x 2304 (16:9 4K, 9.4 megapixels): every surveillance camera fits. Measured peaks at this size: segment
#: (plate-diff) 0.63 GB, building a 2-image dataset 2.1 GB; at 7680 x 4320 they were 1.7 GB and 7.2 GB.
DEFAULT_MAX_PIXELS = 4096 * 2304
MAX_PIXELS_ENV = "HUMANSEG_MAX_PIXELS"


def _file_above(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` that is not a folder (``path`` itself excluded), or None."""
    for parent in path.absolute().parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_output_dir(path: str | Path, option: str = "--out") -> Path:
    """Refuse (``ValueError``) an output folder that is a file or lies under a file; return it as a Path.

    Nothing is created: the command creates the folder when it has something to write.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path}: is a file, not a folder; give a folder path (or move the file away)")
    blocker = _file_above(path)
    if blocker is not None:
        raise ValueError(
            f"{option} {path}: {blocker} is a file, so no folder can be made under it; give a path in a folder"
        )
    return path


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """Refuse (``ValueError``) an output file that is an existing folder or lies under a file; return it as a Path."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder; give a file name (e.g. {path / 'out'}{path.suffix})")
    blocker = _file_above(path)
    if blocker is not None:
        raise ValueError(
            f"{option} {path}: {blocker} is a file, so nothing can be written under it; give a path in a folder"
        )
    return path


def max_pixels() -> int:
    """The largest frame (width x height) commands accept: ``$HUMANSEG_MAX_PIXELS`` if set, else the default."""
    text = os.environ.get(MAX_PIXELS_ENV)
    if text is None or not text.strip():
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(text))
    except (ValueError, OverflowError):
        value = 0
    if value < 1:
        raise ValueError(f"{MAX_PIXELS_ENV}={text!r}: give a whole number of pixels, e.g. {7680 * 4320} for 8K")
    return value


def check_frame_size(width: int, height: int, source: str | Path) -> None:
    """Refuse (``ValueError``) frames with more pixels than :func:`max_pixels`, naming the limit and the fix."""
    limit = max_pixels()
    if width * height > limit:
        side = math.isqrt(limit)
        raise ValueError(
            f"{source}: frames of {width}x{height} ({width * height / 1e6:.1f} megapixels) are larger than the "
            f"limit of {limit / 1e6:.1f} megapixels (e.g. {DEFAULT_MAX_PIXELS // 2304}x2304 or {side}x{side}), "
            f"which keeps memory bounded; scale the frames down, or raise the limit with {MAX_PIXELS_ENV}="
            f"{width * height} if the machine has the memory (building a dataset peaks at about 220 bytes per pixel)"
        )
