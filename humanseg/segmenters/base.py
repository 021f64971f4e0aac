"""The one interface every segmentation backend implements.

A frame is an RGB ``uint8`` array ``H x W x 3``; a backend returns a ``float32`` ``H x W`` person/foreground
probability in [0, 1]. Stateful backends (background subtractors, running plates) clear their state in ``reset()``,
which callers invoke between unrelated videos.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class Segmenter:
    """Base class of all backends: subclasses set ``name`` and implement ``_segment``.

    The capability flags are class attributes, so callers read them from the registry class without building a
    backend (:func:`humanseg.segmenters.capabilities`) instead of checking backend names.
    """

    #: Registry key of the backend (e.g. ``"mog2"``).
    name: str = ""
    #: True when the output for a frame depends on earlier frames (``reset()`` matters).
    stateful: bool = False
    #: True when the constructor takes the site's empty-scene ``plate`` (pass it only to such backends).
    takes_plate: bool = False
    #: True when the constructor takes a trained ``checkpoint`` file.
    takes_checkpoint: bool = False
    #: True for a network trained on the site (``python -m humanseg train``), as opposed to a fixed baseline.
    trained: bool = False
    #: True when ``segment_batch`` runs a chunk of frames in one call (a network); the video path then hands it
    #: chunks of ``batch_size`` frames instead of one frame at a time. Stateful backends keep it False.
    batches: bool = False
    #: Frames per ``segment_batch`` call on the video path (backends that batch set their own).
    batch_size: int = 1

    @property
    def label(self) -> str:
        """The one name this segmenter has in tables, captions and file names (``name`` unless set)."""
        return getattr(self, "_label", None) or self.name

    @label.setter
    def label(self, value: str) -> None:
        self._label = value

    def segment(self, frame: np.ndarray) -> np.ndarray:
        """Segment one RGB ``uint8`` ``H x W x 3`` frame; return a ``float32`` ``H x W`` probability in [0, 1]."""
        frame = validate_frame(frame)
        prob = self._segment(frame)
        return _as_probability(prob, frame.shape[:2], self.name)

    def segment_batch(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Segment frames in order (stateful backends see them as consecutive video frames)."""
        return [self.segment(f) for f in frames]

    def reset(self) -> None:
        """Forget everything learnt from earlier frames (no-op for stateless backends)."""

    def close(self) -> None:
        """Release native resources (model sessions); the segmenter must not be used afterwards."""

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement _segment(frame)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def validate_frame(frame: np.ndarray) -> np.ndarray:
    """Check that ``frame`` is an RGB ``uint8`` ``H x W x 3`` array; return it C-contiguous.

    Raises ``ValueError`` naming the actual type, dtype or shape.
    """
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"frame must be a numpy array (RGB uint8 H x W x 3), got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(
            f"frame must have dtype uint8 (RGB 0..255), got {frame.dtype}; convert e.g. with "
            "(frame * 255).clip(0, 255).astype(np.uint8) for floats in [0, 1]"
        )
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(
            f"frame must be RGB with shape H x W x 3, got shape {frame.shape}; "
            "convert grayscale/RGBA frames to RGB first (humanseg.video readers do this)"
        )
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"frame is empty: shape {frame.shape}")
    return np.ascontiguousarray(frame)


def load_rgb(image: np.ndarray | str | Path, what: str = "image") -> np.ndarray:
    """Return ``image`` as an RGB ``uint8`` array; a path is read with Pillow (any mode converted to RGB)."""
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"{what} file not found: {path}")
        from humanseg.video import VideoError, read_image

        try:
            return read_image(path)
        except VideoError as err:
            raise ValueError(f"{what}: {err}; give an image file (PNG or JPEG), e.g. a frame of the empty scene") from None
    try:
        return validate_frame(image)
    except ValueError as err:
        raise ValueError(f"{what}: {err}") from None


def _as_probability(prob: np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    # Backends return what their library gives; normalise here so every caller gets the same contract.
    prob = np.asarray(prob)
    if prob.shape != shape:
        raise RuntimeError(f"backend {name!r} returned a mask of shape {prob.shape} for a frame of size {shape}")
    if prob.dtype != np.float32:
        prob = prob.astype(np.float32)
    return np.clip(prob, 0.0, 1.0)
