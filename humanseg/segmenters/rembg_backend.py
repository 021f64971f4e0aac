"""rembg models (u2net family, BiRefNet, ISNet, ...) as a segmenter, or a user's own ONNX model.

rembg keeps its model files in its own folder and downloads a missing one from GitHub when a session is
created. Where that download is impossible (offline machines) this backend says which file to put where.
A user's own U^2-Net-style ONNX model (e.g. one exported by ``humanseg export``) is loaded through rembg's
``u2net_custom`` session with ``model_path``: input 1 x 3 x 320 x 320 (RGB scaled by the image maximum, then
ImageNet mean/std), first output's channel 0, min-max normalised per image.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from humanseg.segmenters.base import Segmenter

#: Default model: rembg's U^2-Net trained for human segmentation.
DEFAULT_MODEL = "u2net_human_seg"
#: The model rembg uses for ``model_path`` (any ONNX with the U^2-Net input/output layout).
CUSTOM_MODEL = "u2net_custom"


class RembgSegmenter(Segmenter):
    """Foreground probability from a rembg session (``rembg.new_session(model)``), without rembg's
    alpha matting or post-processing: the model's mask as a probability.

    Args:
        model: a rembg model name (``rembg.sessions.sessions_names``), default ``u2net_human_seg``.
        model_path: your own ONNX model; loaded with the ``u2net_custom`` session (or ``dis_custom`` /
            ``ben_custom`` when ``model`` names those). The file may live anywhere.
    """

    name = "rembg"

    def __init__(self, model: str | None = None, model_path: str | Path | None = None) -> None:
        try:
            import rembg  # noqa: F401
            from rembg.sessions import sessions
        except ImportError as err:
            raise ImportError(f"the rembg segmenter needs `pip install rembg onnxruntime` ({err})") from err
        if model_path is not None:
            model = CUSTOM_MODEL if model is None else model
            if not model.endswith("_custom") or model not in sessions:
                custom = sorted(n for n in sessions if n.endswith("_custom"))
                raise ValueError(
                    f"model_path is loaded with a custom rembg session; model must be one of {', '.join(custom)}, "
                    f"got {model!r}"
                )
            path = Path(model_path).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"ONNX model file not found: {path}")
            self.model = model
            self.model_path: Path | None = path.resolve()
            self._session = _custom_session(sessions[model], self.model_path)
        else:
            model = DEFAULT_MODEL if model is None else model
            if model not in sessions:
                raise ValueError(f"unknown rembg model {model!r}; valid names: {', '.join(sessions)}")
            session_class = sessions[model]
            if model.endswith("_custom"):
                raise ValueError(f"rembg model {model!r} needs model_path (the ONNX file to load)")
            if not session_class.is_local() or session_class.requires_credentials():
                # Surveillance footage must not leave the machine; remote rembg backends also need API keys.
                raise ValueError(f"rembg model {model!r} runs on a remote service; choose a local model")
            self.model = model
            self.model_path = None
            self._session = _named_session(model, session_class)

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        from PIL import Image

        masks = self._session.predict(Image.fromarray(frame))
        # Multi-mask models (cloth segmentation) return several; the first is the foreground/upper one.
        mask = np.asarray(masks[0].convert("L"), dtype=np.float32)
        return mask / 255.0

    def __repr__(self) -> str:
        source = f", model_path={str(self.model_path)!r}" if self.model_path else ""
        return f"RembgSegmenter(model={self.model!r}{source})"


def model_file_hint(model: str) -> tuple[Path, str]:
    """(folder, file name) where rembg looks for model ``model`` first (``U2NET_HOME`` aware)."""
    from rembg.sessions import sessions

    session_class = sessions[model]
    return Path(session_class.model_dir()), f"{model}.onnx"


def installed_models() -> tuple[Path, list[tuple[str, Path]]]:
    """(rembg's model folder, [(model name, file)] for each local rembg model whose file is present)."""
    from rembg.sessions import sessions

    found = []
    home = None
    for model, session_class in sessions.items():
        if model.endswith("_custom") or not session_class.is_local():
            continue
        home = home or Path(session_class.rembg_home())
        existing = session_class.resolve_existing(f"{model}.onnx")
        if existing is not None:
            found.append((model, Path(existing)))
    return home or Path("~/.rembg").expanduser(), found


def _named_session(model: str, session_class: Any) -> Any:
    import rembg

    folder, filename = model_file_hint(model)
    present = session_class.resolve_existing(filename) is not None
    try:
        # With the file present rembg loads it; otherwise it downloads it (from GitHub) into `folder`.
        return rembg.new_session(model)
    except Exception as err:
        if present:
            raise RuntimeError(f"rembg could not load its model {model!r} from {folder}: {err}") from err
        legacy = Path(session_class.legacy_home())
        where = (
            f"U2NET_HOME={os.environ['U2NET_HOME']}"
            if os.environ.get("U2NET_HOME")
            else f"U2NET_HOME is not set; rembg's default folder is {Path(session_class.rembg_home())}"
        )
        raise FileNotFoundError(
            f"rembg model {model!r} is not on this machine and could not be downloaded ({type(err).__name__}: "
            f"{err}). Put the file {filename} in {folder} (or directly in {legacy}), or set U2NET_HOME to a "
            f"folder that holds it ({where})"
        ) from err


def _custom_session(session_class: Any, model_path: Path) -> Any:
    import onnxruntime as ort

    # rembg's custom sessions only accept files inside rembg's own model folder (a guard for its HTTP server,
    # where the path comes from a request). Here the path comes from the local user, so any file is allowed;
    # everything else (pre-processing, output handling) is rembg's own code.
    class _LocalFileSession(session_class):
        @classmethod
        def download_models(cls, *args: Any, **kwargs: Any) -> str:
            return str(model_path)

    return _LocalFileSession(session_class.name(), ort.SessionOptions(), model_path=str(model_path))
