"""A trained network as an ONNX graph, and that graph run by ONNX Runtime: the trained-model segmenter's CPU runtime.

Measured in one process, interleaved on the same input (the default preset at 240x320, 2 CPU cores shared with
other jobs, 2026-11-30): ONNX Runtime 14-19 ms/frame at best (batches of 1 to 8) where eager torch took 19-32 ms,
channels_last or not; under load from other processes ONNX Runtime's median stayed near 40 ms while torch's
OpenMP threads, stalled at their barriers, went to 100-700 ms. ``torch.compile`` (inductor) matched ONNX Runtime
(28.5 vs 26.8 ms/frame in a loaded run) but costs 7-45 s of compiling in every process and a C++ toolchain, so
ONNX Runtime is kept. The graph gives torch's probabilities within 1e-6. Its int8 quantisations (ONNX Runtime's
static QDQ and QOperator formats, dynamic) ran slower than float32 on this AVX-512 VNNI CPU (7.1-7.6 against
6.7-6.9 ms/frame, the same graph, 2 threads, idle, 2026-12-01), so the graph stays float32.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

#: ONNX opset of the exported graphs (``humanseg.export`` writes the same).
OPSET = 17


class ProbabilityGraph(nn.Module):
    """``(frame[, plate]) -> person probability [B, 1, H, W]`` around a trained network."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.inputs = model.config.inputs

    def forward(self, frame: torch.Tensor, plate: torch.Tensor | None = None) -> torch.Tensor:
        parts = [frame]
        if plate is not None:
            parts.append(plate)
            if self.inputs == "frame+plate+diff":
                parts.append((frame - plate).abs())
        logits = self.model(torch.cat(parts, dim=1) if len(parts) > 1 else frame)
        return torch.softmax(logits, dim=1)[:, 1:2]


def export_graph(
    module: nn.Module,
    args: tuple,
    target: Any,
    input_names: list[str],
    output_names: list[str],
    dynamic: dict[str, dict[int, str]] | None,
) -> None:
    """``torch.onnx.export`` of ``module`` into ``target`` (a path or a binary buffer) with the TorchScript exporter.

    The TorchScript exporter is deprecated in favour of the dynamo one, which needs the onnxscript package (not a
    dependency) and has no max_unpool2d either; the TorchScript path is exact for these graphs.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            module,
            args,
            target,
            dynamo=False,
            opset_version=OPSET,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic,
        )


class OnnxNetwork:
    """``model`` (a :class:`humanseg.models.SegModel` on the CPU) exported in memory and run by ONNX Runtime.

    The graph takes any batch, and the model's input size or, with ``any_size``, any height and width (the
    trained-model segmenter's fitted tiles; the same numbers at the input size). ``threads``: ONNX Runtime's
    intra-op threads (default: torch's thread count, which honours ``OMP_NUM_THREADS``). Its threads do not spin while waiting for work, so
    the decoding and encoding threads of the video pipeline get the cores.
    """

    def __init__(self, model: nn.Module, *, threads: int | None = None, any_size: bool = False) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ImportError(
                "the onnxruntime runtime needs the onnxruntime package: pip install onnxruntime "
                "(or use runtime='torch')"
            ) from err
        config = model.config
        h, w = config.input_size
        self.input_size = (int(h), int(w))
        self.any_size = bool(any_size)
        self.needs_plate = bool(config.needs_plate)
        names = ["frame", "plate"] if self.needs_plate else ["frame"]
        args = tuple(torch.rand(1, 3, h, w) for _ in names)
        buffer = io.BytesIO()
        graph = ProbabilityGraph(model).eval()
        axes = {0: "batch", 2: "height", 3: "width"} if self.any_size else {0: "batch"}
        export_graph(graph, args, buffer, names, ["person"], {n: axes for n in [*names, "person"]})
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads) if threads else torch.get_num_threads()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    def predict(self, frames: np.ndarray, plate: np.ndarray | None = None) -> np.ndarray:
        """Person probability ``float32 [B, H, W]`` for ``frames`` ``float32 [B, 3, H, W]`` in [0, 1] (and the
        plate ``[1, 3, H, W]`` for plate models, shared by the batch)."""
        if not self.any_size and tuple(frames.shape[-2:]) != self.input_size:
            raise ValueError(f"this graph takes frames of the model's input size {self.input_size}, got "
                             f"{tuple(frames.shape[-2:])}; build it with any_size=True")  # fmt: skip
        feeds = {"frame": np.ascontiguousarray(frames, np.float32)}
        if self.needs_plate:
            if plate is None:
                raise ValueError("this network takes the site's plate; pass plate=[1, 3, H, W]")
            feeds["plate"] = np.ascontiguousarray(np.broadcast_to(plate, frames.shape), np.float32)
        return self.session.run(None, feeds)[0][:, 0]
