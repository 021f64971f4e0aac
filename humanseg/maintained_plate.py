"""A plate that follows the site: light compensation per frame and a slowly updated empty scene (issue 11).

A plate captured once drifts away from the scene over a day (sun, clouds, lights switched, auto-exposure, a chair
moved and left). :class:`MaintainedPlate` keeps the plate a plate method compares frames with up to date:

- **compensation**, every frame: a per-channel gain and offset, ``frame ~ gain * plate + offset``, fitted by
  least squares on pixels that are confidently background (outside the previous mask grown by ``margin`` pixels,
  and where the raw difference is small), refitted once on the pixels the first fit explains. The plate handed to
  the method is the compensated one, so a global light change is absorbed at once.
- **update**, slowly: the plate moves toward the frame by an exponential average with time constant ``update_s``
  seconds, only where ``keep`` allows (a site model passes "not under a person's mask or its margin"), so light
  that stays and objects moved for good become background.
- **several plates**: given a list (plates of different light), the nearest one to the frame on background
  pixels is taken at the first frame and whenever the fit is poor (too few pixels explained).

Default time constant: a moved object that stays must stop being marked within 10 s at 25 fps. Its difference
to the plate decays as ``d * exp(-t / update_s)``; the largest RGB distance is 441 and the plate rule marks
nothing below distance 25 (probability 0, :class:`humanseg.plate.PlateRule`), so ``t = 3.5 * ln(441 / 25)``
= 10.0 s at worst and 3.5 * ln(120 / 25) = 5.5 s for a typical object (distance 120). A person standing still is
kept by the site model (it calls them person, so their pixels are never updated).

Only numpy and OpenCV; the state is :attr:`MaintainedPlate.plate` (an RGB ``uint8`` image). Cost (one process,
2 busy CPU cores, compensation and update): 2.7 ms/frame at 320x240, 12.5 ms/frame at 720x576, beside 0.8 and 7.3
ms/frame for the plate rule itself.
:meth:`MaintainedPlate.in_captured_light` (a second light fit, against the captured plate, and two lookup tables)
costs 0.9x / 0.6x what :meth:`MaintainedPlate.compensated` costs at 352x240 / 720x576 (2.8 vs 3.2 ms, 3.6 vs 5.7
ms; one process, 60 HallAndMonitor frames at gain 0.7): the fit on the 80-row grid is most of it.
"""

from __future__ import annotations

import math

import numpy as np

#: Default time constant of the plate update, seconds (see the module docstring for the arithmetic).
DEFAULT_UPDATE_S = 3.5
#: Pixels within this RGB distance of the compensated plate count as background for the next fit.
FIT_DISTANCE = 25.0
#: Below this share of the frame explained as background the fit is poor: the nearest plate is chosen again.
MIN_FIT_SHARE = 0.3
#: Margin around the mask, in pixels at 240 rows (scaled with the frame height), kept out of fits and updates.
MARGIN_PX = 8


