"""Segmenter registry, the frame contract, the OpenCV background subtractors and plate differencing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from humanseg import segmenters
from humanseg.segmenters import create_segmenter
from humanseg.segmenters.base import Segmenter, validate_frame
from humanseg.segmenters.plate_diff import PlateDiffSegmenter, _temporal_median

H, W = 120, 160
SQUARE_COLOUR = (230, 40, 40)


def textured_background(seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(60, 200, (H, W, 3)).astype(np.uint8), (5, 5), 0)


def square_mask(x: int, y: int = 40, size: int = 30) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[y : y + size, x : x + size] = True
    return mask


def noisy(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (frame.astype(np.int16) + rng.integers(-3, 4, frame.shape)).clip(0, 255).astype(np.uint8)


def synthetic_clip(n_empty: int = 20, n_moving: int = 6, shadow_from: int | None = None, seed: int = 0):
    """Static textured scene with sensor noise; after `n_empty` frames a square enters, 6 px per frame.

    Yields (frame, square mask or None). From frame `shadow_from` a region is darkened to 60 % (a cast
    shadow: same chromaticity, lower brightness)."""
    rng = np.random.default_rng(seed + 1)
    bg = textured_background(seed)
    for t in range(n_empty + n_moving):
        frame = noisy(bg, rng)
        mask = None
        if t >= n_empty:
            mask = square_mask(10 + 6 * (t - n_empty))
            frame[mask] = SQUARE_COLOUR
        if shadow_from is not None and t >= shadow_from:
            frame[SHADOW] = (frame[SHADOW] * 0.6).astype(np.uint8)
        yield frame, mask


SHADOW = (slice(80, 110), slice(100, 150))


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    return float((pred & truth).sum() / max((pred | truth).sum(), 1))


# --- registry -------------------------------------------------------------------------------------------


def test_available_lists_every_backend():
    assert segmenters.available() == ["mog2", "knn", "gsoc", "plate-diff", "mediapipe", "rembg", "yolo-seg", "segnet"]
    assert segmenters.REGISTRY["segnet"] == "humanseg.segmenters.segnet:SegNetSegmenter"
    for name in segmenters.available():
        assert segmenters.describe(name) and "\n" not in segmenters.describe(name)


@pytest.mark.parametrize("name", ["mog2", "knn", "gsoc", "plate-diff", "mediapipe", "rembg", "yolo-seg", "segnet"])
def test_registry_classes_carry_their_name(name):
    cls = segmenters.get_class(name)
    assert issubclass(cls, Segmenter) and cls.name == name


@pytest.mark.parametrize("name", ["mog2", "knn", "gsoc", "plate-diff", "mediapipe", "rembg", "yolo-seg", "segnet"])
def test_capabilities_agree_with_the_constructor(name):
    caps = segmenters.capabilities(name)
    takes = segmenters.accepted_options(name)
    assert caps.takes_plate == ("plate" in takes)
    assert caps.takes_checkpoint == ("checkpoint" in takes)
    # Only the network trained on the site is "trained"; every baseline is fixed.
    assert caps.trained == (name == "segnet")


def test_label_defaults_to_the_name_and_can_be_set():
    seg = create_segmenter("mog2")
    assert seg.label == "mog2"
    seg.label = "site:siteA/run1"
    assert seg.label == "site:siteA/run1" and seg.name == "mog2"


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown segmenter 'mog3'") as err:
        create_segmenter("mog3")
    for name in segmenters.available():
        assert name in str(err.value)
    with pytest.raises(ValueError, match="valid names"):
        segmenters.describe("nope")


def test_option_the_backend_does_not_take_is_an_error():
    with pytest.raises(ValueError, match=r"'mog2' does not take option\(s\) plate; it takes: history"):
        create_segmenter("mog2", plate=np.zeros((H, W, 3), np.uint8))
    with pytest.raises(ValueError, match="does not take option.*checkpoint"):
        create_segmenter("plate-diff", checkpoint="model.pt")
    with pytest.raises(ValueError, match="does not take option.*colour_space"):
        create_segmenter("knn", colour_space="lab")
    # None means "not given": every backend accepts the default call.
    seg = create_segmenter("plate-diff", plate=None, checkpoint=None, model_path=None, threshold=20)
    assert isinstance(seg, PlateDiffSegmenter) and seg.rule.threshold == 20


def test_accepted_options_come_from_the_constructor():
    assert segmenters.accepted_options("mog2") == ["history", "var_threshold", "learning_rate"]
    assert "plate" in segmenters.accepted_options("plate-diff")
    assert "model_path" in segmenters.accepted_options("mediapipe")
    assert {"model", "model_path"} <= set(segmenters.accepted_options("rembg"))


def test_importing_the_package_does_not_import_heavy_libraries():
    code = (
        "import sys, humanseg.segmenters as s; s.available(); s.describe('mediapipe');"
        "print(sorted(m for m in ('cv2', 'torch', 'mediapipe', 'rembg', 'onnxruntime', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_reading_capabilities_builds_nothing_heavy():
    # Callers ask "does it take a plate?" before building anything: the answer loads no network library.
    code = (
        "import sys, humanseg.segmenters as s; caps = [s.capabilities(n) for n in ('plate-diff', 'segnet', 'mog2')];"
        "print(sorted(m for m in ('cv2', 'torch', 'mediapipe', 'rembg', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- frame contract -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((4, 5, 3), np.float32), "dtype uint8.*float32"),
        (np.zeros((4, 5), np.uint8), r"H x W x 3, got shape \(4, 5\)"),
        (np.zeros((4, 5, 4), np.uint8), r"got shape \(4, 5, 4\)"),
        ([[0, 0, 0]], "numpy array.*list"),
    ],
)
def test_invalid_frames_are_rejected_with_the_reason(frame, message):
    with pytest.raises(ValueError, match=message):
        validate_frame(frame)
    with pytest.raises(ValueError, match=message):
        create_segmenter("mog2").segment(frame)


@pytest.mark.parametrize("name", ["mog2", "knn", "gsoc", "plate-diff"])
def test_output_contract_and_batch(name):
    import cv2

    frames = [frame for frame, _ in synthetic_clip(n_empty=3, n_moving=2)]
    cv2.setRNGSeed(0)  # KNN updates its samples at random, from OpenCV's RNG
    a = create_segmenter(name).segment_batch(frames)
    cv2.setRNGSeed(0)
    b = create_segmenter(name)
    assert len(a) == len(frames)
    for frame, prob in zip(frames, a, strict=True):
        assert prob.shape == (H, W) and prob.dtype == np.float32
        assert 0.0 <= prob.min() and prob.max() <= 1.0
        one = b.segment(frame)
        if name == "gsoc":  # random numbers drawn in parallel threads: runs differ in a few pixels
            assert np.abs(prob - one).mean() < 0.005
        else:
            np.testing.assert_array_equal(prob, one)  # batch == frame by frame


# --- OpenCV background subtractors ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mog2", "knn", "gsoc"])
def test_subtractor_finds_the_moving_square(name):
    clip = list(synthetic_clip())
    prob = create_segmenter(name).segment_batch([frame for frame, _ in clip])[-1]
    mask = clip[-1][1]
    assert set(np.unique(prob)) <= {0.0, 1.0}
    pred = prob > 0.5
    assert iou(pred, mask) > 0.95
    assert (pred & ~mask).sum() == 0  # the static, noisy background stays background


@pytest.mark.parametrize("name", ["mog2", "knn"])
def test_shadows_count_as_background(name):
    clip = list(synthetic_clip(shadow_from=23))
    prob = create_segmenter(name).segment_batch([frame for frame, _ in clip])[-1]
    mask = clip[-1][1]
    pred = prob > 0.5
    assert iou(pred, mask) > 0.95
    assert pred[SHADOW].mean() < 0.01  # the darkened region is labelled shadow (127), reported as 0


@pytest.mark.parametrize("name", ["mog2", "knn", "gsoc"])
def test_reset_forgets_the_learnt_background(name):
    import cv2

    first = [frame for frame, _ in synthetic_clip(seed=0)]
    second = [frame for frame, _ in synthetic_clip(seed=5)]  # another scene texture
    seg = create_segmenter(name)
    seg.segment_batch(first)
    carried = seg.segment_batch(second[:6])
    seg.reset()
    cv2.setRNGSeed(0)  # KNN updates its samples at random, from OpenCV's RNG
    after_reset = seg.segment_batch(second)
    cv2.setRNGSeed(0)
    fresh = create_segmenter(name).segment_batch(second)
    # Without reset the old scene leaks in: the new, still empty scene looks like foreground.
    assert carried[5].mean() > 0.3 and fresh[5].mean() < 0.01
    for got, want in zip(after_reset, fresh, strict=True):
        if name == "gsoc":
            # GSOC draws random numbers in parallel threads, so runs differ in a few pixels.
            assert np.abs(got - want).mean() < 0.005
        else:
            np.testing.assert_array_equal(got, want)
    assert iou(after_reset[-1] > 0.5, square_mask(10 + 6 * 5)) > 0.95


def test_subtractor_options_are_validated():
    with pytest.raises(ValueError, match="history must be >= 1"):
        create_segmenter("mog2", history=0)
    with pytest.raises(ValueError, match="learning_rate"):
        create_segmenter("knn", learning_rate=2.0)


# --- plate differencing ---------------------------------------------------------------------------------


def test_plate_diff_finds_the_square_on_a_given_plate():
    plate = textured_background()
    frame = plate.copy()
    truth = square_mask(50)
    frame[truth] = SQUARE_COLOUR
    # The rule on the captured plate (follow_plate: tests/test_maintained_plate.py).
    exact = create_segmenter("plate-diff", plate=plate, follow_plate=False, open_radius=0, close_radius=0).segment(frame)
    np.testing.assert_array_equal(exact, truth.astype(np.float32))
    # Default morphology may only touch the square's outline (its opening rounds the 4 corners).
    prob = create_segmenter("plate-diff", plate=plate, follow_plate=False).segment(frame)
    assert ((prob > 0.5) != truth).sum() <= 4
    assert not create_segmenter("plate-diff", plate=plate, follow_plate=False).stateful
    assert create_segmenter("plate-diff", plate=plate).stateful  # the plate follows the site by default


def test_plate_diff_probability_ramp():
    """Distance 25 -> 0, 35 (threshold) -> 0.5, 45 -> 1, linear between (threshold 35, ramp 20)."""
    plate = np.full((H, W, 3), 100, np.uint8)
    # The captured plate: a maintained one would fit a uniform difference as a light change and remove it.
    seg = create_segmenter("plate-diff", plate=plate, follow_plate=False)
    for offset, want in [(20, 0.0), (25, 0.0), (30, 0.25), (35, 0.5), (40, 0.75), (45, 1.0), (90, 1.0)]:
        frame = plate.copy()
        frame[..., 0] += offset  # red only: the RGB distance is exactly `offset`
        prob = seg.segment(frame)
        np.testing.assert_allclose(prob, want, atol=1e-6, err_msg=f"distance {offset}")


def test_plate_diff_accepts_a_plate_image_path(tmp_path):
    plate = textured_background()
    Image.fromarray(plate).save(tmp_path / "plate.png")
    frame = plate.copy()
    frame[square_mask(70)] = SQUARE_COLOUR
    from_path = create_segmenter("plate-diff", plate=tmp_path / "plate.png").segment(frame)
    from_array = create_segmenter("plate-diff", plate=plate).segment(frame)
    np.testing.assert_array_equal(from_path, from_array)
    with pytest.raises(FileNotFoundError, match="plate file not found.*missing.png"):
        create_segmenter("plate-diff", plate=tmp_path / "missing.png")


def test_plate_size_mismatch_names_both_sizes():
    seg = create_segmenter("plate-diff", plate=np.zeros((240, 360, 3), np.uint8))
    with pytest.raises(ValueError, match=r"plate size 360x240 does not match frame size 320x240"):
        seg.segment(np.zeros((240, 320, 3), np.uint8))


def test_plate_diff_running_median_learns_the_empty_scene():
    """Without a plate, the median of sampled frames converges to the background once the square has moved
    on: here it never covers a pixel in more than 1 of 5 samples."""
    bg = textured_background()
    seg = create_segmenter("plate-diff", buffer_size=5, sample_every=1)
    assert seg.stateful
    for t in range(5):
        frame = bg.copy()
        frame[square_mask(5 + 30 * t)] = SQUARE_COLOUR
        prob = seg.segment(frame)
    np.testing.assert_array_equal(seg.background(), bg)
    assert iou(prob > 0.5, square_mask(5 + 30 * 4)) > 0.98
    seg.reset()
    assert seg.background() is None
    with pytest.raises(ValueError, match="frame size 80x60 differs from earlier frames"):
        seg.segment(bg)
        seg.segment(np.zeros((60, 80, 3), np.uint8))


def test_running_median_samples_every_kth_frame():
    seg = create_segmenter("plate-diff", buffer_size=3, sample_every=4)
    frames = [np.full((8, 8, 3), v, np.uint8) for v in range(0, 90, 10)]  # values 0, 10, ..., 80
    backgrounds = []
    for frame in frames:
        seg.segment(frame)
        backgrounds.append(int(seg.background()[0, 0, 0]))
    # Samples at frames 0, 4, 8 (values 0, 40, 80): upper median of [0] -> 0, of [0, 40] -> 40, of 3 -> 40.
    assert backgrounds == [0, 0, 0, 0, 40, 40, 40, 40, 40]


@pytest.mark.parametrize("n", [1, 2, 5, 8, 25])
def test_temporal_median_matches_numpy(n):
    stack = np.random.default_rng(n).integers(0, 256, (n, 7, 9, 3)).astype(np.uint8)
    want = np.sort(stack, axis=0)[n // 2]  # odd n: the median; even n: the upper of the two middle values
    np.testing.assert_array_equal(_temporal_median(stack), want)
    if n % 2:
        np.testing.assert_array_equal(_temporal_median(stack), np.median(stack, axis=0).astype(np.uint8))


def test_plate_diff_options_are_validated():
    with pytest.raises(ValueError, match="threshold must be > 0"):
        create_segmenter("plate-diff", threshold=0)
    with pytest.raises(ValueError, match="ramp must be in"):
        create_segmenter("plate-diff", threshold=10, ramp=30)
    with pytest.raises(ValueError, match="plate: frame must have dtype uint8"):
        create_segmenter("plate-diff", plate=np.zeros((H, W, 3), np.float64))


# --- real footage ---------------------------------------------------------------------------------------


def _number(path: Path) -> int:
    return int(re.findall(r"\d+", path.stem)[-1])


def cdnet_f_measure(masks: dict[int, np.ndarray], root: Path) -> float:
    """F-measure with the CDnet conventions: label 255 positive, 0 and 50 (shadow) negative, others and
    pixels outside ROI.bmp ignored; only frames inside temporalROI.txt."""
    first, last = map(int, (root / "temporalROI.txt").read_text().split()[:2])
    roi = np.asarray(Image.open(root / "ROI.bmp").convert("L")) > 127
    tp = fp = fn = 0
    for gt_path in (root / "groundtruth").iterdir():
        n = _number(gt_path)
        if not first <= n <= last:
            continue
        label = np.asarray(Image.open(gt_path).convert("L"))
        valid = roi & np.isin(label, (0, 50, 255))
        pos, pred = label == 255, masks[n] & valid
        tp += int((pred & pos).sum())
        fp += int((pred & ~pos).sum())
        fn += int((~masks[n] & pos & valid).sum())
    return 2 * tp / (2 * tp + fp + fn)


def test_plate_diff_on_pedestrians_with_the_empty_background(pedestrians):
    seg = create_segmenter("plate-diff", plate=pedestrians / "empty_bg000001.jpg")
    masks = {}
    for path in sorted((pedestrians / "input").iterdir(), key=_number):
        frame = np.asarray(Image.open(path).convert("RGB"))
        masks[_number(path)] = seg.segment(frame) > 0.5
    f = cdnet_f_measure(masks, pedestrians)
    assert f > 0.94, f  # measured 0.951 (P 0.908, R 0.999); the shadow pixels are most of the misses


def test_cdnet_f_measure_by_hand(tmp_path):
    """The few lines of scoring used above, on a 2x3 table computed by hand."""
    (tmp_path / "groundtruth").mkdir()
    label = np.array([[255, 255, 0], [50, 170, 255]], np.uint8)
    Image.fromarray(label).save(tmp_path / "groundtruth" / "gt000001.png")
    Image.fromarray(np.array([[255, 255, 255], [255, 255, 0]], np.uint8)).save(tmp_path / "ROI.bmp")
    (tmp_path / "temporalROI.txt").write_text("1 1\n")
    pred = np.array([[True, False, True], [True, True, True]])
    # Scored pixels: (0,0) tp, (0,1) fn, (0,2) fp, (1,0) fp (shadow); (1,1) unknown, (1,2) outside ROI.
    assert cdnet_f_measure({1: pred}, tmp_path) == pytest.approx(2 * 1 / (2 * 1 + 2 + 1))
