"""What every network shares: the config dataclass, the tensor contract and the input builder.

Tensor contract (all architectures):

- input: RGB float in [0, 1], shape ``[B, C, H, W]`` with ``C`` = 3 (frame), 6 (frame, plate) or
  9 (frame, plate, ``|frame - plate|``), built by :func:`compose_input`;
- normalisation happens inside the model (registered buffers), so callers never normalise;
- ``forward`` returns logits ``[B, classes, H, W]``; ``predict`` returns person probabilities ``[B, H, W]``.

Plate prior (``ModelConfig.prior``): the model computes the plate-difference baseline's person probability from
its own frame and plate inputs (:func:`humanseg.plate.plate_probability_torch`), sees it as one more input channel, and adds its log-odds to
the person logit. The network's last layer starts at zero, so an untrained model *is* the plate difference and
training only learns corrections: where people match the background colour (recall) and where shadows, light
changes and plate errors differ from the plate without a person (precision).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from humanseg.plate import plate_probability_torch

#: Input options: which images are stacked along the channel axis.
INPUTS: dict[str, int] = {"frame": 3, "frame+plate": 6, "frame+plate+diff": 9}

# ImageNet statistics for the frame and the plate. |frame - plate| is mostly near 0 with a long tail where a
# person stands, so it gets its own fixed scale: measured against the empty scene on CDnet pedestrians and SBI
# HallAndMonitor, per channel mean 0.02-0.03, std 0.055-0.075.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DIFF_MEAN = (0.025, 0.025, 0.025)
DIFF_STD = (0.07, 0.07, 0.07)
# The prior channel is a probability that is 0 almost everywhere and 1 on people (5-15% of pixels).
PRIOR_MEAN = (0.1,)
PRIOR_STD = (0.3,)

PRIOR_CLAMP = 0.02  # the prior's log-odds are bounded at +-3.9 so the network can always overrule it


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network; saved in checkpoints as a plain dict (``to_dict``).

    ``arch``: architecture name in :data:`humanseg.models.ARCHITECTURES`; ``width``: channel multiplier
    (1.0 = the paper's channel counts); ``inputs``: ``"frame"``, ``"frame+plate"`` or ``"frame+plate+diff"``;
    ``classes``: output classes (2: background, person); ``input_size``: (height, width) in pixels that frames are
    resized to before the network (the training size); ``prior``: learn corrections to the plate-difference
    probability instead of the mask itself (plate inputs only; see the module docstring).
    """

    arch: str
    width: float = 1.0
    inputs: str = "frame"
    classes: int = 2
    input_size: tuple[int, int] = (240, 320)
    prior: bool = False

    def __post_init__(self) -> None:
        if self.inputs not in INPUTS:
            raise ValueError(f"unknown inputs {self.inputs!r}; valid: {', '.join(INPUTS)}")
        if self.prior and self.inputs == "frame":
            raise ValueError("prior=True needs the plate: use inputs 'frame+plate' or 'frame+plate+diff'")
        if not self.width > 0:
            raise ValueError(f"width must be > 0, got {self.width}")
        if self.classes < 2:
            raise ValueError(f"classes must be >= 2 (background + person), got {self.classes}")
        size = tuple(int(v) for v in self.input_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"input_size must be (height, width) in pixels, got {self.input_size!r}")
        object.__setattr__(self, "input_size", size)

    @property
    def in_channels(self) -> int:
        """Channels the network takes: 3, 6 or 9."""
        return INPUTS[self.inputs]

    @property
    def net_channels(self) -> int:
        """Channels the first layer sees: the inputs, plus the prior channel the model computes itself."""
        return self.in_channels + int(self.prior)

    @property
    def needs_plate(self) -> bool:
        """True when the network also looks at the site's empty-scene plate."""
        return self.inputs != "frame"

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists, not tuples), so it can go into JSON and ``weights_only`` checkpoints."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Inverse of ``to_dict``; unknown keys raise ``ValueError`` (a checkpoint from a newer version)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}; known: {sorted(known)}")
        return cls(**{**d, "input_size": tuple(d.get("input_size", (240, 320)))})

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes`` applied (e.g. another ``input_size``)."""
        return ModelConfig(**{**asdict(self), **changes})


def scaled(channels: int, width: float) -> int:
    """Channel count ``channels * width`` rounded, at least 1."""
    return max(1, int(round(channels * width)))


def normalisation(inputs: str, prior: bool = False) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) for an ``inputs`` option (and the prior channel after them)."""
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if inputs in ("frame+plate", "frame+plate+diff"):
        mean, std = mean + IMAGENET_MEAN, std + IMAGENET_STD
    if inputs == "frame+plate+diff":
        mean, std = mean + DIFF_MEAN, std + DIFF_STD
    if prior:
        mean, std = mean + PRIOR_MEAN, std + PRIOR_STD
    return mean, std