def light_fit(frame: np.ndarray, plate: np.ndarray, use: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(gain, offset)`` (``float32`` arrays of 3) with ``frame ~ gain * plate + offset`` on the
    pixels where ``use`` (bool ``H x W``) is True, by least squares; identity when fewer than 16 pixels are used
    or a channel of the plate is flat there."""
    gain, offset = np.ones(3, np.float32), np.zeros(3, np.float32)
    if int(use.sum()) < 16:
        return gain, offset
    f = frame[use].astype(np.float64)
    p = plate[use].astype(np.float64)
    for c in range(3):
        var = p[:, c].var()
        if var < 1.0:  # a flat channel only gives an offset
            offset[c] = f[:, c].mean() - p[:, c].mean()
            continue
        g = ((p[:, c] - p[:, c].mean()) * (f[:, c] - f[:, c].mean())).mean() / var
        gain[c], offset[c] = g, f[:, c].mean() - g * p[:, c].mean()
    return gain, offset


def apply_light(plate: np.ndarray, gain: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """``gain * plate + offset`` per channel, rounded and clipped to ``uint8`` (one lookup table per channel)."""
    import cv2

    levels = np.arange(256, dtype=np.float32)[:, None] * gain + offset
    table = np.clip(np.rint(levels), 0, 255).astype(np.uint8).reshape(1, 256, 3)
    return cv2.LUT(np.ascontiguousarray(plate), table)


def fit_light(frame: np.ndarray, plate: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``(gain, offset, share)``: two rounds of :func:`light_fit` of ``frame`` onto ``plate`` on ``keep`` pixels,
    first those near the plate, then those the first fit explains (a large first-round residual means light
    changed: the second round starts from the first's plate); ``share``: the part of the frame the fit explains.
    Fitted on a grid of about 80 rows (six numbers need no more pixels)."""
    s = max(1, frame.shape[0] // 80)
    f, p, k = frame[::s, ::s], plate[::s, ::s], keep[::s, ::s]
    use = k & (_distance(f, p) < 3 * FIT_DISTANCE)
    gain, offset = light_fit(f, p, use if use.sum() >= 16 else k)
    use = k & (_distance(f, apply_light(p, gain, offset)) < FIT_DISTANCE)
    if use.sum() >= 16:
        gain, offset = light_fit(f, p, use)
    return gain, offset, float(use.mean())


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a.astype(np.float32) - b.astype(np.float32)
    return np.sqrt(np.einsum("hwc,hwc->hw", d, d))


class MaintainedPlate:
    """The plate of one video, compensated per frame and updated slowly (see the module docstring).

    ``plates``: one RGB ``uint8`` ``H x W x 3`` plate or a list of them (same size as the frames); ``fps``: the
    clip's frame rate; ``update_s``: time constant of the update in seconds (``0`` = compensation only, the
    plate never changes). Use: ``p = mp.compensated(frame)`` before segmenting, ``mp.update(frame, mask)`` after.
    """

    def __init__(self, plates: np.ndarray | list[np.ndarray], *, fps: float = 25.0,
                 update_s: float = DEFAULT_UPDATE_S) -> None:  # fmt: skip
        candidates = [plates] if isinstance(plates, np.ndarray) else list(plates)
        if not candidates:
            raise ValueError("MaintainedPlate needs at least one plate image; pass plates=[IMAGE, ...]")
        if any(p.shape != candidates[0].shape or p.dtype != np.uint8 or p.ndim != 3 for p in candidates):
            raise ValueError(
                f"plates must be RGB uint8 images of one size, got {[(p.shape, p.dtype.name) for p in candidates]}"
            )
        if fps <= 0 or update_s < 0:
            raise ValueError(f"fps must be > 0 and update_s >= 0, got fps={fps}, update_s={update_s}")
        self.candidates = candidates
        self.update_s = float(update_s)
        self.fps = fps
        self.reset()

    @property
    def fps(self) -> float:
        """The frame rate the update's time constant is counted at: the clip's own (frames per second)."""
        return self._fps

    @fps.setter
    def fps(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0 (the clip's frame rate), got {fps}")
        self._fps = float(fps)
        # Per-frame weight of the exponential average: after t seconds a difference keeps exp(-t / update_s).
        self.alpha = 0.0 if self.update_s == 0 else 1.0 - math.exp(-1.0 / (self.update_s * self._fps))

    @property
    def captured(self) -> np.ndarray:
        """The captured plate the current one started from (the nearest candidate; the first before any frame)."""
        return self._start if self._start is not None else self.candidates[0]

    def reset(self) -> None:
        """Back to the captured plate(s): the nearest one is chosen again at the next frame."""
        self._plate: np.ndarray | None = None  # float32 H x W x 3
        self._start: np.ndarray | None = None  # the candidate it started from
        self._rounded: np.ndarray | None = None  # its uint8 image, made once per update
        self._keep: np.ndarray | None = None  # bool H x W: pixels outside the last mask and its margin
        self.gain, self.offset = np.ones(3, np.float32), np.zeros(3, np.float32)

    @property
    def plate(self) -> np.ndarray:
        """The current (uncompensated) plate, RGB ``uint8`` (the first captured one before any frame)."""
        if self._plate is None:
            return self.candidates[0]
        if self._rounded is None:
            self._rounded = np.clip(np.rint(self._plate), 0, 255).astype(np.uint8)
        return self._rounded

    def compensated(self, frame: np.ndarray) -> np.ndarray:
        """The plate to compare ``frame`` with: the current plate with this frame's light fitted onto it."""
        if frame.shape != self.candidates[0].shape:
            h, w = frame.shape[:2]
            ph, pw = self.candidates[0].shape[:2]
            raise ValueError(f"frame size {w}x{h} differs from the plate's {pw}x{ph}; use a plate of this camera")
        keep = self._keep if self._keep is not None else np.ones(frame.shape[:2], bool)
        if self._plate is None:
            self._set(self._nearest(frame, keep))
        plate = self.plate
        fitted, share = self._fit(frame, plate, keep)
        if share < MIN_FIT_SHARE and len(self.candidates) > 1:  # the light moved far: maybe another plate is nearer
            best = self._nearest(frame, keep, current=plate)
            if best is not plate:
                self._set(best)
                plate = best
                fitted, share = self._fit(frame, plate, keep)
        return fitted

    def update(self, frame: np.ndarray, person: np.ndarray | None, *, person_rate: float = 0.0) -> None:
        """Move the plate toward ``frame`` where ``person`` (bool ``H x W``, or ``None`` = nowhere) and its margin
        are not; the next frame's fit also avoids them. ``person_rate``: the update's speed under the mask and its
        margin relative to elsewhere (0 = never; a method that knows no appearance absorbs what stays slowly)."""
        if self._plate is None:
            raise RuntimeError("call compensated(frame) before update(frame, person)")
        if person is None or not person.any():
            keep = np.ones(frame.shape[:2], bool)
        else:
            import cv2

            r = max(1, round(MARGIN_PX * frame.shape[0] / 240))
            grown = cv2.dilate(person.view(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
            keep = grown == 0
        self._keep = keep
        if self.alpha > 0:
            import cv2

            # plate = (1 - a) * plate + a * frame where the mask allows: the exponential average, in place.
            cv2.accumulateWeighted(frame, self._plate, self.alpha, mask=keep.view(np.uint8))
            if person_rate > 0:
                cv2.accumulateWeighted(frame, self._plate, self.alpha * person_rate, mask=(~keep).view(np.uint8))
            self._rounded = None

    def _set(self, plate: np.ndarray) -> None:
        self._plate, self._rounded, self._start = plate.astype(np.float32), plate, plate

    def _fit(self, frame: np.ndarray, plate: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, float]:
        """This frame's light fitted onto ``plate`` (:func:`fit_light`); the compensated plate and the share of
        the frame it explains."""
        self.gain, self.offset, share = fit_light(frame, plate, keep)
        return apply_light(plate, self.gain, self.offset), share

    def in_captured_light(self, frame: np.ndarray, images: list[np.ndarray]) -> list[np.ndarray]:
        """``images`` (e.g. the frame and its compensated plate) mapped from ``frame``'s light back to the light of
        the captured plate, fitted on the pixels the last mask left as background: the light a site model's
        composites were made in. Identity before any frame."""
        if self._plate is None:
            return images
        keep = self._keep if self._keep is not None else np.ones(frame.shape[:2], bool)
        gain, offset, _ = fit_light(frame, self.captured, keep)
        gain = np.maximum(gain, np.float32(0.05))  # a black frame has no light to undo
        return [apply_light(im, 1.0 / gain, -offset / gain) for im in images]

    def _nearest(self, frame: np.ndarray, keep: np.ndarray, current: np.ndarray | None = None) -> np.ndarray:
        """The candidate (or ``current``) whose light-fitted version is nearest to ``frame`` on ``keep`` pixels
        (median distance: people and moved objects do not decide)."""
        options = self.candidates + ([current] if current is not None else [])
        if len(options) == 1:
            return options[0]
        scores = [float(np.median(_distance(frame, apply_light(p, *light_fit(frame, p, keep)))[keep])) for p in options]
        return options[int(np.argmin(scores))]
