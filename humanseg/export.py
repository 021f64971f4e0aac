"""Export a trained checkpoint to ONNX: a plain graph, or one that rembg runs as ``u2net_custom``.

``export_onnx``: inputs ``frame`` (float ``[B, 3, H, W]`` RGB in [0, 1]) and, for plate-conditioned models,
``plate`` (same layout, the empty scene at the frame's size); output ``person`` ``[B, 1, H, W]``, the person
probability. Batch, height and width are dynamic. Resize frames to the model's input size
(``model_config.input_size`` in the checkpoint) for the accuracy it was trained for. Both graphs hold the
network only (a prior model's plate prior included): the ``segnet`` segmenter's plate completion, a
post-process at frame resolution, is not part of them.

``export_rembg``: a graph shaped for rembg's ``u2net_custom`` session (rembg 2.0.x, ``sessions/u2net_custom.py``
and ``sessions/base.py``). rembg resizes the image to 320x320 (Lanczos), divides by the image's maximum value,
subtracts the ImageNet mean and divides by its std, runs the graph and takes channel 0 of the first output,
min-max normalised, resized back to the image. The exported graph therefore:

1. undoes the mean/std normalisation (exact for any image whose brightest value is 255, as nearly all video
   frames are; darker images come out brightened by 255/max, which the network sees as a brighter scene);
2. resamples 320x320 to the model's input size with fixed area/linear resampling matrices (exact, and plain
   MatMuls in ONNX);
3. for plate-conditioned models, adds the plate baked in as a constant (the checkpoint's plate, or one given);
4. runs the network, takes the person probability, resamples it back to 320x320;
5. sets two corner pixels to 0 and 1. rembg stretches every output to [0, 1]; without the anchors an empty
   scene (maximum probability, say, 0.02) would be stretched into a full-strength noise mask. With them the
   stretch is the identity and the probability reaches rembg unchanged, at the cost of the top-left corner
   pixel reading as person (about one pixel, softened by rembg's resize).

rembg 2.0.86 only loads custom models from inside its model folders (``$U2NET_HOME`` or ``~/.u2net``, or
``$REMBG_HOME``/``~/.rembg``); :func:`rembg_model_dirs` lists them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from humanseg.checkpoint import load_checkpoint
from humanseg.files import atomic_path
from humanseg.models import SegModel
from humanseg.models.base import IMAGENET_MEAN, IMAGENET_STD
from humanseg.segmenters.onnx_network import ProbabilityGraph, export_graph

#: rembg's u2net_custom input size (width, height) and normalisation.
REMBG_SIZE = 320


class RembgGraph(nn.Module):
    """rembg-normalised ``[1, 3, 320, 320]`` -> ``[1, 1, 320, 320]`` probability with 0/1 corner anchors."""

    def __init__(self, model: SegModel, plate: np.ndarray | None = None) -> None:
        super().__init__()
        self.model = model
        h, w = model.config.input_size
        self.inputs = model.config.inputs
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        # Resampling as matrices: rows_in @ image @ cols_in^T maps 320x320 to h x w, and back.
        self.register_buffer("rows_in", torch.from_numpy(resample_matrix(REMBG_SIZE, h)))
        self.register_buffer("cols_in", torch.from_numpy(resample_matrix(REMBG_SIZE, w)))
        self.register_buffer("rows_out", torch.from_numpy(resample_matrix(h, REMBG_SIZE)))
        self.register_buffer("cols_out", torch.from_numpy(resample_matrix(w, REMBG_SIZE)))
        if model.config.needs_plate:
            if plate is None:
                raise ValueError("this model takes the site plate: pass the plate to bake into the rembg graph")
            from humanseg.models import images_to_tensor, resize_image

            self.register_buffer("plate", images_to_tensor(resize_image(np.asarray(plate, np.uint8), (h, w))))
        else:
            self.plate = None
        keep = torch.ones(1, 1, REMBG_SIZE, REMBG_SIZE)
        anchor = torch.zeros(1, 1, REMBG_SIZE, REMBG_SIZE)
        keep[..., 0, 0] = keep[..., 0, 1] = 0.0
        anchor[..., 0, 0] = 1.0  # maximum anchor; pixel (0, 1) stays 0, the minimum anchor
        self.register_buffer("keep", keep)
        self.register_buffer("anchor", anchor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb = (x * self.std + self.mean).clamp(0.0, 1.0)
        rgb = self.rows_in @ rgb @ self.cols_in.t()
        parts = [rgb]
        if self.plate is not None:
            parts.append(self.plate)
            if self.inputs == "frame+plate+diff":
                parts.append((rgb - self.plate).abs())
        logits = self.model(torch.cat(parts, dim=1) if len(parts) > 1 else rgb)
        prob = torch.softmax(logits, dim=1)[:, 1:2]
        prob = self.rows_out @ prob @ self.cols_out.t()
        return prob * self.keep + self.anchor


def resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` float32 weights resampling a 1-D signal: area averaging when shrinking (like
    ``cv2.INTER_AREA``), linear interpolation with half-pixel centres when enlarging (like ``INTER_LINEAR``)."""
    m = np.zeros((n_out, n_in), dtype=np.float64)
    if n_out <= n_in:
        scale = n_in / n_out
        for i in range(n_out):
            lo, hi = i * scale, (i + 1) * scale
            for j in range(int(np.floor(lo)), min(int(np.ceil(hi)), n_in)):
                m[i, j] = min(hi, j + 1) - max(lo, j)
    else:
        scale = n_in / n_out
        for i in range(n_out):
            src = min(max((i + 0.5) * scale - 0.5, 0.0), n_in - 1)
            j = int(np.floor(src))
            frac = src - j
            m[i, j] += 1 - frac
            if frac > 0:
                m[i, j + 1] += frac
    return (m / m.sum(1, keepdims=True)).astype(np.float32)


