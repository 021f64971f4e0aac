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

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

THRESHOLD = 35.0  # RGB Euclidean distance (0..441 = sqrt(3) * 255) where the probability is 0.5
RAMP = 20.0  # width of the linear ramp from probability 0 to 1
OPEN_RADIUS, CLOSE_RADIUS = 1, 3  # morphology radii in pixels at REFERENCE_HEIGHT rows
REFERENCE_HEIGHT = 240  # frame height the radii are expressed at (the development footage is 240 lines high)

#: Morphology window shapes. The segmenter uses OpenCV's ellipse (round bodies); the torch version uses squares,
#: because a square window is one max-pool, also in exported ONNX graphs (they differ at most at box corners).
WINDOWS = ("ellipse", "square")


def check_rule(threshold: float, ramp: float, open_radius: int, close_radius: int) -> None:
    """Raise ``ValueError`` naming the bad value when the soft rule's parameters make no sense."""
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0 (RGB distance 0..441), got {threshold}")
    if not 0 <= ramp < 2 * threshold:
        raise ValueError(f"ramp must be in [0, 2 * threshold) = [0, {2 * threshold}), got {ramp}")
    if open_radius < 0 or close_radius < 0:
        raise ValueError(f"morphology radii must be >= 0, got open={open_radius}, close={close_radius}")


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


def morphology_radii(height: int, open_radius: int = OPEN_RADIUS, close_radius: int = CLOSE_RADIUS) -> tuple[int, int]:
    """The (opening, closing) radii in pixels for frames ``height`` rows high (0 = that step is off)."""
    scale = height / REFERENCE_HEIGHT
    return tuple(round(r * scale) if r else 0 for r in (open_radius, close_radius))  # type: ignore[return-value]


def ramp_probability(distance: np.ndarray, threshold: float = THRESHOLD, ramp: float = RAMP) -> np.ndarray:
    """Probability 0 below ``threshold - ramp / 2``, 1 above ``threshold + ramp / 2``, linear between.

    ``ramp=0`` gives a hard mask (distance >= threshold). Works on numpy arrays; ``float32`` out.
    """
    if ramp == 0:
        return (distance >= threshold).astype(np.float32)
    return np.clip((distance - (threshold - ramp / 2)) / ramp, 0.0, 1.0).astype(np.float32, copy=False)


def plate_probability(
    frame: np.ndarray,
    plate: np.ndarray,
    *,
    threshold: float = THRESHOLD,
    ramp: float = RAMP,
    open_radius: int = OPEN_RADIUS,
    close_radius: int = CLOSE_RADIUS,
    window: str = "ellipse",
) -> np.ndarray:
    """The soft rule on RGB ``uint8`` ``H x W x 3`` images: person probability, ``float32`` ``H x W`` in [0, 1].

    Ramp on the Euclidean distance, then an opening and a closing (grey-level, so the result stays soft) with
    radii given at 240 rows and scaled to the frame's height.
    """
    import cv2

    check_same_size(frame, plate)
    prob = ramp_probability(rgb_distance(frame, plate), threshold, ramp)
    shape = _window_shape(window, cv2)
    r_open, r_close = morphology_radii(frame.shape[0], open_radius, close_radius)
    for op, r in ((cv2.MORPH_OPEN, r_open), (cv2.MORPH_CLOSE, r_close)):
        if r >= 1:
            prob = cv2.morphologyEx(prob, op, cv2.getStructuringElement(shape, (2 * r + 1, 2 * r + 1)))
    return prob


def plate_probability_torch(
    frame: torch.Tensor,
    plate: torch.Tensor,
    *,
    height: int | None = None,
    threshold: float = THRESHOLD,
    ramp: float = RAMP,
    open_radius: int = OPEN_RADIUS,
    close_radius: int = CLOSE_RADIUS,
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
    if ramp == 0:
        prob = (dist >= threshold).float()
    else:
        prob = ((dist - (threshold - ramp / 2)) / ramp).clamp(0.0, 1.0)
    r_open, r_close = morphology_radii(height if height is not None else int(frame.shape[-2]), open_radius, close_radius)

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
