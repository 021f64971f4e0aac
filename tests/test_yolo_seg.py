"""The yolo-seg backend, run for real through ONNX Runtime on tiny graphs exported here (no download).

A tiny torch module emits the layout of a standard ``yolo export ... format=onnx`` of a -seg model:
``output0`` [1, 4 + 80 + 32, N] (box centre/size in input pixels, 80 class scores, 32 mask coefficients) and
``output1`` [1, 32, 160, 160] prototypes (or, for YOLO26's end-to-end export, ``output0`` [1, 300, 6 + 32]
rows of x1, y1, x2, y2, score, class, coefficients). The candidates are chosen by hand; prototype 0 is the
image's red channel (pooled to the prototype grid, as logits 40 * (red - 0.5)), prototypes 1 and 2 are the
constant logits 10 and 2.
Frames of 240 x 320 (or 320 x 240) sit in the 640 x 640 input at scale 2 exactly, so every expected value is
exact: the letterbox offset is 80 input pixels, frame x = (input x - left) / 2, frame y = (input y - top) / 2.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from humanseg import segmenters
from humanseg.segmenters import create_segmenter
from humanseg.segmenters.yolo_seg import EXPORT_HINT, Letterbox, letterbox, nms, unavailable_reason

torch = pytest.importorskip("torch")

NC, NM, SIZE = 80, 32, 640
H, W = 240, 320  # landscape: scale 2, 80 px of grey above and below
TOP = 80
PERSON, CAR = 0, 2


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def candidate(box: tuple[float, float, float, float], scores: dict[int, float], proto: int, top: int = TOP,
              left: int = 0) -> np.ndarray:  # fmt: skip
    """One column of output0 for a box (x1, y1, x2, y2) given in FRAME pixels, selecting prototype ``proto``."""
    x1, y1, x2, y2 = box
    col = np.zeros(4 + NC + NM, np.float32)
    # frame -> input: times 2, plus the letterbox offset
    col[:4] = [(x1 + x2) + left, (y1 + y2) + top, 2 * (x2 - x1), 2 * (y2 - y1)]
    for cls, s in scores.items():
        col[4 + cls] = s
    col[4 + NC + proto] = 1.0
    return col


class TinyYoloSeg(torch.nn.Module):
    """``images`` [1, 3, 640, 640] -> (``output0`` fixed candidates, ``output1`` [1, 32, 160, 160]).

    ``output0`` is [1, 116, 8]: the ``columns`` then empty candidates (all scores 0); or, for ``rows`` (an
    end-to-end export), [1, 300, 38]: the rows, then empty ones."""

    def __init__(self, columns: list[np.ndarray] | None = None, rows: list[np.ndarray] | None = None) -> None:
        super().__init__()
        if rows is not None:
            preds = np.zeros((300, 6 + NM), np.float32)
            preds[: len(rows)] = np.stack(rows)
        else:
            preds = np.zeros((4 + NC + NM, 8), np.float32)
            preds[:, : len(columns)] = np.stack(columns, axis=1)
        self.register_buffer("preds", torch.from_numpy(preds)[None])

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        red = torch.nn.functional.avg_pool2d(images[:, :1], 4)
        ones = torch.ones_like(red)
        protos = torch.cat([40 * (red - 0.5), 10 * ones, 2 * ones, torch.zeros_like(red).expand(1, NM - 3, -1, -1)], 1)
        return self.preds + 0 * images.mean(), protos


def export(module: torch.nn.Module, path: Path, output_names: list[str]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter (no onnxscript needed)
        torch.onnx.export(module, torch.zeros(1, 3, SIZE, SIZE), str(path), input_names=["images"],
                          output_names=output_names, dynamo=False, opset_version=17)  # fmt: skip
    return path


# Boxes in frame pixels. A and B overlap (IoU 0.81): NMS keeps A. C is a car (its person score is not its best).
# D is a person below the default confidence. E overlaps A a little (IoU 0.09): both are kept.
A = (40.25, 40, 139.5, 200)
B = (50, 40, 150, 200)
C = (200, 20, 300, 100)
D = (200, 140, 300, 230)
E = (120, 100, 190, 235)


@pytest.fixture(scope="module")
def scene_onnx(tmp_path_factory) -> Path:
    columns = [
        candidate(B, {PERSON: 0.8}, proto=2),  # listed first: NMS must order by score, not by position
        candidate(A, {PERSON: 0.9}, proto=1),
        candidate(C, {CAR: 0.95, PERSON: 0.3}, proto=1),
        candidate(D, {PERSON: 0.2}, proto=2),
        candidate(E, {PERSON: 0.6}, proto=2),
    ]
    return export(TinyYoloSeg(columns), tmp_path_factory.mktemp("yolo") / "scene.onnx", ["output0", "output1"])


def region(box: tuple[float, float, float, float]) -> tuple[slice, slice]:
    """Pixels Ultralytics' crop keeps: x1 <= column < x2, y1 <= row < y2."""
    x1, y1, x2, y2 = box
    return slice(math.ceil(y1), math.ceil(y2)), slice(math.ceil(x1), math.ceil(x2))


