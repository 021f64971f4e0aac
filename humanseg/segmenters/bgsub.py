"""OpenCV background subtractors: MOG2, KNN and GSOC (opencv-contrib ``cv2.bgsegm``).

They learn the background from the frames they see, so the first frames of a video are unreliable and
``reset()`` must be called between unrelated videos. They output a hard decision: 255 (foreground) becomes
probability 1.0; everything else, including the shadow label 127 that MOG2/KNN give with ``detectShadows``,
becomes 0.0, because a person's cast shadow is not the person (CDnet scores shadows as negatives).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from humanseg.segmenters.base import Segmenter

# Value OpenCV writes for a confident foreground pixel (shadows are 127, background 0).
_FOREGROUND = 255


class _OpenCVSubtractor(Segmenter):
    """Shared logic: build an OpenCV subtractor, feed it frames, map its 0/127/255 output to 0/1."""

    stateful = True

    def __init__(self, learning_rate: float = -1.0) -> None:
        import cv2  # noqa: F401  (fail here, with the registry's install hint, rather than on the first frame)

        # -1 lets OpenCV pick the rate from `history`; 0 freezes the model; 1 relearns from the last frame only.
        if not (learning_rate == -1.0 or 0.0 <= learning_rate <= 1.0):
            raise ValueError(f"learning_rate must be -1 (automatic) or in [0, 1], got {learning_rate}")
        self.learning_rate = float(learning_rate)
        self._subtractor = self._create()

    def _create(self) -> Any:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the learnt background by building a fresh subtractor."""
        self._subtractor = self._create()

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        # Colour order does not matter to these models (shadow tests compare channels symmetrically),
        # so the RGB frame is passed as is instead of paying for a BGR copy.
        fg = self._subtractor.apply(frame, learningRate=self.learning_rate)
        return (fg == _FOREGROUND).astype(np.float32)


class MOG2Segmenter(_OpenCVSubtractor):
    """OpenCV MOG2 (Zivkovic's adaptive Gaussian mixture), shadows detected and counted as background.

    ``history``: frames that shape the model; ``var_threshold``: squared Mahalanobis distance above which a
    pixel is foreground (OpenCV default 16).
    """

    name = "mog2"

    def __init__(self, history: int = 500, var_threshold: float = 16.0, learning_rate: float = -1.0) -> None:
        if history < 1:
            raise ValueError(f"history must be >= 1 frame, got {history}")
        if var_threshold <= 0:
            raise ValueError(f"var_threshold must be > 0, got {var_threshold}")
        self.history = int(history)
        self.var_threshold = float(var_threshold)
        super().__init__(learning_rate)

    def _create(self) -> Any:
        import cv2

        return cv2.createBackgroundSubtractorMOG2(
            history=self.history, varThreshold=self.var_threshold, detectShadows=True
        )


class KNNSegmenter(_OpenCVSubtractor):
    """OpenCV KNN background subtractor, shadows detected and counted as background.

    ``history``: frames kept in the model; ``dist2_threshold``: squared RGB distance that makes a sample a
    neighbour (OpenCV default 400).
    """

    name = "knn"

    def __init__(self, history: int = 500, dist2_threshold: float = 400.0, learning_rate: float = -1.0) -> None:
        if history < 1:
            raise ValueError(f"history must be >= 1 frame, got {history}")
        if dist2_threshold <= 0:
            raise ValueError(f"dist2_threshold must be > 0, got {dist2_threshold}")
        self.history = int(history)
        self.dist2_threshold = float(dist2_threshold)
        super().__init__(learning_rate)

    def _create(self) -> Any:
        import cv2

        return cv2.createBackgroundSubtractorKNN(
            history=self.history, dist2Threshold=self.dist2_threshold, detectShadows=True
        )


class GSOCSegmenter(_OpenCVSubtractor):
    """OpenCV contrib GSOC background subtractor (``cv2.bgsegm``), OpenCV's defaults."""

    name = "gsoc"

    def _create(self) -> Any:
        import cv2

        if not hasattr(cv2, "bgsegm"):
            raise ImportError(
                "cv2.bgsegm is missing: the gsoc segmenter needs opencv-contrib-python "
                "(`pip uninstall opencv-python && pip install opencv-contrib-python`)"
            )
        return cv2.bgsegm.createBackgroundSubtractorGSOC()
