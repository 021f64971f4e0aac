"""The drift probe's frame variants (issue 11): the site's frames changed over a clip while its plate stays as
captured and the ground truth is unchanged.

- ``ramp``: light fading over the clip, gain 1 -> 0.65, with a warm cast growing to 8% (red x 1.08, blue x 0.92
  at the end, on top of the gain);
- ``step``: a light switched off halfway, gain 0.75 from the middle frame on;
- ``moved``: a textured box pasted into every frame from ``start`` on (not into the plate, not into the truth):
  a moved object that stays; a method should stop marking it within a stated time.

Pure numpy, frame by frame, so a long sequence is never held twice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

VARIANTS = ("ramp", "step", "moved")
RAMP_END_GAIN = 0.65
RAMP_WARM = 0.08
STEP_GAIN = 0.75


def light(index: int, count: int, variant: str) -> tuple[float, np.ndarray]:
    """(gain, per-channel RGB factor) of frame ``index`` of ``count`` for ``ramp`` or ``step``."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"frame index {index} out of a clip of {count} frames")
    t = index / max(count - 1, 1)
    if variant == "ramp":
        cast = np.array([1 + RAMP_WARM * t, 1.0, 1 - RAMP_WARM * t], np.float32)
        return 1.0 + (RAMP_END_GAIN - 1.0) * t, cast
    if variant == "step":
        return (STEP_GAIN if index >= count // 2 else 1.0), np.ones(3, np.float32)
    raise ValueError(f"unknown light variant {variant!r}; valid: ramp, step")


def moved_box(shape: tuple[int, int], seed: int = 0) -> tuple[tuple[slice, slice], np.ndarray]:
    """Where the moved object goes (a box a fifth of the frame's height, left of centre, on the floor half) and
    its texture (8-pixel checks of two colours), for frames of ``shape`` (H, W)."""
    h, w = shape
    side = max(4, h // 5)
    y0, x0 = h - side - max(1, h // 10), max(0, w // 4 - side // 2)
    rng = np.random.default_rng(seed)
    colours = rng.integers(30, 226, (2, 3)).astype(np.uint8)
    yy, xx = np.mgrid[0:side, 0:side]
    texture = colours[((yy // 8 + xx // 8) % 2)]
    return (slice(y0, y0 + side), slice(x0, x0 + side)), texture


def drifted(frame: np.ndarray, index: int, count: int, variant: str, *, start: int = 0) -> np.ndarray:
    """Frame ``index`` of ``count`` (RGB ``uint8``) as the ``variant`` shows it; ``start``: first frame of the
    moved object (``moved`` only)."""
    if variant == "moved":
        if index < start:
            return frame
        where, texture = moved_box(frame.shape[:2])
        out = frame.copy()
        out[where] = texture
        return out
    gain, cast = light(index, count, variant)
    out = frame.astype(np.float32) * (gain * cast)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def drifted_sequence(root: str | Path, out: str | Path, variant: str) -> tuple[Path, int, tuple[slice, slice]]:
    """Write labelled sequence ``root`` (CDnet or DAVIS layout) with its frames as ``variant`` shows them to
    ``out``: frames as lossless PNGs, everything else (labels, ROI, temporal ROI) linked. Returns (``out``, the
    moved object's first frame number: a third into the clip, the box's place in the frame)."""
    from PIL import Image

    from humanseg.video import load_sequence, read_image

    root, out = Path(root), Path(out)
    if variant not in VARIANTS:
        raise ValueError(f"unknown drift variant {variant!r}; valid: {', '.join(VARIANTS)}")
    seq = load_sequence(root)
    image_dir = seq.items[0].image.parent
    out.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():  # labels, ROI.bmp, temporalROI.txt: the same files
        if entry != image_dir and not (out / entry.name).exists():
            (out / entry.name).symlink_to(entry.resolve())
    frames = out / image_dir.name
    frames.mkdir(exist_ok=True)
    count = len(seq.items)
    start = seq.items[count // 3].number
    for k, item in enumerate(seq.items):
        shown = drifted(read_image(item.image), k, count, variant, start=count // 3)
        Image.fromarray(shown).save(frames / f"{item.image.stem}.png")
    return out, start, moved_box((seq.size[1], seq.size[0]))[0]
