"""Architectures, registry and presets: shapes at odd sizes, parameter counts, the tensor contract."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from humanseg.models import (
    ARCHITECTURES,
    PRESETS,
    ModelConfig,
    SegNet,
    build_model,
    compose_input,
    count_parameters,
    get_preset,
    images_to_tensor,
)
from humanseg.models.blocks import max_unpool2x2
from humanseg.plate import plate_probability_torch


@pytest.mark.parametrize("size", [(240, 320), (360, 640), (241, 333), (37, 53)])
def test_segnet_keeps_any_size(size):
    torch.manual_seed(0)
    model = build_model(ModelConfig("segnet", width=0.0625)).eval()
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (1, 2, *size)
    prob = model.predict(x)
    assert prob.shape == (1, *size)
    assert torch.allclose(prob, torch.softmax(logits, 1)[:, 1], atol=1e-6)
    assert 0.0 <= float(prob.min()) and float(prob.max()) <= 1.0


@pytest.mark.parametrize("inputs", ["frame", "frame+plate", "frame+plate+diff"])
@pytest.mark.parametrize("size", [(37, 53), (241, 333)])
def test_unet_keeps_any_size(inputs, size):
    model = build_model(ModelConfig("unet", width=0.0625, inputs=inputs)).eval()
    channels = {"frame": 3, "frame+plate": 6, "frame+plate+diff": 9}[inputs]
    assert model.in_channels == channels
    with torch.no_grad():
        assert model(torch.rand(2, channels, *size)).shape == (2, 2, *size)


def test_segnet_is_the_papers_network():
    model = build_model("segnet-paper")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    encoder_convs = [m for m in model.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in encoder_convs] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    assert all(c.kernel_size == (3, 3) for c in convs)
    # Mirrored decoder: 12 conv+BN+ReLU layers, then the 3x3 classifier; 25 batch norms in all.
    decoder_convs = [m for m in model.decoder.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in decoder_convs] == [512, 512, 512, 512, 512, 256, 256, 256, 128, 128, 64, 64]
    assert model.classifier.out_channels == 2
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 25
    # The paper reports 29.5 M trainable parameters.
    assert count_parameters(model) == pytest.approx(29.5e6, rel=0.01)


def test_preset_parameter_counts_and_sizes():
    counts = {name: count_parameters(build_model(name)) for name in PRESETS}
    assert counts["segnet-fast"] == pytest.approx(1.8e6, rel=0.03)
    assert counts["segnet-fast-plate"] - counts["segnet-fast"] == 16 * 6 * 9  # 6 more input channels, 16 filters
    assert counts["unet-fast"] == pytest.approx(1.83e6, rel=0.03)
    assert get_preset("segnet-paper").input_size == (360, 640)
    assert get_preset("segnet-fast").input_size == (240, 320)
    assert get_preset("segnet-fast-plate").inputs == "frame+plate+diff"
    assert get_preset("unet-fast-plate").in_channels == 9


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="segnet-fast"):
        build_model("segnet-huge")
    with pytest.raises(ValueError, match="segnet, unet"):
        build_model(ModelConfig("resnet"))
    with pytest.raises(ValueError, match="frame\\+plate"):
        ModelConfig("segnet", inputs="plate")
    assert set(ARCHITECTURES) == {"segnet", "unet"}


def test_model_config_round_trips_as_plain_dict():
    cfg = ModelConfig("unet", width=0.5, inputs="frame+plate", input_size=(120, 160))
    d = cfg.to_dict()
    assert d == {"arch": "unet", "width": 0.5, "inputs": "frame+plate", "classes": 2, "input_size": [120, 160],
                 "prior": False}
    assert ModelConfig.from_dict(d) == cfg
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({**d, "depth": 3})


def test_unpooling_puts_values_back_at_their_maxima():
    x = torch.tensor([[[[1.0, 5.0, 2.0], [3.0, 4.0, 9.0], [7.0, 0.0, 8.0]]]])  # 3x3: pooling keeps one 2x2 window
    pooled, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    assert pooled.item() == 5.0
    out = max_unpool2x2(pooled, idx, x.shape[-2:])
    expected = torch.tensor([[[[0.0, 5.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]])
    assert torch.equal(out, expected)


def test_export_unpooling_equals_max_unpool(monkeypatch):
    # The scatter formulation used while exporting to ONNX must give exactly what F.max_unpool2d gives.
    x = torch.randn(2, 4, 37, 53)
    pooled, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    reference = max_unpool2x2(pooled, idx, x.shape[-2:])
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    assert torch.equal(max_unpool2x2(pooled, idx, x.shape[-2:]), reference)


def test_normalisation_is_inside_the_model():
    model = build_model(ModelConfig("segnet", width=0.0625, inputs="frame+plate+diff"))
    assert model.mean.shape == (1, 9, 1, 1) and model.std.shape == (1, 9, 1, 1)
    assert torch.allclose(model.mean[0, :3, 0, 0], torch.tensor([0.485, 0.456, 0.406]))
    assert "mean" not in model.state_dict()  # rebuilt from the config, never stale in a checkpoint
    with pytest.raises(ValueError, match=r"\[B, 9, H, W\]"):
        model(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="at least 32x32"):
        model(torch.rand(1, 9, 31, 64))


def test_compose_input_stacks_frame_plate_and_difference():
    frame = torch.rand(2, 3, 8, 10)
    plate = torch.rand(1, 3, 8, 10)
    assert compose_input(frame).data_ptr() == frame.data_ptr()
    six = compose_input(frame, plate, "frame+plate")
    assert six.shape == (2, 6, 8, 10) and torch.equal(six[1, 3:], plate[0])
    nine = compose_input(frame, plate, "frame+plate+diff")
    assert torch.allclose(nine[:, 6:], (frame - plate).abs())
    with pytest.raises(ValueError, match="needs the site's plate"):
        compose_input(frame, None, "frame+plate")
    with pytest.raises(ValueError, match="resize the plate"):
        compose_input(frame, torch.rand(1, 3, 4, 5), "frame+plate")


def test_images_to_tensor_scales_uint8_to_unit_range():
    import numpy as np

    img = np.zeros((4, 5, 3), np.uint8)
    img[1, 2] = (255, 0, 51)
    t = images_to_tensor(img)
    assert t.shape == (1, 3, 4, 5) and t.dtype == torch.float32
    assert t[0, :, 1, 2].tolist() == pytest.approx([1.0, 0.0, 0.2])
    with pytest.raises(ValueError, match="uint8"):
        images_to_tensor(img.astype(np.float32))


def test_predict_needs_no_grad_and_matches_device():
    model = SegNet(ModelConfig("segnet", width=0.0625))
    device = next(model.parameters()).device
    # The input starts on another dtype (and, with a GPU, on the CPU while the model is on the GPU).
    if torch.cuda.is_available():
        model, device = model.cuda(), torch.device("cuda", torch.cuda.current_device())
    prob = model.predict(torch.rand(1, 3, 32, 32, dtype=torch.float64))
    assert not prob.requires_grad and prob.dtype == torch.float32
    assert prob.device == device and prob.shape == (1, 32, 32)


def _frame_and_plate(h: int = 48, w: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """A textured plate and a frame with a 20x10 'person' that differs by 60 levels in every channel."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    plate = torch.stack([0.4 + 0.1 * torch.sin(xx / 5.0), 0.5 + 0.1 * torch.cos(yy / 4.0), 0.45 + 0 * xx])[None]
    frame = plate.clone()
    frame[..., 14:34, 27:37] = (frame[..., 14:34, 27:37] + 60 / 255).clamp(0, 1)
    return frame, plate


