"""CDnet metrics against tables counted by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from humanseg.metrics import (
    Confusion,
    FlickerMeter,
    SequenceScorer,
    boundary_f,
    boundary_pixels,
    boundary_tolerance_px,
    confusion,
    count,
    label_masks,
    scores,
)

# One small frame with every CDnet label value. Hand count (row, col) -> outcome:
# (0,0) 255 pred 1 TP | (0,1) 255 pred 0 FN | (0,2) 0 pred 1 FP | (0,3) 50 pred 1: outside ROI, not scored
# (1,0) 170 pred 1: unknown, not scored | (1,1) 255 pred 1 TP | (1,2) 0 pred 0 TN | (1,3) 0 pred 0 TN
# (2,0) 85 pred 1: outside ROI label, not scored | (2,1) 0 pred 0 TN | (2,2) 255 pred 0 FN | (2,3) 50 pred 1 FP
# -> TP 2, FP 2, FN 2, TN 3 (9 scored pixels of 12).
LABEL = np.array(
    [
        [255, 255, 0, 50],
        [170, 255, 0, 0],
        [85, 0, 255, 50],
    ],
    dtype=np.uint8,
)
PRED = np.array(
    [
        [1, 0, 1, 1],
        [1, 1, 0, 0],
        [1, 0, 0, 1],
    ],
    dtype=bool,
)
ROI = np.ones_like(LABEL, dtype=bool)
ROI[0, 3] = False


def test_confusion_hand_counted_table():
    assert confusion(PRED, LABEL, ROI) == Confusion(tp=2, fp=2, fn=2, tn=3)


def test_count_from_label_masks_matches_confusion():
    assert count(PRED, *label_masks(LABEL, ROI)) == confusion(PRED, LABEL, ROI)


def test_confusion_accepts_uint8_0_255_prediction():
    assert confusion(PRED.astype(np.uint8) * 255, LABEL, ROI) == Confusion(tp=2, fp=2, fn=2, tn=3)


def test_without_roi_the_shadow_pixel_counts_as_a_false_positive():
    # (0,3) is shadow (negative) predicted positive: one more FP once the ROI no longer hides it.
    assert confusion(PRED, LABEL, None) == Confusion(tp=2, fp=3, fn=2, tn=3)


def test_label_masks_positive_and_scored():
    positive, scored = label_masks(LABEL, ROI)
    assert positive.sum() == 4
    assert scored.sum() == 9
    assert not scored[1, 0] and not scored[2, 0] and not scored[0, 3]


def test_scores_hand_computed():
    s = scores(Confusion(tp=2, fp=2, fn=2, tn=3))
    assert s["recall"] == pytest.approx(2 / 4)
    assert s["specificity"] == pytest.approx(3 / 5)
    assert s["fpr"] == pytest.approx(2 / 5)
    assert s["fnr"] == pytest.approx(2 / 4)
    assert s["pwc"] == pytest.approx(100 * 4 / 9)
    assert s["precision"] == pytest.approx(2 / 4)
    assert s["f_measure"] == pytest.approx(2 * 2 / (2 * 2 + 2 + 2))
    assert s["iou"] == pytest.approx(2 / 6)


def test_scores_asymmetric_case():
    # tp 30, fp 10, fn 20, tn 940: P = 0.75, R = 0.6, F = 2PR/(P+R) = 0.9/1.35 = 2/3, IoU = 30/60.
    s = scores(Confusion(tp=30, fp=10, fn=20, tn=940))
    assert s["precision"] == pytest.approx(0.75)
    assert s["recall"] == pytest.approx(0.6)
    assert s["f_measure"] == pytest.approx(2 / 3)
    assert s["iou"] == pytest.approx(0.5)
    assert s["specificity"] == pytest.approx(940 / 950)
    assert s["pwc"] == pytest.approx(3.0)


def test_scores_zero_denominators_are_defined():
    empty = scores(Confusion(tn=100))  # nothing to find, nothing predicted
    assert empty == {
        "recall": 1.0, "specificity": 1.0, "fpr": 0.0, "fnr": 0.0, "pwc": 0.0,
        "precision": 1.0, "f_measure": 1.0, "iou": 1.0,
    }  # fmt: skip
    missed = scores(Confusion(fn=5, tn=95))  # a person, nothing predicted
    assert missed["precision"] == 1.0 and missed["recall"] == 0.0
    assert missed["f_measure"] == 0.0 and missed["iou"] == 0.0
    false_alarm = scores(Confusion(fp=5, tn=95))  # no person, something predicted
    assert false_alarm["recall"] == 1.0 and false_alarm["precision"] == 0.0
    assert false_alarm["f_measure"] == 0.0
    nothing = scores(Confusion())
    assert nothing["pwc"] == 0.0 and nothing["f_measure"] == 1.0
    assert all(not math.isnan(v) for v in nothing.values())


def test_confusion_adds():
    assert Confusion(1, 2, 3, 4) + Confusion(10, 20, 30, 40) == Confusion(11, 22, 33, 44)
    assert Confusion(1, 2, 3, 4).total == 10


def test_palette_png_decodes_to_gray_values(tmp_path):
    # A 2-entry palette PNG whose raw index 1 means gray 255 (as in some SBI masks).
    raw = np.zeros((4, 5), dtype=np.uint8)
    raw[1:3, 1:4] = 1
    img = Image.fromarray(raw, mode="P")
    img.putpalette([0, 0, 0, 255, 255, 255])
    path = tmp_path / "gt000001.png"
    img.save(path)
    assert np.array(Image.open(path)).max() == 1  # the raw index is not the gray value
    from humanseg.video import read_label

    label = read_label(path)
    assert label.dtype == np.uint8 and set(np.unique(label).tolist()) == {0, 255}
    assert confusion(raw.astype(bool), label) == Confusion(tp=6, fp=0, fn=0, tn=14)
    # Reading the raw indices instead would be an error, not a silently wrong score.
    with pytest.raises(ValueError, match="convert"):
        confusion(raw.astype(bool), np.array(Image.open(path)))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="threshold"):
        confusion(PRED.astype(np.float32), LABEL)
    with pytest.raises(ValueError, match="shape"):
        confusion(PRED[:, :3], LABEL)
    with pytest.raises(ValueError, match="ROI shape"):
        confusion(PRED, LABEL, ROI[:, :3])
    with pytest.raises(ValueError, match="nearest"):
        confusion(PRED, np.full_like(LABEL, 128))


def _square(shape, top, left, size):
    m = np.zeros(shape, dtype=bool)
    m[top : top + size, left : left + size] = True
    return m


def test_boundary_pixels_of_a_square_is_an_11x11_outline():
    b = boundary_pixels(_square((40, 40), 10, 10, 10))
    # seg2bmap marks pixels that differ from the right/bottom/bottom-right neighbour: rows and cols 9..19.
    assert b.sum() == 40
    ys, xs = np.nonzero(b)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (9, 19, 9, 19)


def test_boundary_f_on_a_shifted_square():
    gt = _square((40, 40), 10, 10, 10)
    pred = _square((40, 40), 10, 12, 10)  # shifted 2 px right
    assert boundary_f(gt, gt, tolerance=1) == 1.0
    assert boundary_f(pred, gt, tolerance=2) == 1.0
    # Radius 1 (a plus-shaped neighbourhood), counted on the pred outline (rows 9..19, cols 11..21):
    # top and bottom rows cols 11..20 (20 px) touch the gt outline, plus (10,11) and (18,11), whose vertical
    # neighbours (9,11) and (19,11) are on the gt outline: 22 of 40. By symmetry recall is 22/40 too.
    assert boundary_f(pred, gt, tolerance=1) == pytest.approx(22 / 40)
    assert boundary_f(np.zeros_like(gt), gt, tolerance=2) == 0.0
    assert boundary_f(np.zeros_like(gt), np.zeros_like(gt)) == 1.0


def test_boundary_f_void_pixels_are_ignored():
    gt = _square((40, 40), 10, 10, 10)
    pred = gt | _square((40, 40), 30, 30, 5)  # a false blob ...
    assert boundary_f(pred, gt, tolerance=1) < 1.0
    void = _square((40, 40), 28, 28, 10)  # ... inside a void region
    assert boundary_f(pred, gt, void=void, tolerance=1) == 1.0


def test_davis_tolerance_is_a_fraction_of_the_diagonal():
    assert boundary_tolerance_px((240, 360)) == math.ceil(0.008 * math.hypot(240, 360)) == 4
    assert boundary_tolerance_px((240, 360), 3) == 3
    with pytest.raises(ValueError):
        boundary_tolerance_px((240, 360), 0)


def test_flicker_constant_vs_alternating_mask():
    frame = np.full((6, 8, 3), 100, dtype=np.uint8)
    ones = np.ones((6, 8), dtype=bool)
    steady, blinking = FlickerMeter(), FlickerMeter()
    assert steady.value is None
    for t in range(6):
        steady.update(frame, ones)
        blinking.update(frame, ones if t % 2 else ~ones)
    assert steady.value == 0.0
    assert blinking.value == 1.0
    assert blinking.pairs == 5


def test_flicker_ignores_pixels_whose_input_changed():
    f0 = np.zeros((2, 2, 3), dtype=np.uint8)
    f1 = f0.copy()
    f1[0, 0] = (0, 100, 0)  # moved: not a still pixel
    m0 = np.zeros((2, 2), dtype=np.float32)
    m1 = np.array([[1.0, 1.0], [0.0, 0.0]], dtype=np.float32)
    meter = FlickerMeter(still_threshold=8)
    meter.update(f0, m0)
    meter.update(f1, m1)
    # Still pixels: (0,1), (1,0), (1,1); |dM| = 1, 0, 0 -> 1/3.
    assert meter.value == pytest.approx(1 / 3)
    meter.reset()
    assert meter.value is None and meter.pairs == 0


def test_flicker_uses_probabilities_and_uint8():
    frame = np.zeros((1, 2, 3), dtype=np.uint8)
    meter = FlickerMeter()
    meter.update(frame, np.array([[0, 255]], dtype=np.uint8))
    meter.update(frame, np.array([[0.5, 1.0]], dtype=np.float32))
    assert meter.value == pytest.approx(0.25)


def test_sequence_scorer_counts_frames_and_flicker_span():
    frame = np.zeros((2, 2, 3), np.uint8)
    label = np.array([[255, 0], [50, 170]], np.uint8)
    on = np.array([[True, True], [False, True]])
    scorer = SequenceScorer(first=2, last=3)
    with pytest.raises(ValueError, match="no scored frame"):
        scorer.result()
    scorer.update(1, frame, ~on)  # warm-up frame: neither scored nor in the flicker span
    scorer.update(2, frame, on, label)  # TP (0,0), FP (0,1), TN (1,0); 170 not scored
    scorer.update(3, frame, ~on, label)  # FN (0,0), TN (0,1), FP (1,0)
    scorer.update(4, frame, on)  # after the last scored frame: ignored by flicker too
    assert scorer.frames == [(2, Confusion(tp=1, fp=1, fn=0, tn=1)), (3, Confusion(tp=0, fp=1, fn=1, tn=1))]
    result = scorer.result()
    assert (result["tp"], result["fp"], result["fn"], result["tn"]) == (1, 2, 1, 2)
    assert result["f_measure"] == pytest.approx(2 / 5)
    assert result["flicker"] == 1.0  # frames 2 -> 3 only: every still pixel flipped
