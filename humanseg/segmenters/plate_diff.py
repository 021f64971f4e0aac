"""Plate differencing: a pixel is foreground where it differs in colour from the empty scene.

The empty scene ("plate") is either given by the caller (an image of the site without people, the strongest
baseline on a fixed camera) or estimated as the per-pixel median of a ring buffer of recent frames, sampled
every few frames, which ignores people who keep moving but absorbs people who stand still.

Defaults (chosen on 240-line footage, CDnet pedestrians and SBI HallAndMonitor/CaVignal):

- distance: Euclidean RGB distance to the plate, 0..441 (``sqrt(3) * 255``);
- probability: a linear ramp centred on ``threshold=35`` and ``ramp=20`` wide, so a distance <= 25 gives 0,
  35 gives 0.5, >= 45 gives 1 (sensor noise on these cameras is 1-7 levels median, 35 at the 99th percentile);
- morphology on the probability (grey-level, so it stays soft): an opening of radius 1 px removes isolated
  noise pixels, then a closing of radius 3 px fills small holes in bodies; both radii scale with frame height
  / 240;
- running median (no plate): 25 frames, one sampled every 5 frames (a window of 125 frames).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from humanseg.segmenters.base import Segmenter, load_rgb

# The default rule, also computed inside prior models (humanseg.models.base.plate_prior), so both agree.
THRESHOLD = 35.0  # RGB Euclidean distance (0..441) where the probability is 0.5
RAMP = 20.0  # width of the linear ramp from probability 0 to 1
OPEN_RADIUS, CLOSE_RADIUS = 1, 3  # morphology radii in pixels at REFERENCE_HEIGHT rows
# Frame height the morphology radii are expressed at (the development footage is 240 lines high).
REFERENCE_HEIGHT = 240


class PlateDiffSegmenter(Segmenter):
    """Colour distance to a background plate, given or estimated by a running median.

    Args:
        plate: the empty scene, an RGB ``uint8`` array or an image path, the same size as the frames; ``None``
            estimates it from the frames (then the segmenter is stateful: call ``reset()`` between videos).
        threshold: RGB Euclidean distance at which the probability is 0.5.
        ramp: width of the linear ramp from probability 0 to 1 around ``threshold`` (0 gives a hard 0/1 mask).
        open_radius, close_radius: morphology radii in pixels at 240 lines (scaled with frame height; 0 = off).
        buffer_size: frames kept for the running median (no plate); odd values give a true median.
        sample_every: one frame of every ``sample_every`` enters the running-median buffer.
    """

    name = "plate-diff"
    takes_plate = True

    def __init__(
        self,
        plate: np.ndarray | str | Path | None = None,
        threshold: float = THRESHOLD,
        ramp: float = RAMP,
        open_radius: int = OPEN_RADIUS,
        close_radius: int = CLOSE_RADIUS,
        buffer_size: int = 25,
        sample_every: int = 5,
    ) -> None:
        if threshold <= 0:
            raise ValueError(f"threshold must be > 0 (RGB distance 0..441), got {threshold}")
        if not 0 <= ramp < 2 * threshold:
            raise ValueError(f"ramp must be in [0, 2 * threshold) = [0, {2 * threshold}), got {ramp}")
        if open_radius < 0 or close_radius < 0:
            raise ValueError(f"morphology radii must be >= 0, got open={open_radius}, close={close_radius}")
        if buffer_size < 1 or sample_every < 1:
            raise ValueError(f"buffer_size and sample_every must be >= 1, got {buffer_size}, {sample_every}")
        import cv2  # noqa: F401  (fail at construction, not on the first frame)

        self.threshold = float(threshold)
        self.ramp = float(ramp)
        self.open_radius = int(open_radius)
        self.close_radius = int(close_radius)
        self.buffer_size = int(buffer_size)
        self.sample_every = int(sample_every)
        self.plate: np.ndarray | None = None if plate is None else load_rgb(plate, "plate")
        # With a fixed plate nothing depends on earlier frames.
        self.stateful = self.plate is None
        self.reset()

    def reset(self) -> None:
        """Empty the running-median buffer (a given plate is kept)."""
        self._buffer: np.ndarray | None = None  # (n, H, W, 3) uint8 ring
        self._filled = 0
        self._next_slot = 0
        self._frame_index = 0
        self._median: np.ndarray | None = None

    def background(self) -> np.ndarray | None:
        """The plate in use: the given one, else the current running median (``None`` before any frame)."""
        return self.plate if self.plate is not None else self._median

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        if self.plate is not None:
            if self.plate.shape != frame.shape:
                h, w = frame.shape[:2]
                ph, pw = self.plate.shape[:2]
                raise ValueError(
                    f"plate size {pw}x{ph} does not match frame size {w}x{h} (width x height); "
                    "use a plate taken by the same camera at the same resolution"
                )
            plate = self.plate
        else:
            plate = self._update_median(frame)
        distance = _rgb_distance(frame, plate)
        return self._postprocess(self._ramp(distance), frame.shape[0])

    def _ramp(self, distance: np.ndarray) -> np.ndarray:
        if self.ramp == 0:
            return (distance >= self.threshold).astype(np.float32)
        low = self.threshold - self.ramp / 2
        return np.clip((distance - low) / self.ramp, 0.0, 1.0)

    def _postprocess(self, prob: np.ndarray, height: int) -> np.ndarray:
        import cv2

        scale = height / REFERENCE_HEIGHT
        for op, radius in ((cv2.MORPH_OPEN, self.open_radius), (cv2.MORPH_CLOSE, self.close_radius)):
            r = round(radius * scale)
            if radius and r >= 1:
                kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
                prob = cv2.morphologyEx(prob, op, kernel)
        return prob

    def _update_median(self, frame: np.ndarray) -> np.ndarray:
        if self._buffer is not None and self._buffer.shape[1:] != frame.shape:
            h, w = frame.shape[:2]
            bh, bw = self._buffer.shape[1:3]
            raise ValueError(
                f"frame size {w}x{h} differs from earlier frames ({bw}x{bh}); call reset() before a new video"
            )
        if self._frame_index % self.sample_every == 0:
            if self._buffer is None:
                self._buffer = np.empty((self.buffer_size, *frame.shape), np.uint8)
            self._buffer[self._next_slot] = frame
            self._next_slot = (self._next_slot + 1) % self.buffer_size
            self._filled = min(self._filled + 1, self.buffer_size)
            self._median = _temporal_median(self._buffer[: self._filled])
        self._frame_index += 1
        assert self._median is not None  # set on frame 0, which is always sampled
        return self._median


def _rgb_distance(frame: np.ndarray, plate: np.ndarray) -> np.ndarray:
    diff = frame.astype(np.float32) - plate.astype(np.float32)
    return np.sqrt(np.einsum("hwc,hwc->hw", diff, diff))


def _temporal_median(stack: np.ndarray) -> np.ndarray:
    """Per-pixel median over axis 0 of a uint8 stack (upper median for even counts).

    Odd-even transposition sort with element-wise min/max: n rounds of vectorised compare-exchange. For the
    small n used here this is about 4x faster than ``np.median``/``np.partition`` along a short axis.
    """
    n = len(stack)
    if n == 1:
        return stack[0].copy()
    work = stack.copy()
    for rnd in range(n):
        start = rnd % 2
        pairs = (n - start) // 2
        if pairs == 0:
            continue
        a = work[start : start + 2 * pairs : 2]
        b = work[start + 1 : start + 2 * pairs : 2]
        low = np.minimum(a, b)
        np.maximum(a, b, out=b)
        a[...] = low
    return work[n // 2]
