"""Network architectures, one registry of them, and named presets.

>>> from humanseg.models import build_model, get_preset
>>> model = build_model("segnet-fast")          # a preset name, or a ModelConfig
>>> prob = model.predict(x)                       # x: float [B, 3, 240, 320] in [0, 1] -> [B, 240, 320]

A preset is an architecture, its keyword arguments (width, inputs) and the default input size. Plate presets
(``*-plate``) stack the frame, the site's empty-scene plate and their absolute difference (9 channels); they
suit fixed cameras. Prior presets (``*-prior``) take the same inputs and learn corrections to the plate
difference (see :mod:`humanseg.models.base`). Frame-only presets also work for moving cameras.
"""

from __future__ import annotations

from humanseg.models.base import (
    INPUTS,
    ModelConfig,
    SegModel,
    compose_input,
    images_to_tensor,
    resize_image,
)
from humanseg.models.segnet import SegNet
from humanseg.models.unet import UNet

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_PRESET",
    "INPUTS",
    "PRESETS",
    "ModelConfig",
    "SegModel",
    "SegNet",
    "UNet",
    "build_model",
    "compose_input",
    "count_parameters",
    "describe_presets",
    "get_preset",
    "images_to_tensor",
    "resize_image",
    "resolve_config",
]

#: Architecture name -> class (constructor takes a ModelConfig).
ARCHITECTURES: dict[str, type[SegModel]] = {"segnet": SegNet, "unet": UNet}

#: Preset name -> config. Sizes are (height, width) in pixels.
PRESETS: dict[str, ModelConfig] = {
    # The paper's network at the paper's CamVid-like resolution: ~29.4 M parameters.
    "segnet-paper": ModelConfig("segnet", width=1.0, inputs="frame", input_size=(360, 640)),
    # Quarter width: ~1.8 M parameters, real time on a laptop CPU at 240x320.
    "segnet-fast": ModelConfig("segnet", width=0.25, inputs="frame", input_size=(240, 320)),
    "segnet-fast-plate": ModelConfig("segnet", width=0.25, inputs="frame+plate+diff", input_size=(240, 320)),
    # For smoke tests and very slow machines: ~0.46 M parameters.
    "segnet-tiny": ModelConfig("segnet", width=0.125, inputs="frame", input_size=(120, 160)),
    "unet-fast": ModelConfig("unet", width=0.25, inputs="frame", input_size=(240, 320)),
    "unet-fast-plate": ModelConfig("unet", width=0.25, inputs="frame+plate+diff", input_size=(240, 320)),
    # The same U-Net learning corrections to the plate difference (its log-odds added to the person logit).
    "unet-fast-prior": ModelConfig("unet", width=0.25, inputs="frame+plate+diff", input_size=(240, 320), prior=True),
}


#: The preset trained when none is named: our users' cameras are fixed, so a plate is at hand; the U-Net's skip
#: connections keep small, distant people that SegNet's unpooling decoder blurs away, and learning corrections to
#: the plate difference beat learning the mask outright (dev sequences, 4-minute models, network alone:
#: F 0.883 vs 0.810 on HallAndMonitor, 0.897 vs 0.842 on CaVignal; README, results).
DEFAULT_PRESET = "unet-fast-prior"


def get_preset(name: str) -> ModelConfig:
    """The config of preset ``name``; unknown names raise ``ValueError`` listing the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def resolve_config(model: str | ModelConfig | dict) -> ModelConfig:
    """A ModelConfig from a preset name, a config, or a config dict (as stored in checkpoints)."""
    if isinstance(model, ModelConfig):
        config = model
    elif isinstance(model, dict):
        config = ModelConfig.from_dict(model)
    elif isinstance(model, str):
        config = get_preset(model)
    else:
        raise ValueError(f"model must be a preset name, ModelConfig or dict, got {type(model).__name__}")
    if config.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {config.arch!r}; valid architectures: {', '.join(ARCHITECTURES)}")
    return config


def build_model(model: str | ModelConfig | dict) -> SegModel:
    """Instantiate a network (random weights) from a preset name, a ModelConfig or its dict."""
    config = resolve_config(model)
    return ARCHITECTURES[config.arch](config)


def count_parameters(model: SegModel) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def describe_presets() -> list[dict]:
    """One row per preset (name, arch, width, inputs, input size, parameter count) for tables and the app."""
    rows = []
    for name, cfg in PRESETS.items():
        rows.append(
            {
                "name": name,
                "arch": cfg.arch,
                "width": cfg.width,
                "inputs": cfg.inputs,
                "input_size": f"{cfg.input_size[0]}x{cfg.input_size[1]}",
                "params": count_parameters(build_model(cfg)),
            }
        )
    return rows