def _export(
    module: nn.Module,
    args: tuple,
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic: dict[str, dict[int, str]] | None,
) -> None:
    with atomic_path(path) as tmp:
        export_graph(module, args, str(tmp), input_names, output_names, dynamic)


def export_onnx(checkpoint: str | Path, out_path: str | Path) -> Path:
    """Write the checkpoint's network as ONNX (inputs ``frame`` [+ ``plate``], output ``person``); return the path."""
    model, _ = load_checkpoint(checkpoint)
    graph = ProbabilityGraph(model).eval()
    h, w = model.config.input_size
    frame = torch.rand(1, 3, h, w)
    axes = {0: "batch", 2: "height", 3: "width"}
    names = ["frame", "plate"] if model.config.needs_plate else ["frame"]
    args = (frame, torch.rand(1, 3, h, w)) if model.config.needs_plate else (frame,)
    dynamic = {n: axes for n in [*names, "person"]}
    out = Path(out_path)
    _export(graph, args, out, names, ["person"], dynamic)
    return out


def export_rembg(checkpoint: str | Path, out_path: str | Path, plate: np.ndarray | str | Path | None = None) -> Path:
    """Write a graph that rembg runs as ``u2net_custom`` (see the module docstring); return the path.

    Plate-conditioned models get the plate baked in as a constant: ``plate`` (RGB ``uint8`` array or image path)
    if given, else the checkpoint's; without either, ``ValueError``.
    """
    model, info = load_checkpoint(checkpoint)
    if model.config.needs_plate:
        if plate is not None:
            from humanseg.segmenters.base import load_rgb

            plate = load_rgb(plate, "plate")
        else:
            plate = info.plate
        if plate is None:
            raise ValueError(
                f"{checkpoint} is a plate-conditioned model without a stored plate; rembg cannot pass one, so "
                "give the site's empty-scene image to bake in (--plate IMAGE)"
            )
    elif plate is not None:
        raise ValueError(f"{checkpoint} takes frames only (inputs={model.config.inputs!r}); drop the plate")
    graph = RembgGraph(model, plate).eval()
    out = Path(out_path)
    _export(graph, (torch.zeros(1, 3, REMBG_SIZE, REMBG_SIZE),), out, ["input"], ["mask"], None)
    return out


def onnx_max_difference(checkpoint: str | Path, onnx_path: str | Path, size: tuple[int, int] | None = None) -> float:
    """Largest absolute difference between the torch model and the exported ``export_onnx`` graph on a random
    input (at ``size`` (height, width), default the model's input size), computed with onnxruntime."""
    import onnxruntime as ort

    model, _ = load_checkpoint(checkpoint)
    h, w = size or model.config.input_size
    g = torch.Generator().manual_seed(0)
    feeds = {"frame": torch.rand(1, 3, h, w, generator=g)}
    if model.config.needs_plate:
        feeds["plate"] = torch.rand(1, 3, h, w, generator=g)
    with torch.inference_mode():
        ref = ProbabilityGraph(model).eval()(*feeds.values()).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
    if got.shape != ref.shape:
        raise ValueError(f"ONNX output shape {got.shape} differs from torch's {ref.shape}")
    return float(np.abs(got - ref).max())


def rembg_model_dirs() -> list[Path]:
    """The folders rembg's ``u2net_custom`` accepts ``model_path`` from (rembg refuses paths elsewhere)."""
    from rembg.sessions.u2net_custom import U2netCustomSession

    return [Path(U2netCustomSession.rembg_home()).resolve(), Path(U2netCustomSession.legacy_home()).resolve()]
