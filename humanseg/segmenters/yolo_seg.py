"""A COCO instance-segmentation model (YOLOv8, YOLO11 or YOLO26 ``-seg``) as a generic person baseline, run with
ONNX Runtime from a file the user exports.

The weights are the user's to choose (licences differ: Ultralytics' own models are AGPL-3.0) and are never
downloaded here, so, as with rembg, the file comes from ``model_path``, else ``$HUMANSEG_YOLO_SEG``, else
``yolo-seg.onnx`` in the humanseg model folder (``$HUMANSEG_MODELS``, default ``~/.cache/humanseg/models``).
Export one with ``pip install ultralytics`` and ``yolo export model=yolo11n-seg.pt format=onnx``.

Layout of that export: input ``images`` float32 ``[1, 3, 640, 640]``, RGB in [0, 1], the frame letterboxed
(aspect kept, centred, grey 114 padding); ``output0`` ``[1, 4 + nc + nm, N]``, per candidate the box centre x,
y, width and height in input pixels, ``nc`` class scores (80 for COCO; person is class 0) and ``nm`` (32) mask
coefficients; ``output1`` ``[1, nm, 160, 160]``, the mask prototypes (input size / 4). End-to-end exports
(YOLO26's default: ``yolo export model=yolo26n-seg.pt format=onnx``) are read too: their ``output0`` is
``[1, 300, 6 + nm]``, rows of x1, y1, x2, y2 in input pixels, score, class and coefficients, with NMS done in
the model (``iou`` does not apply).

Decoding is Ultralytics' predictor with ``classes=[0]`` and ``retina_masks=True``: a candidate counts when its
best class is the person class and that score exceeds ``conf``; greedy NMS drops boxes overlapping a better one
by more than ``iou``; each kept instance's mask logits (coefficients @ prototypes) are resampled bilinearly to
the frame (letterbox undone), squashed with the sigmoid and set to 0 outside the instance's box. The person
probability is the per-pixel maximum over the instances (0 where there are none).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from humanseg.segmenters.base import Segmenter

#: Environment variable naming the ONNX file to use when no ``model_path`` is given.
ENV_VAR = "HUMANSEG_YOLO_SEG"
#: File name looked for in the humanseg model folder when neither ``model_path`` nor the variable is set.
FILENAME = "yolo-seg.onnx"
#: The standard export command, quoted in errors.
EXPORT_HINT = "pip install ultralytics && yolo export model=yolo11n-seg.pt format=onnx"
#: Input size assumed when the model's input size is dynamic (``yolo export ... dynamic=True``).
DEFAULT_INPUT_SIZE = 640
#: Letterbox padding value (Ultralytics' grey).
PAD_VALUE = 114
_DEVICES = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}


class Letterbox(NamedTuple):
    """Where the frame lies inside the network input: resized to ``width`` x ``height`` at (``left``, ``top``)."""

    left: int
    top: int
    width: int
    height: int


class YoloSegSegmenter(Segmenter):
    """Person probability from a YOLO segmentation model exported to ONNX (the person class of a COCO model).

    Args:
        model_path: the ``.onnx`` file; default ``$HUMANSEG_YOLO_SEG``, else ``yolo-seg.onnx`` in the humanseg
            model folder (:func:`default_model_path`).
        conf: minimum score of the person class for a detection to count (Ultralytics' ``conf``).
        iou: NMS threshold: a person box overlapping a higher-scoring one by more than this IoU is dropped
            (end-to-end exports do their own NMS and ignore it).
        person_class: index of the person class among the model's classes (0 in COCO).
        device: ``"cpu"`` (ONNX Runtime's CPU provider) or ``"cuda"`` (needs ``onnxruntime-gpu``).
    """

    @staticmethod
    def unavailable_reason() -> str | None:
        """Why the default model file cannot be found (the site benchmark lists the baseline as skipped), or None."""
        return unavailable_reason()

    name = "yolo-seg"

    def __init__(
        self,
        model_path: str | Path | None = None,
        conf: float = 0.25,
        iou: float = 0.45,
        person_class: int = 0,
        device: str = "cpu",
    ) -> None:
        if not 0.0 <= conf < 1.0:
            raise ValueError(f"conf must be in [0, 1), got {conf}")
        if not 0.0 < iou <= 1.0:
            raise ValueError(f"iou must be in (0, 1], got {iou}")
        if isinstance(person_class, bool) or not isinstance(person_class, int) or person_class < 0:
            raise ValueError(f"person_class must be a class index >= 0, got {person_class!r}")
        if device not in _DEVICES:
            raise ValueError(f"device must be one of {', '.join(_DEVICES)}, got {device!r}")
        self.model_path = find_model(model_path)
        self.conf, self.iou, self.person_class, self.device = conf, iou, person_class, device
        self._session, self._input_name, self._input_hw = _open_session(self.model_path, _DEVICES[device])
        preds, protos = _split_outputs(self._session.get_outputs(), self.model_path)
        static = all(isinstance(n, int) for n in (*preds.shape[1:], protos.shape[1]))
        if static and not _end_to_end(preds.shape[1:], protos.shape[1]):  # the class count is known: check now
            _class_count(preds.shape[1], protos.shape[1], person_class, self.model_path)

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        if self._session is None:
            raise RuntimeError("this yolo-seg segmenter was closed; create a new one")
        image, box = letterbox(frame, self._input_hw)
        batch = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
        outputs = self._session.run(None, {self._input_name: batch})
        preds, protos = _split_outputs(outputs, self.model_path)
        return self._decode(preds[0], protos[0], box, frame.shape[:2])

    def _decode(self, preds: np.ndarray, protos: np.ndarray, box: Letterbox, frame_hw: tuple[int, int]) -> np.ndarray:
        """Person probability from one image's ``output0`` (without the batch axis) and ``output1`` ``[nm, mh, mw]``."""
        nm = protos.shape[0]
        xyxy, score, coefs = self._persons(preds, nm)
        h, w = frame_hw
        prob = np.zeros((h, w), np.float32)
        if len(score) == 0:
            return prob
        boxes = _to_frame(xyxy, box, frame_hw)
        if not _end_to_end(preds.shape, nm):
            keep = nms(boxes, score, self.iou)
            boxes, coefs = boxes[keep], coefs[keep]
        flat = protos.reshape(nm, -1)
        for coef, (x1, y1, x2, y2) in zip(coefs, boxes, strict=True):
            # Ultralytics' crop keeps pixel column c when x1 <= c < x2 (and rows alike).
            c0, c1, r0, r1 = math.ceil(x1), math.ceil(x2), math.ceil(y1), math.ceil(y2)
            if c1 <= c0 or r1 <= r0:
                continue
            logits = (coef @ flat).reshape(protos.shape[1:])
            patch = _frame_logits(logits, box, frame_hw, self._input_hw, (r0, r1, c0, c1))
            np.maximum(prob[r0:r1, c0:c1], _sigmoid(patch), out=prob[r0:r1, c0:c1])
        return prob

    def _persons(self, preds: np.ndarray, nm: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes x1, y1, x2, y2 in input pixels, scores, mask coefficients) of the person candidates above
        ``conf``, from either output0 layout."""
        if _end_to_end(preds.shape, nm):  # [K, 6 + nm]: x1, y1, x2, y2, score, class, coefficients
            person = (np.rint(preds[:, 5]) == self.person_class) & (preds[:, 4] > self.conf)
            return preds[person, :4], preds[person, 4], preds[person, 6:]
        nc = _class_count(preds.shape[0], nm, self.person_class, self.model_path)
        # [4 + nc + nm, N]: centre x, centre y, width, height, class scores, coefficients. Only candidates whose
        # person score passes conf can count, so the argmax runs on those few rather than on all N.
        cand = preds[:, preds[4 + self.person_class] > self.conf]
        cand = cand[:, cand[4 : 4 + nc].argmax(axis=0) == self.person_class]
        cx, cy, bw, bh = cand[:4]
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        return xyxy, cand[4 + self.person_class], cand[4 + nc :].T

    def close(self) -> None:
        """Release the ONNX Runtime session."""
        self._session = None

    def __repr__(self) -> str:
        return f"YoloSegSegmenter(model_path={str(self.model_path)!r}, conf={self.conf}, iou={self.iou})"


def default_model_path() -> Path:
    """The file used when no ``model_path`` is given: ``$HUMANSEG_YOLO_SEG``, else ``yolo-seg.onnx`` in the
    humanseg model folder."""
    from humanseg.model_files import cache_dir

    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else cache_dir() / FILENAME


def find_model(model_path: str | Path | None = None) -> Path:
    """The ONNX file to load: ``model_path`` if given, else :func:`default_model_path`.

    Raises ``FileNotFoundError`` saying where to put a file and how to export one.
    """
    if model_path is not None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"YOLO segmentation model not found: {path} (export one with `{EXPORT_HINT}`)")
        return path
    path = default_model_path()
    if path.is_file():
        return path
    from humanseg.model_files import ENV_VAR as MODELS_ENV_VAR

    where = f"{ENV_VAR}={os.environ[ENV_VAR]}" if os.environ.get(ENV_VAR) else f"{ENV_VAR} is not set"
    raise FileNotFoundError(
        f"no YOLO segmentation model at {path} ({where}). The weights are not downloaded for you (their licences "
        f"differ; Ultralytics' are AGPL-3.0): export a -seg model the standard way, `{EXPORT_HINT}` (any "
        f"YOLOv8, YOLO11 or YOLO26 -seg model works), then copy the .onnx file to {path}, set {ENV_VAR} to its "
        f"path, or pass model_path (the model folder is ${MODELS_ENV_VAR}, default ~/.cache/humanseg/models)"
    )


def unavailable_reason(model_path: str | Path | None = None) -> str | None:
    """Why the backend cannot be built here (no model file), or None when a file is present."""
    try:
        find_model(model_path)
    except FileNotFoundError as err:
        return str(err)
    return None


def letterbox(frame: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Ultralytics' letterbox: ``frame`` resized to fit ``size`` (height, width) with its aspect kept, centred on
    grey 114; returns the ``uint8`` image and where the frame lies in it."""
    import cv2

    h, w = frame.shape[:2]
    in_h, in_w = size
    r = min(in_h / h, in_w / w)
    new_w, new_h = round(w * r), round(h * r)
    # Odd padding puts the extra pixel at the bottom/right, as Ultralytics does.
    top, left = round((in_h - new_h) / 2 - 0.1), round((in_w - new_w) / 2 - 0.1)
    image = np.full((in_h, in_w, 3), PAD_VALUE, np.uint8)
    resized = frame if (new_w, new_h) == (w, h) else cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    image[top : top + new_h, left : left + new_w] = resized
    return image, Letterbox(left, top, new_w, new_h)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes (``[N, 4]`` x1, y1, x2, y2) greedy non-maximum suppression keeps, best score first:
    a box is dropped when its IoU with a kept, higher-scoring box exceeds ``iou`` (as ``torchvision.ops.nms``)."""
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = (np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0])).clip(0)
        ih = (np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1])).clip(0)
        inter = iw * ih
        union = areas[i] + areas[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def _to_frame(xyxy: np.ndarray, box: Letterbox, frame_hw: tuple[int, int]) -> np.ndarray:
    """Boxes x1, y1, x2, y2 in input pixels -> the same in frame pixels, clipped to the frame."""
    h, w = frame_hw
    # The frame's actual scale in the input (new size / size), so boxes and masks undo exactly what was done.
    scale = np.array([box.width / w, box.height / h] * 2)
    offset = np.array([box.left, box.top] * 2)
    return ((xyxy.astype(np.float64) - offset) / scale).clip(0, [w, h, w, h])


def _frame_logits(
    proto_logits: np.ndarray,
    box: Letterbox,
    frame_hw: tuple[int, int],
    input_hw: tuple[int, int],
    region: tuple[int, int, int, int],
) -> np.ndarray:
    """Bilinear resampling of one instance's prototype-grid logits to frame rows ``r0:r1``, columns ``c0:c1``,
    in one step: frame pixel centre -> input pixel (letterbox) -> prototype grid (stride input / grid)."""
    import cv2

    h, w = frame_hw
    mh, mw = proto_logits.shape
    r0, r1, c0, c1 = region
    stride_x, stride_y = input_hw[1] / mw, input_hw[0] / mh
    sx, sy = box.width / w, box.height / h
    # src = (left + (x + 0.5) * sx) / stride - 0.5 for frame column x (pixel centres), shifted to the region.
    ax, ay = sx / stride_x, sy / stride_y
    bx = (box.left + 0.5 * sx) / stride_x - 0.5 + ax * c0
    by = (box.top + 0.5 * sy) / stride_y - 0.5 + ay * r0
    matrix = np.array([[ax, 0.0, bx], [0.0, ay, by]])
    return cv2.warpAffine(
        np.ascontiguousarray(proto_logits, dtype=np.float32),
        matrix,
        (c1 - c0, r1 - r0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # The tanh form never overflows (exp(-x) does for very negative logits).
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


def _open_session(path: Path, providers: list[str]) -> tuple[Any, str, tuple[int, int]]:
    """(ONNX Runtime session, input name, input (height, width)) of a YOLO segmentation export."""
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ImportError(f"the yolo-seg segmenter needs `pip install onnxruntime` ({err})") from err
    missing = [p for p in providers[:1] if p not in ort.get_available_providers()]
    if missing:
        raise ValueError(
            f"ONNX Runtime here has no {missing[0]} (available: {', '.join(ort.get_available_providers())}); "
            "use device 'cpu' or install onnxruntime-gpu"
        )
    try:
        session = ort.InferenceSession(str(path), providers=providers)
    except Exception as err:  # ONNX Runtime raises its own exception types for unreadable or invalid files
        raise ValueError(f"ONNX Runtime could not load {path}: {err}") from err
    inputs = session.get_inputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        shapes = ", ".join(f"{i.name} {i.shape}" for i in inputs)
        raise ValueError(f"{path}: expected one image input [1, 3, H, W] (a YOLO -seg export), got {shapes}")
    if inputs[0].type != "tensor(float)":
        raise ValueError(f"{path}: input {inputs[0].name} is {inputs[0].type}; export in float32 (without half=True)")
    in_h, in_w = inputs[0].shape[2:]
    if not (isinstance(in_h, int) and isinstance(in_w, int)):
        in_h = in_w = DEFAULT_INPUT_SIZE
    return session, inputs[0].name, (in_h, in_w)


def _end_to_end(shape: tuple[int, ...], nm: int) -> bool:
    """Whether an output0 of ``shape`` (without the batch axis) is an end-to-end export, ``[K, 6 + nm]``: rows of
    x1, y1, x2, y2, score, class, coefficients, NMS already done. A standard export's last axis counts anchors,
    21 * (height / 32) * (width / 32), never 38 = 6 + the usual 32 coefficients."""
    return shape[-1] == 6 + nm


def _class_count(rows: int, nm: int, person_class: int, path: Path) -> int:
    """Number of classes in an ``output0`` of ``rows`` rows with ``nm`` mask coefficients; ``ValueError`` when
    ``person_class`` is not among them."""
    nc = rows - 4 - nm
    if nc <= person_class:
        raise ValueError(
            f"{path}: output0 has {rows} rows = 4 box + {nc} class + {nm} mask coefficient rows, so there is no "
            f"class {person_class}; set person_class to the model's person class"
        )
    return nc


def _split_outputs(outputs: list[Any], path: Path) -> tuple[Any, Any]:
    """(predictions ``[1, 4 + nc + nm, N]``, prototypes ``[1, nm, mh, mw]``): told apart by rank, so the
    order and the names of the outputs do not matter."""
    shapes = [tuple(o.shape) for o in outputs]
    preds = [o for o, s in zip(outputs, shapes, strict=True) if len(s) == 3]
    protos = [o for o, s in zip(outputs, shapes, strict=True) if len(s) == 4]
    if len(preds) != 1 or len(protos) != 1:
        raise ValueError(
            f"{path}: expected two outputs, boxes/scores/mask coefficients [1, 4 + classes + 32, N] and mask "
            f"prototypes [1, 32, H/4, W/4], got shapes {shapes}; is it a -seg model exported with `{EXPORT_HINT}`?"
        )
    return preds[0], protos[0]