def compose_input(frame: torch.Tensor, plate: torch.Tensor | None = None, inputs: str = "frame") -> torch.Tensor:
    """Stack the network input from a frame batch and (for plate models) the plate.

    ``frame``: float ``[B, 3, H, W]`` in [0, 1]; ``plate``: float ``[B, 3, H, W]`` or ``[1, 3, H, W]`` (broadcast
    over the batch), same ``H x W``. Returns ``[B, C, H, W]`` with ``C`` = 3, 6 or 9.
    """
    if inputs not in INPUTS:
        raise ValueError(f"unknown inputs {inputs!r}; valid: {', '.join(INPUTS)}")
    if frame.ndim != 4 or frame.shape[1] != 3:
        raise ValueError(f"frame batch must be [B, 3, H, W], got {tuple(frame.shape)}")
    if inputs == "frame":
        return frame
    if plate is None:
        raise ValueError(f"inputs={inputs!r} needs the site's plate; pass plate=[B or 1, 3, H, W]")
    if plate.ndim != 4 or plate.shape[1] != 3 or plate.shape[-2:] != frame.shape[-2:]:
        raise ValueError(
            f"plate must be [B or 1, 3, H, W] with the frame's H x W {tuple(frame.shape[-2:])}, "
            f"got {tuple(plate.shape)}; resize the plate to the frame first"
        )
    plate = plate.to(frame.dtype).expand(frame.shape[0], -1, -1, -1)
    parts = [frame, plate]
    if inputs == "frame+plate+diff":
        parts.append((frame - plate).abs())
    return torch.cat(parts, dim=1)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (H x W or H x W x C) resized to ``size`` = (height, width) as networks see it: area averaging
    when shrinking (no aliasing), bilinear when enlarging; returned as is when it already has that size."""
    import cv2

    h, w = size
    if image.shape[:2] == (h, w):
        return image
    shrink = h < image.shape[0] or w < image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def images_to_tensor(images: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """RGB ``uint8`` ``H x W x 3`` (or a stack/list of them) -> float ``[B, 3, H, W]`` in [0, 1]."""
    arr = np.stack(images) if isinstance(images, list) else np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected RGB uint8 images H x W x 3, got array {arr.shape} {arr.dtype}")
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div_(255.0)


class SegModel(nn.Module):
    """Base of all architectures: normalises inside, checks the channel count, adds ``predict``.

    Subclasses implement ``_forward(x_normalised) -> logits``.
    """

    #: Smallest height/width the architecture accepts (pixels).
    min_size: int = 1

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        mean, std = normalisation(config.inputs, config.prior)
        # Not persistent: always rebuilt from ``config``, so old checkpoints never carry stale constants.
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    @property
    def in_channels(self) -> int:
        return self.config.in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: float ``[B, C, H, W]`` in [0, 1]; returns logits ``[B, classes, H, W]``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} with inputs={self.config.inputs!r} takes [B, {self.in_channels}, H, W], "
                f"got {tuple(x.shape)}; build the input with humanseg.models.compose_input"
            )
        if not torch.jit.is_tracing() and min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"{type(self).__name__} needs inputs of at least {self.min_size}x{self.min_size} pixels, got "
                f"{tuple(x.shape[-2:])}; resize or pad the frame to at least {self.min_size} pixels per side"
            )
        if not self.config.prior:
            return self._forward((x - self.mean) / self.std)
        # The training height fixes the morphology radii, so they are constants in exported graphs.
        prob = plate_probability_torch(x[:, :3], x[:, 3:6], height=self.config.input_size[0])
        x = torch.cat([x, prob], dim=1)
        logits = self._forward((x - self.mean) / self.std)
        p = prob.clamp(PRIOR_CLAMP, 1.0 - PRIOR_CLAMP)
        log_odds = torch.log(p) - torch.log1p(-p)
        # Person is class 1: the prior moves its logit, the other classes stay as the network says.
        return torch.cat([logits[:, :1], logits[:, 1:2] + log_odds.to(logits.dtype), logits[:, 2:]], dim=1)

    def _zero_last(self, layer: nn.Module) -> None:
        """Start a prior model at the prior: the layer producing the logits starts at zero."""
        if self.config.prior:
            nn.init.zeros_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Person probability ``[B, H, W]`` (softmax channel 1), without gradients, on the model's device."""
        param = next(self.parameters())
        with torch.inference_mode():
            logits = self(x.to(param.device, param.dtype))
            return torch.softmax(logits.float(), dim=1)[:, 1]
