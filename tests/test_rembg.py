"""The rembg backend, run for real through rembg's sessions with a tiny ONNX model exported here.

The tiny network outputs the normalised red channel (a 1x1 convolution, weight 1 on red, 0 elsewhere).
rembg's U^2-Net sessions resize to 320x320, divide by the image maximum, apply ImageNet mean/std, take output
channel 0 and min-max normalise it, so for a frame whose brightest value is in red the mask must equal
(R - min R) / (max R - min R): a fixed function we can check pixel by pixel.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from humanseg.segmenters import create_segmenter

H, W = 120, 160


@pytest.fixture(scope="module")
def red_onnx(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    net = torch.nn.Conv2d(3, 1, kernel_size=1)
    with torch.no_grad():
        net.weight.zero_()
        net.weight[0, 0, 0, 0] = 1.0
        net.bias.zero_()
    path = tmp_path_factory.mktemp("onnx") / "red.onnx"
    # The TorchScript exporter (dynamo=False) needs no onnxscript; rembg feeds a fixed 1x3x320x320 input.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy TorchScript-based ONNX export"
        torch.onnx.export(
            net, torch.zeros(1, 3, 320, 320), str(path), input_names=["input"], output_names=["mask"], dynamo=False
        )
    return path


def red_square_frame() -> tuple[np.ndarray, np.ndarray]:
    frame = np.zeros((H, W, 3), np.uint8)
    frame[..., 1:] = 60  # green/blue do not reach the network's output
    square = np.zeros((H, W), bool)
    square[30:90, 40:100] = True
    frame[square, 0] = 255
    return frame, square


def test_custom_onnx_gives_the_networks_mask(red_onnx):
    seg = create_segmenter("rembg", model_path=red_onnx)
    assert seg.model == "u2net_custom"
    frame, square = red_square_frame()
    prob = seg.segment(frame)
    assert prob.shape == (H, W) and prob.dtype == np.float32
    assert prob.min() >= 0.0 and prob.max() <= 1.0
    inner = np.zeros_like(square)
    inner[34:86, 44:96] = True  # away from the resampling ringing at the edges
    outer = ~np.pad(np.ones((68, 68), bool), ((26, H - 94), (36, W - 104)))
    assert prob[inner].min() > 0.99 and prob[outer].max() < 0.01


def test_custom_onnx_mask_is_the_normalised_red_channel(red_onnx):
    red = np.tile(np.linspace(0, 255, W).astype(np.uint8), (H, 1))
    frame = np.stack([red, np.full_like(red, 77), np.full_like(red, 10)], axis=-1)
    prob = create_segmenter("rembg", model_path=red_onnx).segment(frame)
    want = (red - red.min()) / (red.max() - red.min())
    # 8-bit mask quantisation and two resamplings (Lanczos) of a linear ramp: within 2 grey levels.
    np.testing.assert_allclose(prob, want, atol=2 / 255)


def test_named_model_loads_from_rembgs_folder_without_download(red_onnx, tmp_path, monkeypatch):
    """A model file placed where the error message says is used as is (rembg's own session, no download)."""
    import pooch

    def no_download(*args, **kwargs):
        raise AssertionError("rembg tried to download a model that is present")

    monkeypatch.setattr(pooch, "retrieve", no_download)
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    shutil.copy(red_onnx, tmp_path / "u2netp.onnx")
    seg = create_segmenter("rembg", model="u2netp")
    frame, square = red_square_frame()
    assert ((seg.segment(frame) > 0.5) == square).mean() > 0.99


def test_missing_model_names_the_folder_and_file(tmp_path, monkeypatch):
    import pooch

    def offline(url, *args, **kwargs):
        raise ConnectionError(f"Failed to resolve host for {url}")

    monkeypatch.setattr(pooch, "retrieve", offline)
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        create_segmenter("rembg")  # default model u2net_human_seg
    message = str(err.value)
    assert "u2net_human_seg.onnx" in message and str(tmp_path / "models" / "u2net_human_seg") in message
    assert f"U2NET_HOME={tmp_path}" in message and "Failed to resolve host" in message


def test_invalid_model_choices(red_onnx, tmp_path):
    with pytest.raises(ValueError, match="unknown rembg model 'u3net'; valid names: .*u2net_human_seg"):
        create_segmenter("rembg", model="u3net")
    with pytest.raises(ValueError, match="model must be one of .*u2net_custom.*got 'u2netp'"):
        create_segmenter("rembg", model="u2netp", model_path=red_onnx)
    with pytest.raises(ValueError, match="'u2net_custom' needs model_path"):
        create_segmenter("rembg", model="u2net_custom")
    with pytest.raises(ValueError, match="remote service"):
        create_segmenter("rembg", model="atlascloud")
    with pytest.raises(FileNotFoundError, match="ONNX model file not found.*missing.onnx"):
        create_segmenter("rembg", model_path=tmp_path / "missing.onnx")