def frame_of(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    frame = np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)
    frame[..., 0] = 0  # no red: prototype 0 stays off (it is not selected by these candidates anyway)
    return frame


def test_decoding_keeps_persons_above_conf_after_nms(scene_onnx):
    prob = create_segmenter("yolo-seg", model_path=scene_onnx).segment(frame_of())
    expected = np.zeros((H, W), np.float32)
    expected[region(A)] = sig(10)
    e = region(E)
    expected[e] = np.maximum(expected[e], sig(2))
    assert prob.shape == (H, W) and prob.dtype == np.float32
    np.testing.assert_allclose(prob, expected, atol=1e-6)
    # The crop is exact: A's x1 = 40.25 leaves column 40 out, x2 = 139.5 keeps column 139.
    assert prob[100, 40] == 0 and prob[100, 41] > 0.99 and prob[100, 139] > 0.99 and prob[50, 140] == 0
    assert prob[region(C)].max() == 0  # the car
    assert prob[region(D)].max() == 0  # the person below conf


def test_conf_and_iou_are_options(scene_onnx):
    frame = frame_of()
    low = create_segmenter("yolo-seg", model_path=scene_onnx, conf=0.1).segment(frame)
    np.testing.assert_allclose(low[region(D)], sig(2), atol=1e-6)  # D now counts
    assert low[region(C)].max() == 0  # C's best class is still the car
    loose = create_segmenter("yolo-seg", model_path=scene_onnx, iou=0.9).segment(frame)
    # With IoU 0.9 NMS keeps B too: its columns beyond A get B's mask.
    np.testing.assert_allclose(loose[50:200, 140:150], sig(2), atol=1e-6)
    strict = create_segmenter("yolo-seg", model_path=scene_onnx, conf=0.85).segment(frame)
    assert strict[region(E)].max() == pytest.approx(sig(10)) and strict[200:235, 140:190].max() == 0


@pytest.mark.parametrize(("h", "w"), [(240, 320), (320, 240)])
def test_masks_come_back_to_the_frame_through_the_letterbox(tmp_path, h, w):
    """The image's own red square, seen by the network through the letterbox, lands where it is in the frame."""
    top, left = (SIZE - 2 * h) // 2, (SIZE - 2 * w) // 2
    whole = candidate((0, 0, w, h), {PERSON: 0.9}, proto=0, top=top, left=left)
    path = export(TinyYoloSeg([whole]), tmp_path / "red.onnx", ["output0", "output1"])
    frame = np.zeros((h, w, 3), np.uint8)
    frame[..., 1:] = 200  # green and blue: a BGR mix-up would light the whole frame
    square = np.zeros((h, w), bool)
    square[60:180, 100:200] = True
    frame[square] = (255, 0, 0)
    prob = create_segmenter("yolo-seg", model_path=path).segment(frame)
    inner = np.zeros_like(square)
    inner[63:177, 103:197] = True
    outer = ~np.pad(np.ones((126, 106), bool), ((57, h - 183), (97, w - 203)))
    assert prob[inner].min() > 0.99 and prob[outer].max() < 0.01
    # The square's edges fall on prototype cells here, so its 0.5 contour comes back to the pixel.
    np.testing.assert_array_equal(prob > 0.5, square)


def end_to_end_row(box: tuple[float, float, float, float], score: float, cls: int, proto: int) -> np.ndarray:
    """One row of an end-to-end output0: x1, y1, x2, y2 in input pixels, score, class, coefficients."""
    x1, y1, x2, y2 = box
    row = np.zeros(6 + NM, np.float32)
    row[:6] = [2 * x1, 2 * y1 + TOP, 2 * x2, 2 * y2 + TOP, score, cls]
    row[6 + proto] = 1.0
    return row


def test_end_to_end_export_is_read_without_nms(tmp_path):
    """YOLO26's default export: [1, 300, 6 + 32] rows, already de-duplicated by the model (A and B both stay)."""
    rows = [
        end_to_end_row(B, 0.8, PERSON, proto=2),
        end_to_end_row(A, 0.9, PERSON, proto=1),
        end_to_end_row(C, 0.95, CAR, proto=1),
        end_to_end_row(D, 0.2, PERSON, proto=2),
    ]
    path = export(TinyYoloSeg(rows=rows), tmp_path / "e2e.onnx", ["output0", "output1"])
    prob = create_segmenter("yolo-seg", model_path=path).segment(frame_of())
    expected = np.zeros((H, W), np.float32)
    expected[region(B)] = sig(2)
    expected[region(A)] = sig(10)
    np.testing.assert_allclose(prob, expected, atol=1e-6)
    with_d = create_segmenter("yolo-seg", model_path=path, conf=0.1).segment(frame_of())
    np.testing.assert_allclose(with_d[region(D)], sig(2), atol=1e-6)
    assert with_d[region(C)].max() == 0


