"""The plate-difference rule, defined once: how far a frame is from the site's empty-scene plate.

Two forms of the same comparison, for two kinds of caller:

- **soft** (:func:`plate_probability`, :func:`plate_probability_torch`): a person probability from the
  Euclidean RGB distance, a linear ramp around ``threshold``, then a grey-level opening and closing whose radii
  scale with the frame height. The ``plate-diff`` segmenter (numpy) and the prior models (torch, inside the
  network's forward pass) use it with the same defaults, so an untrained prior model *is* the segmenter.
- **hard** (:func:`changed`): a yes/no mask from the largest per-channel difference, for the dataset tools that
  need one per pixel (silhouette extraction, the plate estimator's motion mask). Their thresholds are theirs,
  each named where it is used.

Defaults (chosen on 240-line footage, CDnet pedestrians and SBI HallAndMonitor/CaVignal): sensor noise on these
cameras is 1-7 levels median and 35 at the 99th percentile, so the ramp runs from distance 25 (probability 0)
through 35 (0.5) to 45 (1); the opening (radius 1 px) removes isolated noise pixels and the closing (3 px) fills
small holes in bodies.

Only numpy is needed at import; OpenCV and torch are imported by the functions that use them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

#: Morphology window shapes. The segmenter uses OpenCV's ellipse, the torch version squares: a square window is one
#: max-pool, also in exported ONNX graphs (on a solid person box only its corners differ; tests/test_plate.py).
WINDOWS = ("ellipse", "square")
REFERENCE_HEIGHT = 240  # frame height the radii are expressed at (the development footage is 240 lines high)


@dataclass(frozen=True)
class PlateRule:
    """The parameters of the soft rule; the defaults are the ``plate-diff`` segmenter's and the prior models'.

    ``threshold``: RGB Euclidean distance (0..441 = sqrt(3) * 255) where the probability is 0.5; ``ramp``: width of
    the linear ramp from probability 0 to 1 around it (0 gives a hard mask, distance >= threshold);
    ``open_radius``, ``close_radius``: morphology radii in pixels at :data:`REFERENCE_HEIGHT` rows (0 = off).
    Raises ``ValueError`` naming the bad value.
    """

    threshold: float = 35.0
    ramp: float = 20.0
    open_radius: int = 1
    close_radius: int = 3

    def __post_init__(self) -> None:
        if self.threshold <= 0:
            raise ValueError(f"threshold must be > 0 (RGB distance 0..441), got {self.threshold}")
        if not 0 <= self.ramp < 2 * self.threshold:
            raise ValueError(f"ramp must be in [0, 2 * threshold) = [0, {2 * self.threshold}), got {self.ramp}")
        if self.open_radius < 0 or self.close_radius < 0:
            raise ValueError(
                f"morphology radii must be >= 0, got open={self.open_radius}, close={self.close_radius}"
            )

    @property
    def low(self) -> float:
        """Distance where the ramp starts (probability 0 at and below it)."""
        return self.threshold - self.ramp / 2

    def radii(self, height: int) -> tuple[int, int]:
        """The (opening, closing) radii in pixels for frames ``height`` rows high (0 = that step is off)."""
        scale = height / REFERENCE_HEIGHT
        return (round(self.open_radius * scale), round(self.close_radius * scale))


DEFAULT_RULE = PlateRule()


def check_same_size(frame: np.ndarray, plate: np.ndarray) -> None:
    """Raise ``ValueError`` when ``plate`` (H x W x 3) is not the size of ``frame``, naming both sizes."""
    if plate.shape != frame.shape:
        h, w = frame.shape[:2]
        ph, pw = plate.shape[:2]
        raise ValueError(
            f"plate size {pw}x{ph} does not match frame size {w}x{h} (width x height); "
            "use a plate taken by the same camera at the same resolution"
        )


def rgb_distance(frame: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """Euclidean RGB distance (0..441) of two ``H x W x 3`` images, ``float32`` ``H x W``."""
    diff = frame.astype(np.float32) - plate.astype(np.float32)
    return np.sqrt(np.einsum("hwc,hwc->hw", diff, diff))


def channel_difference(frame: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """Largest absolute per-channel difference (grey levels 0..255) of two ``uint8`` images, ``uint8`` ``H x W``."""
    import cv2

    return cv2.absdiff(frame, plate).max(axis=2)


def changed(frame: np.ndarray, plate: np.ndarray, threshold: float) -> np.ndarray:
    """The hard rule: bool ``H x W``, True where some channel differs from the plate by more than ``threshold``.

    The largest channel (not the Euclidean distance) so that a change in one colour channel alone counts as
    fully as a grey one: the thresholds of the dataset tools were tuned on it.
    """
    return channel_difference(frame, plate) > threshold


def ramp_probability(distance: np.ndarray, rule: PlateRule = DEFAULT_RULE) -> np.ndarray:
    """``float32`` probability from a distance array: 0 up to ``rule.low``, then linear to 1 over ``rule.ramp``."""
    if rule.ramp == 0:
        return (distance >= rule.threshold).astype(np.float32)
    return np.clip((distance - rule.low) / rule.ramp, 0.0, 1.0).astype(np.float32, copy=False)


def plate_probability(
    frame: np.ndarray, plate: np.ndarray, rule: PlateRule = DEFAULT_RULE, *, window: str = "ellipse"
) -> np.ndarray:
    """The soft rule on RGB ``uint8`` ``H x W x 3`` images: person probability, ``float32`` ``H x W`` in [0, 1].

    Ramp on the Euclidean distance, then an opening and a closing (grey-level, so the result stays soft) with
    radii given at 240 rows and scaled to the frame's height. Computed on integer codes (see
    :func:`distance_codes`) where the rule allows, with the very same result as on floats, in half the time.
    """
    check_same_size(frame, plate)
    table = code_table(rule)
    if table is None:
        prob = ramp_probability(rgb_distance(frame, plate), rule)
        return morphology(prob, rule, frame.shape[0], window=window)
    return table[morphology(distance_codes(frame, plate, rule), rule, frame.shape[0], window=window)]


def _code_range(rule: PlateRule) -> tuple[int, int]:
    """(first, last) squared distance: at and below ``first`` the probability is 0, at and above ``last`` 1 (one
    step outside the ramp, so a hard rule, ``ramp=0``, has a 0 and a 1 too)."""
    high = rule.threshold + rule.ramp / 2
    return max(0, math.floor(max(rule.low, 0.0) ** 2) - 1), math.ceil(high**2) + 1


@lru_cache(maxsize=16)
def code_table(rule: PlateRule = DEFAULT_RULE) -> np.ndarray | None:
    """The probability of each code of :func:`distance_codes` (``float32``, non-decreasing), or ``None`` when the
    rule's ramp ends beyond distance 255 (codes are ``uint16`` squared distances; such rules use floats).

    Exact: code ``k`` is squared distance ``first + k``, an integer, whose float32 square root and ramp are what
    :func:`rgb_distance` and :func:`ramp_probability` give for that pixel.
    """
    first, last = _code_range(rule)
    if last > np.iinfo(np.uint16).max:
        return None
    table = ramp_probability(np.sqrt(np.arange(first, last + 1, dtype=np.float32)), rule)
    table.flags.writeable = False  # shared by every caller through the cache
    return table


def distance_codes(frame: np.ndarray, plate: np.ndarray, rule: PlateRule = DEFAULT_RULE) -> np.ndarray:
    """The squared RGB distance of two ``uint8`` images as ``uint16`` codes into :func:`code_table` (clamped to the
    ramp: below it probability 0, above it 1). A probability is ``code_table(rule)[codes]``; as the table never
    decreases, grey-level morphology on codes then the table equals the table then morphology on floats.
    Raises ``ValueError`` for a rule without a table."""
    import cv2

    if code_table(rule) is None:
        raise ValueError(f"{rule} ramps beyond RGB distance 255, which integer codes do not cover; use floats")
    first, last = _code_range(rule)
    diff = cv2.absdiff(frame, plate)
    # Per-channel squares fit uint16; their sum saturates at 65535, which is above the ramp, so clamping is exact.
    squares = cv2.multiply(diff, diff, dtype=cv2.CV_16U)
    codes = cv2.transform(squares, _CHANNEL_SUM).reshape(frame.shape[:2])
    codes = cv2.subtract(codes, first)
    return np.minimum(codes, last - first, out=codes)


_CHANNEL_SUM = np.ones((1, 3), np.float32)


def morphology(image: np.ndarray, rule: PlateRule, height: int, *, window: str = "ellipse") -> np.ndarray:
    """The rule's grey-level opening then closing of ``image`` (probabilities or codes, ``H x W``), with radii for
    frames ``height`` rows high (pass the whole frame's height when ``image`` is a crop of it)."""
    import cv2

    shape = _window_shape(window, cv2)
    for op, r in zip((cv2.MORPH_OPEN, cv2.MORPH_CLOSE), rule.radii(height), strict=True):
        if r >= 1:
            image = cv2.morphologyEx(image, op, cv2.getStructuringElement(shape, (2 * r + 1, 2 * r + 1)))
    return image


def plate_probability_torch(
    frame: torch.Tensor,
    plate: torch.Tensor,
    rule: PlateRule = DEFAULT_RULE,
    *,
    height: int | None = None,
    window: str = "square",
) -> torch.Tensor:
    """The soft rule on float batches ``[B, 3, H, W]`` in [0, 1] (plate ``[B or 1, 3, H, W]``): ``[B, 1, H, W]``.

    ``height`` sets the rows the radii are scaled to (default: the input's; models pass their training height,
    so the radii are constants in exported graphs). Only ``window="square"`` exists here (see :data:`WINDOWS`).
    The result has the frame's dtype.
    """
    import torch.nn.functional as F

    if window != "square":
        raise ValueError(f"the torch plate rule has square windows only, got window={window!r}; use 'square'")
    dist = (frame - plate).float().pow(2).sum(dim=1, keepdim=True).sqrt() * 255.0
    if rule.ramp == 0:
        prob = (dist >= rule.threshold).float()
    else:
        prob = ((dist - rule.low) / rule.ramp).clamp(0.0, 1.0)
    r_open, r_close = rule.radii(height if height is not None else int(frame.shape[-2]))

    def erode(x: torch.Tensor, r: int) -> torch.Tensor:
        return -F.max_pool2d(-x, 2 * r + 1, 1, r)

    def dilate(x: torch.Tensor, r: int) -> torch.Tensor:
        return F.max_pool2d(x, 2 * r + 1, 1, r)

    if r_open > 0:
        prob = dilate(erode(prob, r_open), r_open)
    if r_close > 0:
        prob = erode(dilate(prob, r_close), r_close)
    return prob.to(frame.dtype)


def _window_shape(window: str, cv2: object) -> int:
    if window not in WINDOWS:
        raise ValueError(f"unknown morphology window {window!r}; valid: {', '.join(WINDOWS)}")
    return cv2.MORPH_ELLIPSE if window == "ellipse" else cv2.MORPH_RECT  # type: ignore[attr-defined]
