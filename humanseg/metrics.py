"""CDnet 2014 confusion counts and the metrics derived from them; DAVIS boundary F; a streaming flicker score.

The CDnet conventions are written here once and everything else (evaluate, train, the app) calls them:

- ground-truth label images are read with ``Image.open(p).convert('L')`` (see ``humanseg.video.read_label``);
  palette PNGs whose raw index differs from the gray value exist, so raw indices are never used;
- label 255 is positive (moving foreground / person); 0 (static background) and 50 (hard shadow) are negative;
  85 (outside the region of interest) and 170 (unknown motion, mostly a band around objects) are not scored;
  any other value is an error (it means the file was not decoded as gray, or was resized with interpolation);
- pixels where ``ROI.bmp`` is 0 are not scored; frames outside ``temporalROI.txt`` are not scored
  (``Sequence.scored_items`` applies the temporal ROI);
- counts are summed over the scored frames of a sequence and the metrics are computed once from the sums.

Metrics (``scores``) and their 0/0 cases. A rate whose denominator is empty has nothing it could get wrong,
so it is defined as perfect ("vacuous truth"), and the complementary error rate as 0:

===========  ==================================  ===========================================
metric       formula                             when the denominator is 0
===========  ==================================  ===========================================
recall       tp / (tp + fn)                      1.0 (no positive pixel to miss)
specificity  tn / (tn + fp)                      1.0 (no negative pixel to flag)
fpr          fp / (fp + tn)                      0.0  (= 1 - specificity)
fnr          fn / (tp + fn)                      0.0  (= 1 - recall)
pwc          100 * (fn + fp) / (tp+fp+fn+tn)     0.0  (nothing scored, nothing wrong)
precision    tp / (tp + fp)                      1.0 (no positive prediction to be wrong)
f_measure    2 tp / (2 tp + fp + fn)             1.0 (nothing to find and nothing predicted)
iou          tp / (tp + fp + fn)                 1.0 (same)
===========  ==================================  ===========================================

``f_measure`` is the harmonic mean 2PR/(P+R) written without the intermediate ratios, so it is exactly 0 whenever
tp == 0 and anything was missed or falsely predicted, whatever the convention for P or R.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

POSITIVE = 255
SHADOW = 50  # hard shadow: scored, as negative
NEGATIVE = (0, SHADOW)  # static background, hard shadow
NOT_SCORED = (85, 170)  # outside ROI, unknown motion
LABEL_VALUES = (0, 50, 85, 170, 255)

# DAVIS 2016 boundary tolerance: a fraction of the image diagonal (0.008 x diagonal, rounded up, in pixels).
DAVIS_BOUNDARY_TOLERANCE = 0.008


@dataclass(frozen=True)
class Confusion:
    """Pixel counts: true/false positives/negatives. Add two to pool frames or sequences."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: Confusion) -> Confusion:
        if not isinstance(other, Confusion):
            return NotImplemented
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def total(self) -> int:
        """Number of scored pixels."""
        return self.tp + self.fp + self.fn + self.tn

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def label_masks(label: np.ndarray, roi: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split a CDnet label image into (positive, scored) boolean masks.

    ``label`` is uint8 H x W as returned by ``read_label`` (values 0, 50, 85, 170, 255); ``roi`` is a boolean
    H x W region of interest (True = scored) or None for the whole frame. ``positive`` is label == 255;
    ``scored`` is True where the label is 0, 50 or 255 and the pixel lies inside the ROI.
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(
            f"label must be a 2-D gray image (H x W), got shape {label.shape}; read it with "
            "humanseg.video.read_label (Image.open(p).convert('L'))"
        )
    if label.dtype != np.uint8:
        raise ValueError(f"label must be uint8, got {label.dtype}; read it with humanseg.video.read_label")
    present = np.unique(label)
    unexpected = sorted(set(present.tolist()) - set(LABEL_VALUES))
    if unexpected:
        raise ValueError(
            f"label has values {unexpected[:10]} outside the CDnet set {LABEL_VALUES}; decode masks with "
            "Image.open(p).convert('L') and never resize them with interpolation (use nearest neighbour)"
        )
    positive = label == POSITIVE
    scored = positive | (label == 0) | (label == 50)
    if roi is not None:
        roi = np.asarray(roi)
        if roi.shape != label.shape:
            raise ValueError(f"ROI shape {roi.shape} differs from label shape {label.shape}")
        scored &= roi.astype(bool)
    return positive, scored


def as_binary(pred: np.ndarray) -> np.ndarray:
    """A binary mask (bool, or uint8 0/255 where >= 128 counts as person) as a bool array.

    Probability masks must be thresholded by the caller first (``prob >= threshold``), so the threshold is always
    an explicit choice.
    """
    pred = np.asarray(pred)
    if pred.dtype == np.bool_:
        return pred
    if pred.dtype == np.uint8:
        return pred >= 128
    raise ValueError(
        f"prediction must be a binary mask (bool or uint8 0/255), got dtype {pred.dtype}; "
        "threshold a probability mask first, e.g. prob >= 0.5"
    )


def confusion(pred: np.ndarray, label: np.ndarray, roi: np.ndarray | None = None) -> Confusion:
    """CDnet confusion counts of one frame.

    ``pred``: binary mask H x W (bool or uint8 0/255); ``label``: uint8 H x W CDnet label; ``roi``: bool H x W or
    None. Only pixels labelled 0, 50 or 255 and inside the ROI are counted.
    """
    pred = as_binary(pred)
    if pred.shape != np.shape(label):
        raise ValueError(f"prediction shape {pred.shape} differs from label shape {np.shape(label)}")
    positive, scored = label_masks(label, roi)
    return count(pred, positive, scored)


def count(pred: np.ndarray, positive: np.ndarray, scored: np.ndarray) -> Confusion:
    """Confusion counts of a binary prediction against ``label_masks`` output (positive, scored)."""
    pred = as_binary(pred)
    if pred.shape != positive.shape or pred.shape != scored.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from mask shapes {positive.shape}, {scored.shape}")
    pos = positive & scored
    neg = ~positive & scored
    tp = int(np.count_nonzero(pred & pos))
    fp = int(np.count_nonzero(pred & neg))
    return Confusion(tp=tp, fp=fp, fn=int(np.count_nonzero(pos)) - tp, tn=int(np.count_nonzero(neg)) - fp)


def _ratio(num: float, den: float, if_empty: float) -> float:
    return float(num) / float(den) if den else float(if_empty)


def scores(c: Confusion) -> dict[str, float]:
    """CDnet metrics from summed counts; 0/0 cases as in the module docstring. ``pwc`` is in percent."""
    recall = _ratio(c.tp, c.tp + c.fn, 1.0)
    specificity = _ratio(c.tn, c.tn + c.fp, 1.0)
    return {
        "recall": recall,
        "specificity": specificity,
        "fpr": _ratio(c.fp, c.fp + c.tn, 0.0),
        "fnr": _ratio(c.fn, c.tp + c.fn, 0.0),
        "pwc": 100.0 * _ratio(c.fn + c.fp, c.total, 0.0),
        "precision": _ratio(c.tp, c.tp + c.fp, 1.0),
        "f_measure": _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn, 1.0),
        "iou": _ratio(c.tp, c.tp + c.fp + c.fn, 1.0),
    }