def test_letterbox_pads_with_grey_and_says_where_the_frame_is():
    frame = np.full((100, 300, 3), 7, np.uint8)
    image, box = letterbox(frame, (640, 640))
    # scale 640/300: 213.33 rows -> 213, centred in 427 rows of padding: 213 above, 214 below
    assert box == Letterbox(left=0, top=213, width=640, height=213)
    assert image.shape == (640, 640, 3) and image.dtype == np.uint8
    assert (image[:213] == 114).all() and (image[426:] == 114).all() and (image[213:426] == 7).all()


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    scores = np.array([0.5, 0.9, 0.8, 0.4])
    assert nms(boxes, scores, 0.45).tolist() == [1, 2]
    assert nms(boxes, scores, 0.95).tolist() == [1, 2, 0]  # IoU(0, 1) = 0.82; box 3 equals box 0 (IoU 1)


def test_no_detection_gives_an_empty_mask(tmp_path):
    path = export(TinyYoloSeg([candidate(A, {PERSON: 0.1}, proto=1)]), tmp_path / "none.onnx", ["a", "b"])
    prob = create_segmenter("yolo-seg", model_path=path).segment(frame_of())
    assert prob.shape == (H, W) and not prob.any()


def test_missing_model_says_where_to_put_one_and_how_to_export_it(tmp_path, monkeypatch):
    monkeypatch.delenv("HUMANSEG_YOLO_SEG", raising=False)
    monkeypatch.setenv("HUMANSEG_MODELS", str(tmp_path / "models"))
    with pytest.raises(FileNotFoundError) as err:
        create_segmenter("yolo-seg")
    text = str(err.value)
    expected_file = str(tmp_path / "models" / "yolo-seg.onnx")
    for part in (expected_file, "yolo export model=yolo11n-seg.pt format=onnx", "HUMANSEG_YOLO_SEG", "model_path"):
        assert part in text
    assert unavailable_reason() == text
    assert EXPORT_HINT in text
    with pytest.raises(FileNotFoundError, match=r"not found: .*nope\.onnx.*yolo export"):
        create_segmenter("yolo-seg", model_path=tmp_path / "nope.onnx")
    monkeypatch.setenv("HUMANSEG_YOLO_SEG", str(tmp_path / "gone.onnx"))
    with pytest.raises(FileNotFoundError, match=r"HUMANSEG_YOLO_SEG=.*gone\.onnx"):
        create_segmenter("yolo-seg")


def test_model_found_through_the_variable_or_the_model_folder(scene_onnx, tmp_path, monkeypatch):
    monkeypatch.setenv("HUMANSEG_YOLO_SEG", str(scene_onnx))
    assert create_segmenter("yolo-seg").model_path == scene_onnx
    assert unavailable_reason() is None
    monkeypatch.delenv("HUMANSEG_YOLO_SEG")
    monkeypatch.setenv("HUMANSEG_MODELS", str(tmp_path))
    (tmp_path / "yolo-seg.onnx").write_bytes(scene_onnx.read_bytes())
    assert create_segmenter("yolo-seg").model_path == tmp_path / "yolo-seg.onnx"


def test_a_model_without_prototypes_is_refused(tmp_path):
    path = export(torch.nn.Conv2d(3, 1, 1), tmp_path / "plain.onnx", ["mask"])
    with pytest.raises(ValueError, match=r"expected two outputs.*-seg model"):
        create_segmenter("yolo-seg", model_path=path)


def test_options_are_validated(scene_onnx):
    for bad, match in (
        ({"conf": 1.5}, r"conf must be in \[0, 1\), got 1.5"),
        ({"iou": 0.0}, r"iou must be in \(0, 1\], got 0.0"),
        ({"person_class": -1}, "person_class must be a class index"),
        ({"person_class": 80}, "4 box \\+ 80 class \\+ 32 mask coefficient rows, so there is no class 80"),
        ({"device": "tpu"}, "device must be one of cpu, cuda"),
    ):
        with pytest.raises(ValueError, match=match):
            create_segmenter("yolo-seg", model_path=scene_onnx, **bad)


def test_registered_as_a_fixed_baseline():
    assert "yolo-seg" in segmenters.available()
    caps = segmenters.capabilities("yolo-seg")
    assert caps == segmenters.Capabilities(takes_plate=False, takes_checkpoint=False, trained=False)
    assert {"model_path", "conf", "iou", "person_class", "device"} <= set(segmenters.accepted_options("yolo-seg"))
    assert "YOLO" in segmenters.describe("yolo-seg")


def test_segment_help_lists_it():
    import argparse

    from humanseg.cli.segment import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert "yolo-seg" in parser.format_help()


def test_closed_segmenter_refuses_frames(scene_onnx):
    seg = create_segmenter("yolo-seg", model_path=scene_onnx)
    seg.close()
    with pytest.raises(RuntimeError, match="closed"):
        seg.segment(frame_of())


def test_cuda_without_a_gpu_build_of_onnxruntime_says_so(scene_onnx):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(ValueError, match="no CUDAExecutionProvider.*use device 'cpu' or install onnxruntime-gpu"):
        create_segmenter("yolo-seg", model_path=scene_onnx, device="cuda")
