"""Segmentation backends behind one interface, listed in one registry.

The registry maps a backend name to a ``"module:Class"`` string that is imported only when the backend is
used, so ``import humanseg.segmenters`` stays light (no OpenCV, torch, MediaPipe or rembg). The CLI choices,
the app's dropdown and the evaluator all read :data:`REGISTRY`.

>>> seg = create_segmenter("plate-diff", plate="empty.jpg")
>>> prob = seg.segment(frame)          # float32 H x W in [0, 1]
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any, NamedTuple

from humanseg.segmenters.base import Segmenter, validate_frame

__all__ = [
    "DESCRIPTIONS",
    "Capabilities",
    "OPTIONS",
    "REGISTRY",
    "Segmenter",
    "accepted_options",
    "available",
    "capabilities",
    "create_segmenter",
    "describe",
    "get_class",
    "validate_frame",
]

#: Backend name -> ``"module:Class"`` (imported lazily by :func:`get_class`).
REGISTRY: dict[str, str] = {
    "mog2": "humanseg.segmenters.bgsub:MOG2Segmenter",
    "knn": "humanseg.segmenters.bgsub:KNNSegmenter",
    "gsoc": "humanseg.segmenters.bgsub:GSOCSegmenter",
    "plate-diff": "humanseg.segmenters.plate_diff:PlateDiffSegmenter",
    "mediapipe": "humanseg.segmenters.mediapipe_selfie:MediaPipeSegmenter",
    "rembg": "humanseg.segmenters.rembg_backend:RembgSegmenter",
    "yolo-seg": "humanseg.segmenters.yolo_seg:YoloSegSegmenter",
    "segnet": "humanseg.segmenters.segnet:SegNetSegmenter",
}

#: One line per backend, for ``--help`` texts and the app's dropdown (no import needed).
DESCRIPTIONS: dict[str, str] = {
    "mog2": "OpenCV MOG2 background subtraction (adaptive Gaussian mixture; shadows count as background)",
    "knn": "OpenCV KNN background subtraction (shadows count as background)",
    "gsoc": "OpenCV contrib GSOC background subtraction (cv2.bgsegm)",
    "plate-diff": "colour difference to an empty-scene plate (given, or a running median of recent frames)",
    "mediapipe": "MediaPipe selfie segmenter (generic person model, no site training)",
    "rembg": "rembg salient-object / person model (u2net family, or your own ONNX via model_path)",
    "yolo-seg": "YOLO instance segmentation, COCO person class (your ONNX export: model_path or $HUMANSEG_YOLO_SEG)",
    "segnet": "SegNet trained on site composites (needs a checkpoint)",
}

#: The options :func:`create_segmenter` forwards, when the backend's constructor declares them.
OPTIONS: tuple[str, ...] = ("plate", "checkpoint", "model_path")


def available() -> list[str]:
    """Names of all registered backends, in registry order."""
    return list(REGISTRY)


def describe(name: str) -> str:
    """One-line description of backend ``name`` (raises ``ValueError`` for an unknown name)."""
    _check_name(name)
    return DESCRIPTIONS.get(name, name)


def get_class(name: str) -> type[Segmenter]:
    """Import and return the class of backend ``name``.

    Raises ``ValueError`` listing the valid names for an unknown ``name``, and ``ImportError`` with an install
    hint when the backend's module (or its library) cannot be imported.
    """
    _check_name(name)
    module_name, _, class_name = REGISTRY[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ImportError(
            f"segmenter {name!r} could not be imported ({err}); install the project requirements with "
            "`pip install -r requirements.txt`"
        ) from err
    cls = getattr(module, class_name)
    if not (isinstance(cls, type) and issubclass(cls, Segmenter)):
        raise TypeError(f"registry entry {REGISTRY[name]!r} for {name!r} is not a Segmenter subclass")
    return cls


class Capabilities(NamedTuple):
    """What a backend class takes and is (see the flags on :class:`Segmenter`)."""

    takes_plate: bool
    takes_checkpoint: bool
    trained: bool


def capabilities(name: str) -> Capabilities:
    """The capability flags of backend ``name``, read from its class (no backend is built, no model loaded).

    Raises ``ValueError`` for an unknown name and ``ImportError`` as :func:`get_class` does.
    """
    cls = get_class(name)
    return Capabilities(cls.takes_plate, cls.takes_checkpoint, cls.trained)


def accepted_options(name: str) -> list[str]:
    """Which of ``plate``, ``checkpoint``, ``model_path`` (and other keywords) backend ``name`` takes."""
    params = inspect.signature(get_class(name).__init__).parameters
    return [
        p for p in params if p != "self" and params[p].kind not in (params[p].VAR_POSITIONAL, params[p].VAR_KEYWORD)
    ]


def create_segmenter(
    name: str,
    *,
    plate: Any = None,
    checkpoint: str | Path | None = None,
    model_path: str | Path | None = None,
    **options: Any,
) -> Segmenter:
    """Build backend ``name``, passing only the options that are given (not ``None``).

    ``plate``: an RGB ``uint8`` array or an image path (``plate-diff``, ``segnet``); ``checkpoint``: a trained
    model file (``segnet``); ``model_path``: a model file overriding the default one (``mediapipe``, ``rembg``).
    Backend-specific keywords (e.g. ``model="u2netp"`` for rembg, ``threshold=`` for plate-diff) go in
    ``options``.

    Raises ``ValueError`` for an unknown name (listing the valid ones) or for an option the backend does not
    take (naming it and the ones it does take).
    """
    cls = get_class(name)
    given = {"plate": plate, "checkpoint": checkpoint, "model_path": model_path}
    given = {k: v for k, v in given.items() if v is not None}
    given.update(options)
    accepted = accepted_options(name)
    rejected = [k for k in given if k not in accepted]
    if rejected:
        takes = ", ".join(accepted) if accepted else "no options"
        raise ValueError(f"segmenter {name!r} does not take option(s) {', '.join(rejected)}; it takes: {takes}")
    return cls(**given)


def _check_name(name: str) -> None:
    if name not in REGISTRY:
        raise ValueError(f"unknown segmenter {name!r}; valid names: {', '.join(REGISTRY)}")