def boundary_pixels(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary of a binary mask (DAVIS ``seg2bmap`` at the mask's own resolution).

    A pixel is a boundary pixel when it differs from its right, bottom or bottom-right neighbour.
    """
    seg = np.asarray(mask, dtype=bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    bmap = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    bmap[-1, :] = seg[-1, :] ^ east[-1, :]
    bmap[:, -1] = seg[:, -1] ^ south[:, -1]
    bmap[-1, -1] = False
    return bmap


def boundary_tolerance_px(shape: tuple[int, ...], tolerance: float = DAVIS_BOUNDARY_TOLERANCE) -> int:
    """Tolerance in pixels: ``tolerance`` itself when >= 1, else ceil(tolerance x image diagonal) as in DAVIS."""
    if tolerance <= 0:
        raise ValueError(f"boundary tolerance must be > 0 (pixels, or a fraction of the diagonal), got {tolerance}")
    if tolerance >= 1:
        return int(round(tolerance))
    return int(math.ceil(tolerance * math.hypot(shape[0], shape[1])))


def _dilate_disk(mask: np.ndarray, radius: int) -> np.ndarray:
    import cv2  # only the boundary measure needs OpenCV

    if radius <= 0:
        return mask.copy()
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disk = (xx * xx + yy * yy <= radius * radius).astype(np.uint8)  # the same disk as skimage.morphology.disk
    return cv2.dilate(mask.astype(np.uint8), disk).astype(bool)


def boundary_f(
    pred: np.ndarray,
    gt: np.ndarray,
    void: np.ndarray | None = None,
    tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
) -> float:
    """DAVIS 2016 boundary F-measure of one frame.

    ``pred`` and ``gt`` are binary H x W masks; ``void`` marks pixels to ignore (for CDnet: ``~scored`` from
    ``label_masks``), which are cleared in both masks before their boundaries are taken, as DAVIS does.
    A boundary pixel counts as matched when the other mask has a boundary pixel within ``tolerance``
    (``boundary_tolerance_px``). Empty boundaries follow DAVIS: both empty -> 1.0; only one empty -> 0.0.
    """
    pred = as_binary(pred)
    gt = as_binary(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    if void is not None:
        keep = ~np.asarray(void, dtype=bool)
        pred = pred & keep
        gt = gt & keep
    radius = boundary_tolerance_px(pred.shape, tolerance)
    pred_b = boundary_pixels(pred)
    gt_b = boundary_pixels(gt)
    n_pred = int(np.count_nonzero(pred_b))
    n_gt = int(np.count_nonzero(gt_b))
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    precision = np.count_nonzero(pred_b & _dilate_disk(gt_b, radius)) / n_pred
    recall = np.count_nonzero(gt_b & _dilate_disk(pred_b, radius)) / n_gt
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


class FlickerMeter:
    """Temporal instability of a mask video where the input itself is still.

    Feed frames in order with ``update(frame, mask)``. For each pair of consecutive frames, the pixels whose input
    changed by at most ``still_threshold`` (max over RGB channels, 0-255 units) are "still"; the meter sums
    |M_t - M_{t-1}| over those pixels, with masks taken as probabilities in [0, 1] (bool -> 0/1, uint8 -> /255).
    ``value`` is that sum divided by the number of still pixels over all pairs: 0 means the mask never changes
    where the picture does not, 1 means it flips at every still pixel on every frame. ``value`` is None until
    a pair with at least one still pixel has been seen.
    """

    def __init__(self, still_threshold: int = 8) -> None:
        if not 0 <= still_threshold <= 255:
            raise ValueError(f"still_threshold is in 0-255 intensity units, got {still_threshold}")
        self.still_threshold = int(still_threshold)
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame and the running sums."""
        self._prev_frame: np.ndarray | None = None
        self._prev_mask: np.ndarray | None = None
        self._sum = 0.0
        self._count = 0
        self.pairs = 0

    @staticmethod
    def _as_prob(mask: np.ndarray) -> np.ndarray:
        mask = np.asarray(mask)
        if mask.dtype == np.bool_:
            return mask.astype(np.float32)
        if mask.dtype == np.uint8:
            return mask.astype(np.float32) / 255.0
        return mask.astype(np.float32)

    def update(self, frame: np.ndarray, mask: np.ndarray) -> None:
        """Add the next frame (RGB uint8 H x W x 3, or gray H x W) and its mask (H x W)."""
        frame = np.asarray(frame)
        prob = self._as_prob(mask)
        if frame.shape[:2] != prob.shape:
            raise ValueError(f"mask shape {prob.shape} differs from frame size {frame.shape[:2]}")
        if self._prev_frame is not None:
            if frame.shape != self._prev_frame.shape:
                raise ValueError(
                    f"frame shape changed from {self._prev_frame.shape} to {frame.shape}; call reset() between videos"
                )
            diff = np.abs(frame.astype(np.int16) - self._prev_frame.astype(np.int16))
            if diff.ndim == 3:
                diff = diff.max(axis=2)
            still = diff <= self.still_threshold
            self._sum += float(np.abs(prob - self._prev_mask)[still].sum(dtype=np.float64))
            self._count += int(np.count_nonzero(still))
            self.pairs += 1
        self._prev_frame = frame.copy()
        self._prev_mask = prob

    @property
    def value(self) -> float | None:
        """Mean |M_t - M_{t-1}| over still pixels, or None when no still pixel has been seen yet."""
        return self._sum / self._count if self._count else None


class SequenceScorer:
    """The CDnet protocol over one mask video, fed frame by frame in frame-number order.

    Every frame from ``first`` to ``last`` (the first and last scored frame numbers) feeds the flicker meter;
    a frame given with its ``label`` is scored: its confusion counts are kept per frame (``frames``, in the
    order given) and summed, and its DAVIS boundary F is averaged. ``roi`` is the sequence's region of interest.
    """

    def __init__(
        self,
        first: int,
        last: int,
        roi: np.ndarray | None = None,
        boundary_tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
    ) -> None:
        self.first, self.last = first, last
        self.roi = roi
        self.boundary_tolerance = boundary_tolerance
        self.frames: list[tuple[int, Confusion]] = []
        self._boundary: list[float] = []
        self._flicker = FlickerMeter()

    def update(self, number: int, frame: np.ndarray, pred: np.ndarray, label: np.ndarray | None = None) -> None:
        """Add frame ``number`` (RGB), its binary prediction and, for a scored frame, its CDnet label."""
        if self.first <= number <= self.last:
            self._flicker.update(frame, pred)
        if label is not None:
            positive, scored = label_masks(label, self.roi)
            self.frames.append((number, count(pred, positive, scored)))
            self._boundary.append(boundary_f(pred, positive, void=~scored, tolerance=self.boundary_tolerance))

    def result(self) -> dict[str, Any]:
        """Counts summed over the scored frames, their ``scores``, ``boundary_f`` (mean over scored frames) and
        ``flicker``."""
        if not self.frames:
            raise ValueError("no scored frame was given: pass the label of at least one frame to update()")
        total = sum((c for _, c in self.frames), Confusion())
        return {
            **total.as_dict(),
            **scores(total),
            "boundary_f": float(np.mean(self._boundary)),
            "flicker": self._flicker.value,
        }