def test_plate_prior_follows_the_plate_diff_rule():
    frame, plate = _frame_and_plate()
    prob = plate_probability_torch(frame, plate)[0, 0]
    # Distance sqrt(3)*60 = 104 >> 45 inside the person, 0 outside: a clean 0/1 box after the morphology.
    expect = torch.zeros_like(prob)
    expect[14:34, 27:37] = 1.0
    assert torch.equal(prob, expect)
    # The plate-diff segmenter (same default rule, at 240 lines) gives the same mask on the same images.
    from humanseg.segmenters.plate_diff import PlateDiffSegmenter

    to_u8 = lambda t: (t[0].permute(1, 2, 0) * 255).round().byte().numpy()  # noqa: E731
    big = lambda t: torch.nn.functional.interpolate(t, size=(240, 320), mode="nearest")  # noqa: E731
    f8, p8 = to_u8(big(frame)), to_u8(big(plate))
    ours = plate_probability_torch(images_to_tensor(f8), images_to_tensor(p8))[0, 0]
    theirs = torch.from_numpy(PlateDiffSegmenter(p8).segment(f8))
    # Only the box's 4 corner pixels differ: the segmenter's 3x3 elliptical opening is a cross, ours a square.
    assert int((theirs != ours).sum()) <= 4 and float(theirs.sum()) >= 100 * 50 - 4
    assert float(ours.sum()) == 100 * 50  # the 5x enlarged person box, nothing else
    # On the ramp: a uniform distance of 35 (the threshold) gives 0.5 everywhere.
    shifted = (plate + 35 / 255 / 3**0.5).clamp(0, 1)
    assert torch.allclose(plate_probability_torch(shifted, plate), torch.full_like(prob, 0.5)[None, None], atol=1e-3)


def test_untrained_prior_model_is_the_plate_difference():
    frame, plate = _frame_and_plate()
    config = ModelConfig("unet", width=0.0625, inputs="frame+plate+diff", prior=True)
    model = build_model(config).eval()
    assert config.in_channels == 9 and config.net_channels == 10
    assert model.down[0][0].in_channels == 10  # the prior is one more channel for the network
    prob = model.predict(compose_input(frame, plate, "frame+plate+diff"))[0]
    # Zero last layer: the output is the prior, bounded at 0.02 / 0.98 so training can overrule it.
    assert torch.allclose(prob[14:34, 27:37], torch.tensor(0.98), atol=1e-4)
    outside = torch.ones_like(prob, dtype=torch.bool)
    outside[14:34, 27:37] = False
    assert torch.allclose(prob[outside], torch.tensor(0.02), atol=1e-4)
    assert get_preset("unet-fast-prior").prior and get_preset("unet-fast-prior").input_size == (240, 320)
    segnet = build_model(ModelConfig("segnet", width=0.0625, inputs="frame+plate", prior=True)).eval()
    assert torch.allclose(segnet.predict(compose_input(frame, plate, "frame+plate"))[0], prob, atol=1e-4)


def test_prior_needs_a_plate_and_round_trips():
    with pytest.raises(ValueError, match="prior=True needs the plate"):
        ModelConfig("unet", inputs="frame", prior=True)
    config = get_preset("unet-fast-prior")
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert ModelConfig.from_dict({k: v for k, v in config.to_dict().items() if k != "prior"}).prior is False
