"""The trained-model segmenter's runtimes: ONNX Runtime on the CPU gives torch's masks within 1e-4; device and
runtime choices are checked with errors that name the fix; CUDA-only settings stay off on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from humanseg.checkpoint import save_checkpoint
from humanseg.models import ModelConfig, build_model
from humanseg.segmenters import create_segmenter
from humanseg.segmenters.onnx_network import OnnxNetwork
from humanseg.segmenters.segnet import SegNetSegmenter


def _frames(n: int, h: int = 72, w: int = 100) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(3)
    plate = rng.integers(40, 200, (h, w, 3), dtype=np.uint8)
    frames = []
    for i in range(n):
        f = np.clip(plate.astype(int) + rng.integers(-4, 5, plate.shape), 0, 255).astype(np.uint8)
        f[10:60, 5 + 7 * i : 25 + 7 * i] = (220, 50, 60)
        frames.append(f)
    return frames, plate


@pytest.fixture(params=["unet-prior", "segnet-plate", "unet-frame"])
def checkpoint(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, np.ndarray | None]:
    torch.manual_seed(0)
    configs = {
        "unet-prior": ModelConfig("unet", width=0.125, inputs="frame+plate+diff", input_size=(48, 64), prior=True),
        "segnet-plate": ModelConfig("segnet", width=0.0625, inputs="frame+plate+diff", input_size=(48, 64)),
        "unet-frame": ModelConfig("unet", width=0.125, inputs="frame", input_size=(48, 64)),
    }
    model = build_model(configs[request.param])
    for p in model.parameters():  # weights away from init, so the network's answer is not the prior alone
        p.data.add_(0.05 * torch.randn_like(p))
    _, plate = _frames(1)
    path = save_checkpoint(tmp_path / "m.pt", model, plate=plate if model.config.needs_plate else None)
    return path, plate if model.config.needs_plate else None


def test_onnxruntime_masks_equal_torch_within_1e4(checkpoint: tuple[Path, np.ndarray | None]) -> None:
    path, _ = checkpoint
    frames, _ = _frames(11)
    # The captured plate: a maintained one carries state from call to call, and this compares runtimes.
    ort_seg = create_segmenter("segnet", checkpoint=path, device="cpu", follow_plate=False)
    assert isinstance(ort_seg._onnx, OnnxNetwork)  # the CPU default when onnxruntime is installed
    torch_seg = create_segmenter("segnet", checkpoint=path, device="cpu", runtime="torch", follow_plate=False)
    assert torch_seg._onnx is None
    for flip in (False, True):
        ort_seg.flip_tta = torch_seg.flip_tta = flip
        for complete in (False, True):
            ort_seg.complete = torch_seg.complete = complete and ort_seg.plate is not None
            got, ref = ort_seg.segment_batch(frames), torch_seg.segment_batch(frames)
            assert max(float(np.abs(a - b).max()) for a, b in zip(got, ref, strict=True)) < 1e-4
    single = [ort_seg.segment(f) for f in frames[:3]]
    assert all(np.abs(a - b).max() < 1e-5 for a, b in zip(single, ort_seg.segment_batch(frames[:3]), strict=True))


def test_runtime_and_device_errors_name_the_fix(tmp_path: Path) -> None:
    model = build_model(ModelConfig("unet", width=0.125, inputs="frame", input_size=(48, 64)))
    path = save_checkpoint(tmp_path / "m.pt", model)
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'; valid: torch, onnxruntime"):
        SegNetSegmenter(path, device="cpu", runtime="tensorrt")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA|not available|cuda"):
            SegNetSegmenter(path, device="cuda")


def test_a_live_model_runs_in_torch_and_cuda_settings_stay_off_on_the_cpu() -> None:
    model = build_model(ModelConfig("unet", width=0.125, inputs="frame", input_size=(48, 64)))
    seg = SegNetSegmenter.from_model(model)
    assert seg._onnx is None and seg.batch_size == 8 and seg._device.type == "cpu"
    frames, _ = _frames(3)
    model.train()
    out = seg.segment_batch(frames)
    assert model.training and all(p.shape == (72, 100) and p.dtype == np.float32 for p in out)
    assert not torch.is_autocast_enabled()


def test_a_graph_of_any_size_gives_the_fixed_graphs_numbers_and_torchs_off_the_input_size(
    checkpoint: tuple[Path, np.ndarray | None],
) -> None:
    from humanseg.checkpoint import load_checkpoint
    from humanseg.segmenters.onnx_network import ProbabilityGraph

    model = load_checkpoint(checkpoint[0], device="cpu")[0].eval()
    fixed, any_size = OnnxNetwork(model), OnnxNetwork(model, any_size=True)
    rng = np.random.default_rng(5)
    names = ["frame", "plate"] if fixed.needs_plate else ["frame"]
    x = [rng.random((2, 3, 48, 64), dtype=np.float32) for _ in names]
    # At the input size the default path is unchanged: the any-size graph gives the fixed graph's numbers.
    assert np.abs(any_size.predict(*x) - fixed.predict(*x)).max() < 1e-6
    with pytest.raises(ValueError, match="any_size=True"):
        fixed.predict(*[a[..., :32, :32] for a in x])
    graph = ProbabilityGraph(model).eval()
    for h, w in ((64, 96), (96, 64), (32, 32)):  # fitted tile sizes (multiples of 32)
        y = [rng.random((3, 3, h, w), dtype=np.float32) for _ in names]
        with torch.no_grad():
            ref = graph(*[torch.from_numpy(a) for a in y])[:, 0].numpy()
        assert np.abs(any_size.predict(*y) - ref).max() < 1e-4
