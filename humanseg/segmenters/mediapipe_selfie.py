"""MediaPipe selfie segmentation through the MediaPipe Tasks ``ImageSegmenter``.

A generic person model (no site training): the model file comes from ``model_path`` or the humanseg model
cache (``python -m humanseg models fetch mediapipe``). Running mode IMAGE: every frame is segmented on its own,
so the backend is stateless and frames may come in any order (VIDEO mode would only add the requirement of
increasing timestamps; it does not smooth the selfie masks over time).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from humanseg.segmenters.base import Segmenter

# Labels that name the person channel in selfie-style models; a "background" channel is used inverted.
_PERSON_LABELS = ("person", "selfie", "foreground", "human")


class MediaPipeSegmenter(Segmenter):
    """Person probability from a MediaPipe Tasks image segmenter model (default: the cached selfie model).

    Args:
        model_path: a ``.tflite`` segmentation model with MediaPipe metadata; default: the cached
            ``mediapipe`` model (``python -m humanseg models fetch mediapipe``).
    """

    name = "mediapipe"

    def __init__(self, model_path: str | Path | None = None) -> None:
        from humanseg.model_files import resolve_model

        self.model_path = resolve_model("mediapipe", model_path)
        try:
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError as err:
            raise ImportError(f"the mediapipe segmenter needs `pip install mediapipe` ({err})") from err
        self._mp = mp
        options = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=vision.RunningMode.IMAGE,
            output_confidence_masks=True,
            output_category_mask=False,
        )
        with _captured_stderr() as log:
            try:
                self._segmenter = vision.ImageSegmenter.create_from_options(options)
            except (ValueError, RuntimeError) as err:
                raise ValueError(
                    f"MediaPipe could not load {self.model_path} as an image segmenter: {err} {log.text()}".strip()
                ) from err
        # Close the native segmenter when this object is collected, closed, or at interpreter exit.
        self._finalizer = weakref.finalize(self, _close_native, self._segmenter)
        self.labels: list[str] = list(self._segmenter.labels)
        self._channel, self._invert = _person_channel(self.labels)

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        if not self._finalizer.alive:
            raise RuntimeError("this MediaPipe segmenter was closed; create a new one")
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=frame)
        result = self._segmenter.segment(image)
        masks = result.confidence_masks or []
        if self._channel >= len(masks):
            raise RuntimeError(
                f"model {self.model_path} returned {len(masks)} confidence masks, expected channel {self._channel}"
            )
        # numpy_view() is a view of MediaPipe's buffer: copy before the result is released.
        prob = np.array(masks[self._channel].numpy_view(), dtype=np.float32).reshape(frame.shape[:2])
        return 1.0 - prob if self._invert else prob

    def close(self) -> None:
        """Release the native MediaPipe segmenter."""
        self._finalizer()


def _close_native(segmenter: object) -> None:
    try:
        segmenter.close()  # type: ignore[attr-defined]
    except (RuntimeError, TypeError):
        # At interpreter exit MediaPipe's worker thread is already shut down and close() fails; the process
        # frees the memory anyway. Clearing the handle keeps MediaPipe's own __del__ from failing noisily too.
        segmenter._handle = None  # type: ignore[attr-defined]


def _person_channel(labels: list[str]) -> tuple[int, bool]:
    """(index of the confidence mask to use, whether to invert it) for a model's label list."""
    lowered = [label.strip().lower() for label in labels]
    for i, label in enumerate(lowered):
        if label in _PERSON_LABELS:
            return i, False
    if "background" in lowered:
        # Multi-class models (hair, face, clothes, ...): person = anything that is not background.
        return lowered.index("background"), True
    # Unlabelled single-output models (the selfie models) give the person confidence as their only mask.
    return 0, False


class _Captured:
    def __init__(self, path: str) -> None:
        self._path = path

    def text(self) -> str:
        with contextlib.suppress(OSError):
            return Path(self._path).read_text(errors="replace").strip()
        return ""


@contextlib.contextmanager
def _captured_stderr() -> Iterator[_Captured]:
    """Send the C++ log lines MediaPipe prints while loading (TFLite/XNNPACK INFO, glog warnings) to a
    temporary file instead of the terminal; the text is kept for error messages."""
    with tempfile.NamedTemporaryFile(prefix="humanseg-mediapipe-", suffix=".log", delete=False) as tmp:
        path = tmp.name
    saved = os.dup(2)
    try:
        with open(path, "wb") as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield _Captured(path)
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)
        with contextlib.suppress(OSError):
            os.unlink(path)
